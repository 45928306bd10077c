/* Fused kernels of float programs: softmax and cross-entropy rows, optimizer updates,
 * convolution packing (im2col) and col2im, and pooling. The optimizer updates round each
 * step like the core's composition, so contraction into fused multiply-adds is off. */

#pragma OPENCL FP_CONTRACT OFF

/* ---- softmax, log-softmax, cross-entropy (and its gradient) over rows --------------------
 * Row r's elements are at x[base(r) + j * s] (RGeom, one reduced dimension); results go
 * to the contiguous y[r * row_len + j]. As in the composition, log_softmax = x - lse and
 * softmax = exp(x - lse) with lse = log(sum(exp(x - m))) + m, m the row maximum, or 0 when
 * that is infinite. */

inline CT row_max(const RGeom* g, __global const T* x, long base, int lid, int ls,
                  __local CT* scratch) {
    const long s = g->rst[0];
    CT m = -INFINITY;
    for (long j = lid; j < g->row_len; j += ls) m = OP_MAX(m, LOAD(x, base + j * s));
    if (ls > 1) {
        scratch[lid] = m;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = ls / 2; k > 0; k >>= 1) {
            if (lid < k) scratch[lid] = OP_MAX(scratch[lid], scratch[lid + k]);
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        m = scratch[0];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return m;
}

inline CT row_sum_exp(const RGeom* g, __global const T* x, long base, CT shift, int lid,
                      int ls, __local CT* scratch) {
    const long s = g->rst[0];
    CT acc = 0;
    for (long j = lid; j < g->row_len; j += ls) acc += exp(LOAD(x, base + j * s) - shift);
    if (ls > 1) {
        scratch[lid] = acc;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = ls / 2; k > 0; k >>= 1) {
            if (lid < k) scratch[lid] += scratch[lid + k];
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        acc = scratch[0];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return acc;
}

#define FINITE_OR_ZERO(m) (isinf(m) ? (CT)0 : (m))

/* logsumexp of row ``base``, shifted by its maximum unless that is infinite (as the
 * core's composition does). */
inline CT row_logsumexp(const RGeom* g, __global const T* x, long base, int lid, int ls,
                        __local CT* scratch) {
    const CT m = FINITE_OR_ZERO(row_max(g, x, base, lid, ls, scratch));
    return log(row_sum_exp(g, x, base, m, lid, ls, scratch)) + m;
}

/* mode 0: softmax, 1: log-softmax. */
__kernel void softmax_rows(RGeom g, __global const T* x, __global T* y, __local CT* scratch,
                           int mode) {
    ROWS_AND_PART
    const long s = g.rst[0];
    for (long r = r0; r < r1; r++) {
        const long base = kept_offset(&g, r);
        const CT lse = row_logsumexp(&g, x, base, lid, ls, scratch);
        for (long j = lid; j < g.row_len; j += ls) {
            const CT v = LOAD(x, base + j * s) - lse;
            STORE(y, r * g.row_len + j, mode ? v : exp(v));
        }
    }
}

/* loss[r] = logsumexp(x[r]) - x[r, target[r]]. */
__kernel void cross_entropy_rows(RGeom g, __global const T* x, __global const long* target,
                                 long target_off, __global T* y, __local CT* scratch) {
    ROWS_AND_PART
    for (long r = r0; r < r1; r++) {
        const long base = kept_offset(&g, r);
        const CT lse = row_logsumexp(&g, x, base, lid, ls, scratch);
        if (lid == 0) {
            const long t = WRAP_INDEX(target[target_off + r], g.row_len);
            const CT picked = LOAD(x, base + t * g.rst[0]);
            STORE(y, r, lse - picked);
        }
    }
}

/* dx[r, j] = (softmax(x[r])[j] - (j == target[r])) * grad[grad_off + r * grad_step], the
 * gradient of cross_entropy_rows (grad_step 0: one gradient for every row). The softmax
 * is softmax_rows's, then the one-hot is subtracted and the gradient applied, as in the
 * composition; dx is contiguous (rows, row_len). */
__kernel void cross_entropy_grad_rows(RGeom g, __global const T* x,
                                      __global const long* target, long target_off,
                                      __global const T* grad, long grad_off, long grad_step,
                                      __global T* y, __local CT* scratch) {
    ROWS_AND_PART
    const long s = g.rst[0];
    for (long r = r0; r < r1; r++) {
        const long base = kept_offset(&g, r);
        const CT lse = row_logsumexp(&g, x, base, lid, ls, scratch);
        const long t = WRAP_INDEX(target[target_off + r], g.row_len);
        const CT gr = LOAD(grad, grad_off + r * grad_step);
        for (long j = lid; j < g.row_len; j += ls) {
            const CT p = exp(LOAD(x, base + j * s) - lse);
            const CT d = j == t ? p - (CT)1 : p;
            STORE(y, r * g.row_len + j, d * gr);
        }
    }
}

/* ---- optimizer updates (contiguous; one launch per parameter) --------------------------- */

/* flags: 1 momentum buffer, 2 nesterov, 4 maximize. */
__kernel void sgd_update(Lin L, __global T* p, __global const T* grad, __global T* buf,
                         CT lr, CT momentum, CT damp1, CT weight_decay) {
    CONTIG_RANGE
    const long flags = L.flag;
    for (long i = start; i < end; i++) {
        CT gi = LOAD(grad, L.o1 + i);
        const CT pi = LOAD(p, L.o0 + i);
        if (flags & 4) gi = -gi;
        if (weight_decay != 0) {
            const CT decay = weight_decay * pi;
            gi = gi + decay;
        }
        if (flags & 1) {
            const CT kept = LOAD(buf, L.o2 + i) * momentum;
            const CT fresh = gi * damp1;
            const CT b = kept + fresh;
            STORE(buf, L.o2 + i, b);
            if (flags & 2) {
                const CT look = b * momentum;
                gi = gi + look;
            } else {
                gi = b;
            }
        }
        const CT update = gi * lr;
        STORE(p, L.o0 + i, pi - update);
    }
}

/* flags: 1 amsgrad, 2 decoupled weight decay, 4 maximize. Offsets: o0 p, o1 grad, o2 m,
 * o3 v; vmax shares p's offset argument vo. */
__kernel void adam_update(Lin L, __global T* p, __global const T* grad, __global T* m,
                          __global T* v, __global T* vmax, long vo, CT decay_factor,
                          CT weight_decay, CT one_minus_beta1, CT beta2, CT one_minus_beta2,
                          CT bc2_sqrt, CT eps, CT neg_step_size) {
    CONTIG_RANGE
    const long flags = L.flag;
    for (long i = start; i < end; i++) {
        CT gi = LOAD(grad, L.o1 + i);
        CT pi = LOAD(p, L.o0 + i);
        if (flags & 4) gi = -gi;
        if (weight_decay != 0) {
            if (flags & 2) {
                pi = pi * decay_factor;
            } else {
                const CT decay = pi * weight_decay;
                gi = gi + decay;
            }
        }
        const CT mi = LOAD(m, L.o2 + i);
        const CT step_m = (gi - mi) * one_minus_beta1;
        const CT m_new = mi + step_m;
        STORE(m, L.o2 + i, m_new);
        const CT vi = LOAD(v, L.o3 + i) * beta2;
        const CT g2 = gi * gi;
        const CT step_v = g2 * one_minus_beta2;
        const CT v_new = vi + step_v;
        STORE(v, L.o3 + i, v_new);
        CT second = v_new;
        if (flags & 1) {
            const CT old = LOAD(vmax, vo + i);
            second = OP_MAX(old, v_new);
            STORE(vmax, vo + i, second);
        }
        const CT root = sqrt(second) / bc2_sqrt;
        const CT denom = root + eps;
        const CT ratio = m_new / denom;
        const CT update = ratio * neg_step_size;
        STORE(p, L.o0 + i, pi + update);
    }
}

/* ---- convolution: im2col packing and col2im --------------------------------------------- */

typedef struct {
    long N, C, H, W, G, Cg, kh, kw, Ho, Wo, sh, sw, ph, pw, dh, dw;
    long K, NB, chunk, sn, sc, sy, sx, off;
} CGeom;

/* The B operand of conv2d: panel p = (n * G + g) * NB + cb holds spatial positions
 * r = cb * NR + l (l < NR) of the window columns: element [k][l] is the input value that
 * weight position k = (c, i, j) of group g meets at output position r (0 outside). */
__kernel void pack_im2col(CGeom g, __global const T* x, __global GT* y) {
    const long p = get_global_id(1);
    long k = (long)get_global_id(0) * g.chunk;
    long k1 = k + g.chunk;
    if (k1 > g.K) k1 = g.K;
    if (p >= g.N * g.G * g.NB || k >= k1) return;
    const long cb = p % g.NB, bt = p / g.NB, n = bt / g.G, grp = bt % g.G;
    long oy[NR], ox[NR];
    for (int l = 0; l < NR; l++) {
        const long r = cb * NR + l;
        oy[l] = r < g.Ho * g.Wo ? (r / g.Wo) * g.sh - g.ph : -(1L << 40);
        ox[l] = r < g.Ho * g.Wo ? (r % g.Wo) * g.sw - g.pw : 0;
    }
    const long khw = g.kh * g.kw;
    __global GT* out = y + (p * g.K + k) * NR;
    for (; k < k1; k++) {
        const long c = k / khw, ij = k - c * khw, i = ij / g.kw, j = ij - i * g.kw;
        const long base = g.off + n * g.sn + (grp * g.Cg + c) * g.sc;
        for (int l = 0; l < NR; l++) {
            const long iy = oy[l] + i * g.dh, ix = ox[l] + j * g.dw;
            out[l] = (iy >= 0 && iy < g.H && ix >= 0 && ix < g.W)
                         ? (GT)LOAD(x, base + iy * g.sy + ix * g.sx) : (GT)0;
        }
        out += NR;
    }
}

/* The B operand of conv2d's weight gradient: panel p = grp * NB + cb holds weight
 * positions q = cb * NR + l; element [t][l], t = n * Ho * Wo + r, is the input value that
 * weight position q meets at output position r of sample n. */
__kernel void pack_im2col_t(CGeom g, __global const T* x, __global GT* y) {
    const long p = get_global_id(1);
    const long rows = g.N * g.Ho * g.Wo;
    long t = (long)get_global_id(0) * g.chunk;
    long t1 = t + g.chunk;
    if (t1 > rows) t1 = rows;
    if (p >= g.G * g.NB || t >= t1) return;
    const long cb = p % g.NB, grp = p / g.NB, khw = g.kh * g.kw;
    long wy[NR], wx[NR], wc[NR];
    for (int l = 0; l < NR; l++) {
        const long q = cb * NR + l;
        const long c = q / khw, ij = q - c * khw, i = ij / g.kw;
        wc[l] = q < g.K ? (grp * g.Cg + c) * g.sc : -1;
        wy[l] = i * g.dh - g.ph;
        wx[l] = (ij - i * g.kw) * g.dw - g.pw;
    }
    const long hw = g.Ho * g.Wo;
    long n = t / hw, r = t - n * hw;
    long oy = r / g.Wo, ox = r - oy * g.Wo;
    __global GT* out = y + (p * rows + t) * NR;
    for (; t < t1; t++) {
        const long base = g.off + n * g.sn;
        for (int l = 0; l < NR; l++) {
            const long iy = oy * g.sh + wy[l], ix = ox * g.sw + wx[l];
            out[l] = (wc[l] >= 0 && iy >= 0 && iy < g.H && ix >= 0 && ix < g.W)
                         ? (GT)LOAD(x, base + wc[l] + iy * g.sy + ix * g.sx) : (GT)0;
        }
        out += NR;
        if (++ox == g.Wo) {
            ox = 0;
            if (++oy == g.Ho) {
                oy = 0;
                n++;
            }
        }
    }
}

/* dx (N, C, H, W), contiguous, from cols (N, G, K, Ho * Wo): each input position sums the
 * column entries of the windows that read it (x_shape may be larger than the windows
 * reach: those positions get 0). */
__kernel void col2im(Lin L, CGeom g, __global const T* cols, __global T* dx) {
    CONTIG_RANGE
    const long hw = g.Ho * g.Wo, khw = g.kh * g.kw;
    for (long e = start; e < end; e++) {
        const long xx = e % g.W;
        long t = e / g.W;
        const long yy = t % g.H;
        t /= g.H;
        const long ch = t % g.C, n = t / g.C;
        const long grp = ch / g.Cg, c = ch - grp * g.Cg;
        __global const T* col = cols + ((n * g.G + grp) * g.K + c * khw) * hw;
        CT acc = 0;
        for (long i = 0; i < g.kh; i++) {
            const long ty = yy + g.ph - i * g.dh;
            if (ty < 0 || ty % g.sh) continue;
            const long oy = ty / g.sh;
            if (oy >= g.Ho) continue;
            for (long j = 0; j < g.kw; j++) {
                const long tx = xx + g.pw - j * g.dw;
                if (tx < 0 || tx % g.sw) continue;
                const long ox = tx / g.sw;
                if (ox >= g.Wo) continue;
                acc += LOAD(col, (i * g.kw + j) * hw + oy * g.Wo + ox);
            }
        }
        STORE(dx, e, acc);
    }
}

/* ---- pooling ------------------------------------------------------------------------------
 * Geometry as CGeom (C channels, G = 1); x is read at its strides, outputs are contiguous
 * (N, C, Ho, Wo) and gradients contiguous (N, C, H, W). */

__kernel void max_pool(Lin L, CGeom g, __global const T* x, __global T* y,
                       __global long* index) {
    CONTIG_RANGE
    for (long e = start; e < end; e++) {
        const long ox = e % g.Wo;
        long t = e / g.Wo;
        const long oy = t % g.Ho;
        t /= g.Ho;
        const long c = t % g.C, n = t / g.C;
        const long base = g.off + n * g.sn + c * g.sc;
        CT best = 0;
        long at = 0;
        int first = 1;
        for (long i = 0; i < g.kh; i++) {
            const long iy = oy * g.sh - g.ph + i * g.dh;
            for (long j = 0; j < g.kw; j++) {
                const long ix = ox * g.sw - g.pw + j * g.dw;
                const CT v = (iy >= 0 && iy < g.H && ix >= 0 && ix < g.W)
                                 ? LOAD(x, base + iy * g.sy + ix * g.sx) : (CT)(-INFINITY);
                if (first || v > best || (v != v && best == best)) {
                    best = v;
                    at = iy * g.W + ix;
                    first = 0;
                }
            }
        }
        STORE(y, e, best);
        index[e] = at;
    }
}

/* dx[n, c, y, x] = the sum of grad over the windows whose recorded maximum is (y, x). */
__kernel void max_pool_grad(Lin L, CGeom g, __global const T* grad, long go,
                            __global const long* index, long io, __global T* dx) {
    CONTIG_RANGE
    for (long e = start; e < end; e++) {
        const long xx = e % g.W;
        long t = e / g.W;
        const long yy = t % g.H;
        const long plane = t / g.H;
        const long here = yy * g.W + xx;
        const long pbase = plane * g.Ho * g.Wo;
        CT acc = 0;
        for (long i = 0; i < g.kh; i++) {
            const long ty = yy + g.ph - i * g.dh;
            if (ty < 0 || ty % g.sh) continue;
            const long oy = ty / g.sh;
            if (oy >= g.Ho) continue;
            for (long j = 0; j < g.kw; j++) {
                const long tx = xx + g.pw - j * g.dw;
                if (tx < 0 || tx % g.sw) continue;
                const long ox = tx / g.sw;
                if (ox >= g.Wo) continue;
                const long w = pbase + oy * g.Wo + ox;
                if (index[io + w] == here) acc += LOAD(grad, go + w);
            }
        }
        STORE(dx, e, acc);
    }
}

/* PyTorch's divisor of window (oy, ox): the window clipped to the padded input, then (with
 * count_include_pad off) to the input; mode: 0 exclude padding, 1 include, 2 override. */
inline CT avg_divisor(const CGeom* g, long oy, long ox, int mode, CT override) {
    if (mode == 2) return override;
    long hs = oy * g->sh - g->ph, ws = ox * g->sw - g->pw;
    long he = hs + g->kh, we = ws + g->kw;
    if (he > g->H + g->ph) he = g->H + g->ph;
    if (we > g->W + g->pw) we = g->W + g->pw;
    if (mode == 0) {
        if (hs < 0) hs = 0;
        if (ws < 0) ws = 0;
        if (he > g->H) he = g->H;
        if (we > g->W) we = g->W;
    }
    return (CT)((he - hs) * (we - ws));
}

__kernel void avg_pool(Lin L, CGeom g, __global const T* x, __global T* y, int mode,
                       CT override) {
    CONTIG_RANGE
    for (long e = start; e < end; e++) {
        const long ox = e % g.Wo;
        long t = e / g.Wo;
        const long oy = t % g.Ho;
        t /= g.Ho;
        const long c = t % g.C, n = t / g.C;
        const long base = g.off + n * g.sn + c * g.sc;
        CT acc = 0;
        for (long i = 0; i < g.kh; i++) {
            const long iy = oy * g.sh - g.ph + i;
            if (iy < 0 || iy >= g.H) continue;
            for (long j = 0; j < g.kw; j++) {
                const long ix = ox * g.sw - g.pw + j;
                if (ix >= 0 && ix < g.W) acc += LOAD(x, base + iy * g.sy + ix * g.sx);
            }
        }
        STORE(y, e, acc / avg_divisor(&g, oy, ox, mode, override));
    }
}

__kernel void avg_pool_grad(Lin L, CGeom g, __global const T* grad, long go, __global T* dx,
                            int mode, CT override) {
    CONTIG_RANGE
    for (long e = start; e < end; e++) {
        const long xx = e % g.W;
        long t = e / g.W;
        const long yy = t % g.H;
        const long plane = t / g.H;
        const long pbase = go + plane * g.Ho * g.Wo;
        CT acc = 0;
        for (long i = 0; i < g.kh; i++) {
            const long ty = yy + g.ph - i;
            if (ty < 0 || ty % g.sh) continue;
            const long oy = ty / g.sh;
            if (oy >= g.Ho) continue;
            for (long j = 0; j < g.kw; j++) {
                const long tx = xx + g.pw - j;
                if (tx < 0 || tx % g.sw) continue;
                const long ox = tx / g.sw;
                if (ox >= g.Wo) continue;
                acc += LOAD(grad, pbase + oy * g.Wo + ox) / avg_divisor(&g, oy, ox, mode, override);
            }
        }
        STORE(dx, e, acc);
    }
}

/* ---- normalisation ---------------------------------------------------------------------- */

inline CT row_tree_sum(CT acc, int lid, int ls, __local CT* scratch) {
    if (ls > 1) {
        scratch[lid] = acc;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = ls / 2; k > 0; k >>= 1) {
            if (lid < k) scratch[lid] += scratch[lid + k];
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        acc = scratch[0];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return acc;
}

/* mean[r] and biased var[r] of row r (two passes, like the composition). */
__kernel void moments_rows(RGeom g, __global const T* x, __global T* mean, __global T* var,
                           __local CT* scratch) {
    ROWS_AND_PART
    for (long r = r0; r < r1; r++) {
        const long base = kept_offset(&g, r);
        CT acc = 0;
        for (long j = lid; j < g.row_len; j += ls) {
            acc += LOAD(x, base + (g.nr == 1 ? j * g.rst[0] : reduced_offset(&g, j)));
        }
        const CT mu = row_tree_sum(acc, lid, ls, scratch) / (CT)g.row_len;
        acc = 0;
        for (long j = lid; j < g.row_len; j += ls) {
            const CT d = LOAD(x, base + (g.nr == 1 ? j * g.rst[0] : reduced_offset(&g, j))) - mu;
            acc += d * d;
        }
        const CT v = row_tree_sum(acc, lid, ls, scratch) / (CT)g.row_len;
        if (lid == 0) {
            STORE(mean, r, mu);
            STORE(var, r, v);
        }
    }
}

/* Operands: 0 y, 1 x, 2 mean, 3 var (broadcast): y = (x - mean) * (1 / sqrt(var + eps)). */
__kernel void normalize_s(Geom g, __global const T* x, __global const T* mean,
                          __global const T* var, __global T* y, CT eps) {
    STRIDED_BEGIN(g)
        const CT centered = LOAD(x, o1) - LOAD(mean, o2);
        const CT shifted = LOAD(var, o3) + eps;
        const CT invstd = (CT)1 / sqrt(shifted);
        STORE(y, o0, centered * invstd);
    STRIDED_END(g)
}
