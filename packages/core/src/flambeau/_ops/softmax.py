"""Softmax and log-softmax: the backend's fused kernels where it has them, one recorded
node each with the gradient in closed form; otherwise a composition of tensor ops,
which is also the reference the conformance kit holds the kernels to.

Log-softmax is its own operation, not ``log(softmax(x))``, for numerics: the
composition through ``logsumexp`` stays finite where ``softmax`` underflows to 0.
"""

from __future__ import annotations

from collections.abc import Callable

from .._dtypes import float32, is_bfloat16
from .._tensor import Tensor
from ..autograd._engine import SavedOutput, record
from ..backends import normalize_axis
from . import elementwise as ew
from . import reduction as red
from ._common import cast, needs_grad
from ._dispatch import FLOAT_KERNEL_DTYPES, fused_kernel


def log_softmax_reference(input: Tensor, dim: int) -> Tensor:
    """``input - logsumexp(input, dim)``, composed (stable, differentiable)."""
    return ew.sub(input, red.logsumexp(input, dim, keepdim=True))


def softmax_reference(input: Tensor, dim: int) -> Tensor:
    """``exp(log_softmax(input, dim))``, composed."""
    return ew.exp(log_softmax_reference(input, dim))


def _softmax_dim(input: Tensor, dim: int | None) -> int:
    if dim is None:
        # PyTorch's legacy rule when no dim is given.
        return 0 if input.ndim in (0, 1, 3) else 1
    return dim


def log_softmax(input: Tensor, dim: int | None = None) -> Tensor:
    """``input - logsumexp(input, dim)``: stable, with the exact gradient
    ``g - softmax * sum(g, dim)`` (the backend's fused kernel where it has one).

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.log_softmax(flambeau.zeros(2), 0).exp().tolist()
    [0.5, 0.5]
    """
    return _fused_rows("log_softmax", "LogSoftmaxBackward0", input, _softmax_dim(input, dim),
                       log_softmax_reference, _log_softmax_grad)


def softmax(input: Tensor, dim: int | None = None) -> Tensor:
    """``exp(input) / sum(exp(input), dim)``, computed stably, with gradient
    ``y * (g - sum(g * y, dim))`` (the backend's fused kernel where it has one).

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.softmax(flambeau.zeros(2, 2), 1).tolist()
    [[0.5, 0.5], [0.5, 0.5]]
    """
    return _fused_rows("softmax", "SoftmaxBackward0", input, _softmax_dim(input, dim),
                       softmax_reference, _softmax_grad)


def _log_softmax_grad(g: Tensor, y: Tensor, dim: int) -> Tensor:
    return ew.sub(g, ew.mul(ew.exp(y), red.sum(g, dim, keepdim=True)))


def _softmax_grad(g: Tensor, y: Tensor, dim: int) -> Tensor:
    return ew.mul(y, ew.sub(g, red.sum(ew.mul(g, y), dim, keepdim=True)))


def _fused_rows(name: str, node: str, input: Tensor, dim: int,
                reference: Callable[[Tensor, int], Tensor],
                grad: Callable[[Tensor, Tensor, int], Tensor]) -> Tensor:
    """The backend's kernel ``name`` along ``dim`` as one recorded node whose gradient is
    ``grad(g, output, dim)``; ``reference`` where the backend has no kernel. bfloat16
    runs in float32 and is rounded once, as PyTorch's does."""
    if is_bfloat16(input.dtype):
        inner = _fused_rows(name, node, cast(input, float32), dim, reference, grad)
        return cast(inner, input.dtype)
    kernel = fused_kernel(name, input, input.ndim > 0, FLOAT_KERNEL_DTYPES)
    if kernel is None:
        return reference(input, dim)
    dim = normalize_axis(dim, input.ndim)
    out = kernel(input, dim)
    if needs_grad(input):
        kept = SavedOutput(out)
        record(out, node, (input,), lambda g: (grad(g, kept.get(), dim),), (kept,))
    return out
