"""``flambeau.nn.functional``: the functions layers are made of (PyTorch's names)."""

from __future__ import annotations

from .. import _random
from .._ops import elementwise as ew
from .._ops import linalg
from .._ops.elementwise import gelu, relu, sigmoid, silu, tanh
from .._ops.shape import pad
from .._tensor import Tensor
from ..errors import ShapeError
from . import _softmax
from ._conv import (
    adaptive_avg_pool2d,
    avg_pool2d,
    conv1d,
    conv2d,
    conv_transpose2d,
    max_pool2d,
)
from ._loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from ._norm import batch_norm, embedding, group_norm, layer_norm


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias``."""
    out = linalg.matmul(input, weight.mT if weight.ndim == 2 else weight)
    return out if bias is None else ew.add(out, bias)


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``input`` where positive, else ``negative_slope * input``."""
    return ew.where(ew.gt(input, 0), input, ew.mul(input, negative_slope))


def _softmax_dim(input: Tensor, dim: int | None) -> int:
    if dim is None:
        # PyTorch's legacy rule when no dim is given.
        return 0 if input.ndim in (0, 1, 3) else 1
    return dim


def log_softmax(input: Tensor, dim: int | None = None) -> Tensor:
    """``input - logsumexp(input, dim)``: stable, with the exact gradient (the backend's
    fused kernel where it has one)."""
    return _softmax.log_softmax(input, _softmax_dim(input, dim))


def softmax(input: Tensor, dim: int | None = None) -> Tensor:
    """``exp(input) / sum(exp(input), dim)``, computed stably (the backend's fused kernel
    where it has one)."""
    return _softmax.softmax(input, _softmax_dim(input, dim))


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero elements with probability ``p`` and scale the rest by ``1/(1-p)`` (training)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return ew.mul(input, 0.0)
    keep = _random.bernoulli(input.detach(), 1 - p)
    return ew.mul(input, ew.mul(keep, 1.0 / (1 - p)))


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Int64 one-hot encoding of class indices."""
    from .._creation import arange

    if num_classes < 0:
        num_classes = int(tensor.max().item()) + 1
    if tensor.numel() and (tensor.min().item() < 0 or tensor.max().item() >= num_classes):
        raise ShapeError(f"one_hot: class values must be in [0, {num_classes}), got "
                         f"{tensor.min().item()}..{tensor.max().item()}")
    classes = arange(num_classes, device=tensor.device)
    return ew.cast(ew.eq(tensor.unsqueeze(-1), classes), tensor.dtype)


__all__ = ["batch_norm", "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "cross_entropy", "dropout", "embedding", "gelu", "group_norm", "huber_loss",
           "l1_loss", "layer_norm", "leaky_relu", "linear", "log_softmax", "mse_loss",
           "nll_loss", "one_hot", "pad", "relu", "sigmoid", "silu", "smooth_l1_loss", "softmax",
           "tanh"]
__all__ += ["adaptive_avg_pool2d", "avg_pool2d", "conv1d", "conv2d", "conv_transpose2d",
            "max_pool2d"]
