"""The kernel table of the contract on cupy arrays, bound to one GPU.

cupy mirrors numpy, so most kernels are one cupy call, as in flambeau-cpu. Where cupy
and the contract differ it says so beside the kernel. ``random_bits`` and the optional
``random_uniform`` are the Philox kernels of ``sources/philox.cu``; ``matmul`` is cuBLAS
(float32 without TF32 unless :func:`flambeau_cuda.set_tf32` allows it). Every kernel
runs with its GPU current and work queued on that GPU's own stream, and reports running
out of memory as :class:`flambeau.errors.OutOfMemoryError`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import cupy as cp
import cupyx
import numpy as np
from cupyx.scipy import special

from flambeau.backends import DTYPES, OPTIONAL_KERNELS, REQUIRED_KERNELS, numpy_like
from flambeau.errors import DTypeError, FlambeauError

from . import _config, programs
from .backend import out_of_memory
from .fused import FusedKernels


def _sign(x: cp.ndarray, out: cp.ndarray | None = None) -> cp.ndarray:
    result = cp.sign(x)
    if x.dtype.kind == "f":  # cupy's sign of NaN is 0; numpy's and the contract's NaN
        result = cp.where(cp.isnan(x), x, result)
    return numpy_like.into(result, out)


def _erf(x: cp.ndarray, out: cp.ndarray | None = None) -> cp.ndarray:
    return numpy_like.into(special.erf(x), out)


UNARY = {
    "neg": cp.negative,
    "abs": cp.absolute,
    "sign": _sign,
    "exp": cp.exp,
    "expm1": cp.expm1,
    "log": cp.log,
    "log1p": cp.log1p,
    "sqrt": cp.sqrt,
    "sin": cp.sin,
    "cos": cp.cos,
    "tanh": cp.tanh,
    "erf": _erf,
    # numpy_like.keep_integers: cupy rounds integers and bools into floats.
    "floor": numpy_like.keep_integers(cp.floor),
    "ceil": numpy_like.keep_integers(cp.ceil),
    "round": numpy_like.keep_integers(cp.rint),  # half to even
    "logical_not": cp.logical_not,
}

BINARY = {
    "add": cp.add,
    "sub": cp.subtract,
    "mul": cp.multiply,
    "div": cp.true_divide,
    "floordiv": cp.floor_divide,
    "mod": cp.remainder,
    "pow": cp.power,
    "maximum": cp.maximum,
    "minimum": cp.minimum,
    "eq": cp.equal,
    "ne": cp.not_equal,
    "lt": cp.less,
    "le": cp.less_equal,
    "gt": cp.greater,
    "ge": cp.greater_equal,
    "logical_and": cp.logical_and,
    "logical_or": cp.logical_or,
    "logical_xor": cp.logical_xor,
}

# numpy_like.keep_dtype: cupy widens the sum and product of small integers.
REDUCE = {"sum": numpy_like.keep_dtype(cp.sum), "prod": numpy_like.keep_dtype(cp.prod),
          "max": cp.amax, "min": cp.amin, "all": cp.all, "any": cp.any}

ARG_REDUCE = {"argmax": cp.argmax, "argmin": cp.argmin}

_BOOL_RESULTS = {"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
                 "logical_xor", "logical_not"}
# Dtypes cupyx.scatter_add adds atomically; int64 goes as uint64 (the same bits), the
# small integer types through int32.
_ATOMIC_DTYPES = {np.dtype(n) for n in ("int32", "uint32", "uint64", "float16", "float32",
                                        "float64")}
_SUPPORTED = set(DTYPES.values())

_gemm_tf32: list[bool | None] = [None]  # the TF32 setting last given to cupy


def _gemm_precision() -> None:
    """Hand :func:`flambeau_cuda.tf32_enabled` to cupy's float32 matrix products
    (a process-wide cupy setting) when it changed."""
    wanted = _config.tf32_enabled()
    if _gemm_tf32[0] is wanted:
        return
    try:  # cupy's switch lives in a private module; it has for years (cupy 8 to 14)
        from cupy._core import _routines_linalg as linalg

        choice = linalg.COMPUTE_TYPE_TF32 if wanted else linalg.COMPUTE_TYPE_DEFAULT
        set_compute_type = linalg.set_compute_type
    except (ImportError, AttributeError) as exc:
        if wanted:
            raise FlambeauError(
                f"this cupy ({cp.__version__}) has no switch for TF32 matrix products; "
                f"unset {_config.TF32_VAR} or call flambeau_cuda.set_tf32(False)") from exc
        _gemm_tf32[0] = wanted  # full float32 is cupy's default
        return
    set_compute_type(np.float32, choice)
    _gemm_tf32[0] = wanted


def _guarded(method: Any) -> Any:
    """``method`` run with its kernel set's GPU current and stream in use, and cupy's
    out-of-memory error turned into flambeau's (which names device and sizes)."""

    @functools.wraps(method)
    def kernel(self: CupyKernels, *args: Any, **kwargs: Any) -> Any:
        with cp.cuda.Device(self.index), self.stream:
            try:
                return method(self, *args, **kwargs)
            except cp.cuda.memory.OutOfMemoryError as exc:
                raise out_of_memory(self.index, exc) from None

    return kernel


def _blocks(n: int, offset: int) -> int:
    """Philox blocks (eight stream elements each) holding elements offset .. offset+n-1."""
    return (offset + n - 1) // 8 - offset // 8 + 1 if n else 0


def _on_device(cls: type) -> type:
    for name in (*REQUIRED_KERNELS, *OPTIONAL_KERNELS):
        method = getattr(cls, name, None)
        if method is not None:
            setattr(cls, name, _guarded(method))
    return cls


@_on_device
class CupyKernels(FusedKernels):
    """Kernels of GPU ``index``; device arrays are cupy ndarrays on that GPU.

    Attributes:
        index: The CUDA device number (``cuda:index``).
        stream: The non-blocking stream all of this GPU's kernels are queued on.
    """

    def __init__(self, index: int, backend: Any) -> None:
        self.index = index
        self._backend = backend
        with cp.cuda.Device(index):
            self.stream = cp.cuda.Stream(non_blocking=True)
        self._raw = programs.RawKernels()
        self._peers: set[int] = set()

    # --- memory -------------------------------------------------------------------------

    def empty(self, shape, dtype):
        return cp.empty(shape, dtype)

    def full(self, shape, value, dtype):
        return cp.full(shape, value, dtype)

    def from_numpy(self, host):
        # np.asarray, not np.ascontiguousarray: that one makes 0-d arrays 1-d.
        return cp.asarray(np.asarray(host, order="C"))

    def to_numpy(self, x):
        # Copied on this stream, then waits for it: after the work that makes x.
        return x.get(stream=self.stream, blocking=True)

    def copy(self, x):
        return x.copy(order="C")

    def assign(self, dst, src):
        cp.copyto(dst, src, casting="unsafe")

    # --- memory shared with other libraries and GPUs (optional kernels) --------------

    def from_dlpack(self, obj):
        # The producer orders its pending work before this stream (the current one).
        array = cp.from_dlpack(obj)
        if array.dtype not in _SUPPORTED:
            raise DTypeError(f"from_dlpack: flambeau has no dtype {array.dtype}; convert "
                             "the tensor first, e.g. to float32")
        return array

    def to_dlpack(self, x, **kwargs):
        # With this stream current, cupy orders the consumer's stream after x's work.
        return x.__dlpack__(**kwargs)

    def from_peer(self, x):
        source_index = x.device.id
        source = self._backend.kernels(source_index)
        with cp.cuda.Device(source_index), source.stream:
            contiguous = x if x.flags.c_contiguous else x.copy()
            ready = source.stream.record()
        out = cp.empty(x.shape, x.dtype)
        if out.nbytes:
            self._enable_peer_access(source_index)
            self.stream.wait_event(ready)
            cp.cuda.runtime.memcpyPeerAsync(out.data.ptr, self.index, contiguous.data.ptr,
                                            source_index, out.nbytes, self.stream.ptr)
            # The source's memory pool must not hand `contiguous` out before the copy ends.
            source.stream.wait_event(self.stream.record())
        return out

    def _enable_peer_access(self, source_index: int) -> None:
        """Direct GPU-to-GPU copies where the hardware allows (else CUDA stages them)."""
        if source_index in self._peers:
            return
        self._peers.add(source_index)
        if cp.cuda.runtime.deviceCanAccessPeer(self.index, source_index):
            try:
                cp.cuda.runtime.deviceEnablePeerAccess(source_index)
            except cp.cuda.runtime.CUDARuntimeError:
                pass  # already enabled, by cupy or the user

    # --- random numbers -----------------------------------------------------------------

    def random_bits(self, n, seed, offset):
        out = cp.empty(n, np.uint32)
        programs.launch(self._raw.get("philox.cu", "philox_random_bits"), _blocks(n, offset),
                        (out, np.int64(n), np.uint64(offset), np.uint64(seed)))
        return out

    def random_uniform(self, out, seed, offset, low, high):
        target = out if out.flags.c_contiguous else cp.empty(out.shape, np.float32)
        programs.launch(self._raw.get("philox.cu", "philox_uniform_float"),
                        _blocks(target.size, offset),
                        (target, np.int64(target.size), np.uint64(offset), np.uint64(seed),
                         np.float32((high - low) * 2.0**-24), np.float32(low)))
        if target is not out:
            out[...] = target

    # --- elementwise --------------------------------------------------------------------

    def unary(self, op, x, out=None):
        result = UNARY[op](x) if out is None else UNARY[op](x, out=out)
        if out is None and op != "logical_not" and result.dtype != x.dtype:
            result = result.astype(x.dtype)  # erf of float16 comes back as float32
        return result

    def binary(self, op, a, b, out=None):
        fn = BINARY[op]
        result = fn(a, b) if out is None else fn(a, b, out=out)
        if (out is None and type(b) is not cp.ndarray and op not in _BOOL_RESULTS
                and result.dtype != a.dtype):
            # A Python scalar b is a value of a's dtype; cupy may widen a for a large one.
            result = result.astype(a.dtype)
        return result

    def where(self, cond, a, b):
        return cp.where(cond, a, b)

    def cast(self, x, dtype):
        return x.astype(dtype)

    # --- reductions ---------------------------------------------------------------------

    def reduce(self, op, x, axes, keepdims):
        if axes == ():  # nothing to reduce: the elements themselves (bool for all/any)
            return x.astype(np.bool_) if op in ("all", "any") else x.copy()
        return REDUCE[op](x, axis=axes, keepdims=keepdims)

    def arg_reduce(self, op, x, axis, keepdims):
        result = ARG_REDUCE[op](x, axis=axis)
        if keepdims:
            result = result.reshape((1,) * x.ndim if axis is None else
                                    x.shape[:axis] + (1,) + x.shape[axis + 1:])
        return result.astype(np.int64, copy=False)

    # --- linear algebra -----------------------------------------------------------------

    def matmul(self, a, b):
        if a.dtype == np.float32:
            _gemm_precision()
        return cp.matmul(a, b)

    # --- movement -----------------------------------------------------------------------

    def reshape(self, x, shape):
        return x.reshape(shape)

    def permute(self, x, axes):
        return x.transpose(axes)

    def broadcast_to(self, x, shape):
        return cp.broadcast_to(x, shape)

    def getitem(self, x, index):
        return numpy_like.getitem(x, index)

    def setitem(self, x, index, value):
        x[index] = value

    def concatenate(self, arrays: Sequence[cp.ndarray], axis):
        return cp.concatenate(arrays, axis=axis)

    def pad(self, x, widths, value):
        return cp.pad(x, widths, mode="constant", constant_values=value)

    def gather(self, x, axis, index):
        return cp.take_along_axis(x, index, axis=axis)

    def take(self, x, index, axis):
        return cp.take(x, index, axis=axis)

    def scatter_add(self, dst, axis, index, src):
        grid = tuple(index if d == axis else
                     cp.arange(n).reshape((1,) * d + (n,) + (1,) * (index.ndim - d - 1))
                     for d, n in enumerate(index.shape))
        if dst.dtype == np.int64:  # two's complement: adding as uint64 gives the same bits
            cupyx.scatter_add(dst.view(np.uint64), grid, src.view(np.uint64))
        elif dst.dtype in _ATOMIC_DTYPES:
            cupyx.scatter_add(dst, grid, src)
        else:
            wide = dst.astype(np.int32)
            cupyx.scatter_add(wide, grid, src.astype(np.int32))
            cp.copyto(dst, wide, casting="unsafe")
