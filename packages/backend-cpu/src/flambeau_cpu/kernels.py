"""The kernel table of the contract, each kernel a numpy call."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from math import erf as _scalar_erf

import numpy as np

from flambeau.backends import philox

from .fused import FusedKernels
from .fused_loss import FusedLossKernels
from .fused_optim import FusedOptimizerKernels
from .memory import allocate

_erf = np.frompyfunc(_scalar_erf, 1, 1)


def _erf_kernel(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    result = np.asarray(_erf(x)).astype(x.dtype)
    if out is None:
        return result
    out[...] = result
    return out


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
    "floor": np.floor,
    "ceil": np.ceil,
    "round": np.round,
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
REDUCE = {
    "sum": np.add.reduce,
    "prod": np.multiply.reduce,
    "max": np.maximum.reduce,
    "min": np.minimum.reduce,
    "all": np.logical_and.reduce,
    "any": np.logical_or.reduce,
}

ARG_REDUCE = {"argmax": np.argmax, "argmin": np.argmin}



# Floating-point edge cases (log(0), 1/0, overflow) give inf/nan as on every device;
# numpy's warnings about them are noise. A filter for this module costs nothing per call,
# where an errstate block would cost more than a small kernel itself.
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"flambeau_cpu\.")

# numpy returns float64 for floor/ceil/round of integers; the contract keeps the dtype.
_INTEGER_IDENTITY = {"floor", "ceil", "round"}


class NumpyKernels(FusedKernels, FusedLossKernels, FusedOptimizerKernels):
    """Kernels for the host; device arrays are numpy ndarrays."""

    def empty(self, shape, dtype):
        return allocate(np.empty, shape, dtype)

    def full(self, shape, value, dtype):
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

    def unary(self, op, x, out=None):
        if op in _INTEGER_IDENTITY and x.dtype.kind in "biu":
            return self._integer_identity(x, out)
        result = UNARY[op](x) if out is None else UNARY[op](x, out=out)
        return result if type(result) is np.ndarray else np.asarray(result)

    @staticmethod
    def _integer_identity(x, out):
        if out is None:
            return x.copy()
        out[...] = x
        return out

    def binary(self, op, a, b, out=None):
        # A Python scalar b keeps a's dtype under numpy 2's promotion rules (NEP 50).
        result = BINARY[op](a, b) if out is None else BINARY[op](a, b, out=out)
        return result if type(result) is np.ndarray else np.asarray(result)

    def where(self, cond, a, b):
        return np.where(cond, a, b)

    def cast(self, x, dtype):
        return x.astype(dtype)

    def reduce(self, op, x, axes, keepdims):
        if op in ("sum", "prod"):
            # numpy widens small integers; the contract keeps the input dtype.
            return np.asarray(REDUCE[op](x, axis=axes, keepdims=keepdims, dtype=x.dtype))
        return np.asarray(REDUCE[op](x, axis=axes, keepdims=keepdims))

    def arg_reduce(self, op, x, axis, keepdims):
        return np.asarray(ARG_REDUCE[op](x, axis=axis, keepdims=keepdims), dtype=np.int64)

    def matmul(self, a, b):
        return np.matmul(a, b)

    def reshape(self, x, shape):
        return np.reshape(x, shape)

    def permute(self, x, axes):
        return np.transpose(x, axes)

    def broadcast_to(self, x, shape):
        return np.broadcast_to(x, shape)

    def getitem(self, x, index):
        # A full integer index gives a numpy scalar; a 0-d view keeps write-through.
        return x[(*index, ...)]

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
