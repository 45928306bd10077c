"""``leaky_relu`` and ``dropout``: compositions of elementwise ops (and, for dropout, the
random generator), whose gradients come from the ops they use."""

from __future__ import annotations

from .. import _random
from .._tensor import Tensor
from . import elementwise as ew


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``input`` where positive, else ``negative_slope * input``.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.leaky_relu(flambeau.tensor([-2.0, 3.0]), 0.5).tolist()
    [-1.0, 3.0]
    """
    return ew.where(ew.gt(input, 0), input, ew.mul(input, negative_slope))


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero elements with probability ``p`` and scale the rest by ``1/(1-p)`` (training).

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> F.dropout(flambeau.ones(3), 0.5, training=False).tolist()
    [1.0, 1.0, 1.0]
    """
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return ew.mul(input, 0.0)
    keep = _random.bernoulli(input.detach(), 1 - p)
    return ew.mul(input, ew.mul(keep, 1.0 / (1 - p)))
