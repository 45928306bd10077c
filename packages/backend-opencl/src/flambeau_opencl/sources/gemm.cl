/* Batched matrix product C[b] = A[b] @ B[b] in two steps.
 *
 * pack copies an operand of any strides (transposed, broadcast, a view) into panels of
 * GT, the accumulator type, zero-padded to whole panels: A (M x K) as A_p[b][rb][k][RM]
 * (RM rows of column k side by side) and B (K x N), read as its transpose, as
 * B_p[b][cb][k][NR]. The product kernel then streams two contiguous panels per work-item
 * and keeps an RM x NR block of C in registers (GEMM_RM rows times GEMM_VN vectors of 8),
 * so its inner loop is GEMM_VN vector loads, GEMM_RM broadcasts and GEMM_RM * GEMM_VN
 * vector multiply-adds, with no bounds checks. Packing reads each input element once;
 * the product reads each panel from cache M/RM or N/NR times.
 */

#define NR (8 * GEMM_VN)

/* Panel p = b * RB + rb of an operand: rows rb*R.. (stride rs) by cols columns; column
 * k sits at (k / kin) * cs2 + (k % kin) * cs (two levels, for convolution's batch-summed
 * products; plain operands have kin = cols). */
typedef struct {
    long nbr, chunk, rows, cols, R, RB, rs, cs, off, nbd, kin, cs2;
    long bshape[MAXD], bst[MAXD];   /* batch dimensions, innermost first */
} PGeom;

/* Work-item (w, p) fills columns [w * chunk, ...) of panel p = b * RB + rb; R (the panel
 * width) is a compile-time constant, so full panels copy in unrolled loops. */
#define PACK(name, R)                                                                   \
__kernel void name(PGeom g, __global const T* x, __global GT* y) {                     \
    const long p = get_global_id(1);                                                    \
    long c = (long)get_global_id(0) * g.chunk;                                          \
    long c1 = c + g.chunk;                                                              \
    if (c1 > g.cols) c1 = g.cols;                                                       \
    if (p >= g.nbr || c >= c1) return;                                                  \
    const long rb = p % g.RB;                                                           \
    long b = p / g.RB;                                                                  \
    long o = g.off + rb * R * g.rs;                                                     \
    for (int d = 0; d < g.nbd; d++) {                                                   \
        long q = b / g.bshape[d];                                                       \
        o += (b - q * g.bshape[d]) * g.bst[d];                                          \
        b = q;                                                                          \
    }                                                                                   \
    long valid = g.rows - rb * R;                                                       \
    __global GT* out = y + (p * g.cols + c) * R;                                        \
    const long rs = g.rs, cs = g.cs;                                                    \
    long kq = c / g.kin, kr = c - kq * g.kin;                                           \
    for (; c < c1; c++) {                                                               \
        const long oc = o + kq * g.cs2 + kr * cs;                                       \
        if (valid >= R) {                                                               \
            _Pragma("unroll")                                                           \
            for (int i = 0; i < R; i++) out[i] = (GT)LOAD(x, oc + i * rs);              \
        } else {                                                                        \
            for (int i = 0; i < R; i++) out[i] = i < valid ? (GT)LOAD(x, oc + i * rs) : (GT)0; \
        }                                                                               \
        out += R;                                                                       \
        if (++kr == g.kin) {                                                            \
            kr = 0;                                                                     \
            kq++;                                                                       \
        }                                                                               \
    }                                                                                   \
}

PACK(pack_a, GEMM_RM)
PACK(pack_b, NR)

/* Work-item (cb, rb, b) computes rows rb*RM.. and columns cb*NR.. of C[b]. Operand A's
 * panels of batch b are at (b % a_mod) * a_bs (a_bs = 0: one matrix for every batch), B's
 * likewise. */
__kernel void gemm(__global const GT* Ap, __global const GT* Bp, __global T* C, long M,
                   long N, long K, long MB, long NB, long a_bs, long b_bs, long a_mod,
                   long b_mod) {
    const long cb = get_global_id(0), rb = get_global_id(1), bt = get_global_id(2);
    if (cb >= NB || rb >= MB) return;
    __global const GT* ap = Ap + (bt % a_mod) * a_bs + rb * K * GEMM_RM;
    __global const GT8* bp = (__global const GT8*)(Bp + (bt % b_mod) * b_bs + cb * K * NR);
    GT8 acc[GEMM_RM][GEMM_VN];
#pragma unroll
    for (int i = 0; i < GEMM_RM; i++) {
#pragma unroll
        for (int j = 0; j < GEMM_VN; j++) acc[i][j] = (GT8)(0);
    }
    for (long k = 0; k < K; k++) {
        GT8 bv[GEMM_VN];
#pragma unroll
        for (int j = 0; j < GEMM_VN; j++) bv[j] = bp[j];
#pragma unroll
        for (int i = 0; i < GEMM_RM; i++) {
            const GT8 av = (GT8)(ap[i]);
#pragma unroll
            for (int j = 0; j < GEMM_VN; j++) acc[i][j] += av * bv[j];
        }
        ap += GEMM_RM;
        bp += GEMM_VN;
    }
    __global T* c = C + bt * M * N;
    const long r0 = rb * GEMM_RM, c0 = cb * NR;
    for (int i = 0; i < GEMM_RM; i++) {
        if (r0 + i >= M) break;
        union { GT8 v[GEMM_VN]; GT s[NR]; } row;
        for (int j = 0; j < GEMM_VN; j++) row.v[j] = acc[i][j];
        for (int l = 0; l < NR && c0 + l < N; l++) STORE(c, (r0 + i) * N + c0 + l, row.s[l]);
    }
}
