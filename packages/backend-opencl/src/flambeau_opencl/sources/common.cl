/* Shared by every program. The prelude that programs.py puts before this file defines,
 * for the program's dtype:
 *
 *   T         the storage type (half for float16, uchar for bool)
 *   CT        the compute type (float for float16)
 *   RAW       an integer type of T's size, for moving bits (ushort for float16)
 *   GT, GT8   the matmul accumulator type and its 8-wide vector
 *   LOAD(p, i), STORE(p, i, v)   read element i of p as CT / write CT v to element i
 *   IS_FLOAT, IS_INT, IS_BOOL, IS_UNSIGNED, IS_HALF, IS_DOUBLE    0 or 1
 *   T_LOWEST, T_HIGHEST    identities of max and min
 *   DT_<dtype>, DSTORE_<dtype>(p, i, v)   every dtype's storage type and store, for casts
 *   HAS_FP64, HAS_INT64_ATOMICS    what the device offers
 *
 * Conventions: offsets and strides are in elements; strided kernels take a Geom whose
 * dimensions are innermost first. Work-item w of a contiguous kernel handles elements
 * [w * chunk, (w + 1) * chunk): chunk is large on CPUs (one loop the compiler vectorises)
 * and 1 on GPUs (neighbouring work-items touch neighbouring elements).
 *
 * Builtins such as min(), mad() and vload8() are not inlined by some compilers (PoCL), so
 * hot loops use plain operators.
 */

#define MAXD 8

/* Up to four operands over one iteration shape: operand 0 is the output. */
typedef struct {
    long nd, n, chunk, flag;
    long shape[MAXD];
    long st[4][MAXD];
    long off[4];
} Geom;

/* The scalars of a contiguous kernel: n elements, chunk per work-item, the element
 * offsets of the output (o0) and inputs (o1..o3), and a flag. One struct, so that a
 * launch sets one scalar argument. */
typedef struct {
    long n, chunk, o0, o1, o2, o3, flag, unused;
} Lin;

#define CONTIG_RANGE                                                                    \
    long start = (long)get_global_id(0) * L.chunk;                                      \
    long end = start + L.chunk;                                                         \
    if (end > L.n) end = L.n;

/* Iterate over this work-item's elements of g: offsets o0..o3 of the four operands.
 * The multi-index is found by division once, then advanced like an odometer. */
#define STRIDED_BEGIN(g)                                                                \
    long start = (long)get_global_id(0) * g.chunk;                                      \
    long end = start + g.chunk;                                                         \
    if (end > g.n) end = g.n;                                                           \
    if (start >= end) return;                                                           \
    long idx[MAXD];                                                                     \
    long o0 = g.off[0], o1 = g.off[1], o2 = g.off[2], o3 = g.off[3];                    \
    {                                                                                   \
        long r = start;                                                                 \
        for (int d = 0; d < g.nd; d++) {                                                \
            long q = r / g.shape[d];                                                    \
            long k = r - q * g.shape[d];                                                \
            idx[d] = k;                                                                 \
            r = q;                                                                      \
            o0 += k * g.st[0][d]; o1 += k * g.st[1][d];                                 \
            o2 += k * g.st[2][d]; o3 += k * g.st[3][d];                                 \
        }                                                                               \
    }                                                                                   \
    for (long i = start; i < end; i++) {

#define STRIDED_END(g)                                                                  \
        for (int d = 0; d < g.nd; d++) {                                                \
            o0 += g.st[0][d]; o1 += g.st[1][d]; o2 += g.st[2][d]; o3 += g.st[3][d];     \
            if (++idx[d] < g.shape[d]) break;                                           \
            idx[d] = 0;                                                                 \
            o0 -= g.shape[d] * g.st[0][d]; o1 -= g.shape[d] * g.st[1][d];               \
            o2 -= g.shape[d] * g.st[2][d]; o3 -= g.shape[d] * g.st[3][d];               \
        }                                                                               \
    }

#define STORE_BOOL(p, i, v) ((p)[i] = (uchar)((v) != 0))
