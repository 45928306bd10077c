/* Reductions of the program's dtype over rows: the host moves the reduced axes last (a
 * view), so output row r reduces the row_len elements of row r.
 *
 * Work-group w handles rows [rb * rows_per_group, ...) and, of each, the part p of its
 * elements [p * part_len, ...), where rb = w / parts and p = w % parts; with parts > 1 the
 * output holds partial results (rows x parts) that a second pass reduces. Inside a
 * work-group each work-item accumulates a strided share of the part, then a tree in local
 * memory combines the work-items' values (CPUs run one work-item per group: no tree).
 */

typedef struct {
    long rows, row_len, parts, part_len, rows_per_group, nk, nr, off, out_off, unused;
    long kshape[MAXD], kst[MAXD];   /* kept dimensions, innermost first */
    long rshape[MAXD], rst[MAXD];   /* reduced dimensions, innermost first */
} RGeom;

inline long kept_offset(const RGeom* g, long r) {
    long o = g->off;
    for (int d = 0; d < g->nk; d++) {
        long q = r / g->kshape[d];
        o += (r - q * g->kshape[d]) * g->kst[d];
        r = q;
    }
    return o;
}

inline long reduced_offset(const RGeom* g, long j) {
    long o = 0;
    for (int d = 0; d < g->nr; d++) {
        long q = j / g->rshape[d];
        o += (j - q * g->rshape[d]) * g->rst[d];
        j = q;
    }
    return o;
}

#define ROWS_AND_PART                                                                   \
    const long grp = get_group_id(0);                                                   \
    const long p = grp % g.parts, rb = grp / g.parts;                                   \
    const int lid = get_local_id(0), ls = get_local_size(0);                            \
    const long r0 = rb * g.rows_per_group;                                              \
    long r1 = r0 + g.rows_per_group;                                                    \
    if (r1 > g.rows) r1 = g.rows;                                                       \
    const long j0 = p * g.part_len;                                                     \
    long j1 = j0 + g.part_len;                                                          \
    if (j1 > g.row_len) j1 = g.row_len;

#define REDUCE(name, AT, OT, OSTORE, INIT, COMBINE)                                     \
__kernel void reduce_##name(RGeom g, __global const T* x, __global OT* y,              \
                            __local AT* scratch) {                                      \
    ROWS_AND_PART                                                                       \
    for (long r = r0; r < r1; r++) {                                                    \
        const long base = kept_offset(&g, r);                                           \
        AT acc = INIT;                                                                  \
        if (g.nr == 1 && g.rst[0] == 1 && ls == 1) {                                    \
            /* Eight independent accumulators: vectorisable, and more accurate. */      \
            AT a0 = INIT, a1 = INIT, a2 = INIT, a3 = INIT;                              \
            AT a4 = INIT, a5 = INIT, a6 = INIT, a7 = INIT;                              \
            long j = j0;                                                                \
            for (; j + 8 <= j1; j += 8) {                                               \
                a0 = COMBINE(a0, LOAD(x, base + j));                                    \
                a1 = COMBINE(a1, LOAD(x, base + j + 1));                                \
                a2 = COMBINE(a2, LOAD(x, base + j + 2));                                \
                a3 = COMBINE(a3, LOAD(x, base + j + 3));                                \
                a4 = COMBINE(a4, LOAD(x, base + j + 4));                                \
                a5 = COMBINE(a5, LOAD(x, base + j + 5));                                \
                a6 = COMBINE(a6, LOAD(x, base + j + 6));                                \
                a7 = COMBINE(a7, LOAD(x, base + j + 7));                                \
            }                                                                           \
            for (; j < j1; j++) a0 = COMBINE(a0, LOAD(x, base + j));                    \
            acc = COMBINE(COMBINE(COMBINE(a0, a1), COMBINE(a2, a3)),                    \
                          COMBINE(COMBINE(a4, a5), COMBINE(a6, a7)));                   \
        } else if (g.nr == 1) {                                                         \
            const long s = g.rst[0];                                                    \
            for (long j = j0 + lid; j < j1; j += ls) acc = COMBINE(acc, LOAD(x, base + j * s)); \
        } else {                                                                        \
            for (long j = j0 + lid; j < j1; j += ls)                                    \
                acc = COMBINE(acc, LOAD(x, base + reduced_offset(&g, j)));              \
        }                                                                               \
        if (ls > 1) {                                                                   \
            scratch[lid] = acc;                                                         \
            barrier(CLK_LOCAL_MEM_FENCE);                                               \
            for (int s = ls / 2; s > 0; s >>= 1) {                                      \
                if (lid < s) scratch[lid] = COMBINE(scratch[lid], scratch[lid + s]);    \
                barrier(CLK_LOCAL_MEM_FENCE);                                           \
            }                                                                           \
            acc = scratch[0];                                                           \
            barrier(CLK_LOCAL_MEM_FENCE);                                               \
        }                                                                               \
        if (lid == 0) OSTORE(y, g.out_off + r * g.parts + p, acc);                      \
    }                                                                                   \
}

#define C_ADD(a, b) ((a) + (b))
#define C_MUL(a, b) ((a) * (b))
#define C_ALL(a, b) ((uchar)((a) && ((b) != 0)))
#define C_ANY(a, b) ((uchar)((a) || ((b) != 0)))

#if !IS_BOOL
REDUCE(sum, CT, T, STORE, (CT)0, C_ADD)
REDUCE(prod, CT, T, STORE, (CT)1, C_MUL)
#endif
REDUCE(max, CT, T, STORE, T_LOWEST, OP_MAX)
REDUCE(min, CT, T, STORE, T_HIGHEST, OP_MIN)
REDUCE(all, uchar, uchar, STORE_BOOL, (uchar)1, C_ALL)
REDUCE(any, uchar, uchar, STORE_BOOL, (uchar)0, C_ANY)

/* ---- argmax / argmin: index within the row of the first best value (NaN is best) -------- */

#if IS_FLOAT
#define IS_NAN(v) ((v) != (v))
#else
#define IS_NAN(v) 0
#endif
#define BETTER_MAX(v, i, b, bi) ((v) > (b) || (IS_NAN(v) && !IS_NAN(b)) ||                \
                                 (((v) == (b) || (IS_NAN(v) && IS_NAN(b))) && (i) < (bi)))
#define BETTER_MIN(v, i, b, bi) ((v) < (b) || (IS_NAN(v) && !IS_NAN(b)) ||                \
                                 (((v) == (b) || (IS_NAN(v) && IS_NAN(b))) && (i) < (bi)))

#define ARG_REDUCE(name, BETTER)                                                        \
__kernel void arg_##name(RGeom g, __global const T* x, __global long* y,               \
                         __local CT* sv, __local long* si) {                            \
    ROWS_AND_PART                                                                       \
    for (long r = r0; r < r1; r++) {                                                    \
        const long base = kept_offset(&g, r);                                           \
        CT best = 0;                                                                    \
        long bi = -1;                                                                   \
        for (long j = j0 + lid; j < j1; j += ls) {                                      \
            CT v = LOAD(x, base + (g.nr == 1 ? j * g.rst[0] : reduced_offset(&g, j)));  \
            if (bi < 0 || BETTER(v, j, best, bi)) { best = v; bi = j; }                 \
        }                                                                               \
        if (ls > 1) {                                                                   \
            sv[lid] = best;                                                             \
            si[lid] = bi;                                                               \
            barrier(CLK_LOCAL_MEM_FENCE);                                               \
            for (int s = ls / 2; s > 0; s >>= 1) {                                      \
                if (lid < s) {                                                          \
                    CT v = sv[lid + s];                                                 \
                    long i = si[lid + s];                                               \
                    if (i >= 0 && (si[lid] < 0 || BETTER(v, i, sv[lid], si[lid]))) {    \
                        sv[lid] = v;                                                    \
                        si[lid] = i;                                                    \
                    }                                                                   \
                }                                                                       \
                barrier(CLK_LOCAL_MEM_FENCE);                                           \
            }                                                                           \
            bi = si[0];                                                                 \
            barrier(CLK_LOCAL_MEM_FENCE);                                               \
        }                                                                               \
        if (lid == 0) y[g.out_off + r] = bi;                                            \
    }                                                                                   \
}

ARG_REDUCE(argmax, BETTER_MAX)
ARG_REDUCE(argmin, BETTER_MIN)
