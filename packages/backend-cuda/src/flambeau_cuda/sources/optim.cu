// Fused multi-tensor SGD and Adam steps: one launch updates every tensor of a list.
//
// The tensors come as a table in device memory: per tensor, `slots` pointers (stored as
// i64; 0 for an absent buffer) and its element count. blockIdx.y picks the tensor and
// the x dimension strides over its elements. The arithmetic follows the references,
// flambeau.optim.sgd.sgd_step and flambeau.optim.adam.adam_step, step by step; scalars
// that depend only on the step are computed once on the host.
#include "common.cuh"

// slots: param, grad, momentum buffer, count
template <typename T>
__device__ void sgd_step(const i64* table, T lr, T momentum, T one_minus_dampening,
                         T weight_decay, int nesterov, int maximize, int has_buffer) {
    const i64* entry = table + blockIdx.y * 4;
    T* param = (T*)entry[0];
    const T* grad = (const T*)entry[1];
    T* buffer = (T*)entry[2];
    const i64 count = entry[3];
    for (i64 i = thread_index(); i < count; i += thread_count()) {
        T g = maximize ? -grad[i] : grad[i];
        if (weight_decay != T(0)) g = g + weight_decay * param[i];
        if (has_buffer) {
            const T b = buffer[i] * momentum + one_minus_dampening * g;
            buffer[i] = b;
            g = nesterov ? g + momentum * b : b;
        }
        param[i] = param[i] + (-lr) * g;
    }
}

// slots: param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq (AMSGrad), count
template <typename T>
__device__ void adam_step(const i64* table, T beta2, T eps, T weight_decay, T decay_factor,
                          T one_minus_beta1, T one_minus_beta2, T bias_correction2_sqrt,
                          T step_size, int decoupled, int maximize, int amsgrad) {
    const i64* entry = table + blockIdx.y * 6;
    T* param = (T*)entry[0];
    const T* grad = (const T*)entry[1];
    T* exp_avg = (T*)entry[2];
    T* exp_avg_sq = (T*)entry[3];
    T* max_exp_avg_sq = (T*)entry[4];
    const i64 count = entry[5];
    for (i64 i = thread_index(); i < count; i += thread_count()) {
        T g = maximize ? -grad[i] : grad[i];
        T p = param[i];
        if (weight_decay != T(0)) {
            if (decoupled)
                p = p * decay_factor;
            else
                g = g + weight_decay * p;
        }
        const T m = exp_avg[i] + one_minus_beta1 * (g - exp_avg[i]);
        const T v = exp_avg_sq[i] * beta2 + one_minus_beta2 * (g * g);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        T second = v;
        if (amsgrad) {
            second = max_nan(max_exp_avg_sq[i], v);
            max_exp_avg_sq[i] = second;
        }
        const T denom = sqrt_of(second) / bias_correction2_sqrt + eps;
        param[i] = p + (-step_size) * (m / denom);
    }
}

#define FLAMBEAU_OPTIM(T, S)                                                                \
    extern "C" __global__ void sgd_step_##S(const i64* table, T lr, T momentum,             \
                                            T one_minus_dampening, T weight_decay,          \
                                            int nesterov, int maximize, int has_buffer) {   \
        sgd_step<T>(table, lr, momentum, one_minus_dampening, weight_decay, nesterov,       \
                    maximize, has_buffer);                                                  \
    }                                                                                       \
    extern "C" __global__ void adam_step_##S(                                               \
        const i64* table, T beta2, T eps, T weight_decay, T decay_factor,                   \
        T one_minus_beta1, T one_minus_beta2, T bias_correction2_sqrt, T step_size,         \
        int decoupled, int maximize, int amsgrad) {                                         \
        adam_step<T>(table, beta2, eps, weight_decay, decay_factor, one_minus_beta1,        \
                     one_minus_beta2, bias_correction2_sqrt, step_size, decoupled,          \
                     maximize, amsgrad);                                                    \
    }

FLAMBEAU_OPTIM(float, f32)
FLAMBEAU_OPTIM(double, f64)
