"""Vector and matrix norms with PyTorch's values, errors and gradients.

``vector_norm``, ``matrix_norm`` and ``linalg_norm`` are ``flambeau.linalg``'s
``vector_norm``, ``matrix_norm`` and ``norm``; ``norm`` is ``flambeau.norm`` and
``Tensor.norm``. All are compositions of elementwise ops and reductions, so every backend
has them. The 1- and inf-norms keep their compositions' gradients (they are PyTorch's);
the 0-, 2- and other p-norms record one node with PyTorch's closed form instead, because
differentiating ``sqrt(sum(x * x))`` or ``sum(|x| ** p) ** (1 / p)`` gives NaN wherever
the norm or an element is zero (infinite slope times zero), where PyTorch gives 0.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _dtypes
from .._tensor import Tensor
from ..autograd._engine import SavedOutput, record
from ..autograd._mode import STATE
from ..backends import normalize_axis
from ..errors import DTypeError, ShapeError
from ._common import cast, reduction_axes
from .elementwise import abs, div, eq, mul, ne, pow, sign, sqrt, where
from .reduction import _expand_back, amax, amin, sum

__all__ = ["linalg_norm", "matrix_norm", "norm", "vector_norm"]

_MATRIX_ORDERS = "'fro', 'nuc', inf, -inf, 1, -1, 2 or -2"


def vector_norm(x: Tensor, ord: float = 2, dim: int | Sequence[int] | None = None,
                keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """The ``ord``-norm of ``x`` over ``dim`` (every element by default), as
    ``torch.linalg.vector_norm``.

    ``ord`` may be any number: ``2`` (Euclidean), ``inf`` / ``-inf`` (largest / smallest
    absolute value), ``0`` (count of non-zeros), or p for ``sum(|x| ** p) ** (1 / p)``.
    ``dtype`` computes (and returns) in that float dtype. The gradient is PyTorch's,
    0 where the norm is 0.

    >>> import flambeau
    >>> x = flambeau.tensor([[3.0, -4.0], [0.0, 1.0]])
    >>> flambeau.linalg.vector_norm(x)
    tensor(5.0990)
    >>> flambeau.linalg.vector_norm(x, ord=float("inf"), dim=1)
    tensor([4., 1.])
    """
    x = _float_input("linalg.vector_norm", x, dtype)
    if isinstance(ord, str) or not isinstance(ord, (int, float, np.integer, np.floating)):
        raise TypeError(f"linalg.vector_norm: ord must be a number, got {ord!r}; for the "
                        "Frobenius or nuclear norm use flambeau.linalg.matrix_norm")
    p = float(ord)
    axes = reduction_axes(dim, x.ndim)
    if x.numel() == 0 and (p < 0 or p == math.inf):  # no identity to start the reduction
        if dim is None or (isinstance(dim, (tuple, list)) and not dim):
            raise ShapeError(f"linalg.vector_norm cannot compute the {_order(p)} norm on an "
                             "empty tensor because the operation does not have an identity")
        for axis in axes:
            if x.shape[axis] == 0:
                raise ShapeError(
                    f"linalg.vector_norm cannot compute the {_order(p)} norm on dimension "
                    f"{axis} of shape {list(x.shape)}: it is empty and the operation does not "
                    "have an identity; reduce over other dimensions")
    if math.isinf(p):
        out = (amax if p > 0 else amin)(abs(x), axes, keepdim)
    elif p == 1:
        out = sum(abs(x), axes, keepdim)
    else:
        out = _p_norm(x, p, axes, keepdim)
    if out.grad_fn is not None:  # a composition, shown under PyTorch's name
        out.grad_fn._name = "LinalgVectorNormBackward0"
    return out


def _p_norm(x: Tensor, p: float, axes: tuple[int, ...], keepdim: bool) -> Tensor:
    """The 0-, 2- or p-norm, recorded as one node with PyTorch's gradient."""
    value = x.detach()
    if p == 0:
        out = cast(sum(ne(value, 0), axes, keepdim), x.dtype)
    elif p == 2:
        out = sqrt(sum(mul(value, value), axes, keepdim))
    else:
        out = pow(sum(pow(abs(value), p), axes, keepdim), 1.0 / p)
    if STATE.enabled and x.requires_grad:
        shape = tuple(x.shape)
        kept = SavedOutput(out)

        def backward(g: Tensor) -> tuple:
            if p == 0:
                return (None,)  # PyTorch's gradient is undefined: no .grad at all
            norm = _expand_back(kept.get(), shape, axes)
            g = _expand_back(g, shape, axes)
            zero_norm = eq(norm, 0)
            safe_norm = where(zero_norm, 1.0, norm)  # no inf * 0 in the masked branch
            if p == 2:
                return (mul(g, where(zero_norm, 0.0, div(x, safe_norm))),)
            if p < 1:  # |x| ** (p - 1) is infinite at x == 0, where PyTorch's slope is 0
                zero_x = eq(x, 0)
                scaled = where(zero_x, 0.0,
                               mul(sign(x), pow(where(zero_x, 1.0, abs(x)), p - 1)))
                return (mul(mul(scaled, g), pow(norm, 1 - p)),)
            scaled = (mul(sign(x), pow(abs(x), p - 1)) if p < 2
                      else mul(x, pow(abs(x), p - 2)))
            scale = where(zero_norm, 0.0, div(g, pow(safe_norm, p - 1)))
            return (mul(scaled, scale),)

        record(out, "LinalgVectorNormBackward0", (x,), backward, (x, kept))
    return out


def matrix_norm(A: Tensor, ord: float | str = "fro", dim: tuple[int, int] = (-2, -1),
                keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """The matrix norm of each matrix over the two dimensions ``dim``, as
    ``torch.linalg.matrix_norm``.

    ``ord``: ``'fro'`` (Frobenius), ``1`` / ``-1`` (largest / smallest column sum of
    absolute values), ``inf`` / ``-inf`` (the same over rows). ``'nuc'``, ``2`` and ``-2``
    need singular values, which flambeau does not compute: they raise
    ``NotImplementedError``.

    >>> import flambeau
    >>> A = flambeau.tensor([[1.0, -2.0], [3.0, 4.0]])
    >>> flambeau.linalg.matrix_norm(A, ord=1)
    tensor(6.)
    >>> flambeau.linalg.matrix_norm(A, ord=float("inf"))
    tensor(7.)
    """
    A = _float_input("linalg.matrix_norm", A, dtype)
    if A.ndim < 2:
        raise ShapeError(f"linalg.matrix_norm: The input tensor A must have at least 2 "
                         f"dimensions, got shape {list(A.shape)}; for vectors use "
                         "flambeau.linalg.vector_norm")
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise ShapeError(f"linalg.matrix_norm: dim must be a 2-tuple, got {dim!r}")
    rows, cols = (normalize_axis(d, A.ndim) for d in dim)
    if rows == cols:
        raise ShapeError(f"linalg.matrix_norm: dims must be different, got {tuple(dim)}")
    if ord == "fro":
        return vector_norm(A, 2, (rows, cols), keepdim)
    if ord == "nuc" or (not isinstance(ord, str) and builtins.abs(ord) == 2):
        raise NotImplementedError(
            f"linalg.matrix_norm: ord={ord!r} needs singular values, which flambeau does not "
            "compute; use ord='fro', 1, -1, inf or -inf")
    if isinstance(ord, str) or builtins.abs(float(ord)) not in (1, math.inf):
        raise ValueError(f"linalg.matrix_norm: Order {ord} not supported; expected "
                         f"{_MATRIX_ORDERS}")
    p = float(ord)
    # The 1-norm sums |A| down each column, then takes the largest; the inf-norm is the
    # 1-norm of the transpose.
    first, second = (rows, cols) if builtins.abs(p) == 1 else (cols, rows)
    if not keepdim and first < second:
        second -= 1  # the first reduction removed a dimension in front of it
    sums = sum(abs(A), first, keepdim)
    return (amax if p > 0 else amin)(sums, second, keepdim)


def linalg_norm(A: Tensor, ord: float | str | None = None,
                dim: int | Sequence[int] | None = None, keepdim: bool = False, *,
                dtype: Any = None) -> Tensor:
    """A vector or matrix norm, chosen as ``torch.linalg.norm`` chooses
    (``flambeau.linalg.norm``).

    A matrix norm when ``dim`` names two dimensions, or when ``dim`` is ``None`` and ``A``
    is 2-d with an ``ord`` given; else a vector norm (``ord=None`` is the 2-norm over
    the flattened tensor, the same as the Frobenius norm).

    >>> import flambeau
    >>> A = flambeau.tensor([[1.0, -2.0], [3.0, 4.0]])
    >>> flambeau.linalg.norm(A)
    tensor(5.4772)
    >>> flambeau.linalg.norm(A, ord=1)
    tensor(6.)
    >>> flambeau.linalg.norm(A, ord=1, dim=1)
    tensor([3., 7.])
    """
    if isinstance(dim, (int, np.integer)):
        dim = (int(dim),)
    if dim is not None:
        if len(dim) not in (1, 2):
            raise ShapeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. "
                             f"Got {list(dim)}")
    elif ord is not None and getattr(A, "ndim", None) not in (1, 2):
        raise ShapeError(f"linalg.norm: If dim is not specified but ord is, the input must be "
                         f"1D or 2D. Got {A.ndim}D; pass dim= to choose the dimensions")
    if isinstance(ord, str) or (ord is not None and (
            (dim is not None and len(dim) == 2) or (dim is None and A.ndim == 2))):
        return matrix_norm(A, ord, tuple(dim) if dim is not None else (0, 1), keepdim,
                           dtype=dtype)
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def norm(input: Tensor, p: float | str | None = "fro", dim: int | Sequence[int] | None = None,
         keepdim: bool = False, dtype: Any = None) -> Tensor:
    """``torch.norm``: the ``p``-norm over ``dim`` (every element by default).

    ``p='fro'`` (the default) and numbers are vector norms over ``dim``; ``p='nuc'`` and
    other strings go to :func:`flambeau.linalg.matrix_norm`. New code may prefer
    ``flambeau.linalg.vector_norm`` and ``matrix_norm``, as PyTorch recommends.

    >>> import flambeau
    >>> x = flambeau.tensor([[3.0, -4.0], [0.0, 1.0]])
    >>> x.norm()
    tensor(5.0990)
    >>> flambeau.norm(x, p=1, dim=0)
    tensor([3., 5.])
    """
    axes = [dim] if isinstance(dim, (int, np.integer)) else dim
    if isinstance(p, str):
        if p == "fro" and (dim is None or isinstance(dim, (int, np.integer)) or len(dim) <= 2):
            return vector_norm(input, 2, axes, keepdim, dtype=dtype)
        if axes is None:
            axes = list(range(input.ndim))
        return matrix_norm(input, p, axes, keepdim, dtype=dtype)
    return vector_norm(input, 2.0 if p is None else p, axes, keepdim, dtype=dtype)


def _order(p: float) -> str:
    """An order as PyTorch prints it: ``inf``, ``-1``, ``0.5``."""
    return str(int(p)) if p.is_integer() else str(p)


def _float_input(op: str, x: Any, dtype: Any) -> Tensor:
    """``x`` checked to be a float tensor, in ``dtype`` when one is asked for."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise DTypeError(f"{op}: Expected a floating point tensor as input. Got {x.dtype}; "
                         f"convert it first, e.g. x.float()")
    if dtype is None:
        return x
    target = _dtypes.as_dtype(dtype)
    if target.kind != "f":
        raise DTypeError(f"{op}: dtype should be floating point, but got {target}")
    if np.result_type(x.dtype, target) != target:
        raise DTypeError(f"{op}: the dtype of the input ({x.dtype}) should be convertible "
                         f"without narrowing to the specified dtype ({target}); convert the "
                         "input yourself if you mean to narrow it")
    return cast(x, target)
