"""Matrix products: matmul (with PyTorch's 1-d rules), mm, bmm, baddbmm, mv, dot, outer,
linear; triangles and diagonals (tril, triu, diag)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _dtypes
from .._tensor import Tensor, _wrap
from ..autograd._engine import record
from ..autograd._mode import STATE, no_grad
from ..backends import broadcast_shape
from ..errors import DTypeError, ShapeError
from ._common import cast, same_device, to_tensor, unbroadcast
from .elementwise import add, mul, where
from .indexing import take
from .shape import pad, reshape, squeeze_axes, transpose, unsqueeze


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with broadcasting batch dimensions; 1-d operands act as a row
    (left) or column (right) vector whose dimension is then removed, as in PyTorch."""
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError("matmul: both operands must be Tensors")
    same_device("matmul", input, other)
    if input.ndim == 0 or other.ndim == 0:
        raise ShapeError("matmul: both arguments need at least 1 dimension, got shapes "
                         f"{list(input.shape)} and {list(other.shape)}")
    if input.dtype != other.dtype:
        dtype = _dtypes.result_type(input, other)
        input, other = cast(input, dtype), cast(other, dtype)
    a = unsqueeze(input, 0) if input.ndim == 1 else input
    b = unsqueeze(other, -1) if other.ndim == 1 else other
    if a._data.shape[-1] != b._data.shape[-2]:
        raise ShapeError(
            f"matmul: shapes {list(input.shape)} and {list(other.shape)} cannot be multiplied "
            f"({a._data.shape[-2]}x{a._data.shape[-1]} and "
            f"{b._data.shape[-2]}x{b._data.shape[-1]})"
        )
    broadcast_shape(a._data.shape[:-2], b._data.shape[:-2])
    out = _matmul2(a, b)
    drop = []
    if other.ndim == 1:
        drop.append(out.ndim - 1)
    if input.ndim == 1:
        drop.append(out.ndim - 2)
    return squeeze_axes(out, tuple(drop)) if drop else out


def _matmul2(a: Tensor, b: Tensor) -> Tensor:
    out = _wrap(a._k.matmul(a._data, b._data), a._device, a._k)
    if STATE.enabled and (a.requires_grad or b.requires_grad):
        sa, sb = a._data.shape, b._data.shape
        ra, rb = a.requires_grad, b.requires_grad

        def backward(g: Tensor) -> tuple:
            if STATE.enabled:  # create_graph: differentiable compositions
                return (unbroadcast(_matmul2(g, transpose(b, -1, -2)), sa) if ra else None,
                        unbroadcast(_matmul2(transpose(a, -1, -2), g), sb) if rb else None)
            # Straight to the kernels: this runs for every layer of every training step.
            k, device = g._k, g._device
            grad_a = grad_b = None
            if ra:
                grad_a = unbroadcast(_wrap(k.matmul(g._data, _transposed(k, b._data)), device,
                                           k), sa)
            if rb:
                grad_b = unbroadcast(_wrap(k.matmul(_transposed(k, a._data), g._data), device,
                                           k), sb)
            return grad_a, grad_b

        record(out, "MmBackward0", (a, b), backward, (a, b))
    return out


def _transposed(k: Any, x: Any) -> Any:
    """Device array ``x`` with its last two dimensions swapped (a view where it can be)."""
    ndim = len(x.shape)
    return k.permute(x, (*range(ndim - 2), ndim - 1, ndim - 2))


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """Product of two matrices (2-d only)."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise ShapeError(f"mm: expected 2-d tensors, got shapes {list(input.shape)} and "
                         f"{list(mat2.shape)}")
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched product of (b, n, m) and (b, m, p) tensors."""
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise ShapeError(f"bmm: expected 3-d tensors with equal batch sizes, got shapes "
                         f"{list(input.shape)} and {list(mat2.shape)}")
    return matmul(input, mat2)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Matrix-vector product."""
    if input.ndim != 2 or vec.ndim != 1:
        raise ShapeError(f"mv: expected a matrix and a vector, got shapes {list(input.shape)} "
                         f"and {list(vec.shape)}")
    return matmul(input, vec)


def dot(input: Tensor, other: Tensor) -> Tensor:
    """Inner product of two 1-d tensors of the same length."""
    if input.ndim != 1 or other.ndim != 1 or input.shape != other.shape:
        raise ShapeError(f"dot: expected two 1-d tensors of the same size, got shapes "
                         f"{list(input.shape)} and {list(other.shape)}")
    return matmul(input, other)


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """Outer product of two vectors."""
    return matmul(reshape(input, (-1, 1)), reshape(vec2, (1, -1)))


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias``.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.linear(flambeau.ones(1, 2), flambeau.ones(3, 2), flambeau.ones(3)).tolist()
    [[3.0, 3.0, 3.0]]
    """
    if input.dtype != weight.dtype:
        raise DTypeError(f"linear: mat1 and mat2 must have the same dtype, but the input is "
                         f"{input.dtype} and the weight {weight.dtype}; convert the input "
                         f"first, e.g. x.to(flambeau.{weight.dtype})")
    tracked = STATE.enabled and (input.requires_grad or weight.requires_grad or
                                 (bias is not None and bias.requires_grad))
    x, w, k = input._data, weight._data, input._k
    # (N.., in) @ (out, in).T on one device: straight to the kernels, as every layer of
    # every training step comes here; anything else meets the general rules and errors.
    plain = (len(w.shape) == 2 and len(x.shape) >= 2 and x.shape[-1] == w.shape[1]
             and input._device is weight._device and (bias is None or (
                 bias._device is input._device and bias._data.shape == w.shape[:1]
                 and bias._data.dtype == w.dtype)))
    if plain:
        data = k.matmul(x, k.permute(w, (1, 0)))
        out = _wrap(data if bias is None else k.binary("add", data, bias._data, out=data),
                    input._device, k)
        if not tracked:
            return out
    elif weight.ndim != 2 or input.ndim == 0 or not tracked:
        out = matmul(input, transpose(weight, -2, -1) if weight.ndim == 2 else weight)
        return out if bias is None else add(out, bias)
    else:
        with no_grad():
            out = matmul(input, transpose(weight, -2, -1))
            out = out if bias is None else add(out, bias)
    # One node with the weight's gradient computed as g.T @ x: contiguous, where the
    # gradient reaching a transposed weight view would come back transposed (strided),
    # making every later copy of it (optimizer steps, DDP buckets) several times slower.
    rows = (math.prod(x.shape[:-1]), x.shape[-1])  # (kernels take no -1)

    def backward(g: Tensor) -> tuple:
        if STATE.enabled or not plain:  # create_graph: differentiable compositions
            flat = reshape(g, (-1, g._data.shape[-1]))
            return (matmul(g, weight) if input.requires_grad else None,
                    matmul(transpose(flat, 0, 1), reshape(input, rows))
                    if weight.requires_grad else None,
                    unbroadcast(g, bias._data.shape)
                    if bias is not None and bias.requires_grad else None)
        gd = g._data
        flat = k.reshape(gd, (rows[0], gd.shape[-1]))
        # Bias, weight, then input gradient: the bias's sum reads g before the weight's
        # product evicts it from cache, and the next node reads the input's while it is
        # still there (the MLP of bench/bench_speed.py: 12 us at batch 256).
        grad_bias = (_wrap(k.reduce("sum", flat, (0,), False), g._device, k)
                     if bias is not None and bias.requires_grad else None)
        grad_weight = (_wrap(k.matmul(k.permute(flat, (1, 0)), k.reshape(input._data, rows)),
                             g._device, k) if weight.requires_grad else None)
        return (_wrap(k.matmul(gd, weight._data), g._device, k)
                if input.requires_grad else None, grad_weight, grad_bias)

    return record(out, "AddmmBackward0" if bias is not None else "MmBackward0",
                  (input, weight, bias), backward, saved=(input, weight))


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: Any = 1,
            alpha: Any = 1) -> Tensor:
    """``beta * input + alpha * bmm(batch1, batch2)`` (``input`` ignored when ``beta`` is 0)."""
    out = bmm(batch1, batch2)
    out = out if alpha == 1 else mul(out, alpha)
    return out if beta == 0 else add(out, input if beta == 1 else mul(input, beta))


def _triangle(input: Tensor, diagonal: int, lower: bool) -> Tensor:
    if input.ndim < 2:
        raise ShapeError(f"{'tril' if lower else 'triu'}: expected a tensor with at least 2 "
                         f"dimensions, got shape {list(input.shape)}")
    rows, cols = input._data.shape[-2:]
    keep = np.tri(rows, cols, diagonal, dtype=bool) if lower else \
        ~np.tri(rows, cols, diagonal - 1, dtype=bool)
    return where(to_tensor(keep, input), input, 0)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dimensions (on and below ``diagonal``), zeros
    elsewhere."""
    return _triangle(input, diagonal, True)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dimensions (on and above ``diagonal``), zeros
    elsewhere."""
    return _triangle(input, diagonal, False)


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-d tensor made the ``diagonal``-th diagonal of a square matrix, or that diagonal
    of a matrix as a 1-d tensor.

    >>> import flambeau
    >>> flambeau.diag(flambeau.tensor([[1, 2], [3, 4]]))
    tensor([1, 4])
    """
    k = diagonal
    if input.ndim == 1:
        n = input._data.shape[0]
        square = mul(unsqueeze(input, -1), to_tensor(np.eye(n), input, input.dtype))
        return pad(square, (k, 0, 0, k) if k >= 0 else (0, -k, -k, 0))
    if input.ndim != 2:
        raise ShapeError(f"diag: expected a 1-d or 2-d tensor, got shape {list(input.shape)}")
    rows, cols = input._data.shape
    first = np.arange(max(0, -k), min(rows, cols - k))
    positions = first * cols + first + k
    return take(reshape(input, (-1,)), to_tensor(positions.astype(np.int64), input), 0)
