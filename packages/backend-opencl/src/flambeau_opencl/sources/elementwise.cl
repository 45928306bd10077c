/* Elementwise kernels of the program's dtype: unary_<op>, binary_<op>, where, cast_to_<dtype>,
 * fill and copy. Each comes contiguous (name) and strided (name_s, over a Geom). */

#if IS_FLOAT
/* numpy's npy_divmod: Python's floor division and modulo for floats. */
inline CT py_floordiv(CT a, CT b) {
    if (b == 0) return a / b;
    CT mod = fmod(a, b);
    CT div = (a - mod) / b;
    if (mod != 0) {
        if ((b < 0) != (mod < 0)) div -= (CT)1;
    }
    if (div != 0) {
        CT fl = floor(div);
        if (div - fl > (CT)0.5) fl += (CT)1;
        return fl;
    }
    return copysign((CT)0, a / b);
}
inline CT py_mod(CT a, CT b) {
    if (b == 0) return fmod(a, b);
    CT mod = fmod(a, b);
    if (mod != 0) {
        if ((b < 0) != (mod < 0)) mod += b;
    } else {
        mod = copysign((CT)0, b);
    }
    return mod;
}
#define OP_MAX(a, b) (((a) != (a) || (a) > (b)) ? (a) : (b))
#define OP_MIN(a, b) (((a) != (a) || (a) < (b)) ? (a) : (b))
#else
/* Integer division by zero (and MIN / -1) would trap on some devices: give 0 (numpy's
 * answer for / 0) and wrap for -1. */
inline CT py_floordiv(CT a, CT b) {
    if (b == 0) return (CT)0;
#if !IS_UNSIGNED
    if (b == (CT)-1) return (CT)(-a);
    CT q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q -= 1;
    return q;
#else
    return a / b;
#endif
}
inline CT py_mod(CT a, CT b) {
    if (b == 0) return (CT)0;
#if !IS_UNSIGNED
    if (b == (CT)-1) return (CT)0;
    CT r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
#else
    return a % b;
#endif
}
/* Integer powers by squaring; negative exponents (an error in numpy) give 0 unless |a| == 1. */
inline CT int_pow(CT a, CT b) {
#if !IS_UNSIGNED
    if (b < 0) return a == 1 ? (CT)1 : (a == (CT)-1 ? ((b & 1) ? (CT)-1 : (CT)1) : (CT)0);
#endif
    CT result = 1;
    while (b) {
        if (b & 1) result *= a;
        a *= a;
        b >>= 1;
    }
    return result;
}
#define OP_MAX(a, b) ((a) > (b) ? (a) : (b))
#define OP_MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

/* ---- unary ------------------------------------------------------------------------- */

#define UNARY(name, OT, OSTORE, EXPR)                                                   \
__kernel void unary_##name(Lin L, __global const T* x, __global OT* y) {               \
    CONTIG_RANGE                                                                        \
    x += L.o1;                                                                          \
    y += L.o0;                                                                          \
    for (long i = start; i < end; i++) {                                                \
        CT a = LOAD(x, i);                                                              \
        OSTORE(y, i, (EXPR));                                                           \
    }                                                                                   \
}                                                                                       \
__kernel void unary_##name##_s(Geom g, __global const T* x, __global OT* y) {          \
    STRIDED_BEGIN(g)                                                                    \
        CT a = LOAD(x, o1);                                                             \
        OSTORE(y, o0, (EXPR));                                                          \
    STRIDED_END(g)                                                                      \
}

UNARY(logical_not, uchar, STORE_BOOL, a == 0)
#if !IS_BOOL
UNARY(neg, T, STORE, -a)
#if !IS_FLOAT
UNARY(sign, T, STORE, (a > 0) - (a < 0))
#endif
#if IS_UNSIGNED
UNARY(abs, T, STORE, a)
#else
UNARY(abs, T, STORE, a < 0 ? -a : a)
#endif
#endif

#if IS_FLOAT
/* sign keeps NaN; round is rint: half to even in the default rounding mode. */
#define SIGN_F(a) ((a) != (a) ? (a) : (CT)(((a) > 0) - ((a) < 0)))
UNARY(sign, T, STORE, SIGN_F(a))
UNARY(exp, T, STORE, exp(a))
UNARY(expm1, T, STORE, expm1(a))
UNARY(log, T, STORE, log(a))
UNARY(log1p, T, STORE, log1p(a))
UNARY(sqrt, T, STORE, sqrt(a))
UNARY(sin, T, STORE, sin(a))
UNARY(cos, T, STORE, cos(a))
UNARY(tanh, T, STORE, tanh(a))
UNARY(erf, T, STORE, erf(a))
UNARY(floor, T, STORE, floor(a))
UNARY(ceil, T, STORE, ceil(a))
UNARY(round, T, STORE, rint(a))
#endif

/* ---- binary ------------------------------------------------------------------------ */

/* b is either an array z or, when the flag (L.flag, bscalar) is set, the value bval. */
#define BINARY(name, OT, OSTORE, EXPR)                                                  \
__kernel void binary_##name(Lin L, __global const T* x, __global const T* z, CT bval,   \
                            __global OT* y) {                                           \
    CONTIG_RANGE                                                                        \
    x += L.o1;                                                                          \
    y += L.o0;                                                                          \
    if (L.flag) {                                                                       \
        const CT b = bval;                                                              \
        for (long i = start; i < end; i++) {                                            \
            CT a = LOAD(x, i);                                                          \
            OSTORE(y, i, (EXPR));                                                       \
        }                                                                               \
    } else {                                                                            \
        z += L.o2;                                                                      \
        for (long i = start; i < end; i++) {                                            \
            CT a = LOAD(x, i);                                                          \
            CT b = LOAD(z, i);                                                          \
            OSTORE(y, i, (EXPR));                                                       \
        }                                                                               \
    }                                                                                   \
}                                                                                       \
__kernel void binary_##name##_s(Geom g, __global const T* x, __global const T* z,      \
                                CT bval, __global OT* y) {                              \
    STRIDED_BEGIN(g)                                                                    \
        CT a = LOAD(x, o1);                                                             \
        CT b = g.flag ? bval : LOAD(z, o2);                                             \
        OSTORE(y, o0, (EXPR));                                                          \
    STRIDED_END(g)                                                                      \
}

BINARY(eq, uchar, STORE_BOOL, a == b)
BINARY(ne, uchar, STORE_BOOL, a != b)
BINARY(lt, uchar, STORE_BOOL, a < b)
BINARY(le, uchar, STORE_BOOL, a <= b)
BINARY(gt, uchar, STORE_BOOL, a > b)
BINARY(ge, uchar, STORE_BOOL, a >= b)
BINARY(logical_and, uchar, STORE_BOOL, (a != 0) && (b != 0))
BINARY(logical_or, uchar, STORE_BOOL, (a != 0) || (b != 0))
BINARY(logical_xor, uchar, STORE_BOOL, (a != 0) != (b != 0))
BINARY(maximum, T, STORE, OP_MAX(a, b))
BINARY(minimum, T, STORE, OP_MIN(a, b))
#if IS_BOOL
BINARY(add, T, STORE, a | b)
BINARY(mul, T, STORE, a & b)
#else
BINARY(add, T, STORE, a + b)
BINARY(sub, T, STORE, a - b)
BINARY(mul, T, STORE, a * b)
BINARY(floordiv, T, STORE, py_floordiv(a, b))
BINARY(mod, T, STORE, py_mod(a, b))
#if IS_FLOAT
BINARY(div, T, STORE, a / b)
BINARY(pow, T, STORE, pow(a, b))
#else
BINARY(pow, T, STORE, int_pow(a, b))
#endif
#endif

/* ---- where ------------------------------------------------------------------------- */

__kernel void where(Lin L, __global const uchar* c, __global const RAW* x,
                    __global const RAW* z, __global RAW* y) {
    CONTIG_RANGE
    y += L.o0;
    x += L.o1;
    z += L.o2;
    c += L.o3;
    for (long i = start; i < end; i++) y[i] = c[i] ? x[i] : z[i];
}

/* Operands: 0 output, 1 a, 2 b, 3 condition. */
__kernel void where_s(Geom g, __global const uchar* c, __global const RAW* x,
                      __global const RAW* z, __global RAW* y) {
    STRIDED_BEGIN(g)
        y[o0] = c[o3] ? x[o1] : z[o2];
    STRIDED_END(g)
}

/* ---- casts ------------------------------------------------------------------------- */

#define CAST(dname)                                                                     \
__kernel void cast_to_##dname(Lin L, __global const T* x, __global DT_##dname* y) {     \
    CONTIG_RANGE                                                                        \
    x += L.o1;                                                                          \
    y += L.o0;                                                                          \
    for (long i = start; i < end; i++) DSTORE_##dname(y, i, LOAD(x, i));                \
}                                                                                       \
__kernel void cast_to_##dname##_s(Geom g, __global const T* x, __global DT_##dname* y) {\
    STRIDED_BEGIN(g)                                                                    \
        DSTORE_##dname(y, o0, LOAD(x, o1));                                             \
    STRIDED_END(g)                                                                      \
}

CAST(bool)
CAST(uint8)
CAST(int8)
CAST(int16)
CAST(int32)
CAST(int64)
CAST(uint32)
CAST(float16)
CAST(float32)
#if HAS_FP64
CAST(float64)
#endif

/* ---- fill and copy (raw bits) --------------------------------------------------------- */

__kernel void fill(Lin L, __global RAW* y, RAW v) {
    CONTIG_RANGE
    y += L.o0;
    for (long i = start; i < end; i++) y[i] = v;
}

__kernel void fill_s(Geom g, __global RAW* y, RAW v) {
    STRIDED_BEGIN(g)
        y[o0] = v;
    STRIDED_END(g)
}

__kernel void copy_s(Geom g, __global const RAW* x, __global RAW* y) {
    STRIDED_BEGIN(g)
        y[o0] = x[o1];
    STRIDED_END(g)
}
