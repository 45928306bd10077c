"""The built-in ``meta`` device: tensors with a shape and a dtype but no data.

Every kernel of the contract computes only its result's shape and dtype, so a model
can run on meta tensors to infer shapes without allocating weights or activations
(``flambeau.nn.summary`` does). Reading values is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .backends import CONTRACT_VERSION, DTYPES, DeviceInfo, broadcast_shape
from .errors import MetaDataError

_BOOL = np.dtype("bool")
_INT64 = np.dtype("int64")
_BOOL_RESULT = {"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
                "logical_xor"}


class MetaArray:
    """A device array of the meta device: only ``shape`` and ``dtype``."""

    __slots__ = ("dtype", "shape")

    def __init__(self, shape: Sequence[int], dtype: Any) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)

    def __repr__(self) -> str:
        return f"MetaArray(shape={self.shape}, dtype={self.dtype})"


def _shape_of_view(shape: tuple[int, ...], index: Any) -> tuple[int, ...]:
    # A zero-strided dummy: numpy works out the sliced shape without allocating.
    return np.broadcast_to(np.empty((), np.int8), shape)[index].shape


def _shape(x: Any) -> tuple[int, ...]:
    return x.shape if isinstance(x, MetaArray) else ()


class MetaKernels:
    """Shape-only implementations of every required kernel."""

    def empty(self, shape, dtype):
        return MetaArray(shape, dtype)

    def full(self, shape, value, dtype):
        return MetaArray(shape, dtype)

    def from_numpy(self, host):
        return MetaArray(host.shape, host.dtype)

    def to_numpy(self, x):
        raise MetaDataError(
            f"a meta tensor of shape {list(x.shape)} has no values to read; meta tensors "
            "only carry shapes (move real data to a real device instead)"
        )

    def copy(self, x):
        return MetaArray(x.shape, x.dtype)

    def assign(self, dst, src):
        broadcast_shape(dst.shape, _shape(src))

    def random_bits(self, n, seed, offset):
        return MetaArray((n,), np.uint32)

    def unary(self, op, x, out=None):
        result = MetaArray(x.shape, _BOOL if op == "logical_not" else x.dtype)
        return out if out is not None else result

    def binary(self, op, a, b, out=None):
        shape = broadcast_shape(a.shape, _shape(b))
        return out if out is not None else MetaArray(
            shape, _BOOL if op in _BOOL_RESULT else a.dtype)

    def where(self, cond, a, b):
        return MetaArray(broadcast_shape(cond.shape, a.shape, b.shape), a.dtype)

    def cast(self, x, dtype):
        return MetaArray(x.shape, dtype)

    def reduce(self, op, x, axes, keepdims):
        axes = range(len(x.shape)) if axes is None else axes
        shape = tuple(1 if i in axes else s for i, s in enumerate(x.shape)) if keepdims else \
            tuple(s for i, s in enumerate(x.shape) if i not in axes)
        return MetaArray(shape, _BOOL if op in ("all", "any") else x.dtype)

    def arg_reduce(self, op, x, axis, keepdims):
        if axis is None:
            return MetaArray((1,) * len(x.shape) if keepdims else (), _INT64)
        return self.reduce("sum", MetaArray(x.shape, _INT64), (axis,), keepdims)

    def matmul(self, a, b):
        batch = broadcast_shape(a.shape[:-2], b.shape[:-2])
        return MetaArray((*batch, a.shape[-2], b.shape[-1]), a.dtype)

    def reshape(self, x, shape):
        return MetaArray(shape, x.dtype)

    def permute(self, x, axes):
        return MetaArray(tuple(x.shape[a] for a in axes), x.dtype)

    def broadcast_to(self, x, shape):
        return MetaArray(shape, x.dtype)

    def getitem(self, x, index):
        return MetaArray(_shape_of_view(x.shape, index), x.dtype)

    def setitem(self, x, index, value):
        broadcast_shape(_shape_of_view(x.shape, index), _shape(value))

    def concatenate(self, arrays, axis):
        first = arrays[0].shape
        total = sum(a.shape[axis] for a in arrays)
        return MetaArray((*first[:axis], total, *first[axis + 1:]), arrays[0].dtype)

    def pad(self, x, widths, value):
        return MetaArray(tuple(s + b + a for s, (b, a) in zip(x.shape, widths)), x.dtype)

    def gather(self, x, axis, index):
        return MetaArray(index.shape, x.dtype)

    def take(self, x, index, axis):
        return MetaArray((*x.shape[:axis], *index.shape, *x.shape[axis + 1:]), x.dtype)

    def scatter_add(self, dst, axis, index, src):
        return None


class MetaBackend:
    """The built-in ``meta`` device type: one device that stores nothing."""

    name = "meta"
    contract_version = CONTRACT_VERSION

    def __init__(self) -> None:
        self._kernels = MetaKernels()

    def device_count(self) -> int:
        return 1

    def device_info(self, index: int) -> DeviceInfo:
        return DeviceInfo("meta (shapes only, no data)", 0, tuple(DTYPES.values()))

    def synchronize(self, index: int) -> None:
        return None

    def kernels(self, index: int) -> MetaKernels:
        return self._kernels


META = MetaBackend()
