"""The device array of the opencl backend, and the layout arithmetic its kernels share.

A :class:`CLArray` is a strided view of a buffer: ``shape``, ``strides`` and ``offset``
count elements. Views made by ``reshape``, ``permute``, ``broadcast_to`` and ``getitem``
share the buffer (``getitem`` views write through), like numpy's. bool is stored as one
byte holding 0 or 1.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .allocator import Block
    from .device import DeviceState


class CLArray:
    """An array on one OpenCL device. The core reads only ``shape`` and ``dtype``.

    Example:
        >>> import flambeau_opencl  # doctest: +SKIP
        >>> k = flambeau_opencl.OpenCLBackend().kernels(0)  # doctest: +SKIP
        >>> k.from_numpy(np.zeros((2, 3), np.float32))  # doctest: +SKIP
        CLArray(shape=(2, 3), dtype=float32, device=opencl:0)
    """

    __slots__ = ("block", "contiguous", "device", "dtype", "offset", "shape", "size",
                 "strides")

    def __init__(self, block: Block, shape: tuple[int, ...], dtype: np.dtype,
                 strides: tuple[int, ...] | None, offset: int, device: DeviceState) -> None:
        self.block = block
        self.shape = shape
        self.dtype = dtype
        if strides is None:
            strides, self.size = layout(shape)
            self.contiguous = True
        else:
            self.contiguous = is_c_contiguous(shape, strides)
            self.size = layout(shape)[1]
        self.strides = strides
        self.offset = offset
        self.device = device

    @classmethod
    def packed(cls, block: Block, shape: tuple[int, ...], strides: tuple[int, ...],
               size: int, dtype: np.dtype, device: DeviceState) -> CLArray:
        """A new C-contiguous array whose layout the caller already knows (``strides``
        and ``size`` from :func:`layout`): the allocation hot path."""
        self = object.__new__(cls)
        self.block = block
        self.shape = shape
        self.dtype = dtype
        self.strides = strides
        self.size = size
        self.contiguous = True
        self.offset = 0
        self.device = device
        return self

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return len(self.shape)

    @property
    def buffer(self) -> Any:
        """The ``pyopencl.Buffer`` holding the elements."""
        return self.block.buffer

    def view(self, shape: tuple[int, ...], strides: tuple[int, ...] | None,
             offset: int) -> CLArray:
        """Another view of the same buffer."""
        return CLArray(self.block, shape, self.dtype, strides, offset, self.device)

    def __repr__(self) -> str:
        return (f"CLArray(shape={self.shape}, dtype={self.dtype}, "
                f"device={self.device.name})")


@functools.lru_cache(maxsize=4096)
def layout(shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    """(C strides, element count) of ``shape``."""
    size = 1
    for n in shape:
        size *= n
    return c_strides(shape), size


def c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Element strides of a C-ordered array of ``shape``."""
    strides = []
    step = 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def is_c_contiguous(shape: tuple[int, ...], strides: tuple[int, ...]) -> bool:
    """True when the elements are packed in C order (size-1 dimensions ignored)."""
    step = 1
    for n, s in zip(reversed(shape), reversed(strides)):
        if n == 0:
            return True
        if n != 1:
            if s != step:
                return False
            step *= n
    return True


def coalesce(shape: tuple[int, ...], strides: list[tuple[int, ...]]
             ) -> tuple[list[int], list[list[int]]]:
    """Merge dimensions every operand walks alike; return them innermost first.

    ``strides`` holds one stride tuple per operand. Size-1 dimensions are dropped; at
    least one dimension remains.

    >>> coalesce((2, 3, 4), [(12, 4, 1), (0, 0, 1)])
    ([4, 6], [[1, 4], [1, 0]])
    """
    dims = [d for d, n in enumerate(shape) if n != 1]
    if not dims:
        return [1], [[0] for _ in strides]
    last = dims[-1]
    out_shape = [shape[last]]
    out_strides = [[s[last]] for s in strides]
    for d in reversed(dims[:-1]):
        n = shape[d]
        inner = out_shape[-1]
        if all(s[d] == st[-1] * inner for s, st in zip(strides, out_strides)):
            out_shape[-1] = inner * n
        else:
            out_shape.append(n)
            for s, st in zip(strides, out_strides):
                st.append(s[d])
    return out_shape, out_strides


def broadcast_strides(x: CLArray, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``x``'s strides when broadcast to ``shape`` (0 along broadcast dimensions)."""
    lead = len(shape) - len(x.shape)
    strides = [0] * lead
    for n, s in zip(x.shape, x.strides):
        strides.append(0 if n == 1 else s)
    return tuple(strides)
