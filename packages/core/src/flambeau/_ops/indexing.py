"""Indexing: ``x[...]`` reads and writes, gather, scatter_add, index_select, masked_fill.

Reads follow NumPy/PyTorch semantics. Basic indices (ints, slices, None, Ellipsis) give
views. Advanced indices (integer tensors or lists, bool masks) are turned into one
``take`` along a merged dimension: index arrays broadcast together, and their result
dimensions go where the first of them stood when they are adjacent, else first.
Bool masks are converted to integer indices on the host (this synchronises, as in PyTorch).
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from .. import _dtypes
from .._tensor import Tensor, _wrap
from ..autograd._engine import bump_version, record
from ..backends import normalize_axis
from ..errors import FlambeauIndexError, ShapeError
from ._common import (
    arange_like,
    cast,
    full_like_device,
    int_range,
    needs_grad,
    same_device,
    scalar_for,
    to_tensor,
)
from .shape import permute, reshape, slice_tensor

_INT_TYPES = (int, np.integer)


def _consumed(item: Any) -> int:
    """How many dimensions of the tensor an index item consumes."""
    if item is None:
        return 0
    if isinstance(item, (Tensor, np.ndarray)) and item.dtype == np.bool_:
        return builtins.max(item.ndim, 1) if item.ndim else 0
    if isinstance(item, list) and _host_array(item).dtype == np.bool_:
        return _host_array(item).ndim
    return 1


def _host_array(item: Any) -> np.ndarray:
    arr = np.asarray(item)
    if arr.dtype == np.float64 and arr.size == 0:
        arr = arr.astype(np.int64)
    return arr


def _normalize(index: Any, ndim: int) -> list[Any]:
    """The index as a list with Ellipsis expanded and checked against ``ndim``."""
    items = list(index) if isinstance(index, tuple) else [index]
    ellipses = [i for i, item in enumerate(items) if item is Ellipsis]
    if len(ellipses) > 1:
        raise FlambeauIndexError("an index can only have a single ellipsis ('...')")
    used = builtins.sum(_consumed(item) for item in items if item is not Ellipsis)
    if used > ndim:
        raise FlambeauIndexError(
            f"too many indices for a tensor of dimension {ndim}: the index uses {used}"
        )
    if ellipses:
        at = ellipses[0]
        items[at : at + 1] = [slice(None)] * (ndim - used)
    else:
        items += [slice(None)] * (ndim - used)
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not (
            item is None or isinstance(item, (slice, Tensor, list, np.ndarray, *_INT_TYPES))
        ):
            raise FlambeauIndexError(
                f"unsupported index {item!r} of type {type(item).__name__}; use ints, slices, "
                "None, ..., integer tensors/lists or bool masks"
            )
    return items


def _check_int(i: int, size: int, dim: int) -> int:
    if not -size <= i < size:
        raise FlambeauIndexError(
            f"index {i} is out of bounds for dimension {dim} with size {size}"
        )
    return int(i)


def getitem(input: Tensor, index: Any) -> Tensor:
    """``input[index]``."""
    items = _normalize(index, input.ndim)
    if builtins.any(isinstance(item, (Tensor, list, np.ndarray)) for item in items):
        return _advanced_getitem(input, items)
    return _basic_getitem(input, items)


def _basic_getitem(input: Tensor, items: list[Any]) -> Tensor:
    shape = input._data.shape
    kernel_index, out_shape, dim = [], [], 0
    for item in items:
        if item is None:
            out_shape.append(1)
            continue
        size = shape[dim]
        if isinstance(item, _INT_TYPES):
            kernel_index.append(_check_int(item, size, dim))
        else:
            kernel_index.append(item)
            out_shape.append(len(range(*item.indices(size))))
        dim += 1
    if builtins.all(isinstance(i, slice) and i == slice(None) for i in kernel_index):
        out = input
    else:
        out = slice_tensor(input, tuple(kernel_index))
    if len(out_shape) != out.ndim:
        out = reshape(out, tuple(out_shape))
    return out


def _index_tensor(item: Any, size: int, dim: int, like: Tensor) -> Tensor:
    """An int64 index tensor on ``like``'s device, negatives wrapped, bounds checked."""
    if isinstance(item, Tensor):
        same_device("indexing", like, item)
        if item.dtype.kind not in "iu":
            raise FlambeauIndexError(
                f"tensors used as indices must be integer or bool, got dtype {item.dtype}"
            )
        host = item._k.to_numpy(item._data).astype(np.int64)  # bounds check needs the host
    else:
        host = _host_array(item)
        if host.dtype.kind not in "iu":
            raise FlambeauIndexError(f"index arrays must hold integers, got {host.dtype}")
        host = host.astype(np.int64)
    if host.size and (host.min() < -size or host.max() >= size):
        bad = host[(host < -size) | (host >= size)].flat[0]
        raise FlambeauIndexError(
            f"index {bad} is out of bounds for dimension {dim} with size {size}"
        )
    host = np.where(host < 0, host + size, host)
    return _wrap(like._k.from_numpy(host), like._device, like._k)


def _expand_masks(input: Tensor, items: list[Any]) -> list[Any]:
    """Replace each bool mask by one integer index array per dimension it covers."""
    expanded: list[Any] = []
    dim = 0
    for item in items:
        is_tensor_mask = isinstance(item, Tensor) and item.dtype == _dtypes.bool_
        host = None
        if is_tensor_mask:
            host = item._k.to_numpy(item._data)
        elif isinstance(item, (list, np.ndarray)) and _host_array(item).dtype == np.bool_:
            host = _host_array(item)
        if host is None:
            expanded.append(item)
            dim += 0 if item is None else 1
            continue
        covered = input._data.shape[dim : dim + host.ndim]
        if host.shape != covered:
            raise FlambeauIndexError(
                f"the mask of shape {list(host.shape)} does not match the indexed tensor's "
                f"dimensions {list(covered)} starting at dimension {dim}"
            )
        expanded.extend(np.nonzero(host))
        dim += host.ndim
    return expanded


def _advanced_getitem(input: Tensor, items: list[Any]) -> Tensor:
    if builtins.any(item is None for item in items):
        # None adds a size-1 dimension: index a view that has it, taken whole by a slice,
        # so the other items keep their places (as in PyTorch).
        shape, dim, whole = [], 0, []
        for item in items:
            if item is None:
                shape.append(1)
                whole.append(slice(None))
                continue
            used = _consumed(item)
            shape.extend(input._data.shape[dim : dim + used])
            dim += used
            whole.append(item)
        input, items = reshape(input, tuple(shape)), whole
    items = _expand_masks(input, items)
    shape = input._data.shape
    # As in PyTorch (unlike NumPy), ints select with the slices before the index arrays
    # apply: x[0, :, [3, 2]] is x[0][:, [3, 2]], its arrays' dimensions stay in place.
    is_int = [isinstance(item, _INT_TYPES) for item in items]
    arrays = {d: item for d, item in enumerate(items)
              if not isinstance(item, slice) and not is_int[d]}
    basic = tuple(slice(None) if d in arrays else
                  _check_int(item, shape[d], d) if is_int[d] else item
                  for d, item in enumerate(items))
    x = slice_tensor(input, basic) if builtins.any(s != slice(None) for s in basic) else input
    dims = [d - builtins.sum(is_int[:d]) for d in sorted(arrays)]  # their places in x
    sizes = [x._data.shape[d] for d in dims]
    indices = [_index_tensor(arrays[d], shape[d], d, input) for d in sorted(arrays)]
    from ..backends import broadcast_shape
    from .elementwise import add, mul

    index_shape = broadcast_shape(*(i._data.shape for i in indices))
    flat = indices[0]
    for index, size in zip(indices[1:], sizes[1:]):
        flat = add(mul(flat, size), index)
    adjacent = dims == list(range(dims[0], dims[-1] + 1))
    if not adjacent:
        x = permute(x, dims + [d for d in range(x.ndim) if d not in dims])
        dims = list(range(len(dims)))
    start = dims[0]
    merged = 1
    for size in sizes:
        merged *= size
    xs = x._data.shape
    x = reshape(x, xs[:start] + (merged,) + xs[start + len(dims) :])
    from .shape import expand

    flat = expand(flat, index_shape) if flat._data.shape != index_shape else flat
    return take(x, flat, start)


def take(input: Tensor, index: Tensor, dim: int) -> Tensor:
    """``numpy.take`` along ``dim`` with an int64 index tensor of any shape."""
    axis = normalize_axis(dim, input.ndim)
    out = _wrap(input._k.take(input._data, index._data, axis), input._device, input._k)
    if needs_grad(input):
        shape = input._data.shape

        def backward(g: Tensor) -> tuple:
            pre, post = shape[:axis], shape[axis + 1 :]
            g_flat = reshape(g, pre + (index.numel(),) + post)
            idx = reshape(index, (1,) * len(pre) + (index.numel(),) + (1,) * len(post))
            from .shape import expand

            idx = expand(idx, g_flat._data.shape)
            grad = full_like_device(0, shape, g.dtype, g)
            grad._k.scatter_add(grad._data, axis, idx._data, g_flat._data)
            if needs_grad(g):  # create_graph: the scatter's adjoint
                record(grad, "IndexBackwardBackward0", (g,),
                       lambda gg: (take(gg, index, axis),))
            return (grad,)

        record(out, "IndexBackward0", (input,), backward)
    return out


def index_select(input: Tensor, dim: int, index: Any) -> Tensor:
    """The entries of ``index`` (1-d) along ``dim``."""
    axis = normalize_axis(dim, input.ndim)
    idx = _index_tensor(index, input._data.shape[axis], axis, input)
    if idx.ndim != 1:
        raise ShapeError(f"index_select: index must be 1-d, got shape {list(idx.shape)}")
    return take(input, idx, axis)


def gather(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """``out[i][j] = input[index[i][j]][j]`` for ``dim=0`` (and likewise for other dims)."""
    axis = normalize_axis(dim, input.ndim)
    _check_gather_index("gather", input, axis, index)
    others = [d for d in range(input.ndim) if d != axis]
    if builtins.any(index._data.shape[d] != input._data.shape[d] for d in others):
        # PyTorch reads only the block the index covers in the other dimensions, where the
        # kernel (numpy's take_along_axis) would broadcast: cut the input to that block.
        if builtins.any(index._data.shape[d] > input._data.shape[d] for d in others):
            raise ShapeError(f"gather: index shape {list(index.shape)} is larger than input "
                             f"shape {list(input.shape)} outside dimension {axis}")
        input = slice_tensor(input, tuple(slice(None) if d == axis else slice(0, size)
                                          for d, size in enumerate(index._data.shape)))
    out = _wrap(input._k.gather(input._data, axis, index._data), input._device, input._k)
    if needs_grad(input):
        shape = input._data.shape

        def backward(g: Tensor) -> tuple:
            grad = full_like_device(0, shape, g.dtype, g)
            grad._k.scatter_add(grad._data, axis, index._data, g._data)
            if needs_grad(g):  # create_graph: the scatter's adjoint
                record(grad, "GatherBackwardBackward0", (g,),
                       lambda gg: (gather(gg, axis, index),))
            return (grad,)

        record(out, "GatherBackward0", (input,), backward)
    return out


def _check_gather_index(op: str, input: Tensor, axis: int, index: Tensor) -> None:
    if not isinstance(index, Tensor) or index.dtype != _dtypes.int64:
        raise FlambeauIndexError(f"{op}: index must be an int64 tensor, got "
                                 f"{getattr(index, 'dtype', type(index).__name__)}")
    same_device(op, input, index)
    if index.ndim != input.ndim:
        raise ShapeError(f"{op}: index has {index.ndim} dimensions but input has {input.ndim}")
    extent = int_range(index)  # None on the meta device: shapes only, nothing to check
    size = input._data.shape[axis]
    if extent is not None and (extent[0] < 0 or extent[1] >= size):
        raise FlambeauIndexError(
            f"{op}: index values must be in [0, {size}) for dimension {axis}, got values from "
            f"{extent[0]} to {extent[1]}"
        )


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """A copy of ``input`` with ``src`` added at ``index`` along ``dim`` (duplicates sum)."""
    axis = normalize_axis(dim, input.ndim)
    _check_gather_index("scatter_add", input, axis, index)
    if tuple(index.shape) != tuple(src.shape):
        raise ShapeError(f"scatter_add: index shape {list(index.shape)} must equal src shape "
                         f"{list(src.shape)}")
    src = cast(src, input.dtype)
    data = input._k.copy(input._data)
    input._k.scatter_add(data, axis, index._data, src._data)
    out = _wrap(data, input._device, input._k)
    if needs_grad(input, src):
        record(out, "ScatterAddBackward0", (input, src),
               lambda g: (g, gather(g, axis, index)))
    return out


def masked_fill(input: Tensor, mask: Tensor, value: Any) -> Tensor:
    """``input`` with ``value`` where ``mask`` is true."""
    from .elementwise import where

    if isinstance(value, Tensor):
        value = cast(value, input.dtype)
    else:
        value = scalar_for(value, input.dtype)
    return where(mask, value, input)


def nonzero(input: Tensor, *, as_tuple: bool = False) -> Any:
    """Indices of non-zero elements: an (n, ndim) int64 tensor, or one 1-d tensor per dim."""
    found = np.nonzero(input._k.to_numpy(input._data))
    wrap = lambda a: _wrap(input._k.from_numpy(a.astype(np.int64)), input._device, input._k)  # noqa: E731
    if as_tuple:
        return tuple(wrap(a) for a in found)
    return wrap(np.stack(found, axis=1) if found else np.zeros((0, 0), np.int64))


# --- writes -----------------------------------------------------------------------------


def setitem(input: Tensor, index: Any, value: Any) -> None:
    """``input[index] = value`` (in place; recorded for autograd like PyTorch's CopySlices)."""
    from .inplace import check_inplace, commit_inplace, snapshot

    items = _normalize(index, input.ndim)
    value = to_tensor(value, input, input.dtype) if not isinstance(value, Tensor) else value
    if not isinstance(value, Tensor):
        raise TypeError(f"cannot assign {type(value).__name__} to a tensor")
    same_device("setitem", input, value)
    value = cast(value, input.dtype)
    track = check_inplace(input, value)
    advanced = builtins.any(isinstance(i, (Tensor, list, np.ndarray)) for i in items)
    if not advanced and not track:
        kernel_index = _basic_kernel_index(input, items)
        target_shape = _basic_getitem(input, items)._data.shape
        _check_broadcast(value, target_shape)
        data = value._data
        if value._data.shape != target_shape and value.ndim > len(target_shape):
            data = reshape(value, target_shape)._data
        input._k.setitem(input._data, kernel_index, data)
        bump_version(input)
        return
    result = _functional_setitem(snapshot(input), items, value)
    commit_inplace(input, result)


def _basic_kernel_index(input: Tensor, items: list[Any]) -> tuple:
    shape = input._data.shape
    out, dim = [], 0
    for item in items:
        if item is None:
            continue
        out.append(_check_int(item, shape[dim], dim) if isinstance(item, _INT_TYPES) else item)
        dim += 1
    return tuple(out)


def _check_broadcast(value: Tensor, target: tuple[int, ...]) -> None:
    from ..backends import broadcast_shape

    vshape = value._data.shape
    # PyTorch lets a value with extra leading 1s fill a smaller region.
    trimmed = vshape[builtins.max(len(vshape) - len(target), 0) :]
    if builtins.any(s != 1 for s in vshape[: len(vshape) - len(trimmed)]) or (
        broadcast_shape(trimmed, target) != tuple(target)
    ):
        raise ShapeError(f"cannot assign a value of shape {list(vshape)} to an indexed region "
                         f"of shape {list(target)}")


def _functional_setitem(input: Tensor, items: list[Any], value: Tensor) -> Tensor:
    """``input`` with ``value`` written at ``items``, as a new tensor with a graph.

    Positions are found by indexing a tensor of flat positions with the same index, so
    every index kind works on every backend; values written twice to one place average
    (PyTorch leaves that case undefined).
    """
    from .elementwise import div, eq, where

    shape = input._data.shape
    numel = input.numel()
    positions = reshape(arange_like(numel, input), shape)
    selected = getitem(positions, tuple(items))
    _check_broadcast(value, selected._data.shape)
    from .shape import expand

    values = expand(reshape(value, value._data.shape[builtins.max(
        value.ndim - selected.ndim, 0):]), selected._data.shape)
    flat_pos = reshape(selected, (-1,))
    flat_val = reshape(values, (-1,))
    acc_dtype = input.dtype if input.dtype.kind == "f" else _dtypes.int64
    counts = full_like_device(0, (numel,), acc_dtype, input)
    counts._k.scatter_add(counts._data, 0, flat_pos._data,
                          input._k.full(flat_pos._data.shape, 1, acc_dtype))
    sums = _scatter_sum(flat_val, flat_pos, numel, acc_dtype)
    written = reshape(eq(counts, 0), shape)
    mean = div(sums, where(eq(counts, 0), 1, counts)) if acc_dtype.kind == "f" else (
        sums // where(eq(counts, 0), 1, counts))
    return where(written, input, cast(reshape(mean, shape), input.dtype))


def _scatter_sum(values: Tensor, positions: Tensor, numel: int, dtype: np.dtype) -> Tensor:
    """Differentiable sum of ``values`` into a zero vector of length ``numel``."""
    zeros = full_like_device(0, (numel,), dtype, values)
    return scatter_add(zeros, 0, positions, cast(values, dtype))


def repeat_interleave(input: Tensor, repeats: Any = None, dim: int | None = None, *,
                      output_size: int | None = None) -> Tensor:
    """Each slice along ``dim`` (each element of the flattened tensor when ``None``)
    repeated ``repeats`` times: an int, or a tensor of one count per slice. Alone,
    ``repeat_interleave(counts)`` gives ``i`` repeated ``counts[i]`` times. A ``take``
    with host-made indices, so gradients sum the copies back.

    >>> import flambeau
    >>> flambeau.tensor([1, 2]).repeat_interleave(flambeau.tensor([1, 2]))
    tensor([1, 2, 2])
    """
    if repeats is None:
        counts = input._k.to_numpy(input._data)
        found = np.repeat(np.arange(counts.size), counts)
        return _wrap(input._k.from_numpy(found.astype(np.int64)), input._device, input._k)
    if dim is None:
        input, dim = reshape(input, (-1,)), 0
    axis = normalize_axis(dim, input.ndim)
    size = input._data.shape[axis]
    counts = np.asarray(repeats._k.to_numpy(repeats._data) if isinstance(repeats, Tensor)
                        else repeats)
    if counts.ndim > 1 or counts.size not in (1, size) or (counts.size and counts.min() < 0):
        raise ShapeError(f"repeat_interleave: repeats must be a non-negative int or hold one "
                         f"count per element of dimension {axis} (size {size}), got "
                         f"{counts.tolist()}")
    index = np.repeat(np.arange(size, dtype=np.int64), counts.reshape(-1))
    return take(input, _wrap(input._k.from_numpy(index), input._device, input._k), axis)
