"""The internal API every operation uses: device resolution, operand checks, dtype
promotion and casting, gradient helpers.

Operations import the graph pieces from their homes (``record``, ``SavedOutput`` from
``flambeau.autograd._engine``; grad mode ``STATE`` from ``flambeau.autograd._mode``;
``Tensor`` and ``_wrap`` from ``flambeau._tensor``); the optional fused kernels come from
:mod:`flambeau._ops._dispatch`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .. import _dtypes
from .._tensor import Tensor, _wrap
from ..autograd._engine import record
from ..autograd._mode import STATE
from ..backends import normalize_axes
from ..errors import DeviceMismatchError, DTypeError

__all__ = ["SCALAR_TYPES", "arange_like", "bfloat16_in_float32", "cast", "full_like_device",
           "has_values", "in_float32", "int_range", "needs_grad", "numpy_names",
           "reduction_axes", "require_float", "same_device", "scalar_for", "to_tensor",
           "unbroadcast"]

SCALAR_TYPES = (bool, int, float, np.bool_, np.integer, np.floating)
"""Python and numpy scalars that operations take in place of a tensor operand."""




def numpy_names(fn: Any) -> Any:
    """``fn`` also taking numpy's ``axis=`` and ``keepdims=`` for ``dim=`` and ``keepdim=``,
    as PyTorch's reductions do (``x.argmax(axis=1)``)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not kwargs:  # (x.sum(): the commonest call, without the lookups)
            return fn(*args)
        if "axis" in kwargs:
            kwargs["dim"] = kwargs.pop("axis")
        if "keepdims" in kwargs:
            kwargs["keepdim"] = kwargs.pop("keepdims")
        return fn(*args, **kwargs)

    return wrapper


def needs_grad(*tensors: Any) -> bool:
    """True when grad mode is on and one of ``tensors`` requires grad."""
    if not STATE.enabled:
        return False
    return any(getattr(t, "requires_grad", False) for t in tensors)


def same_device(op: str, a: Tensor, b: Tensor) -> None:
    """Raise if ``a`` and ``b`` live on different devices."""
    if a._device is not b._device and a._device != b._device:
        raise DeviceMismatchError(
            f"{op}: expected all tensors on the same device, got {a._device} and {b._device}; "
            f"move one with .to({str(a._device)!r}) first"
        )


def cast(t: Tensor, dtype: np.dtype) -> Tensor:
    """``t`` converted to ``dtype``; differentiable between float dtypes."""
    source = t._data.dtype
    if source == dtype:
        return t
    if _dtypes.is_bfloat16(dtype):
        _dtypes.check_device(dtype, t._device)
    out = _wrap(t._k.cast(t._data, dtype), t._device, t._k)
    if _dtypes.is_floating(dtype) and needs_grad(t):
        record(out, "ToCopyBackward0", (t,), lambda g: (cast(g, source),))
    return out


def in_float32(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` on float32 copies of its bfloat16 tensor arguments, with its
    float32 tensor results (a tuple's too) rounded to bfloat16: how PyTorch's CPU kernels
    compute bfloat16. The casts are recorded, so backward runs in float32 and rounds too."""
    bf16 = _dtypes.load_bfloat16()

    def up(a: Any) -> Any:
        return cast(a, _dtypes.float32) if isinstance(a, Tensor) and a.dtype == bf16 else a

    def down(a: Any) -> Any:
        return cast(a, bf16) if isinstance(a, Tensor) and a.dtype == _dtypes.float32 else a

    out = fn(*map(up, args), **{k: up(v) for k, v in kwargs.items()})
    return tuple(map(down, out)) if isinstance(out, tuple) else down(out)


def bfloat16_in_float32(fn: Any) -> Any:
    """Decorator: :func:`in_float32` when every floating tensor argument is bfloat16 (a
    call that mixes dtypes is the operation's own to refuse or promote)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = (*args, *kwargs.values()) if kwargs else args
        for a in values:  # a cheap first look: bfloat16 is numpy's kind "V"
            if isinstance(a, Tensor) and a.dtype.kind == "V":
                if all(_dtypes.is_bfloat16(t.dtype) for t in values
                       if isinstance(t, Tensor) and _dtypes.is_floating(t.dtype)):
                    return in_float32(fn, *args, **kwargs)
                break
        return fn(*args, **kwargs)

    return wrapper


def scalar_for(value: Any, dtype: np.dtype) -> bool | int | float:
    """A Python scalar of ``dtype``'s kind, for a kernel's scalar operand."""
    if _dtypes.is_floating(dtype):
        return float(value)
    if dtype.kind == "b":
        return bool(value)
    value = int(value)
    info = np.iinfo(dtype)
    if not info.min <= value <= info.max:
        # Wrap around like PyTorch's (C's) cast: uint8 tensor - 3 is x + 253 modulo 256.
        value = (value - info.min) % (1 << info.bits) + info.min
    return value


def full_like_device(value: Any, shape: tuple[int, ...], dtype: np.dtype, like: Tensor) -> Tensor:
    """A new tensor of ``value`` on ``like``'s device."""
    return _wrap(like._k.full(tuple(shape), value, dtype), like._device, like._k)


def to_tensor(value: Any, like: Tensor, dtype: np.dtype | None = None) -> Tensor:
    """``value`` (a tensor, scalar or array-like) as a tensor on ``like``'s device."""
    if isinstance(value, Tensor):
        same_device("operation", like, value)
        return value if dtype is None else cast(value, dtype)
    host = np.asarray(value)
    if dtype is None:
        dtype = _dtypes.result_type(value) if host.ndim == 0 else _dtypes.as_dtype(
            _default_host_dtype(host))
    return _wrap(like._k.from_numpy(host.astype(dtype, copy=False)), like._device, like._k)


def _default_host_dtype(host: np.ndarray) -> np.dtype:
    if host.dtype == np.float64:
        return _dtypes.DEFAULT_FLOAT
    return host.dtype


def unbroadcast(grad: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum ``grad`` over the dimensions broadcasting added, giving a gradient of ``shape``."""
    gshape, shape = grad._data.shape, tuple(shape)
    if gshape == shape:
        return grad
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, size in enumerate(shape) if size == 1 and gshape[i + lead] != 1
    )
    if not STATE.enabled:  # nothing to record (no create_graph): straight to the kernels
        k = grad._k
        summed = k.reduce("sum", grad._data, axes, False)
        if summed.shape != shape:
            summed = k.reshape(summed, shape)
        return _wrap(summed, grad._device, k)
    from .reduction import sum as _sum
    from .shape import reshape

    return reshape(_sum(grad, axes), shape)


_EVERY_AXIS = tuple(tuple(range(ndim)) for ndim in range(8))  # (made once: x.sum() is common)


def reduction_axes(dim: Any, ndim: int) -> tuple[int, ...]:
    """Axes for a reduction's ``dim`` argument (``None`` or ``()`` mean every axis)."""
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return _EVERY_AXIS[ndim] if ndim < len(_EVERY_AXIS) else tuple(range(ndim))
    if type(dim) is int and 0 <= dim < ndim:
        return (dim,)
    if ndim == 0:  # as in PyTorch, a 0-d tensor has dimension 0 (or -1) to reduce over
        normalize_axes(dim, 1)
        return ()
    return normalize_axes(dim, ndim)


def require_float(op: str, t: Tensor) -> None:
    """Raise a clear error when a float-only operation gets a non-float tensor."""
    if not _dtypes.is_floating(t.dtype):
        raise DTypeError(
            f"{op}() needs a floating-point tensor, got dtype {t.dtype}; convert it first, "
            f"e.g. x.float().{op}()"
        )


def arange_like(n: int, like: Tensor) -> Tensor:
    """``0, 1, ..., n-1`` as int64 on ``like``'s device."""
    return _wrap(like._k.from_numpy(np.arange(n, dtype=np.int64)), like._device, like._k)


def has_values(t: Tensor) -> bool:
    """False for meta tensors (shapes only), whose values checks must skip."""
    return t._device.type != "meta"


def int_range(t: Tensor) -> tuple[int, int] | None:
    """The smallest and largest value of an integer tensor (two scalars to the host, not
    the whole tensor); ``None`` when it is empty or has no values (meta)."""
    if not t.numel() or not has_values(t):
        return None
    k = t._k
    view = getattr(k, "to_numpy_shared", None)
    if view is not None:  # device memory is host memory: read it in place
        host = view(t._data)
        return int(host.min()), int(host.max())
    # One transfer, so a device with a queue waits for it once.
    both = k.concatenate([k.reshape(k.reduce(op, t._data, None, False), (1,))
                          for op in ("min", "max")], 0)
    lo, hi = k.to_numpy(both).tolist()
    return int(lo), int(hi)
