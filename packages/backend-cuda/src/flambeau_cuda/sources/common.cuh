// Helpers shared by flambeau's CUDA kernels.
//
// flambeau_cuda/programs.py pastes this file in place of `#include "common.cuh"` before
// handing a source to NVRTC (through cupy), so no include path is needed and cupy's
// kernel cache key covers it. Only NVRTC built-ins are used: no standard headers.
// tests/test_cuda_sources.py compiles every source with nvcc for sm_90.
#pragma once

typedef long long i64;

// --- the float types kernels are instantiated for, with their math ---------------------

__device__ __forceinline__ float exp_of(float x) { return expf(x); }
__device__ __forceinline__ double exp_of(double x) { return exp(x); }
__device__ __forceinline__ float log_of(float x) { return logf(x); }
__device__ __forceinline__ double log_of(double x) { return log(x); }
__device__ __forceinline__ float sqrt_of(float x) { return sqrtf(x); }
__device__ __forceinline__ double sqrt_of(double x) { return sqrt(x); }

template <typename T> __device__ __forceinline__ T infinity();
template <> __device__ __forceinline__ float infinity<float>() {
    return __int_as_float(0x7f800000);
}
template <> __device__ __forceinline__ double infinity<double>() {
    return __longlong_as_double(0x7ff0000000000000LL);
}

template <typename T> __device__ __forceinline__ bool is_nan(T x) { return x != x; }
template <typename T> __device__ __forceinline__ bool is_inf(T x) {
    return x == infinity<T>() || x == -infinity<T>();
}

// The larger of a and b, a NaN winning (numpy's and the core's maximum propagate NaN).
template <typename T> __device__ __forceinline__ T max_nan(T a, T b) {
    return (b > a || is_nan(b)) ? b : a;
}

// --- grid-stride loops -------------------------------------------------------------------

__device__ __forceinline__ i64 thread_index() {
    return (i64)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ i64 thread_count() { return (i64)gridDim.x * blockDim.x; }

// --- block-wide reductions ------------------------------------------------------------------
// Every thread of the block calls them (blockDim.x a multiple of 32, at most 1024) and
// gets the result.

struct SumOp {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const {
        return a + b;
    }
};

struct MaxOp {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const {
        return max_nan(a, b);
    }
};

template <typename T, typename Op> __device__ T block_reduce(T value, Op op, T identity) {
    __shared__ T partial[32];
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    for (int offset = 16; offset > 0; offset >>= 1)
        value = op(value, __shfl_down_sync(0xffffffffu, value, offset));
    __syncthreads();  // an earlier call may still be reading partial
    if (lane == 0) partial[warp] = value;
    __syncthreads();
    if (warp == 0) {
        value = lane < (int)((blockDim.x + 31) >> 5) ? partial[lane] : identity;
        for (int offset = 16; offset > 0; offset >>= 1)
            value = op(value, __shfl_down_sync(0xffffffffu, value, offset));
        if (lane == 0) partial[0] = value;
    }
    __syncthreads();
    return partial[0];
}
