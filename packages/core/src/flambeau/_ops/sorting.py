"""Sorting and searching: sort, argsort, topk, kthvalue, unique, bucketize.

The contract has no sorting kernel: the order is found on the host (numpy's stable
argsort of the values, copied there with ``to_numpy``, a synchronisation as a boolean
mask index is), then the values are gathered on the device, so that gradients flow
through ``gather``'s (a scatter-add into the input).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor, _wrap
from ..backends import normalize_axis
from ..errors import ShapeError
from ._common import numpy_names
from .indexing import gather
from .reduction import ValuesIndices
from .shape import squeeze_axes


def _host(t: Tensor) -> np.ndarray:
    return t._k.to_numpy(t._data)


def _device(host: np.ndarray, like: Tensor, dtype: Any = np.int64) -> Tensor:
    return _wrap(like._k.from_numpy(np.ascontiguousarray(host, dtype)), like._device, like._k)


def _order(input: Tensor, axis: int, descending: bool) -> np.ndarray:
    """The host indices that sort ``input`` along ``axis``, ties in their order (NaN
    largest, as in PyTorch)."""
    host = _host(input)
    if not descending:
        return np.argsort(host, axis=axis, kind="stable")
    # Sorting the reversed values and reversing the result keeps ties in order.
    flipped = np.argsort(np.flip(host, axis), axis=axis, kind="stable")
    return host.shape[axis] - 1 - np.flip(flipped, axis)


@numpy_names
def sort(input: Tensor, dim: int = -1, descending: bool = False, *,
         stable: bool = False) -> ValuesIndices:
    """``(values, indices)`` sorted along ``dim`` (always stably).

    >>> import flambeau
    >>> flambeau.sort(flambeau.tensor([3.0, 1.0, 2.0])).indices
    tensor([1, 2, 0])
    """
    axis = normalize_axis(dim, input.ndim)
    indices = _device(_order(input, axis, descending), input)
    return ValuesIndices(gather(input, axis, indices), indices)


@numpy_names
def argsort(input: Tensor, dim: int = -1, descending: bool = False, *,
            stable: bool = False) -> Tensor:
    """The indices that sort ``input`` along ``dim`` (always stably)."""
    return _device(_order(input, normalize_axis(dim, input.ndim), descending), input)


@numpy_names
def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True,
         sorted: bool = True) -> ValuesIndices:
    """The ``k`` largest (or smallest) values along ``dim`` and their indices, in order."""
    axis = normalize_axis(dim, input.ndim)
    if not 0 <= k <= input._data.shape[axis]:
        raise ShapeError(f"topk: k ({k}) is out of range for dimension {axis} of size "
                         f"{input._data.shape[axis]}")
    order = np.take(_order(input, axis, largest), np.arange(k), axis)
    indices = _device(order, input)
    return ValuesIndices(gather(input, axis, indices), indices)


@numpy_names
def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False) -> ValuesIndices:
    """The ``k``-th smallest value along ``dim`` (``k`` from 1) and its index."""
    axis = normalize_axis(dim, input.ndim)
    if not 1 <= k <= input._data.shape[axis]:
        raise ShapeError(f"kthvalue: k ({k}) is out of range for dimension {axis} of size "
                         f"{input._data.shape[axis]}")
    indices = _device(np.take(_order(input, axis, False), [k - 1], axis), input)
    values = gather(input, axis, indices)
    if keepdim:
        return ValuesIndices(values, indices)
    return ValuesIndices(squeeze_axes(values, (axis,)), squeeze_axes(indices, (axis,)))


def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False,
           return_counts: bool = False, dim: int | None = None) -> Any:
    """The distinct values (sorted, whatever ``sorted`` says), or distinct slices along
    ``dim``; with ``return_inverse`` each element's index among them, with
    ``return_counts`` how often each occurs. Not differentiable (as in PyTorch).

    >>> import flambeau
    >>> flambeau.unique(flambeau.tensor([2, 1, 2]), return_counts=True)
    (tensor([1, 2]), tensor([1, 2]))
    """
    axis = None if dim is None else normalize_axis(dim, input.ndim)
    values, inverse, counts = np.unique(_host(input), return_inverse=True,
                                        return_counts=True, axis=axis)
    out = [_device(values, input, values.dtype)]
    if return_inverse:
        out.append(_device(inverse.reshape(input.shape if axis is None else -1), input))
    if return_counts:
        out.append(_device(counts, input))
    return out[0] if len(out) == 1 else tuple(out)


def bucketize(input: Tensor, boundaries: Tensor, *, out_int32: bool = False,
              right: bool = False) -> Tensor:
    """The index of the bucket of each value among the sorted 1-d ``boundaries``: ``i``
    with ``boundaries[i-1] < x <= boundaries[i]`` (``<=`` and ``<`` when ``right``)."""
    found = np.searchsorted(_host(boundaries), _host(input), side="right" if right else "left")
    return _device(found, input, np.int32 if out_int32 else np.int64)
