// softmax, log_softmax, cross_entropy and its gradient over the rows of a C-contiguous
// (rows, cols) array: one block per row. The log-sum-exp is the core's (flambeau._ops.
// reduction.logsumexp): shifted by the row's maximum, NaN propagating, and not shifted
// when the maximum is infinite.
#include "common.cuh"

template <typename T> __device__ T row_logsumexp(const T* row, i64 cols) {
    T top = -infinity<T>();
    for (i64 c = threadIdx.x; c < cols; c += blockDim.x) top = max_nan(top, row[c]);
    top = block_reduce(top, MaxOp(), -infinity<T>());
    const T shift = is_inf(top) ? T(0) : top;
    T sum = T(0);
    for (i64 c = threadIdx.x; c < cols; c += blockDim.x) sum += exp_of(row[c] - shift);
    sum = block_reduce(sum, SumOp(), T(0));
    return log_of(sum) + shift;
}

// y = x - logsumexp(x) (log_output) or exp of that, row by row.
template <typename T>
__device__ void softmax_rows(const T* x, T* y, i64 rows, i64 cols, int log_output) {
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* in = x + r * cols;
        T* out = y + r * cols;
        const T lse = row_logsumexp(in, cols);
        for (i64 c = threadIdx.x; c < cols; c += blockDim.x) {
            const T value = in[c] - lse;
            out[c] = log_output ? value : exp_of(value);
        }
    }
}

// loss[r] = logsumexp(x[r]) - x[r, target[r]], targets in [0, cols).
template <typename T>
__device__ void cross_entropy_rows(const T* x, const i64* target, T* loss, i64 rows,
                                   i64 cols) {
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* in = x + r * cols;
        const T lse = row_logsumexp(in, cols);
        if (threadIdx.x == 0) loss[r] = lse - in[target[r]];
    }
}

// dx[r, c] = (softmax(x[r])[c] - (c == target[r])) * grad[r * grad_step], the gradient of
// cross_entropy_rows (grad_step 0: one gradient for every row). The softmax is
// softmax_rows's, then the one-hot is subtracted and the gradient applied, as in the core's
// composition.
template <typename T>
__device__ void cross_entropy_grad_rows(const T* x, const i64* target, const T* grad,
                                        i64 grad_step, T* dx, i64 rows, i64 cols) {
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* in = x + r * cols;
        T* out = dx + r * cols;
        const T lse = row_logsumexp(in, cols);
        const i64 t = target[r];
        const T g = grad[r * grad_step];
        for (i64 c = threadIdx.x; c < cols; c += blockDim.x) {
            const T p = exp_of(in[c] - lse);
            out[c] = (c == t ? p - T(1) : p) * g;
        }
    }
}

#define FLAMBEAU_SOFTMAX(T, S)                                                              \
    extern "C" __global__ void softmax_rows_##S(const T* x, T* y, i64 rows, i64 cols,       \
                                                int log_output) {                           \
        softmax_rows<T>(x, y, rows, cols, log_output);                                      \
    }                                                                                       \
    extern "C" __global__ void cross_entropy_rows_##S(const T* x, const i64* target,        \
                                                      T* loss, i64 rows, i64 cols) {        \
        cross_entropy_rows<T>(x, target, loss, rows, cols);                                 \
    }                                                                                       \
    extern "C" __global__ void cross_entropy_grad_rows_##S(const T* x, const i64* target,   \
                                                           const T* grad, i64 grad_step,    \
                                                           T* dx, i64 rows, i64 cols) {     \
        cross_entropy_grad_rows<T>(x, target, grad, grad_step, dx, rows, cols);             \
    }

FLAMBEAU_SOFTMAX(float, f32)
FLAMBEAU_SOFTMAX(double, f64)
