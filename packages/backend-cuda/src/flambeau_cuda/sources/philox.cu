// The Philox4x64-10 stream of flambeau.backends.philox (see its docstring), bit for bit:
// block b is Philox4x64-10 of counter (b, 0, 0, 0) under key (seed, 0), and element i is
// the 32-bit half i % 2 (low half first) of 64-bit word (i / 2) % 4 of block i / 8. One
// thread computes one block of eight elements.
#include "common.cuh"

typedef unsigned long long u64;

#define PHILOX_M0 0xD2E7470EE14C6C93ull
#define PHILOX_M1 0xCA5A826395121157ull
#define PHILOX_W0 0x9E3779B97F4A7C15ull
#define PHILOX_W1 0xBB67AE8584CAA73Bull

__device__ __forceinline__ void philox4x64(u64 block, u64 key, u64 c[4]) {
    u64 k0 = key, k1 = 0;
    c[0] = block;
    c[1] = c[2] = c[3] = 0;
    for (int round = 0; round < 10; ++round) {
        const u64 hi0 = __umul64hi(PHILOX_M0, c[0]), lo0 = PHILOX_M0 * c[0];
        const u64 hi1 = __umul64hi(PHILOX_M1, c[2]), lo1 = PHILOX_M1 * c[2];
        c[0] = hi1 ^ c[1] ^ k0;
        c[1] = lo1;
        c[2] = hi0 ^ c[3] ^ k1;
        c[3] = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
}

__device__ __forceinline__ unsigned int element_of(const u64 c[4], int j) {
    return (unsigned int)(c[j / 2] >> (32 * (j % 2)));
}

// Calls store(i, element) for the elements offset .. offset + n - 1, i counted from 0.
template <typename Store>
__device__ __forceinline__ void for_each_element(i64 n, u64 offset, u64 key, Store store) {
    const u64 first = offset / 8;
    const i64 blocks = (i64)((offset + (u64)n - 1) / 8 - first) + 1;
    for (i64 t = thread_index(); t < blocks; t += thread_count()) {
        u64 c[4];
        philox4x64(first + (u64)t, key, c);
        // Index of this block's element 0 (negative for a first block cut by offset).
        const i64 base = t * 8 - (i64)(offset % 8);
        for (int j = 0; j < 8; ++j) {
            const i64 i = base + j;
            if (i >= 0 && i < n) store(i, element_of(c, j));
        }
    }
}

struct StoreBits {
    unsigned int* out;
    __device__ void operator()(i64 i, unsigned int bits) const { out[i] = bits; }
};

// float32 uniforms as the core composes them (flambeau._random._uniform_array):
// (bits >> 8) * scale, plus low when low is not 0; separate roundings, no FMA.
struct StoreUniform {
    float* out;
    float scale, low;
    __device__ void operator()(i64 i, unsigned int bits) const {
        const float value = __fmul_rn((float)(bits >> 8), scale);
        out[i] = low != 0.0f ? __fadd_rn(value, low) : value;
    }
};

// Kernel parameters spell unsigned long long out (the host emulation reads them).
extern "C" __global__ void philox_random_bits(unsigned int* out, i64 n,
                                              unsigned long long offset,
                                              unsigned long long key) {
    for_each_element(n, offset, key, StoreBits{out});
}

extern "C" __global__ void philox_uniform_float(float* out, i64 n, unsigned long long offset,
                                                unsigned long long key, float scale,
                                                float low) {
    for_each_element(n, offset, key, StoreUniform{out, scale, low});
}
