"""Shape and movement operations: reshape, permute, expand, cat, split, flip, pad, ..."""

from __future__ import annotations

import builtins
import functools
import math
from collections.abc import Sequence
from typing import Any

from .. import _dtypes
from .._tensor import Tensor, _wrap, shares_elements
from ..autograd._engine import record, shared_version
from ..autograd._mode import STATE
from ..backends import broadcast_shape, normalize_axes, normalize_axis
from ..errors import ShapeError
from ._common import cast, full_like_device, same_device, scalar_for, unbroadcast


def _sizes(shape: Any) -> tuple[int, ...]:
    """Accept ``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])`` shapes."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(map(int, shape))


def _infer(shape: tuple[int, ...], numel: int, old: tuple[int, ...]) -> tuple[int, ...]:
    unknown = [i for i, s in enumerate(shape) if s == -1]
    if len(unknown) > 1:
        raise ShapeError(f"only one dimension can be -1, got shape {list(shape)}")
    if builtins.any(s < -1 for s in shape):
        raise ShapeError(f"invalid shape dimension in {list(shape)}")
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if unknown:
        if known == 0 or numel % known:
            raise ShapeError(f"shape {list(shape)} is invalid for input of size {numel} "
                             f"(shape {list(old)})")
        shape = shape[: unknown[0]] + (numel // known,) + shape[unknown[0] + 1 :]
    elif known != numel:
        raise ShapeError(f"shape {list(shape)} is invalid for input of size {numel} "
                         f"(shape {list(old)})")
    return shape


@functools.lru_cache(maxsize=1024)
def layout(shape: tuple[int, ...], strides: tuple[int, ...]) -> tuple[int, ...] | None:
    """``strides`` (in elements), or ``None`` when they lay ``shape`` out in C order (sizes
    of 1 ignored, as PyTorch's ``is_contiguous`` does): what ``Tensor._strides`` holds."""
    expected = 1
    for size, stride in zip(reversed(shape), reversed(strides)):
        if size != 1 and stride != expected:
            return None if 0 in shape else tuple(strides)
        expected *= size
    return None


def _strides(t: Tensor) -> tuple[int, ...]:
    return t._strides if t._strides is not None else _c_strides(t._data.shape)


@functools.lru_cache(maxsize=1024)
def _c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    out, step = [], 1
    for size in reversed(shape):
        out.append(step)
        step *= builtins.max(size, 1)
    return tuple(reversed(out))


def _view_strides(old: tuple[int, ...], strides: tuple[int, ...],
                  new: tuple[int, ...]) -> list[int] | None:
    """The strides of shape ``new`` viewing ``old`` laid out with ``strides``, or ``None``
    when no view can (one new dimension would span two separate runs): PyTorch's
    ``computeStride``."""
    if not old or 0 in old:
        return [1] * len(new)
    out, view_d = [0] * len(new), len(new) - 1
    base, tensor_numel, view_numel = strides[-1], 1, 1
    for d in range(len(old) - 1, -1, -1):
        tensor_numel *= old[d]
        if d == 0 or (old[d - 1] != 1 and strides[d - 1] != tensor_numel * base):
            while view_d >= 0 and (view_numel < tensor_numel or new[view_d] == 1):
                out[view_d] = view_numel * base
                view_numel *= new[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                base, tensor_numel, view_numel = strides[d - 1], 1, 1
    return out if view_d == -1 else None


def view(input: Tensor, *shape: Any) -> Tensor:
    """``reshape`` that shares memory or fails, as PyTorch's ``view``: a permuted, expanded
    or strided-sliced tensor (not C-ordered: ``is_contiguous()`` is false) is refused a
    shape its layout cannot be viewed in, where ``reshape`` would copy."""
    if input._strides is not None:
        new = _infer(_sizes(shape), input.numel(), input._data.shape)
        if _view_strides(input._data.shape, _strides(input), new) is None:
            raise ShapeError(
                f"view size is not compatible with input tensor's size and stride (shape "
                f"{list(input.shape)}, strides {list(_strides(input))}; at least one "
                "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
    return reshape(input, *shape)


def reshape(input: Tensor, *shape: Any) -> Tensor:
    """The same elements in a new shape (one dimension may be -1); a view where the layout
    allows it (see :func:`view`), else a copy."""
    old = input._data.shape
    new = _sizes(shape)
    if new == old:
        return _alias(input) if STATE.enabled and input.requires_grad else input
    numel = math.prod(old)
    if -1 in new or math.prod(new) != numel or min(new, default=0) < 0:
        new = _infer(new, numel, old)  # (fills in -1; raises on a bad shape)
    # As PyTorch's reshape: a copy, whose elements are its own.
    if input._strides is not None and shares_elements(input):
        input = clone(input)
    out = _wrap(input._k.reshape(input._data, new), input._device, input._k)
    if input._strides is not None:  # a view keeps a layout; a copy (None) is C-ordered
        strides = _view_strides(old, input._strides, new)
        out._strides = None if strides is None else layout(new, tuple(strides))
    if input._strides is None or out._strides is not None:  # a view: writes show in both
        out._version = shared_version(input)
    if STATE.enabled and input.requires_grad:
        record(out, "ViewBackward0", (input,), lambda g: (reshape(g, old),))
    return out


def _alias(input: Tensor) -> Tensor:
    out = _wrap(input._data, input._device, input._k)
    out._version = shared_version(input)
    out._strides = input._strides
    return record(out, "AliasBackward0", (input,), lambda g: (g,))


def permute(input: Tensor, *dims: Any) -> Tensor:
    """Reorder the dimensions."""
    axes = _sizes(dims)
    ndim = input.ndim
    if len(axes) != ndim:
        raise ShapeError(f"permute: expected {ndim} dimensions, got {list(axes)}")
    axes = tuple(normalize_axis(a, ndim) for a in axes)
    if sorted(axes) != list(range(ndim)):
        raise ShapeError(f"permute: dimensions {list(dims)} are not a permutation of "
                         f"0..{ndim - 1}")
    out = _wrap(input._k.permute(input._data, axes), input._device, input._k)
    out._version = shared_version(input)
    out._strides = _permuted(_strides(input), axes, out._data.shape)
    if STATE.enabled and input.requires_grad:
        inverse = tuple(sorted(range(ndim), key=axes.__getitem__))
        record(out, "PermuteBackward0", (input,), lambda g: (permute(g, inverse),))
    return out


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dimensions."""
    ndim = input.ndim
    if ndim == 0:
        return input
    axes = list(range(ndim))
    a, b = normalize_axis(dim0, ndim), normalize_axis(dim1, ndim)
    axes[a], axes[b] = axes[b], axes[a]
    return permute(input, axes)


swapaxes = transpose


def t(input: Tensor) -> Tensor:
    """Transpose a matrix (0-d and 1-d tensors are returned as is)."""
    if input.ndim > 2:
        raise ShapeError(f"t() expects a tensor with at most 2 dimensions, got {input.ndim}")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def movedim(input: Tensor, source: int, destination: int) -> Tensor:
    """Move dimension ``source`` to position ``destination``."""
    ndim = input.ndim
    src, dst = normalize_axis(source, ndim), normalize_axis(destination, ndim)
    order = [a for a in range(ndim) if a != src]
    order.insert(dst, src)
    return permute(input, order)


def squeeze(input: Tensor, dim: Any = None) -> Tensor:
    """Remove size-1 dimensions (all, or those in ``dim`` that have size 1)."""
    shape = input._data.shape
    if dim is None:
        axes = tuple(i for i, s in enumerate(shape) if s == 1)
    else:
        axes = tuple(a for a in normalize_axes(dim, len(shape)) if shape[a] == 1)
    return squeeze_axes(input, axes)


def squeeze_axes(input: Tensor, axes: Sequence[int]) -> Tensor:
    """Remove the given size-1 dimensions."""
    shape = input._data.shape
    return reshape(input, tuple(s for i, s in enumerate(shape) if i not in axes))


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dimension at ``dim``."""
    shape = list(input._data.shape)
    shape.insert(normalize_axis(dim, len(shape) + 1), 1)
    return reshape(input, tuple(shape))


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions ``start_dim..end_dim`` into one."""
    shape = input._data.shape
    if not shape:
        return reshape(input, (1,))
    start, end = normalize_axis(start_dim, len(shape)), normalize_axis(end_dim, len(shape))
    if start > end:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = 1
    for s in shape[start : end + 1]:
        merged *= s
    return reshape(input, shape[:start] + (merged,) + shape[end + 1 :])


def unflatten(input: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    """Split dimension ``dim`` into ``sizes``."""
    shape = input._data.shape
    axis = normalize_axis(dim, len(shape))
    return reshape(input, shape[:axis] + tuple(sizes) + shape[axis + 1 :])


def expand(input: Tensor, *sizes: Any) -> Tensor:
    """Broadcast to a larger shape without copying (-1 keeps a size)."""
    target = _sizes(sizes)
    shape = input._data.shape
    if len(target) < len(shape):
        raise ShapeError(f"expand: the target shape {list(target)} has fewer dimensions than "
                         f"the tensor's {list(shape)}")
    lead = len(target) - len(shape)
    target = tuple(shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(target))
    if target == shape:
        return input
    if broadcast_shape(shape, target) != target:
        raise ShapeError(f"expand: cannot expand shape {list(shape)} to {list(target)}")
    out = _wrap(input._k.broadcast_to(input._data, target), input._device, input._k)
    out._version = shared_version(input)
    # Elements repeat (share memory) unless only size-1 dimensions were added.
    out._strides = _expanded(_strides(input), shape, target)
    if STATE.enabled and input.requires_grad:
        record(out, "ExpandBackward0", (input,), lambda g: (unbroadcast(g, shape),))
    return out


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    """``expand`` to ``other``'s shape."""
    return expand(input, other._data.shape)


def broadcast_to(input: Tensor, shape: Sequence[int]) -> Tensor:
    """``expand`` under NumPy's name."""
    return expand(input, tuple(shape))


def broadcast_tensors(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Expand every tensor to their common broadcast shape."""
    shape = broadcast_shape(*(t._data.shape for t in tensors))
    return tuple(expand(t, shape) for t in tensors)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat() needs at least one tensor")
    first = tensors[0]
    for other in tensors[1:]:
        same_device("cat", first, other)
    dtype = _dtypes.result_type(*tensors)
    tensors = [cast(t, dtype) for t in tensors]
    ndim = first.ndim
    if ndim == 0:
        raise ShapeError("cat: zero-dimensional tensors cannot be concatenated")
    axis = normalize_axis(dim, ndim)
    for i, t in enumerate(tensors):
        if t.ndim != ndim or builtins.any(
            a != b for d, (a, b) in enumerate(zip(t._data.shape, first._data.shape)) if d != axis
        ):
            raise ShapeError(
                f"cat: tensor {i} has shape {list(t.shape)}, but tensor 0 has shape "
                f"{list(first.shape)}; all sizes except dimension {axis} must match"
            )
    out = _wrap(first._k.concatenate([t._data for t in tensors], axis), first._device, first._k)
    if STATE.enabled and builtins.any(t.requires_grad for t in tensors):
        sizes = [t._data.shape[axis] for t in tensors]

        def backward(g: Tensor) -> tuple:
            return tuple(split(g, sizes, axis))

        record(out, "CatBackward0", tensors, backward)
    return out


concat = concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dimension."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack() needs at least one tensor")
    shape = tensors[0]._data.shape
    for i, t in enumerate(tensors):
        if t._data.shape != shape:
            raise ShapeError(f"stack: tensor {i} has shape {list(t.shape)}, but tensor 0 has "
                             f"shape {list(shape)}; all must match")
    axis = normalize_axis(dim, len(shape) + 1)
    return cat([unsqueeze(t, axis) for t in tensors], axis)


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """The slice ``start:start+length`` of dimension ``dim``."""
    axis = normalize_axis(dim, input.ndim)
    index = (slice(None),) * axis + (slice(start, start + length),)
    return slice_tensor(input, index)


def slice_tensor(input: Tensor, index: tuple) -> Tensor:
    """Basic slicing (ints and slices) as a differentiable view."""
    out = _wrap(input._k.getitem(input._data, index), input._device, input._k)
    out._version = shared_version(input)
    out._base = input
    out._strides = _sliced(input, index, out)
    if STATE.enabled and input.requires_grad:
        shape, dtype = input._data.shape, input.dtype

        def backward(g: Tensor) -> tuple:
            grad = full_like_device(0, shape, dtype, g)
            grad._k.setitem(grad._data, index, g._data)
            if STATE.enabled and g.requires_grad:  # create_graph: the scatter's adjoint
                record(grad, "SliceBackwardBackward0", (g,),
                       lambda gg: (slice_tensor(gg, index),))
            return (grad,)

        record(out, "SliceBackward0", (input,), backward)
    return out


_WHOLE = slice(None)


@functools.lru_cache(maxsize=1024)
def _expanded(strides: tuple[int, ...], shape: tuple[int, ...],
              target: tuple[int, ...]) -> tuple[int, ...] | None:
    """The layout of ``shape`` laid out with ``strides``, expanded to ``target``."""
    lead = len(target) - len(shape)
    kept = tuple(0 if size == 1 != target[i + lead] else stride
                 for i, (size, stride) in enumerate(zip(shape, strides)))
    return layout(target, (0,) * lead + kept)


@functools.lru_cache(maxsize=1024)
def _permuted(strides: tuple[int, ...], axes: tuple[int, ...],
              shape: tuple[int, ...]) -> tuple[int, ...] | None:
    return layout(shape, tuple(strides[a] for a in axes))


def _sliced(input: Tensor, index: tuple, out: Tensor) -> tuple[int, ...] | None:
    """The layout of ``out``, ``input[index]`` (ints and slices)."""
    strides = _slice_strides(input, index)
    return None if strides is None else layout(out._data.shape, strides)


def _slice_strides(input: Tensor, index: tuple) -> tuple[int, ...] | None:
    """The strides of ``input[index]``, or ``None`` when it is sure to be C-ordered; the
    same for every index of the same kinds of items (as ``disjoint_views`` makes)."""
    if input._strides is None:  # fast for C order: ints, a step-1 slice, whole dims
        cut = False
        for item in index:
            if item.__class__ is int:
                if cut:
                    break
            elif cut:
                if item != _WHOLE:
                    break
            elif item.step is None or item.step == 1:
                cut = True
            else:
                break
        else:
            return None
    strides = _strides(input)
    kept = [stride * (item.step or 1) for stride, item in zip(strides, index)
            if isinstance(item, slice)]
    return (*kept, *strides[len(index):])


def split(input: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """Split into chunks of a size, or into the given section sizes, along ``dim``."""
    axis = normalize_axis(dim, input.ndim)
    total = input._data.shape[axis]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0:
            raise ValueError(f"split_size must be positive, got {size}")
        sections = [builtins.min(size, total - start) for start in range(0, total, size)] or [0]
        name = "SplitBackward0"
    else:
        sections = [int(s) for s in split_size_or_sections]
        if builtins.sum(sections) != total:
            raise ShapeError(f"split: sections {sections} sum to {builtins.sum(sections)}, but "
                             f"dimension {axis} has size {total}")
        name = "SplitWithSizesBackward0"
    lead = (slice(None),) * axis
    indices, start = [], 0
    for size in sections:
        indices.append(lead + (slice(start, start + size),))
        start += size
    return disjoint_views(input, indices, name)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """Split into ``chunks`` nearly equal pieces (the last may be smaller)."""
    if chunks <= 0:
        raise ValueError(f"chunks must be positive, got {chunks}")
    total = input._data.shape[normalize_axis(dim, input.ndim)]
    size = builtins.max(-(-total // chunks), 1)
    return split(input, size, dim)


def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """The slices along ``dim``, each without that dimension."""
    axis = normalize_axis(dim, input.ndim)
    lead = (slice(None),) * axis
    return disjoint_views(input, [lead + (i,) for i in range(input._data.shape[axis])],
                          "UnbindBackward0")


def disjoint_views(input: Tensor, indices: Sequence[tuple], name: str) -> tuple[Tensor, ...]:
    """Basic-index views of ``input`` that share no element (as ``split``, ``chunk`` and
    ``unbind`` make them), differentiable at a linear cost.

    Separate :func:`slice_tensor` views would each send back a zero tensor of the input's
    full shape holding its gradient, which the engine then sums: O(n²) work for n views
    (an RNN's time steps). Here every view writes its gradient into one buffer and sends
    a 0-d token instead; one node, run after every view's (the engine counts its
    dependencies), hands the buffer to ``input``. Gradients are written, not added, so the
    views must not overlap. Each view's node is named ``name``.
    """
    data, kernels = input._data, input._k
    track = STATE.enabled and input.requires_grad and len(indices) > 0
    if track:
        shape, dtype = data.shape, input.dtype
        shared: dict[str, Any] = {}
        anchor = _wrap(data, input._device, kernels)
        record(anchor, name, (input,), lambda _tokens: (_collect(shared),))
        gathering, collect = anchor.grad_fn, anchor.grad_fn.backward_fn
    out = []
    strides = _slice_strides(input, indices[0]) if indices else None
    for index in indices:
        view = _wrap(kernels.getitem(data, index), input._device, kernels)
        view._version = shared_version(input)
        view._base = input
        view._strides = None if strides is None else layout(view._data.shape, strides)
        if track:
            def backward(g: Tensor, index: tuple = index) -> tuple[Tensor]:
                # The gathering node saves no tensors: as with PyTorch's split, a backward
                # through other pieces may follow one that freed it, so re-arm it.
                gathering.backward_fn = collect
                buffer = shared.get("buffer")
                if buffer is None:
                    buffer = shared["buffer"] = full_like_device(0, shape, dtype, g)
                buffer._k.setitem(buffer._data, index, g._data)
                if STATE.enabled and g.requires_grad:  # create_graph: keep g for the adjoint
                    shared.setdefault("graph", []).append((index, g))
                return (full_like_device(0, (), dtype, g),)

            record(view, name, (anchor,), backward)
        out.append(view)
    return tuple(out)


def _collect(shared: dict[str, Any]) -> Tensor:
    """The gradient buffer the views of :func:`disjoint_views` wrote (taken, so that the
    next backward starts a new one); under ``create_graph`` its adjoint, the views'
    slices again, is recorded."""
    buffer = shared.pop("buffer")
    graph = shared.pop("graph", ())
    if graph:
        record(buffer, "SliceBackwardBackward0", [g for _, g in graph],
               lambda gg: tuple(slice_tensor(gg, index) for index, _ in graph))
    return buffer


def flip(input: Tensor, dims: Any) -> Tensor:
    """Reverse the order of elements along ``dims``."""
    axes = normalize_axes(dims, input.ndim)
    index = tuple(slice(None, None, -1) if a in axes else slice(None) for a in range(input.ndim))
    return clone(slice_tensor(input, index))


def roll(input: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    """Shift the elements by ``shifts`` along ``dims`` circularly (of the flattened tensor
    when ``dims`` is ``None``): two slices joined in the other order."""
    if dims is None:
        return reshape(roll(reshape(input, (-1,)), shifts, 0), input._data.shape)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: {len(shifts)} shifts for {len(dims)} dimensions")
    out = input
    for shift, dim in zip(shifts, dims):
        axis = normalize_axis(dim, out.ndim)
        size = out._data.shape[axis]
        cut = size - shift % size if size else 0
        if 0 < cut < size:
            lead = (slice(None),) * axis
            out = cat([slice_tensor(out, (*lead, slice(cut, None))),
                       slice_tensor(out, (*lead, slice(0, cut)))], axis)
    return clone(input) if out is input else out


def repeat(input: Tensor, *repeats: Any) -> Tensor:
    """Tile the tensor ``repeats[i]`` times along dimension ``i`` (PyTorch's ``repeat``)."""
    reps = _sizes(repeats)
    if len(reps) < input.ndim:
        raise ShapeError(f"repeat: {len(reps)} repeat counts for a tensor with {input.ndim} "
                         "dimensions; give at least one per dimension")
    shape = (1,) * (len(reps) - input.ndim) + input._data.shape
    x = reshape(input, shape)
    interleaved = tuple(v for size in shape for v in (1, size))
    tiled = tuple(v for rep, size in zip(reps, shape) for v in (rep, size))
    return reshape(expand(reshape(x, interleaved), tiled),
                   tuple(r * s for r, s in zip(reps, shape)))


def tile(input: Tensor, dims: Sequence[int]) -> Tensor:
    """Like ``repeat``, padding ``dims`` with ones on the left when too short."""
    dims = tuple(dims)
    return repeat(input, (1,) * (input.ndim - len(dims)) + dims)


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant",
        value: float | None = None) -> Tensor:
    """Pad with ``value`` (0 by default); ``pad`` lists (before, after) pairs from the last
    dimension back, as in ``torch.nn.functional.pad``. Negative amounts crop. Modes
    ``reflect``, ``replicate`` and ``circular`` repeat the input instead
    (:func:`flambeau._ops.sampling.pad_repeating`)."""
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ShapeError(f"pad: expected an even number of at most {2 * input.ndim} values, "
                         f"got {list(pad)}")
    if mode != "constant":
        if value is not None and value != 0:
            raise ValueError(f"pad: mode={mode!r} takes no value (got value={value})")
        from .sampling import pad_repeating  # sampling builds on this module

        return pad_repeating(input, pad, mode)
    value = 0.0 if value is None else value
    ndim = input.ndim
    widths = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        widths[ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    crop = tuple(slice(-b if b < 0 else None, a if a < 0 else None) for b, a in widths)
    x = slice_tensor(input, crop) if builtins.any(b < 0 or a < 0 for b, a in widths) else input
    grow = tuple((builtins.max(b, 0), builtins.max(a, 0)) for b, a in widths)
    out = _wrap(x._k.pad(x._data, grow, scalar_for(value, x.dtype)), x._device, x._k)
    if STATE.enabled and x.requires_grad:
        inner = tuple(slice(b, b + s) for (b, _), s in zip(grow, x._data.shape))
        record(out, "ConstantPadNdBackward0", (x,), lambda g: (slice_tensor(g, inner),))
    return out


def clone(input: Tensor) -> Tensor:
    """A copy with its own storage; gradients flow back to ``input``."""
    out = _wrap(input._k.copy(input._data), input._device, input._k)
    if STATE.enabled and input.requires_grad:
        record(out, "CloneBackward0", (input,), lambda g: (g,))
    return out


def contiguous(input: Tensor) -> Tensor:
    """``input`` itself, or a C-ordered copy when its elements share memory (an ``expand``
    result) or are not in C order (a permuted or strided view: see :func:`view`), as
    PyTorch's ``contiguous()``."""
    return clone(input) if input._strides is not None else input
