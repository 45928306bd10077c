"""Random tensors from the contract's counter-based generator.

A :class:`Generator` is a seed and an offset into that seed's Philox4x64-10 stream of
32-bit words (:mod:`flambeau.backends.philox`). Each draw takes the next words of the
stream on the target device and advances the offset, so the same seed gives the same bits
on every backend. Uniform floats keep the top mantissa-many bits of each word (two words
for float64), so they lie in [0, 1) exactly; normals use the Box-Muller transform, both
its sine and its cosine (:func:`_normal_array`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _dtypes
from ._creation import _finish, _shape_args, tensor
from ._device import resolve_device
from ._ops import elementwise as ew
from ._ops.shape import reshape
from ._tensor import Tensor, _wrap
from .autograd._engine import bump_version
from .errors import DTypeError

_DEFAULT_SEED = 67280421310721  # PyTorch's default CPU seed
_MANTISSA_BITS = {"bfloat16": 8, "float16": 11, "float32": 24}
_FLOAT32 = frozenset({_dtypes.float32})
_STATE_BYTES = 16  # a Generator's state: seed and offset, uint64 little-endian each


class Generator:
    """A random stream: a seed and how many 32-bit words of it were used.

    Its state (:meth:`get_state`) is a ``uint8`` tensor, as in PyTorch, holding the seed
    and the offset (8 little-endian bytes each); PyTorch's Mersenne Twister states cannot
    be loaded into it, nor its states into PyTorch.

    >>> g = Generator().manual_seed(0)
    >>> state = g.get_state()
    >>> a = rand(3, generator=g)
    >>> _ = g.set_state(state)
    >>> bool((rand(3, generator=g) == a).all())
    True
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

    def get_state(self) -> Tensor:
        """The state as a ``uint8`` cpu tensor of 16 bytes; :meth:`set_state` replays the
        draws made after it."""
        host = np.array([self.seed, self.offset], dtype="<u8").view(np.uint8)
        return tensor(host, dtype=_dtypes.uint8, device="cpu")

    def set_state(self, new_state: Tensor) -> Generator:
        """Restore a state from :meth:`get_state`.

        Raises:
            TypeError: for something other than a ``uint8`` tensor.
            RuntimeError: for a tensor of the wrong size (e.g. a PyTorch state).
        """
        if not isinstance(new_state, Tensor):
            raise TypeError("expected a uint8 flambeau.Tensor from get_state(), but got "
                            f"{type(new_state).__name__}")
        if new_state.dtype != _dtypes.uint8:
            raise TypeError(f"RNG state must be a uint8 tensor (from get_state()), got "
                            f"dtype {new_state.dtype}")
        host = np.ascontiguousarray(new_state._k.to_numpy(new_state._data)).reshape(-1)
        if host.size != _STATE_BYTES:
            raise RuntimeError(
                f"Expected an RNG state of {_STATE_BYTES} bytes (a seed and an offset) but "
                f"found the input RNG state size to be {host.size}; flambeau's generator is "
                "Philox, so states from PyTorch's generator cannot be loaded")
        seed, offset = host.view("<u8")
        self.seed, self.offset = int(seed), int(offset)
        return self

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


def get_rng_state() -> Tensor:
    """The default generator's state, a ``uint8`` tensor (see :meth:`Generator.get_state`).

    >>> import flambeau
    >>> state = flambeau.get_rng_state()
    >>> a = flambeau.rand(2)
    >>> flambeau.set_rng_state(state)
    >>> bool((flambeau.rand(2) == a).all())
    True
    """
    return default_generator.get_state()


def set_rng_state(new_state: Tensor) -> None:
    """Restore the default generator's state from :func:`get_rng_state`."""
    default_generator.set_state(new_state)


def _words(n: int, kernels: Any, generator: Generator | None) -> Any:
    seed, offset = (generator or default_generator).take(n)
    return kernels.random_bits(n, seed, offset)


def _bits(n: int, kernels: Any, device: Any, generator: Generator | None) -> Tensor:
    return _wrap(_words(n, kernels, generator), device, kernels)


def _float_dtype(dtype: Any) -> np.dtype:
    dt = _dtypes.DEFAULT_FLOAT if dtype is None else _dtypes.as_dtype(dtype)
    if dt.kind != "f" and dt.name != "bfloat16":
        raise DTypeError(f"random floats need a floating dtype, got {dt}")
    return dt


# The random floats work on device arrays, in place on the words' own memory: at the
# sizes models draw, every full-size pass counts (bench/bench_init.py).
def _uniform_array(n: int, dt: np.dtype, kernels: Any, generator: Any, low: float = 0.0,
                   high: float = 1.0) -> Any:
    """``n`` samples ``u * (high - low) + low``, ``u`` uniform in [0, 1), in ``dt``."""
    k = kernels
    if dt.itemsize == 8:
        words, mantissa = _words(2 * n, k, generator), 53
        top = k.binary("floordiv", k.getitem(words, (slice(0, None, 2),)), 32)
        rest = k.binary("floordiv", k.getitem(words, (slice(1, None, 2),)), 64)
        value = k.binary("mul", k.cast(top, dt), 2.0**26)
        k.binary("add", value, k.cast(rest, dt), out=value)
    else:  # float16 and bfloat16 are made in float32 from as many bits as they hold
        words, mantissa = _words(n, k, generator), _MANTISSA_BITS[dt.name]
        k.binary("floordiv", words, 2 ** (32 - mantissa), out=words)
        value = k.cast(words, _dtypes.float32)
    # value * 2**-mantissa is exact, so one product with (high - low) * 2**-mantissa
    # rounds as u * (high - low) does.
    k.binary("mul", value, (high - low) * 2.0**-mantissa, out=value)
    if low:
        k.binary("add", value, low, out=value)
    return value if value.dtype == dt else k.cast(value, dt)


def _normal_array(n: int, dt: np.dtype, kernels: Any, generator: Any, mean: float = 0.0,
                  std: float = 1.0) -> Any:
    """``n`` normal samples by Box-Muller, two per pair of uniforms: the first
    ``ceil(n / 2)`` uniforms give radii ``r``, the next as many angles ``t``; sample ``j``
    is ``r[j] cos t[j]`` and sample ``ceil(n / 2) + j`` is ``r[j] sin t[j]``."""
    k, half = kernels, (n + 1) // 2
    compute = _dtypes.float32 if dt.itemsize < 4 else dt
    radius = _uniform_array(half, compute, k, generator, 1.0, 0.0)  # 1 - u: in (0, 1]
    angle = _uniform_array(half, compute, k, generator, 0.0, 2.0 * math.pi)
    k.unary("log", radius, out=radius)
    k.binary("mul", radius, -2.0, out=radius)
    k.unary("sqrt", radius, out=radius)
    if std != 1.0:
        k.binary("mul", radius, std, out=radius)
    cosine = k.binary("mul", k.unary("cos", angle), radius)
    sine = k.binary("mul", k.unary("sin", angle, out=angle), radius, out=angle)
    if n % 2:
        sine = k.getitem(sine, (slice(0, half - 1),))
    value = k.concatenate([cosine, sine], 0)
    if mean:
        k.binary("add", value, mean, out=value)
    return value if value.dtype == dt else k.cast(value, dt)


def _random_tensor(make: Any, shape: tuple[int, ...], dt: np.dtype, device: Any,
                   generator: Any, *args: float) -> Tensor:
    dev, kernels = resolve_device(device)
    value = make(math.prod(shape), dt, kernels, generator, *args)
    return _wrap(kernels.reshape(value, shape), dev, kernels)


def _uniform(shape: tuple[int, ...], dt: np.dtype, device: Any, generator: Any,
             low: float = 0.0, high: float = 1.0) -> Tensor:
    return _random_tensor(_uniform_array, shape, dt, device, generator, low, high)


def _standard_normal(shape: tuple[int, ...], dt: np.dtype, device: Any, generator: Any,
                     mean: float = 0.0, std: float = 1.0) -> Tensor:
    return _random_tensor(_normal_array, shape, dt, device, generator, mean, std)


def rand(*shape: Any, size: Any = None, generator: Generator | None = None, dtype: Any = None,
         device: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples from [0, 1)."""
    out = _uniform(_shape_args(shape, size), _float_dtype(dtype), device, generator)
    return _finish(out._data, out._device, out._k, requires_grad)


def randn(*shape: Any, size: Any = None, generator: Generator | None = None, dtype: Any = None,
          device: Any = None, requires_grad: bool = False) -> Tensor:
    """Samples from the standard normal distribution."""
    out = _standard_normal(_shape_args(shape, size), _float_dtype(dtype), device, generator)
    return _finish(out._data, out._device, out._k, requires_grad)


def normal(mean: float = 0.0, std: float = 1.0, size: Any = None, *,
           generator: Generator | None = None, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Normal samples with ``mean`` and ``std`` (numbers, or tensors giving the shape)."""
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    if size is None:
        if not tensors:
            raise ValueError("normal: give size= when mean and std are numbers")
        from .backends import broadcast_shape

        size = broadcast_shape(*(t.shape for t in tensors))
        device = device or tensors[0].device
    shape, dt = _shape_args((size,)), _float_dtype(dtype)
    if tensors:
        z = _standard_normal(shape, dt, device, generator)
        out = ew.add(ew.mul(z, std), mean)
    else:
        out = _standard_normal(shape, dt, device, generator, mean, std)
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
    from ._ops._dispatch import fused_kernel
    from ._ops.inplace import check_inplace, copy_

    dt = _float_dtype(self.dtype)
    fill = fused_kernel("random_uniform", self, dtypes=_FLOAT32)
    if fill is None or check_inplace(self):
        return copy_(self, _uniform(tuple(self.shape), dt, self.device, generator, a, b))
    # Straight into this tensor's memory: no words, no temporary, no copy (the common
    # case, initialising a parameter; bench/bench_init.py).
    fill(self, *(generator or default_generator).take(self.numel()), a, b)
    bump_version(self)
    return self


def normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, *,
            generator: Generator | None = None) -> Tensor:
    """Fill with normal samples."""
    from ._ops.inplace import copy_

    dt = _float_dtype(self.dtype)
    return copy_(self, _standard_normal(tuple(self.shape), dt, self.device, generator, mean,
                                        std))


def bernoulli(input: Tensor, p: float | None = None, *,
              generator: Generator | None = None) -> Tensor:
    """1 with probability ``input`` (or ``p``), else 0, in ``input``'s dtype."""
    u = _uniform(tuple(input.shape), _float_dtype(input.dtype), input.device, generator)
    return ew.cast(ew.lt(u, input if p is None else p), input.dtype)
