"""Parameter initialisers, with PyTorch's names and formulas.

Each writes into its tensor in place and returns it. Applied to an uninitialised (lazy)
parameter, an initialiser is remembered and runs when the parameter gets its shape.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _random
from .._creation import tensor
from .._ops.inplace import copy_, fill_
from .._tensor import Tensor
from ..autograd import no_grad
from ..errors import ShapeError
from .parameter import is_lazy

_GAINS = {"linear": 1.0, "identity": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0,
          "conv_transpose1d": 1.0, "conv_transpose2d": 1.0, "conv_transpose3d": 1.0,
          "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 3.0 / 4}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for ``nonlinearity`` (PyTorch's table)."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity not in _GAINS:
        raise ValueError(f"unsupported nonlinearity {nonlinearity!r}; expected one of "
                         f"{sorted([*_GAINS, 'leaky_relu'])}")
    return _GAINS[nonlinearity]


def _deferred(fn):
    """Make an initialiser wait for a lazy parameter's shape instead of failing."""

    def wrapper(tensor_: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        if is_lazy(tensor_):
            tensor_.defer(lambda p: fn(p, *args, **kwargs))
            return tensor_
        with no_grad():
            return fn(tensor_, *args, **kwargs)

    wrapper.__name__ = fn.__name__
    wrapper.__qualname__ = fn.__qualname__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _fans(t: Tensor) -> tuple[int, int]:
    if t.ndim < 2:
        raise ShapeError(f"fan in and fan out need a tensor with at least 2 dimensions, got "
                         f"shape {list(t.shape)}")
    receptive = math.prod(t.shape[2:]) if t.ndim > 2 else 1
    return t.shape[1] * receptive, t.shape[0] * receptive


@_deferred
def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with samples from U(a, b)."""
    return _random.uniform_(tensor, a, b, generator=generator)


@_deferred
def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
    """Fill with samples from N(mean, std²)."""
    return _random.normal_(tensor, mean, std, generator=generator)


@_deferred
def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator: Any = None) -> Tensor:
    """Fill with N(mean, std²) samples redrawn until they lie in [a, b]."""
    from .._ops import elementwise as ew

    sample = _random.normal(mean, std, tuple(tensor.shape), generator=generator,
                            dtype=tensor.dtype, device=tensor.device)
    for _ in range(100):
        outside = ew.logical_or(ew.lt(sample, a), ew.gt(sample, b))
        if not outside.any().item():
            break
        fresh = _random.normal(mean, std, tuple(tensor.shape), generator=generator,
                               dtype=tensor.dtype, device=tensor.device)
        sample = ew.where(outside, fresh, sample)
    return copy_(tensor, ew.clamp(sample, a, b))


@_deferred
def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    return fill_(tensor, val)


@_deferred
def ones_(tensor: Tensor) -> Tensor:
    """Fill with ones."""
    return fill_(tensor, 1)


@_deferred
def zeros_(tensor: Tensor) -> Tensor:
    """Fill with zeros."""
    return fill_(tensor, 0)


@_deferred
def eye_(tensor: Tensor) -> Tensor:
    """The identity matrix (2-d tensors)."""
    if tensor.ndim != 2:
        raise ShapeError(f"eye_ needs a 2-d tensor, got shape {list(tensor.shape)}")
    return copy_(tensor, tensor_from(np.eye(*tensor.shape), tensor))


def tensor_from(host: np.ndarray, like: Tensor) -> Tensor:
    """``host`` as a tensor with ``like``'s dtype and device."""
    return tensor(host, dtype=like.dtype, device=like.device)


@_deferred
def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _random.uniform_(tensor, -bound, bound, generator=generator)


@_deferred
def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """Glorot normal: N(0, std²) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    return _random.normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)),
                           generator=generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    fan_in, fan_out = _fans(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0


@_deferred
def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator: Any = None) -> Tensor:
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan)."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return _random.uniform_(tensor, -bound, bound, generator=generator)


@_deferred
def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator: Any = None) -> Tensor:
    """He normal: N(0, std²) with std = gain / sqrt(fan)."""
    return _random.normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity),
                           generator=generator)


@_deferred
def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Any = None) -> Tensor:
    """A (semi-)orthogonal matrix from the QR decomposition of a normal sample."""
    if tensor.ndim < 2:
        raise ShapeError(f"orthogonal_ needs at least 2 dimensions, got {list(tensor.shape)}")
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    sample = _random.normal(0.0, 1.0, (rows, cols), generator=generator,
                            dtype="float64").numpy()
    flat = sample.T if rows < cols else sample
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return copy_(tensor, tensor_from(gain * q.reshape(tuple(tensor.shape)), tensor))


def _fan_in_bias_bound(weight: Tensor) -> float:
    fan_in, _ = _fans(weight)
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def default_linear_init(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's default for Linear and Conv layers: kaiming_uniform(a=sqrt(5)) weights
    and U(±1/sqrt(fan_in)) biases."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        default_linear_init_bias(bias, weight)


def default_linear_init_bias(bias: Tensor, weight: Tensor) -> None:
    """U(±1/sqrt(fan_in)) for a bias, fan_in taken from ``weight`` (a lazy layer's bias
    is initialised after its weight)."""
    bound = _fan_in_bias_bound(weight)
    uniform_(bias, -bound, bound)
