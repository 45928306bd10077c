"""The kernel table of the contract, each kernel a numpy call."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from math import erf as _scalar_erf

import numpy as np

from flambeau.backends import numpy_like, philox

from .fused import FusedKernels
from .memory import allocate

_erf = np.frompyfunc(_scalar_erf, 1, 1)


def _erf_kernel(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return numpy_like.into(np.asarray(_erf(x)).astype(x.dtype), out)


def _full(shape, dtype, value):
    return np.full(shape, value, dtype)


UNARY = {
    "neg": np.negative,
    "abs": np.abs,
    "sign": np.sign,
    "exp": np.exp,
    "expm1": np.expm1,
    "log": np.log,
    "log1p": np.log1p,
    "sqrt": np.sqrt,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "erf": _erf_kernel,
    # numpy_like.keep_integers: numpy may round integers and bools into floats.
    "floor": numpy_like.keep_integers(np.floor),
    "ceil": numpy_like.keep_integers(np.ceil),
    "round": numpy_like.keep_integers(np.round),
    "logical_not": np.logical_not,
}

BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.true_divide,
    "floordiv": np.floor_divide,
    "mod": np.remainder,
    "pow": np.power,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}

# The ufuncs' own reduce: np.sum and friends add a Python wrapper per call.
# numpy_like.keep_dtype: numpy widens the sum and product of small integers.
# numpy_like.via_float32: bfloat16 sums, products and matmuls run in float32.
# Float arrays (other than bfloat16) need neither wrapper: FLOAT_REDUCE halves a small sum.
FLOAT_REDUCE = {
    "sum": np.add.reduce,
    "prod": np.multiply.reduce,
    "max": np.maximum.reduce,
    "min": np.minimum.reduce,
    "all": np.logical_and.reduce,
    "any": np.logical_or.reduce,
}
# numpy >= 2.3 takes out=... to return a full reduction as a 0-d array rather than a scalar
# for np.asarray to wrap (a fifth of a small sum's time).
_OUT_ELLIPSIS = np.lib.NumpyVersion(np.__version__) >= "2.3.0"
REDUCE = {
    **FLOAT_REDUCE,
    "sum": numpy_like.via_float32(numpy_like.keep_dtype(np.add.reduce)),
    "prod": numpy_like.via_float32(numpy_like.keep_dtype(np.multiply.reduce)),
}

ARG_REDUCE = {"argmax": np.argmax, "argmin": np.argmin}
_matmul = numpy_like.via_float32(np.matmul)


# Floating-point edge cases (log(0), 1/0, overflow) give inf/nan as on every device;
# numpy's warnings about them are noise. A filter for this module costs nothing per call,
# where an errstate block would cost more than a small kernel itself.
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"flambeau_cpu\.")


class NumpyKernels(FusedKernels):
    """Kernels for the host; device arrays are numpy ndarrays."""

    def empty(self, shape, dtype):
        return allocate(np.empty, shape, dtype)

    def full(self, shape, value, dtype):
        if not shape:  # 0-d (a scalar operand, a backward's seed): a quarter of np.full's time
            return np.array(value, dtype)
        return allocate(_full, shape, dtype, value)

    def from_numpy(self, host):
        return np.array(host, copy=True)

    def to_numpy(self, x):
        return np.array(x, order="C", copy=True)

    # Optional: device memory is host memory, so adopting and viewing cost nothing.
    def from_numpy_shared(self, host):
        return host

    def to_numpy_shared(self, x):
        return x

    def copy(self, x):
        return np.array(x, copy=True, order="C")

    def assign(self, dst, src):
        np.copyto(dst, src, casting="unsafe")

    def random_bits(self, n, seed, offset):
        return philox.random_bits(n, seed, offset)

    # Optional: the uniforms written straight into the parameter they initialise, a
    # cache-sized piece of stream at a time (bench/bench_init.py: Linear(4096, 4096)).
    def random_uniform(self, out, seed, offset, low, high):
        target = out if out.flags.c_contiguous else np.empty(out.shape, np.float32)
        flat, done = target.reshape(-1), 0
        scale = np.float32((high - low) * 2.0**-24)
        for words in philox.chunks(flat.size, seed, offset):
            piece = flat[done : done + words.size]
            np.right_shift(words, 8, out=words)
            np.multiply(words, scale, out=piece, dtype=np.float32, casting="unsafe")
            if low:
                np.add(piece, np.float32(low), out=piece)
            done += words.size
        if target is not out:
            out[...] = target

    def unary(self, op, x, out=None):
        result = UNARY[op](x) if out is None else UNARY[op](x, out=out)
        return result if type(result) is np.ndarray else np.asarray(result)

    def binary(self, op, a, b, out=None):
        # A Python scalar b keeps a's dtype under numpy 2's promotion rules (NEP 50).
        if out is None:
            result = BINARY[op](a, b)
        elif out.size == 1:
            # numpy's overlap handling makes a ufunc writing into one element take twice as
            # long as a new array and a copy (a scalar parameter's gradient accumulation).
            out[...] = BINARY[op](a, b)
            return out
        else:
            result = BINARY[op](a, b, out=out)
        return result if type(result) is np.ndarray else np.asarray(result)

    def where(self, cond, a, b):
        return np.where(cond, a, b)

    def cast(self, x, dtype):
        return x.astype(dtype)

    def reduce(self, op, x, axes, keepdims):
        if x.dtype.kind != "f":
            result = REDUCE[op](x, axis=axes, keepdims=keepdims)
        elif _OUT_ELLIPSIS:
            return FLOAT_REDUCE[op](x, axes, None, out=..., keepdims=keepdims)
        else:
            result = FLOAT_REDUCE[op](x, axes, None, None, keepdims)
        return result if type(result) is np.ndarray else np.asarray(result)  # (a full reduction)

    def arg_reduce(self, op, x, axis, keepdims):
        return np.asarray(ARG_REDUCE[op](x, axis=axis, keepdims=keepdims), dtype=np.int64)

    def matmul(self, a, b):
        # numpy's OpenBLAS multiplies a few rows by a large transposed matrix (a linear
        # layer's x @ W.T at a small batch) up to 1.7x faster as (W @ x.T).T; the copy back
        # to C order is small (bench/bench_speed.py, the MLP step at batch 32).
        if (a.ndim == 2 and b.ndim == 2 and a.shape[0] <= 48 and b.size >= 1 << 17
                and b.flags.f_contiguous and a.flags.c_contiguous):
            return np.ascontiguousarray(_matmul(b.T, a.T).T)
        if a.ndim >= 2 and b.ndim >= 2 and a.shape[-1] == 1 and a.dtype.kind == "f":
            # An outer product (a weight gradient at batch 1): numpy's matmul takes 3x the
            # time of the product it is, one multiplication per element.
            return np.multiply(a, b)
        return _matmul(a, b)

    def reshape(self, x, shape):
        return x.reshape(shape)  # (the method: np.reshape adds a Python call)

    def permute(self, x, axes):
        return x.transpose(axes)

    def broadcast_to(self, x, shape):
        return np.broadcast_to(x, shape)

    def getitem(self, x, index):
        return numpy_like.getitem(x, index)

    def setitem(self, x, index, value):
        x[index] = value

    def concatenate(self, arrays: Sequence[np.ndarray], axis):
        return np.concatenate(arrays, axis=axis)

    def pad(self, x, widths, value):
        return np.pad(x, widths, constant_values=value)

    def gather(self, x, axis, index):
        return np.take_along_axis(x, index, axis=axis)

    def take(self, x, index, axis):
        return np.asarray(np.take(x, index, axis=axis))

    def scatter_add(self, dst, axis, index, src):
        grid = list(np.indices(index.shape, sparse=True))
        grid[axis] = index
        np.add.at(dst, tuple(grid), src)
