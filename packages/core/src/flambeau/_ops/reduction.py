"""Reductions: sum, mean, prod, max/min (with indices), argmax, var/std, logsumexp, all/any."""

from __future__ import annotations

import builtins
from collections import namedtuple
from typing import Any

import numpy as np

from .. import _dtypes
from .._tensor import Tensor, _wrap
from ..autograd._engine import SavedOutput, record
from ..autograd._mode import STATE
from ..backends import normalize_axis
from ..errors import ShapeError
from ._common import cast, full_like_device, numpy_names, reduction_axes, require_float
from .elementwise import (
    div,
    eq,
    exp,
    maximum,
    minimum,
    mul,
    ne,
    sqrt,
    sub,
    where,
)
from .linalg import matmul
from .shape import expand, movedim, reshape, stack, unbind, unsqueeze

#: What ``max(dim=...)``/``min(dim=...)`` return, like ``torch.return_types.max``.
ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def _expand_back(g: Tensor, shape: tuple[int, ...], axes: tuple[int, ...]) -> Tensor:
    """Broadcast a reduced gradient back to the input's shape."""
    ndim = len(shape)  # the shape with the reduced axes kept as 1s: (a full reduction, unlooped)
    kept = (1,) * ndim if len(axes) == ndim else tuple(
        1 if i in axes else s for i, s in enumerate(shape))
    if STATE.enabled or g._strides is not None:
        g = reshape(g, kept)
    elif g._data.shape != kept:  # reshape of a C-ordered tensor recording nothing, unchecked
        g = _wrap(g._k.reshape(g._data, kept), g._device, g._k)
    return g if kept == shape else expand(g, shape)


def _reduce(op: str, x: Tensor, axes: tuple[int, ...], keepdim: bool) -> Tensor:
    return _wrap(x._k.reduce(op, x._data, axes, keepdim), x._device, x._k)


@numpy_names
def sum(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Sum over ``dim`` (all dimensions by default); bool and integers sum as int64."""
    data = input._data
    if dtype is not None or (data.dtype.kind in "biu" and data.dtype != _dtypes.int64):
        input = cast(input, _dtypes.int64 if dtype is None else _dtypes.as_dtype(dtype))
        data = input._data
    shape = data.shape
    axes = reduction_axes(dim, len(shape))
    out = _reduce("sum", input, axes, keepdim)
    if STATE.enabled and input.requires_grad:
        # g has the kept shape (keepdim) or the reduced one: reshaping to the kept shape
        # (reduced axes as 1s) then expanding serves both.
        name = "SumBackward0" if dim is None else "SumBackward1"  # PyTorch's names
        record(out, name, (input,), lambda g: (_expand_back(g, shape, axes),))
    return out


@numpy_names
def mean(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Mean over ``dim`` (all dimensions by default); needs a float tensor."""
    if dtype is not None:
        input = cast(input, _dtypes.as_dtype(dtype))
    require_float("mean", input)
    axes = reduction_axes(dim, input.ndim)
    count = 1
    for axis in axes:
        count *= input._data.shape[axis]
    out = sum(input, axes, keepdim) / count if count else sum(input, axes, keepdim) * np.nan
    if out.grad_fn is not None:  # a composition, shown under PyTorch's name in reprs
        out.grad_fn._name = "MeanBackward0" if dim is None else "MeanBackward1"
    return out


@numpy_names
def prod(input: Tensor, dim: int | None = None, keepdim: bool = False, *,
         dtype: Any = None) -> Tensor:
    """Product over ``dim`` (all by default); correct gradients even with zeros."""
    if dtype is not None:
        input = cast(input, _dtypes.as_dtype(dtype))
    elif input.dtype.kind in "biu" and input.dtype != _dtypes.int64:
        input = cast(input, _dtypes.int64)
    shape = input._data.shape
    axes = reduction_axes(dim, len(shape))
    out = _reduce("prod", input, axes, keepdim)
    if STATE.enabled and input.requires_grad:

        def backward(g: Tensor) -> tuple:
            # d(prod)/dx_i is the product of the others: out / x_i when no zero is in the
            # group; where x_i is the only zero, the product of the non-zeros; else 0.
            zeros = eq(input, 0)
            zero_count = sum(zeros, axes, keepdim=True)
            nonzero_prod = prod_keep(where(zeros, 1.0, input), axes)
            others = where(zeros, where(eq(zero_count, 1), nonzero_prod, 0.0),
                           where(eq(zero_count, 0), div(nonzero_prod, where(zeros, 1.0, input)),
                                 0.0))
            return (mul(_expand_back(g, shape, axes), others),)

        record(out, "ProdBackward0" if dim is None else "ProdBackward1", (input,), backward,
               (input,))
    return out


def prod_keep(x: Tensor, axes: tuple[int, ...]) -> Tensor:
    """Product over ``axes`` keeping them as size-1 dimensions (no graph)."""
    return _reduce("prod", x, axes, True)


def _check_nonempty(op: str, x: Tensor, axes: tuple[int, ...]) -> None:
    for axis in axes:
        if x._data.shape[axis] == 0:
            raise ShapeError(
                f"{op}(): cannot reduce over dimension {axis} of size 0 (shape "
                f"{list(x.shape)}); the operation has no identity"
            )
    if not axes and x.numel() == 0:
        raise ShapeError(f"{op}(): cannot reduce an empty tensor; it has no identity")


def _extreme(op: str, input: Tensor, dim: Any, keepdim: bool) -> Any:
    if dim is None:
        _check_nonempty(op, input, tuple(range(input.ndim)))
        axes = tuple(range(input.ndim))
        out = _reduce(op, input, axes, False)
        if STATE.enabled and input.requires_grad:
            shape = input._data.shape

            kept = SavedOutput(out)

            def backward(g: Tensor) -> tuple:
                # Like PyTorch's full max/min: ties share the gradient evenly.
                hits = cast(eq(input, _expand_back(kept.get(), shape, axes)), g.dtype)
                return (mul(_expand_back(div(g, sum(hits)), shape, axes), hits),)

            record(out, op.capitalize() + "Backward1", (input,), backward, (input, kept))
        return out
    if input.ndim == 0:  # as in PyTorch, a 0-d tensor has a dimension 0 (or -1) of size 1
        normalize_axis(dim, 1)
        return _extreme(op, reshape(input, (1,)), 0, False)
    axis = normalize_axis(dim, input.ndim)
    _check_nonempty(op, input, (axis,))
    values = _reduce(op, input, (axis,), keepdim)
    indices = _wrap(input._k.arg_reduce("arg" + op, input._data, axis, keepdim), input._device,
                    input._k)
    if STATE.enabled and input.requires_grad:
        shape = input._data.shape

        def backward(g: Tensor) -> tuple:
            return (_scatter_to(g, indices, shape, axis, keepdim),)

        record(values, op.capitalize() + "Backward0", (input,), backward)
    return ValuesIndices(values, indices)


def _scatter_to(g: Tensor, indices: Tensor, shape: tuple[int, ...], axis: int,
                keepdim: bool) -> Tensor:
    """A zero tensor of ``shape`` with ``g`` placed at ``indices`` along ``axis``."""
    if not keepdim:
        g, indices = unsqueeze(g, axis), unsqueeze(indices, axis)
    grad = full_like_device(0, shape, g.dtype, g)
    g._k.scatter_add(grad._data, axis, indices._data, g._data)
    return grad


@numpy_names
def max(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    """The largest value; with ``dim``, ``(values, indices)`` along it. With a tensor as the
    second argument, the elementwise maximum."""
    if isinstance(dim, Tensor):
        return maximum(input, dim)
    return _extreme("max", input, dim, keepdim)


@numpy_names
def min(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    """The smallest value; with ``dim``, ``(values, indices)`` along it. With a tensor as
    the second argument, the elementwise minimum."""
    if isinstance(dim, Tensor):
        return minimum(input, dim)
    return _extreme("min", input, dim, keepdim)


@numpy_names
def amax(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """The largest values over ``dim`` (several dimensions allowed); ties share gradients."""
    return _amax_amin("max", input, dim, keepdim)


@numpy_names
def amin(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """The smallest values over ``dim``; ties share gradients."""
    return _amax_amin("min", input, dim, keepdim)


def _amax_amin(op: str, input: Tensor, dim: Any, keepdim: bool) -> Tensor:
    shape = input._data.shape
    axes = reduction_axes(dim, len(shape))
    _check_nonempty("a" + op, input, axes)
    out = _reduce(op, input, axes, keepdim)
    if STATE.enabled and input.requires_grad:
        kept = SavedOutput(out)

        def backward(g: Tensor) -> tuple:
            hits = cast(eq(input, _expand_back(kept.get(), shape, axes)), g.dtype)
            share = div(_expand_back(g, shape, axes),
                        _expand_back(sum(hits, axes, keepdim), shape, axes))
            return (mul(share, hits),)

        record(out, "A" + op + "Backward0", (input,), backward, (input, kept))
    return out


def _arg(op: str, input: Tensor, dim: int | None, keepdim: bool) -> Tensor:
    if input.ndim == 0 and dim is not None:  # dimension 0 (or -1) of size 1, as in PyTorch
        normalize_axis(dim, 1)
        return _arg(op, reshape(input, (1,)), 0, False)
    axis = None if dim is None else normalize_axis(dim, input.ndim)
    _check_nonempty(op, input, () if axis is None else (axis,))
    data = input._k.arg_reduce(op, input._data, axis, keepdim if axis is not None else False)
    out = _wrap(data, input._device, input._k)
    if axis is None and keepdim:
        out = reshape(out, (1,) * input.ndim)
    return out


@numpy_names
def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the (first) largest value, over the flattened tensor or along ``dim``."""
    return _arg("argmax", input, dim, keepdim)


@numpy_names
def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the (first) smallest value, over the flattened tensor or along ``dim``."""
    return _arg("argmin", input, dim, keepdim)


@numpy_names
def var(input: Tensor, dim: Any = None, *, correction: int = 1, keepdim: bool = False,
        unbiased: bool | None = None) -> Tensor:
    """Variance over ``dim`` with Bessel's ``correction`` (1 by default, like PyTorch)."""
    if unbiased is not None:
        correction = 1 if unbiased else 0
    require_float("var", input)
    axes = reduction_axes(dim, input.ndim)
    count = 1
    for axis in axes:
        count *= input._data.shape[axis]
    centered = input - mean(input, axes, keepdim=True)
    return sum(centered * centered, axes, keepdim) / builtins.max(count - correction, 0)


@numpy_names
def std(input: Tensor, dim: Any = None, *, correction: int = 1, keepdim: bool = False,
        unbiased: bool | None = None) -> Tensor:
    """Standard deviation: ``sqrt(var(...))``."""
    return sqrt(var(input, dim, correction=correction, keepdim=keepdim, unbiased=unbiased))


@numpy_names
def logsumexp(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """``log(sum(exp(input)))`` over ``dim``, computed stably by shifting by the maximum.

    A primitive with its own gradient, ``softmax(input)``: recording the stable
    composition would differentiate through the shift, only for it to cancel.
    """
    require_float("logsumexp", input)
    shape = input._data.shape
    axes = reduction_axes(dim, len(shape))
    k, x = input._k, input._data
    # Straight on the kernels: the value needs no graph, and this runs in every loss.
    if input.numel() == 0:
        total = k.unary("log", k.reduce("sum", k.unary("exp", x), axes, True))
    else:
        shift = k.reduce("max", x, axes, True)
        infinite = k.binary("eq", k.unary("abs", shift), float("inf"))
        shift = k.where(infinite, k.full((), 0, x.dtype), shift)  # all-inf rows: no shift
        total = k.reduce("sum", k.unary("exp", k.binary("sub", x, shift)), axes, True)
        total = k.binary("add", k.unary("log", total), shift)
    if not keepdim:
        total = k.reshape(total, tuple(s for i, s in enumerate(shape) if i not in axes))
    out = _wrap(total, input._device, k)
    if STATE.enabled and input.requires_grad:
        kept = SavedOutput(out)

        def backward(g: Tensor) -> tuple:
            # _expand_back takes the reduced axes whether or not keepdim kept them.
            softmax = exp(sub(input, _expand_back(kept.get(), shape, axes)))
            return (mul(_expand_back(g, shape, axes), softmax),)

        record(out, "LogsumexpBackward0", (input,), backward, (input, kept))
    return out


@numpy_names
def all(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """True where every element (over ``dim``) is non-zero."""
    return _reduce("all", input, reduction_axes(dim, input.ndim), keepdim)


@numpy_names
def any(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """True where some element (over ``dim``) is non-zero."""
    return _reduce("any", input, reduction_axes(dim, input.ndim), keepdim)


@numpy_names
def count_nonzero(input: Tensor, dim: Any = None) -> Tensor:
    """Number of non-zero elements over ``dim``."""
    return sum(ne(input, 0), dim)


@numpy_names
def cumsum(input: Tensor, dim: int) -> Tensor:
    """Cumulative sum along ``dim`` (a triangular matmul, so any backend can run it)."""
    axis = normalize_axis(dim, input.ndim)
    n = input._data.shape[axis]
    host = np.triu(np.ones((n, n), input.dtype if input.dtype.kind == "f" else np.int64))
    triangle = _wrap(input._k.from_numpy(host), input._device, input._k)
    x = input if input.dtype.kind == "f" else cast(input, _dtypes.int64)
    moved = movedim(x, axis, -1)
    return movedim(matmul(moved, triangle), -1, axis)


@numpy_names
def cumprod(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Cumulative product along ``dim``: the running products of its slices, so that any
    backend runs it and the gradient (zeros included) comes from the products."""
    if dtype is not None:
        input = cast(input, _dtypes.as_dtype(dtype))
    elif input.dtype.kind in "biu":
        input = cast(input, _dtypes.int64)
    if input.ndim == 0:
        return reshape(cumprod(reshape(input, (1,)), 0), ())
    axis = normalize_axis(dim, input.ndim)
    products: list[Tensor] = []
    for piece in unbind(input, axis):
        products.append(mul(products[-1], piece) if products else piece)
    return stack(products, axis) if products else input
