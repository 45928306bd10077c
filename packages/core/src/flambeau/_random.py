"""Random tensors from the contract's counter-based generator.

A :class:`Generator` is a seed and an offset into that seed's Philox4x32-10 stream
(:mod:`flambeau.backends.philox`). Each draw takes the next words of the stream on the
target device and advances the offset, so the same seed gives the same bits on every
backend. Uniform floats keep the top mantissa-many bits of each word (two words for
float64), so they lie in [0, 1) exactly; normals use the Box-Muller transform.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _dtypes
from ._creation import _finish, _shape_args
from ._device import resolve_device
from ._ops import elementwise as ew
from ._ops.shape import reshape, slice_tensor
from ._tensor import Tensor, _wrap
from .errors import DTypeError

_DEFAULT_SEED = 67280421310721  # PyTorch's default CPU seed
_MANTISSA_BITS = {2: 11, 4: 24}


class Generator:
    """A random stream: a seed and how many 32-bit words of it were used.

    >>> g = Generator().manual_seed(0)
    >>> g.get_state()
    (0, 0)
    """

    def __init__(self, seed: int = _DEFAULT_SEED) -> None:
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> Generator:
        """Restart the stream of ``seed`` (any int; taken modulo 2**64)."""
        self.seed = int(seed) % 2**64
        self.offset = 0
        return self

    def initial_seed(self) -> int:
        """The seed this stream started from."""
        return self.seed

    def get_state(self) -> tuple[int, int]:
        """``(seed, offset)``; pass it to :meth:`set_state` to replay draws."""
        return self.seed, self.offset

    def set_state(self, state: tuple[int, int]) -> None:
        """Restore a state from :meth:`get_state`."""
        self.seed, self.offset = int(state[0]), int(state[1])

    def take(self, n: int) -> tuple[int, int]:
        """Reserve ``n`` words; returns (seed, offset of the first)."""
        start = self.offset
        self.offset += n
        return self.seed, start


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator (for reproducible results on every device)."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    """The seed of the default generator."""
    return default_generator.initial_seed()


def _bits(n: int, kernels: Any, device: Any, generator: Generator | None) -> Tensor:
    seed, offset = (generator or default_generator).take(n)
    return _wrap(kernels.random_bits(n, seed, offset), device, kernels)


def _float_dtype(dtype: Any) -> np.dtype:
    dt = _dtypes.DEFAULT_FLOAT if dtype is None else _dtypes.as_dtype(dtype)
    if dt.kind != "f":
        raise DTypeError(f"random floats need a floating dtype, got {dt}")
    return dt


def _uniform(shape: tuple[int, ...], dt: np.dtype, device: Any, generator: Any) -> Tensor:
    dev, kernels = resolve_device(device)
    n = math.prod(shape)
    if dt.itemsize == 8:
        words = _bits(2 * n, kernels, dev, generator)
        high = ew.floor_divide(slice_tensor(words, (slice(0, None, 2),)), 32)
        low = ew.floor_divide(slice_tensor(words, (slice(1, None, 2),)), 64)
        value = ew.add(ew.mul(ew.cast(high, dt), 2.0**26), ew.cast(low, dt))
        return reshape(ew.mul(value, 2.0**-53), shape)
    mantissa = _MANTISSA_BITS[dt.itemsize]
    words = ew.floor_divide(_bits(n, kernels, dev, generator), 2 ** (32 - mantissa))
    return reshape(ew.mul(ew.cast(words, dt), 2.0**-mantissa), shape)


def rand(*shape: Any, size: Any = None, generator: Generator | None = None, dtype: Any = None,
         device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples from [0, 1)."""
    out = _uniform(_shape_args(shape, size), _float_dtype(dtype), device, generator)
    return _finish(out._data, out._device, out._k, requires_grad)


def _standard_normal(shape: tuple[int, ...], dt: np.dtype, device: Any,
                     generator: Any) -> Tensor:
    n = math.prod(shape)
    compute = _dtypes.float32 if dt.itemsize < 4 else dt
    u = _uniform((2, n), compute, device, generator)
    radius = ew.sqrt(ew.mul(ew.log(ew.rsub(slice_tensor(u, (0,)), 1.0)), -2.0))
    angle = ew.mul(slice_tensor(u, (1,)), 2.0 * math.pi)
    return reshape(ew.cast(ew.mul(radius, ew.cos(angle)), dt), shape)


def randn(*shape: Any, size: Any = None, generator: Generator | None = None, dtype: Any = None,
          device: Any = None, requires_grad: bool = False) -> Tensor:
    """Samples from the standard normal distribution."""
    out = _standard_normal(_shape_args(shape, size), _float_dtype(dtype), device, generator)
    return _finish(out._data, out._device, out._k, requires_grad)


def normal(mean: float = 0.0, std: float = 1.0, size: Any = None, *,
           generator: Generator | None = None, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Normal samples with ``mean`` and ``std`` (numbers, or tensors giving the shape)."""
    if size is None:
        shapes = [t.shape for t in (mean, std) if isinstance(t, Tensor)]
        if not shapes:
            raise ValueError("normal: give size= when mean and std are numbers")
        from .backends import broadcast_shape

        size = broadcast_shape(*shapes)
        device = device or next(t.device for t in (mean, std) if isinstance(t, Tensor))
    z = _standard_normal(_shape_args((size,)), _float_dtype(dtype), device, generator)
    out = ew.add(ew.mul(z, std), mean)
    return _finish(out._data, out._device, out._k, requires_grad)


def randint(low: int, high: int | None = None, size: Any = None, *,
            generator: Generator | None = None, dtype: Any = None, device: Any = None,
            requires_grad: bool = False) -> Tensor:
    """Integers uniformly from ``[low, high)`` (``randint(high, size)`` also works)."""
    if size is None:
        if high is None:
            raise ValueError("randint needs a size")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    span = int(high) - int(low)
    if span <= 0:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    if span > 2**32:
        raise ValueError(f"randint: the range {span} is larger than 2**32")
    shape = _shape_args((size,))
    dt = _dtypes.int64 if dtype is None else _dtypes.as_dtype(dtype)
    dev, kernels = resolve_device(device)
    words = _bits(math.prod(shape), kernels, dev, generator)
    # Modulo bias is below span / 2**32: negligible for the ranges models use.
    values = ew.add(ew.cast(ew.remainder(ew.cast(words, _dtypes.int64), span), _dtypes.int64),
                    int(low))
    out = ew.cast(reshape(values, shape), dt)
    return _finish(out._data, out._device, out._k, requires_grad)


def randperm(n: int, *, generator: Generator | None = None, dtype: Any = None,
             device: Any = None) -> Tensor:
    """A random permutation of ``0..n-1``."""
    dev, kernels = resolve_device(device)
    keys = _bits(n, kernels, dev, generator)
    order = np.argsort(kernels.to_numpy(keys._data), kind="stable")
    dt = _dtypes.int64 if dtype is None else _dtypes.as_dtype(dtype)
    return _wrap(kernels.from_numpy(order.astype(dt)), dev, kernels)


def uniform_(self: Tensor, a: float = 0.0, b: float = 1.0, *,
             generator: Generator | None = None) -> Tensor:
    """Fill with uniform samples from [a, b)."""
    from ._ops.inplace import copy_

    u = _uniform(tuple(self.shape), _float_dtype(self.dtype), self.device, generator)
    return copy_(self, ew.add(ew.mul(u, b - a), a))


def normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, *,
            generator: Generator | None = None) -> Tensor:
    """Fill with normal samples."""
    from ._ops.inplace import copy_

    z = _standard_normal(tuple(self.shape), _float_dtype(self.dtype), self.device, generator)
    return copy_(self, ew.add(ew.mul(z, std), mean))


def bernoulli(input: Tensor, p: float | None = None, *,
              generator: Generator | None = None) -> Tensor:
    """1 with probability ``input`` (or ``p``), else 0, in ``input``'s dtype."""
    u = _uniform(tuple(input.shape), _float_dtype(input.dtype), input.device, generator)
    return ew.cast(ew.lt(u, input if p is None else p), input.dtype)
