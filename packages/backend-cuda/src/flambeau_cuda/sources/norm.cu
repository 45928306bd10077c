// Mean and biased variance of each row of a C-contiguous (rows, cols) array, one block
// per row, accumulated in double and in two passes (mean, then squared deviations) like
// the core's layer_norm_reference. The normalisation itself is an elementwise kernel
// (flambeau_cuda/programs.py, "normalize"), which broadcasts weight and bias.
#include "common.cuh"

template <typename T>
__device__ void row_moments(const T* x, T* mean, T* var, i64 rows, i64 cols) {
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* in = x + r * cols;
        double sum = 0.0;
        for (i64 c = threadIdx.x; c < cols; c += blockDim.x) sum += (double)in[c];
        const double m = block_reduce(sum, SumOp(), 0.0) / (double)cols;
        double squares = 0.0;
        for (i64 c = threadIdx.x; c < cols; c += blockDim.x) {
            const double d = (double)in[c] - m;
            squares += d * d;
        }
        const double v = block_reduce(squares, SumOp(), 0.0) / (double)cols;
        if (threadIdx.x == 0) {
            mean[r] = (T)m;
            var[r] = (T)v;
        }
    }
}

#define FLAMBEAU_NORM(T, S)                                                                 \
    extern "C" __global__ void row_moments_##S(const T* x, T* mean, T* var, i64 rows,       \
                                               i64 cols) {                                  \
        row_moments<T>(x, mean, var, rows, cols);                                           \
    }

FLAMBEAU_NORM(float, f32)
FLAMBEAU_NORM(double, f64)
