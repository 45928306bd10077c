// 2-d max and average pooling of C-contiguous (planes, h, w) arrays (planes = N * C),
// and their gradients. Window o of an axis reads o * stride - padding + i * dilation,
// i < kernel (flambeau.backends.window_count gives how many windows). Forward kernels
// run one thread per output; gradients one thread per input position, which sums what
// the windows that read it contribute (no atomics, deterministic).
#include "common.cuh"

#define POOL_PARAMS                                                                         \
    i64 planes, i64 h, i64 w, i64 ho, i64 wo, int kh, int kw, int sh, int sw, int ph, int pw

// Max pooling over x padded with -inf: a NaN wins, else the first maximum in row-major
// window order; index is the flat position y * w + x of the winner in its plane.
template <typename T>
__device__ void max_pool(const T* x, T* out, i64* index, POOL_PARAMS, int dh, int dw) {
    const i64 total = planes * ho * wo;
    for (i64 t = thread_index(); t < total; t += thread_count()) {
        const i64 ox = t % wo, oy = t / wo % ho, plane = t / (wo * ho);
        const T* in = x + plane * h * w;
        T best = T(0);
        i64 arg = 0;
        for (int i = 0; i < kh; ++i) {
            const i64 y = oy * sh - ph + (i64)i * dh;
            for (int j = 0; j < kw; ++j) {
                const i64 xx = ox * sw - pw + (i64)j * dw;
                const bool inside = y >= 0 && y < h && xx >= 0 && xx < w;
                const T value = inside ? in[y * w + xx] : -infinity<T>();
                if ((i == 0 && j == 0) || value > best || is_nan(value)) {
                    best = value;
                    arg = y * w + xx;
                }
            }
        }
        out[t] = best;
        index[t] = arg;
    }
}

// dx[p] = the sum of grad over the windows that read p and whose index names p.
template <typename T>
__device__ void max_pool_grad(const T* grad, const i64* index, T* dx, POOL_PARAMS, int dh,
                              int dw) {
    const i64 total = planes * h * w;
    for (i64 t = thread_index(); t < total; t += thread_count()) {
        const i64 xx = t % w, y = t / w % h, plane = t / (w * h);
        const i64 position = y * w + xx;
        T sum = T(0);
        for (int i = 0; i < kh; ++i) {
            const i64 ty = y + ph - (i64)i * dh;
            if (ty < 0 || ty % sh != 0 || ty / sh >= ho) continue;
            for (int j = 0; j < kw; ++j) {
                const i64 tx = xx + pw - (i64)j * dw;
                if (tx < 0 || tx % sw != 0 || tx / sw >= wo) continue;
                const i64 o = (plane * ho + ty / sh) * wo + tx / sw;
                if (index[o] == position) sum += grad[o];
            }
        }
        dx[t] = sum;
    }
}

// avg_pool2d's divisor of window (oy, ox): flambeau.backends.avg_pool_divisors, or the
// override when it is positive.
__device__ __forceinline__ i64 avg_divisor(i64 oy, i64 ox, POOL_PARAMS, int include_pad,
                                           i64 divisor_override) {
    if (divisor_override > 0) return divisor_override;
    i64 y0 = oy * sh - ph, x0 = ox * sw - pw;
    i64 y1 = min(y0 + kh, h + ph), x1 = min(x0 + kw, w + pw);
    if (!include_pad) {
        y0 = max(y0, (i64)0);
        x0 = max(x0, (i64)0);
        y1 = min(y1, h);
        x1 = min(x1, w);
    }
    return (y1 - y0) * (x1 - x0);
}

template <typename T>
__device__ void avg_pool(const T* x, T* out, POOL_PARAMS, int include_pad,
                         i64 divisor_override) {
    const i64 total = planes * ho * wo;
    for (i64 t = thread_index(); t < total; t += thread_count()) {
        const i64 ox = t % wo, oy = t / wo % ho, plane = t / (wo * ho);
        const T* in = x + plane * h * w;
        const i64 y0 = max(oy * sh - ph, (i64)0), y1 = min(oy * sh - ph + kh, h);
        const i64 x0 = max(ox * sw - pw, (i64)0), x1 = min(ox * sw - pw + kw, w);
        T sum = T(0);
        for (i64 y = y0; y < y1; ++y)
            for (i64 xx = x0; xx < x1; ++xx) sum += in[y * w + xx];
        const i64 divisor = avg_divisor(oy, ox, planes, h, w, ho, wo, kh, kw, sh, sw, ph, pw,
                                        include_pad, divisor_override);
        out[t] = sum / (T)divisor;
    }
}

template <typename T>
__device__ void avg_pool_grad(const T* grad, T* dx, POOL_PARAMS, int include_pad,
                              i64 divisor_override) {
    const i64 total = planes * h * w;
    for (i64 t = thread_index(); t < total; t += thread_count()) {
        const i64 xx = t % w, y = t / w % h, plane = t / (w * h);
        T sum = T(0);
        for (int i = 0; i < kh; ++i) {
            const i64 ty = y + ph - i;
            if (ty < 0 || ty % sh != 0 || ty / sh >= ho) continue;
            for (int j = 0; j < kw; ++j) {
                const i64 tx = xx + pw - j;
                if (tx < 0 || tx % sw != 0 || tx / sw >= wo) continue;
                const i64 oy = ty / sh, ox = tx / sw;
                const i64 divisor = avg_divisor(oy, ox, planes, h, w, ho, wo, kh, kw, sh, sw,
                                                ph, pw, include_pad, divisor_override);
                sum += grad[(plane * ho + oy) * wo + ox] / (T)divisor;
            }
        }
        dx[t] = sum;
    }
}

#define FLAMBEAU_POOL(T, S)                                                                 \
    extern "C" __global__ void max_pool_##S(const T* x, T* out, i64* index, POOL_PARAMS,    \
                                            int dh, int dw) {                               \
        max_pool<T>(x, out, index, planes, h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw);   \
    }                                                                                       \
    extern "C" __global__ void max_pool_grad_##S(const T* grad, const i64* index, T* dx,    \
                                                 POOL_PARAMS, int dh, int dw) {             \
        max_pool_grad<T>(grad, index, dx, planes, h, w, ho, wo, kh, kw, sh, sw, ph, pw, dh, \
                         dw);                                                               \
    }                                                                                       \
    extern "C" __global__ void avg_pool_##S(const T* x, T* out, POOL_PARAMS,                \
                                            int include_pad, i64 divisor_override) {        \
        avg_pool<T>(x, out, planes, h, w, ho, wo, kh, kw, sh, sw, ph, pw, include_pad,      \
                    divisor_override);                                                      \
    }                                                                                       \
    extern "C" __global__ void avg_pool_grad_##S(const T* grad, T* dx, POOL_PARAMS,         \
                                                 int include_pad, i64 divisor_override) {   \
        avg_pool_grad<T>(grad, dx, planes, h, w, ho, wo, kh, kw, sh, sw, ph, pw,            \
                         include_pad, divisor_override);                                    \
    }

FLAMBEAU_POOL(float, f32)
FLAMBEAU_POOL(double, f64)
