// random_bits: words offset .. offset + n - 1 of the Philox4x32-10 stream of a seed,
// bit for bit those of flambeau.backends.philox.random_bits (see its docstring): word i
// is word i % 4 of the block computed with key (seed low, seed high) and counter
// (b low, b high, 0, 0), b = i / 4. One thread computes one block of four words.
#include "common.cuh"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

extern "C" __global__ void philox_random_bits(unsigned int* out, i64 n,
                                              unsigned long long offset, unsigned int key0,
                                              unsigned int key1) {
    const unsigned long long first = offset / 4;
    const i64 blocks = (i64)((offset + (unsigned long long)n - 1) / 4 - first) + 1;
    for (i64 t = thread_index(); t < blocks; t += thread_count()) {
        const unsigned long long b = first + (unsigned long long)t;
        unsigned int c0 = (unsigned int)(b & 0xFFFFFFFFull), c1 = (unsigned int)(b >> 32);
        unsigned int c2 = 0, c3 = 0, k0 = key0, k1 = key1;
        for (int round = 0; round < 10; ++round) {
            const unsigned int hi0 = __umulhi(PHILOX_M0, c0), lo0 = PHILOX_M0 * c0;
            const unsigned int hi1 = __umulhi(PHILOX_M1, c2), lo1 = PHILOX_M1 * c2;
            c0 = hi1 ^ c1 ^ k0;
            c1 = lo1;
            c2 = hi0 ^ c3 ^ k1;
            c3 = lo0;
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        const unsigned int words[4] = {c0, c1, c2, c3};
        // Index in out of this block's word 0 (negative for a first block cut by offset).
        const i64 base = t * 4 - (i64)(offset % 4);
        for (int j = 0; j < 4; ++j) {
            const i64 i = base + j;
            if (i >= 0 && i < n) out[i] = words[j];
        }
    }
}
