// im2col and col2im for conv2d and its gradients (the matrix products run in cuBLAS).
//
// Columns are a (C * kh * kw, N * Ho * Wo) matrix: row (c, i, j), column (n, oy, ox)
// holds x[n, c, oy * sh - ph + i * dh, ox * sw - pw + j * dw], 0 outside x. col2im is
// its transpose: each x position sums the column entries that read it, so it needs no
// atomics and every position of x (even one no window reads) is written.
#include "common.cuh"

struct Geometry {
    i64 n, c, h, w;  // x
    i64 ho, wo;      // windows
    int kh, kw, sh, sw, ph, pw, dh, dw;
};

// Kernels take the geometry as scalars (what cupy passes); the struct keeps it together.
#define GEOMETRY_PARAMS                                                                     \
    i64 n, i64 c, i64 h, i64 w, i64 ho, i64 wo, int kh, int kw, int sh, int sw, int ph,    \
        int pw, int dh, int dw
#define GEOMETRY {n, c, h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw}

template <typename T> __device__ void im2col(const T* x, T* cols, Geometry g) {
    const i64 spatial = g.ho * g.wo, width = g.n * spatial;
    const i64 total = g.c * g.kh * g.kw * width;
    for (i64 t = thread_index(); t < total; t += thread_count()) {
        const i64 column = t % width, row = t / width;
        const i64 j = row % g.kw, i = row / g.kw % g.kh, ch = row / (g.kw * g.kh);
        const i64 b = column / spatial, oy = column % spatial / g.wo, ox = column % g.wo;
        const i64 y = oy * g.sh - g.ph + i * g.dh, xx = ox * g.sw - g.pw + j * g.dw;
        const bool inside = y >= 0 && y < g.h && xx >= 0 && xx < g.w;
        cols[t] = inside ? x[((b * g.c + ch) * g.h + y) * g.w + xx] : T(0);
    }
}

template <typename T> __device__ void col2im(const T* cols, T* dx, Geometry g) {
    const i64 width = g.n * g.ho * g.wo;
    const i64 total = g.n * g.c * g.h * g.w;
    for (i64 t = thread_index(); t < total; t += thread_count()) {
        const i64 xx = t % g.w, y = t / g.w % g.h, ch = t / (g.w * g.h) % g.c;
        const i64 b = t / (g.w * g.h * g.c);
        T sum = T(0);
        for (int i = 0; i < g.kh; ++i) {
            const i64 ty = y + g.ph - (i64)i * g.dh;
            if (ty < 0 || ty % g.sh != 0 || ty / g.sh >= g.ho) continue;
            const i64 oy = ty / g.sh;
            for (int j = 0; j < g.kw; ++j) {
                const i64 tx = xx + g.pw - (i64)j * g.dw;
                if (tx < 0 || tx % g.sw != 0 || tx / g.sw >= g.wo) continue;
                const i64 ox = tx / g.sw;
                const i64 row = (ch * g.kh + i) * g.kw + j;
                sum += cols[row * width + (b * g.ho + oy) * g.wo + ox];
            }
        }
        dx[t] = sum;
    }
}

#define FLAMBEAU_CONV(T, S)                                                                 \
    extern "C" __global__ void im2col_##S(const T* x, T* cols, GEOMETRY_PARAMS) {          \
        im2col<T>(x, cols, Geometry GEOMETRY);                                              \
    }                                                                                       \
    extern "C" __global__ void col2im_##S(const T* cols, T* dx, GEOMETRY_PARAMS) {         \
        col2im<T>(cols, dx, Geometry GEOMETRY);                                             \
    }

FLAMBEAU_CONV(float, f32)
FLAMBEAU_CONV(double, f64)
