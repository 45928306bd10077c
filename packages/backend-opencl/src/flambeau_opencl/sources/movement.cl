/* Indexed movement of the program's dtype: take, gather, scatter_add; and, in the uint32
 * program, the Philox random bits. Negative indices count from the end; the core checks
 * that indices are in range, and the kernels clamp them anyway (on CPU devices a stray
 * index would otherwise touch the host process's memory). */

#define WRAP_INDEX(k, n) ((k) < 0 ? ((k) + (n) < 0 ? 0 : (k) + (n)) : ((k) >= (n) ? (n) - 1 : (k)))

/* y[o, j, i] = x[o, ix[j], i] for x contiguous (outer, L, inner). */
__kernel void take(Lin L, __global const RAW* x, __global const long* ix, __global RAW* y,
                   long len, long inner, long nidx) {
    CONTIG_RANGE
    x += L.o1;
    ix += L.o2;
    for (long i = start; i < end; i++) {
        const long in_ = i % inner;
        const long t = i / inner;
        const long j = t % nidx;
        const long k = WRAP_INDEX(ix[j], len);
        y[i] = x[((t / nidx) * len + k) * inner + in_];
    }
}

/* numpy.take_along_axis over the output's shape: operands 0 output, 1 index, 2 x with its
 * axis stride zeroed; xsa is that stride. */
__kernel void gather_s(Geom g, __global const RAW* x, __global const long* ix,
                       __global RAW* y, long xsa, long L) {
    STRIDED_BEGIN(g)
        const long k = WRAP_INDEX(ix[o1], L);
        y[o0] = x[o2 + k * xsa];
    STRIDED_END(g)
}

/* ---- scatter_add: atomic adds where the device has them --------------------------------- */

#if IS_FLOAT && !IS_HALF && !IS_DOUBLE
inline void atomic_add_elem(__global T* p, long i, CT v) {
    volatile __global uint* w = (volatile __global uint*)(p + i);
    union { uint u; float f; } old, nw;
    do {
        old.u = *w;
        nw.f = old.f + v;
    } while (atomic_cmpxchg(w, old.u, nw.u) != old.u);
}
#define HAS_ATOMIC_ADD 1
#elif IS_DOUBLE && HAS_INT64_ATOMICS
inline void atomic_add_elem(__global T* p, long i, CT v) {
    volatile __global ulong* w = (volatile __global ulong*)(p + i);
    union { ulong u; double f; } old, nw;
    do {
        old.u = *w;
        nw.f = old.f + v;
    } while (atom_cmpxchg(w, old.u, nw.u) != old.u);
}
#define HAS_ATOMIC_ADD 1
#elif (IS_INT && !IS_BOOL) && (DTYPE_SIZE == 4)
inline void atomic_add_elem(__global T* p, long i, CT v) {
    atomic_add((volatile __global T*)(p + i), v);
}
#define HAS_ATOMIC_ADD 1
#elif IS_INT && (DTYPE_SIZE == 8) && HAS_INT64_ATOMICS
inline void atomic_add_elem(__global T* p, long i, CT v) {
    atom_add((volatile __global T*)(p + i), v);
}
#define HAS_ATOMIC_ADD 1
#elif DTYPE_SIZE < 4
/* 1- and 2-byte elements: compare-and-swap the aligned 32-bit word holding the element
 * (buffers are allocated in whole words; little-endian devices). */
inline void atomic_add_elem(__global T* p, long i, CT v) {
    const ulong addr = (ulong)(p + i);
    volatile __global uint* w = (volatile __global uint*)(addr & ~(ulong)3);
    const uint shift = (uint)(addr & 3) * 8;
    const uint mask = ((uint)((1ul << (8 * DTYPE_SIZE)) - 1)) << shift;
    uint old, nw;
    do {
        old = *w;
        RAW bits = (RAW)((old & mask) >> shift);
        RAW sum_bits;
        STORE((__private T*)&sum_bits, 0, LOAD((__private T*)&bits, 0) + v);
        nw = (old & ~mask) | ((((uint)sum_bits) << shift) & mask);
    } while (atomic_cmpxchg(w, old, nw) != old);
}
#define HAS_ATOMIC_ADD 1
#else
#define HAS_ATOMIC_ADD 0
#endif

#if HAS_ATOMIC_ADD
/* Over src's shape: operands 0 dst with its axis stride zeroed (dsa), 1 index, 2 src. */
__kernel void scatter_add_s(Geom g, __global T* dst, __global const long* ix,
                            __global const T* src, long dsa, long L) {
    STRIDED_BEGIN(g)
        const long k = WRAP_INDEX(ix[o1], L);
        atomic_add_elem(dst, o0 + k * dsa, LOAD(src, o2));
    STRIDED_END(g)
}
#endif

/* Without atomics (8-byte types on devices lacking cl_khr_int64_base_atomics), and
 * deterministic: over the other dimensions, each work-item owns dst's L positions along
 * the axis and sums the matching src values itself. Operands 0 dst, 1 index, 2 src. */
__kernel void scatter_add_owner_s(Geom g, __global T* dst, __global const long* ix,
                                  __global const T* src, long dsa, long isa, long ssa,
                                  long L, long S) {
    STRIDED_BEGIN(g)
        for (long t = 0; t < L; t++) {
            CT acc = 0;
            int hit = 0;
            for (long s = 0; s < S; s++) {
                const long k = WRAP_INDEX(ix[o1 + s * isa], L);
                if (k == t) {
                    acc += LOAD(src, o2 + s * ssa);
                    hit = 1;
                }
            }
            if (hit) STORE(dst, o0 + t * dsa, LOAD(dst, o0 + t * dsa) + acc);
        }
    STRIDED_END(g)
}

/* ---- random bits ------------------------------------------------------------------------ */

#if IS_UINT32
/* Philox4x64-10 (flambeau.backends.philox): block b is Philox4x64-10 of counter
 * (b, 0, 0, 0) under key (seed, 0); element i is the 32-bit half i % 2 (low first) of
 * 64-bit word (i / 2) % 4 of block i / 8. Work-item j computes blocks first + j*chunk ..
 * and writes the elements of them that fall in y[0, n); element 0 of block `first` is
 * y[-skip]. */
__kernel void random_bits(ulong first, long chunk, long nblocks, long skip, long n, ulong key,
                          __global uint* y) {
    long j0 = (long)get_global_id(0) * chunk;
    long j1 = j0 + chunk;
    if (j1 > nblocks) j1 = nblocks;
    for (long j = j0; j < j1; j++) {
        ulong c[4] = {first + (ulong)j, 0, 0, 0};
        ulong k0 = key, k1 = 0;
        for (int r = 0; r < 10; r++) {
            const ulong hi0 = mul_hi((ulong)0xD2E7470EE14C6C93UL, c[0]);
            const ulong lo0 = (ulong)0xD2E7470EE14C6C93UL * c[0];
            const ulong hi1 = mul_hi((ulong)0xCA5A826395121157UL, c[2]);
            const ulong lo1 = (ulong)0xCA5A826395121157UL * c[2];
            c[0] = hi1 ^ c[1] ^ k0;
            c[1] = lo1;
            c[2] = hi0 ^ c[3] ^ k1;
            c[3] = lo0;
            k0 += 0x9E3779B97F4A7C15UL;
            k1 += 0xBB67AE8584CAA73BUL;
        }
        const long w = j * 8 - skip;
        for (int e = 0; e < 8; e++) {
            if (w + e >= 0 && w + e < n) y[w + e] = (uint)(c[e / 2] >> (32 * (e % 2)));
        }
    }
}
#endif
