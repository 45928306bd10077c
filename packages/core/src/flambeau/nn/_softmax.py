"""Softmax and log-softmax: the backend's fused kernels where it has them, one recorded
node each with the gradient in closed form; otherwise a composition of tensor ops,
which is also the reference the conformance kit holds the kernels to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._ops import elementwise as ew
from .._ops import reduction as red
from .._ops._common import SavedOutput, _wrap, needs_grad, record
from .._tensor import Tensor
from ..backends import normalize_axis

FUSED_DTYPES = frozenset({np.dtype("float32"), np.dtype("float64")})
"""The dtypes the optional softmax and cross-entropy kernels take."""


def log_softmax_reference(input: Tensor, dim: int) -> Tensor:
    """``input - logsumexp(input, dim)``, composed (stable, differentiable)."""
    return ew.sub(input, red.logsumexp(input, dim, keepdim=True))


def softmax_reference(input: Tensor, dim: int) -> Tensor:
    """``exp(log_softmax(input, dim))``, composed."""
    return ew.exp(log_softmax_reference(input, dim))


def fused_kernel(name: str, input: Tensor) -> Any:
    """The backend's optional kernel ``name`` if it has one for ``input``'s dtype."""
    if input._data.dtype not in FUSED_DTYPES:
        return None
    return getattr(input._k, name, None)


def log_softmax(input: Tensor, dim: int) -> Tensor:
    """``input - logsumexp(input, dim)``; gradient ``g - softmax * sum(g, dim)``."""
    return _fused_rows("log_softmax", "LogSoftmaxBackward0", input, dim,
                       log_softmax_reference, _log_softmax_grad)


def softmax(input: Tensor, dim: int) -> Tensor:
    """``exp(input) / sum(exp(input), dim)``; gradient ``y * (g - sum(g * y, dim))``."""
    return _fused_rows("softmax", "SoftmaxBackward0", input, dim, softmax_reference,
                       _softmax_grad)


def _log_softmax_grad(g: Tensor, y: Tensor, dim: int) -> Tensor:
    return ew.sub(g, ew.mul(ew.exp(y), red.sum(g, dim, keepdim=True)))


def _softmax_grad(g: Tensor, y: Tensor, dim: int) -> Tensor:
    return ew.mul(y, ew.sub(g, red.sum(ew.mul(g, y), dim, keepdim=True)))


def _fused_rows(name: str, node: str, input: Tensor, dim: int,
                reference: Callable[[Tensor, int], Tensor],
                grad: Callable[[Tensor, Tensor, int], Tensor]) -> Tensor:
    """The backend's kernel ``name`` along ``dim`` as one recorded node whose gradient is
    ``grad(g, output, dim)``; ``reference`` where the backend has no kernel."""
    kernel = fused_kernel(name, input) if input.ndim else None
    if kernel is None:
        return reference(input, dim)
    dim = normalize_axis(dim, input.ndim)
    out = _wrap(kernel(input._data, dim), input._device, input._k)
    if needs_grad(input):
        kept = SavedOutput(out)
        record(out, node, (input,), lambda g: (grad(g, kept.get(), dim),), (kept,))
    return out
