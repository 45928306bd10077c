"""Activations (``leaky_relu``, ``elu``, ``selu``, ``softplus``, ``mish``, ``hardswish``,
``hardsigmoid``) and dropout (elementwise and channel-wise): compositions of elementwise
ops (and, for dropout, the random generator), whose gradients come from the ops they use.

``inplace=True`` (PyTorch's argument; here also for ``relu`` and ``silu``) writes the
result into the input and returns the input itself, through the in-place machinery of
``inplace.apply_``: the version counter moves, the graph records the op, and a leaf that
requires grad is refused, as in PyTorch."""

from __future__ import annotations

from .. import _random
from .._tensor import Tensor
from ..errors import ShapeError
from . import elementwise as ew
from . import inplace as inplace_ops
from ._common import full_like_device


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """``max(input, 0)`` (``inplace``: ``input.relu_()``).

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.relu(flambeau.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    return inplace_ops.apply_(input, ew.relu) if inplace else ew.relu(input)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``input * sigmoid(input)``.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.silu(flambeau.tensor([0.0])).tolist()
    [0.0]
    """
    return inplace_ops.apply_(input, ew.silu) if inplace else ew.silu(input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``input`` where positive, else ``negative_slope * input``.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.leaky_relu(flambeau.tensor([-2.0, 3.0]), 0.5).tolist()
    [-1.0, 3.0]
    """
    if inplace:  # (PyTorch's rule reads the output: a later in-place change is refused)
        return inplace_ops.apply_(input, leaky_relu, negative_slope, keeps_output=True)
    return ew.where(ew.gt(input, 0), input, ew.mul(input, negative_slope))


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Zero elements with probability ``p`` and scale the rest by ``1/(1-p)`` (training);
    ``inplace`` writes the result into ``input`` and returns it, as PyTorch does.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.dropout(flambeau.ones(3), 0.5, training=False).tolist()
    [1.0, 1.0, 1.0]
    """
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0:
        return input
    scale = 0.0 if p == 1 else ew.mul(_random.bernoulli(input.detach(), 1 - p), 1.0 / (1 - p))
    return inplace_ops.mul_(input, scale) if inplace else ew.mul(input, scale)


def _feature_dropout(op: str, input: Tensor, p: float, training: bool, inplace: bool,
                     batched_ndim: int) -> Tensor:
    """Zero whole channels: one draw per (sample, channel), broadcast over the rest."""
    if not 0 <= p <= 1:
        raise ValueError(f"{op}: dropout probability must be in [0, 1], got {p}")
    if input.ndim not in (batched_ndim - 1, batched_ndim):
        raise ShapeError(f"{op}: expected a {batched_ndim - 1}-d (unbatched) or "
                         f"{batched_ndim}-d (batched) input, got shape {list(input.shape)}")
    if inplace and input.ndim < batched_ndim:  # PyTorch's unsqueeze_() refuses a leaf
        inplace_ops.check_inplace(input)
    if not training or p == 0:
        return input
    channels = input.ndim - batched_ndim + 2  # leading dimensions that get their own draw
    shape = tuple(input.shape[:channels]) + (1,) * (input.ndim - channels)
    keep = _random.bernoulli(full_like_device(0.0, shape, input.dtype, input), 1 - p)
    keep = ew.mul(keep, 1.0 / (1 - p)) if p < 1 else keep
    return inplace_ops.mul_(input, keep) if inplace else ew.mul(input, keep)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of ``input`` (N, C, L) or (C, L) with probability ``p`` (training),
    scaling the rest by ``1/(1-p)``.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.dropout1d(flambeau.ones(2, 3), 0.5, training=False).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    return _feature_dropout("dropout1d", input, p, training, inplace, 3)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    """Zero whole channels of ``input`` (N, C, H, W) with probability ``p`` (training).

    As PyTorch does today, a 3-d input is taken as (N, C, L), not as an unbatched image.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.dropout2d(flambeau.ones(1, 2, 1, 1), 0.0).flatten().tolist()
    [1.0, 1.0]
    """
    return _feature_dropout("dropout2d", input, p, training, inplace, 4 - (input.ndim == 3))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``input`` where positive, else ``alpha * (exp(input) - 1)``.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.elu(flambeau.tensor([0.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    if inplace:
        return inplace_ops.apply_(input, elu, alpha, keeps_output=True)
    # The exponential sees only the non-positive part, so no inf reaches the gradient.
    negative = ew.mul(ew.expm1(ew.clamp(input, max=0.0)), alpha)
    return ew.where(ew.gt(input, 0), input, negative)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """``scale * elu(input, alpha)`` with the self-normalising constants.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> round(F.selu(flambeau.tensor([1.0])).item(), 4)
    1.0507
    """
    if inplace:
        return inplace_ops.apply_(input, selu, keeps_output=True)
    return ew.mul(elu(input, _SELU_ALPHA), _SELU_SCALE)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * input)) / beta``, and ``input`` itself where ``beta * input``
    exceeds ``threshold``.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> round(F.softplus(flambeau.tensor([0.0])).item(), 4)
    0.6931
    """
    scaled = ew.mul(input, beta)
    smooth = ew.div(ew.log1p(ew.exp(ew.clamp(scaled, max=threshold))), beta)
    return ew.where(ew.gt(scaled, threshold), input, smooth)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """``input * tanh(softplus(input))``.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.mish(flambeau.tensor([0.0])).tolist()
    [0.0]
    """
    if inplace:
        return inplace_ops.apply_(input, mish)
    return ew.mul(input, ew.tanh(softplus(input)))


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """0 up to -3, 1 from 3, ``input / 6 + 1/2`` between (gradient 0 at the ends, as in
    PyTorch).

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.hardsigmoid(flambeau.tensor([-4.0, 0.0, 4.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    if inplace:
        return inplace_ops.apply_(input, hardsigmoid)
    ramp = ew.add(ew.div(input, 6.0), 0.5)
    return ew.where(ew.le(input, -3.0), 0.0, ew.where(ew.ge(input, 3.0), 1.0, ramp))


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """0 up to -3, ``input`` from 3, ``input * (input + 3) / 6`` between (the gradient at
    the ends is that of the outer pieces, as in PyTorch).

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.hardswish(flambeau.tensor([-4.0, 0.0, 4.0])).tolist()
    [0.0, 0.0, 4.0]
    """
    if inplace:
        return inplace_ops.apply_(input, hardswish)
    ramp = ew.div(ew.mul(input, ew.add(input, 3.0)), 6.0)
    return ew.where(ew.le(input, -3.0), 0.0, ew.where(ew.ge(input, 3.0), input, ramp))
