"""Shapes and indexing: movement ops, joins and splits, reads and writes by index,
gather/scatter/index_select/masked_fill."""

from __future__ import annotations

import numpy as np
import pytest

import flambeau
from flambeau.errors import FlambeauIndexError, ShapeError

from .._opcheck import check_op
from ..kernel_checks import _require
from ._helpers import _case, _x

# --- shapes -------------------------------------------------------------------------------

# name: (flambeau function, numpy reference, input shape)
_MOVEMENT = {
    "reshape": (lambda x: x.reshape(6, 4), lambda a: a.reshape(6, 4), (2, 3, 4)),
    "reshape_-1": (lambda x: flambeau.reshape(x, (2, -1, 2)), lambda a: a.reshape(2, -1, 2),
                   (2, 3, 4)),
    "reshape_0d": (lambda x: x.reshape(1, 1), lambda a: a.reshape(1, 1), ()),
    "reshape_to_0d": (lambda x: x.reshape(()), lambda a: a.reshape(()), (1, 1)),
    "reshape_empty": (lambda x: x.reshape(3, 0, 2), lambda a: a.reshape(3, 0, 2), (0, 6)),
    "view": (lambda x: x.view(4, 6), lambda a: a.reshape(4, 6), (2, 3, 4)),
    "view_-1": (lambda x: x.view(-1), lambda a: a.reshape(-1), (2, 3, 4)),
    "permute": (lambda x: x.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), (2, 3, 4)),
    "permute_fn": (lambda x: flambeau.permute(x, (1, -1, 0)), lambda a: a.transpose(1, 2, 0),
                   (2, 3, 4)),
    "transpose": (lambda x: x.transpose(0, 2), lambda a: a.swapaxes(0, 2), (2, 3, 4)),
    "transpose_neg": (lambda x: flambeau.transpose(x, -1, -2), lambda a: a.swapaxes(-1, -2),
                      (2, 3, 4)),
    "T": (lambda x: x.T, lambda a: a.T, (3, 4)),
    "t": (lambda x: x.t(), lambda a: a.T, (3, 4)),
    "mT": (lambda x: x.mT, lambda a: a.swapaxes(-1, -2), (2, 3, 4)),
    "reshape_after_permute": (lambda x: x.permute(1, 0, 2).reshape(3, 8),
                              lambda a: a.transpose(1, 0, 2).reshape(3, 8), (2, 3, 4)),
    "squeeze": (lambda x: x.squeeze(), lambda a: a.squeeze(), (1, 3, 1, 2)),
    "squeeze_dim": (lambda x: x.squeeze(0), lambda a: a.squeeze(0), (1, 3, 1, 2)),
    "squeeze_noop": (lambda x: x.squeeze(1), lambda a: a, (1, 3, 1, 2)),
    "squeeze_neg": (lambda x: flambeau.squeeze(x, -2), lambda a: a.squeeze(-2), (1, 3, 1, 2)),
    "squeeze_0d": (lambda x: x.squeeze(), lambda a: a, ()),
    "unsqueeze": (lambda x: x.unsqueeze(0), lambda a: a[None], (2, 3)),
    "unsqueeze_end": (lambda x: x.unsqueeze(-1), lambda a: a[..., None], (2, 3)),
    "unsqueeze_mid": (lambda x: flambeau.unsqueeze(x, 1), lambda a: a[:, None], (2, 3)),
    "unsqueeze_0d": (lambda x: x.unsqueeze(0), lambda a: a.reshape(1), ()),
    "expand": (lambda x: x.expand(2, 4, 3), lambda a: np.broadcast_to(a, (2, 4, 3)),
               (2, 1, 3)),
    "expand_new_dims": (lambda x: x.expand(5, -1, -1, 3),
                        lambda a: np.broadcast_to(a, (5, 2, 1, 3)), (2, 1, 3)),
    "expand_0d": (lambda x: flambeau.expand(x, (2, 2)), lambda a: np.broadcast_to(a, (2, 2)),
                  ()),
    "broadcast_to": (lambda x: flambeau.broadcast_to(x, (4, 3)),
                     lambda a: np.broadcast_to(a, (4, 3)), (3,)),
    "flatten": (lambda x: x.flatten(), lambda a: a.reshape(-1), (2, 3, 4)),
    "flatten_from_1": (lambda x: x.flatten(1), lambda a: a.reshape(2, -1), (2, 3, 4)),
    "flatten_0_1": (lambda x: flambeau.flatten(x, 0, 1), lambda a: a.reshape(6, 4), (2, 3, 4)),
    "flatten_0d": (lambda x: x.flatten(), lambda a: a.reshape(1), ()),
    "unflatten": (lambda x: flambeau.unflatten(x, 1, (3, 2)), lambda a: a.reshape(2, 3, 2, 4),
                  (2, 6, 4)),
    "unflatten_method": (lambda x: x.unflatten(-1, (2, -1)), lambda a: a.reshape(2, 6, 2, 2),
                         (2, 6, 4)),
    "flip": (lambda x: x.flip(0), lambda a: np.flip(a, 0), (2, 3, 4)),
    "flip_dims": (lambda x: flambeau.flip(x, (0, 2)), lambda a: np.flip(a, (0, 2)), (2, 3, 4)),
    "flip_neg": (lambda x: x.flip(-1), lambda a: np.flip(a, -1), (2, 3, 4)),
    "repeat": (lambda x: x.repeat(2, 1, 3), lambda a: np.tile(a, (2, 1, 3)), (2, 3, 4)),
    "repeat_new_dims": (lambda x: x.repeat(2, 1, 2), lambda a: np.tile(a, (2, 1, 2)), (3, 2)),
    "repeat_empty": (lambda x: x.repeat(0, 2), lambda a: np.tile(a, (0, 2)), (3, 2)),
    "pad_last": (lambda x: flambeau.pad(x, (1, 2)),
                 lambda a: np.pad(a, ((0, 0), (0, 0), (1, 2))), (2, 3, 4)),
    "pad_two": (lambda x: flambeau.pad(x, (1, 0, 0, 2), value=3.0),
                lambda a: np.pad(a, ((0, 0), (0, 2), (1, 0)), constant_values=3), (2, 3, 4)),
    "pad_crop": (lambda x: flambeau.pad(x, (-1, 2, 1, -2)),
                 lambda a: np.pad(a[:, :-2, 1:], ((0, 0), (1, 0), (0, 2))), (2, 3, 4)),
    "narrow": (lambda x: x.narrow(1, 1, 2), lambda a: a[:, 1:3], (2, 3, 4)),
}


@pytest.mark.parametrize("name", list(_MOVEMENT))
def test_movement(device, supported_dtypes, name):
    fn, reference, shape = _MOVEMENT[name]
    for dtype in [d for d in ("float32", "int64") if np.dtype(d) in supported_dtypes]:
        with _case(dtype):
            check_op(fn, reference, [_x(shape, dtype, seed=51)], device)


_JOINS = {  # name: (flambeau function, numpy reference, input shapes)
    "cat0": (lambda *xs: flambeau.cat(xs), lambda *xs: np.concatenate(xs),
             [(2, 3), (1, 3), (0, 3)]),
    "cat1": (lambda *xs: flambeau.cat(xs, 1), lambda *xs: np.concatenate(xs, 1),
             [(2, 3), (2, 1), (2, 0)]),
    "cat_neg": (lambda *xs: flambeau.cat(list(xs), dim=-1), lambda *xs: np.concatenate(xs, -1),
                [(2, 1, 3), (2, 1, 2)]),
    "concat": (lambda *xs: flambeau.concat(xs), lambda *xs: np.concatenate(xs), [(3,), (2,)]),
    "stack0": (lambda *xs: flambeau.stack(xs), lambda *xs: np.stack(xs), [(2, 3)] * 3),
    "stack1": (lambda *xs: flambeau.stack(xs, 1), lambda *xs: np.stack(xs, 1), [(2, 3)] * 2),
    "stack_neg": (lambda *xs: flambeau.stack(xs, -1), lambda *xs: np.stack(xs, -1),
                  [(2, 3)] * 2),
    "stack_0d": (lambda *xs: flambeau.stack(xs), lambda *xs: np.stack(xs), [(), ()]),
    "stack_empty": (lambda *xs: flambeau.stack(xs, 1), lambda *xs: np.stack(xs, 1),
                    [(0, 2)] * 2),
}


@pytest.mark.parametrize("dtype", ["float32", "int32"])
@pytest.mark.parametrize("name", list(_JOINS))
def test_cat_stack(device, supported_dtypes, name, dtype):
    dt = _require(supported_dtypes, dtype)
    fn, reference, shapes = _JOINS[name]
    check_op(fn, reference, [_x(s, dt, seed=52 + i) for i, s in enumerate(shapes)], device)


def test_cat_promotes_dtypes(device):
    parts = [_x((2,), "int32", seed=53), _x((3,), "float32", seed=54), _x((1,), "int64", 55)]
    check_op(lambda *xs: flambeau.cat(xs), lambda *xs: np.concatenate(xs), parts, device,
             dtype=np.float32)
    with pytest.raises(ShapeError):
        flambeau.cat([flambeau.ones(2, 3, device=device), flambeau.ones(3, 3, device=device)], 1)


_SPLITS = {  # name: (flambeau function, numpy reference)
    "split_size": (lambda x: x.split(2), lambda a: np.split(a, [2, 4])),
    "split_size_dim": (lambda x: flambeau.split(x, 2, dim=1), lambda a: np.split(a, [2], 1)),
    "split_sections": (lambda x: x.split([1, 0, 4]), lambda a: np.split(a, [1, 1])),
    "split_sections_dim": (lambda x: flambeau.split(x, [3, 1], -1),
                           lambda a: np.split(a, [3], -1)),
    "chunk": (lambda x: x.chunk(3), lambda a: np.split(a, [2, 4])),
    "chunk_even": (lambda x: flambeau.chunk(x, 2, dim=-1), lambda a: np.split(a, 2, -1)),
    "chunk_more_than_size": (lambda x: x.chunk(8, 1), lambda a: np.split(a, [1, 2, 3], 1)),
    "unbind": (lambda x: x.unbind(1), lambda a: [a[:, i] for i in range(4)]),
}


@pytest.mark.parametrize("name", list(_SPLITS))
def test_split_chunk(device, name):
    fn, reference = _SPLITS[name]
    check_op(fn, reference, [_x((5, 4), "float32", seed=56)], device)


def test_shape_errors(device):
    x = flambeau.ones(2, 3, device=device)
    with pytest.raises(ShapeError):
        flambeau.pad(x, (1, 1, 1))
    with pytest.raises(ShapeError):
        x.reshape(4, -1)
    with pytest.raises(ShapeError):
        x.expand(3, 3)


# --- indexing -----------------------------------------------------------------------------

_READS = [
    1, -1, (1, 2), (1, -1, 0), slice(1, 3), slice(None, None, 2), slice(None, None, -1),
    slice(3, 0, -2), (slice(None), slice(4, None, -2)), (slice(-2, None), slice(None, -1)),
    (Ellipsis, 1), (None, 1), (1, None, slice(None)), (Ellipsis, None), (slice(1, 3), Ellipsis,
    slice(None, None, -1)), slice(5, 9), (slice(None), slice(2, 2)), (),
    [0, 2, 2], np.array([[0, 1], [3, 3]]), [-1, 0], np.array([], np.int64),
    ([0, 2], [1, 4]), (np.array([[0], [2]]), np.array([1, 3, 3])), ([0, 2], slice(None), [1, 2]),
    (slice(1, 3), [0, 4, 0]), (1, [0, 2]), ([0, 2], slice(None), 1), (Ellipsis, [2, 0]),
    (slice(None, None, -1), [1, 1], slice(None, 1)),
    np.array([True, False, True, True]), (slice(None), np.array([0, 1, 0, 0, 1], bool)),
    (np.array([True, False, True, True]), slice(None), 2),
]


@pytest.mark.parametrize("index", _READS, ids=lambda i: " ".join(repr(i).split()))
def test_getitem(device, index):
    x = _x((4, 5, 3), "float64", seed=57)
    read = lambda a: a[index]  # noqa: E731
    check_op(read, read, [x], device)


def test_getitem_with_tensor_indices(device):
    x = _x((4, 5, 3), "float32", seed=58)
    rows, cols = np.array([3, 0, 3], np.int64), np.array([[1], [4]], np.int32)
    check_op(lambda a, i: a[i], lambda a, i: a[i], [x, rows], device)
    check_op(lambda a, i, j: a[i, j], lambda a, i, j: a[i, j], [x, rows, cols], device)
    check_op(lambda a, i: a[1:, i, 1], lambda a, i: a[1:, i, 1], [x, rows[:2] - 3], device)
    check_op(lambda a, m: a[m], lambda a, m: a[m], [x, x > 0], device)
    check_op(lambda a, m: a[m], lambda a, m: a[m], [x, x[:, :, 0] > 0], device)
    check_op(lambda a, i: a[i], lambda a, i: a[i], [x, np.array(2, np.int64)], device)
    check_op(lambda a: a[flambeau.tensor(1, device=device)], lambda a: a[1], [x], device)


def test_getitem_of_0d_and_empty_tensors(device):
    scalar, empty = np.array(3.0), np.zeros((0, 3))
    for index in ((), Ellipsis, None, (None, Ellipsis)):
        check_op(lambda a, i=index: a[i], lambda a, i=index: a[i], [scalar], device)
    for index in ((slice(None), 1), slice(1, None), [], np.zeros((0,), bool)):
        check_op(lambda a, i=index: a[i], lambda a, i=index: a[i], [empty], device)
    with pytest.raises(FlambeauIndexError):
        flambeau.tensor(empty, device=device)[0]


def test_ints_select_before_index_arrays_as_in_pytorch(device):
    # NumPy moves x[1, :, [0, 2]]'s array dimension first (shape (2, 5)); PyTorch applies the
    # int first, as x[1][:, [0, 2]] (shape (5, 2)).
    x = _x((4, 5, 3), "float64", seed=85)
    check_op(lambda a: a[1, :, [0, 2]], lambda a: a[1][:, [0, 2]], [x], device)
    check_op(lambda a: a[[0, 3], :, 2], lambda a: a[:, :, 2][[0, 3], :], [x], device)

    def write(a, v):
        out = a * 1
        if isinstance(out, np.ndarray):
            out[1][:, [0, 2]] = v
        else:
            out[1, :, [0, 2]] = v
        return out

    check_op(write, write, [x, _x((5, 2), "float64", seed=86)], device)


def test_getitem_errors(device):
    x = flambeau.zeros(2, 3, device=device)
    for index in ((2,), (0, -4), ([0, 5],), (0, 0, 0), (..., ...), (1.5,)):
        with pytest.raises(FlambeauIndexError):
            x[index]


def _written(index, value=None):
    """``a`` with ``v`` (or ``value``) written at ``index``, for flambeau and numpy alike."""

    def fn(a, v=value):
        out = a * 1  # a copy that keeps a's dtype (and, for flambeau, the graph)
        out[index] = v
        return out

    return fn


_WRITES = [  # (index, shape of the value or a Python scalar)
    (1, 5.0), (1, (5, 3)), (slice(1, 3), (5, 3)), (slice(1, 3), (3,)), ((slice(None), 2), (4, 3)),
    ((slice(None), 2), (1, 3)), (slice(None, None, -2), ()), ((Ellipsis, 0), -1.0),
    ((1, slice(3, 0, -1), 2), (3,)), ((slice(None), slice(4, 0, -2)), (1, 2, 1)), (Ellipsis, (3,)),
    ([0, 2], (2, 5, 3)), ([0, 2], (5, 3)), (([0, 2], [1, 3]), (2, 3)), (([3, 0], 1, [2, 0]), ()),
    ((slice(None), [1, 4]), (4, 2, 3)), ((slice(1, 3), [4, 1]), (3,)),
    (np.array([True, False, False, True]), 7.0), ((Ellipsis, [2, 0]), (2,)),
    ((-1, -1, -1), 2.5), ((), (4, 5, 3)),
]


@pytest.mark.parametrize(("index", "value"), _WRITES, ids=lambda i: " ".join(repr(i).split()))
def test_setitem(device, index, value):
    x = _x((4, 5, 3), "float64", seed=59)
    if isinstance(value, tuple):
        check_op(_written(index), _written(index), [x, _x(value, "float64", seed=60)], device)
    else:
        check_op(_written(index, value), _written(index, value), [x], device)


def test_setitem_with_masks_and_tensor_indices(device):
    x = _x((4, 5, 3), "float64", seed=61)

    def masked(a, m, v):
        out = a * 1
        out[m] = v
        return out

    check_op(masked, masked, [x, x > 0, np.array(0.5)], device)
    check_op(masked, masked, [x, x[:, 0, 0] > 0, _x((5, 3), "float64", seed=62)], device)
    check_op(masked, masked, [x, np.array([3, 1], np.int64), _x((3,), "float64", seed=63)],
             device)


def test_setitem_converts_values_and_writes_through_views(device):
    ints = _x((3, 4), "int64", seed=64)
    check_op(_written(0, 2.7), _written(0, 2.7), [ints], device)
    check_op(_written((slice(None), 1)), _written((slice(None), 1)),
             [ints, _x((3,), "float32", seed=65)], device)

    def through_view(a):
        out = a * 1
        row = out[1]
        row[2:] = 9
        out[0][::2] = -1
        return out

    check_op(through_view, through_view, [ints], device)
    with pytest.raises(ShapeError):
        flambeau.zeros(2, 3, device=device)[0] = flambeau.ones(2, device=device)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather_function(device, dim):
    x = _x((3, 4), "float64", seed=66)
    index_shape = {0: (5, 4), 1: (3, 6), -1: (2, 3)}[dim]  # smaller non-gather dims allowed
    index = np.random.default_rng(67).integers(0, x.shape[dim], index_shape)

    def reference(a, i):
        block = tuple(slice(0, s) if d != dim % 2 else slice(None)
                      for d, s in enumerate(i.shape))
        return np.take_along_axis(a[block], i, dim)

    check_op(lambda a, i: flambeau.gather(a, dim, i), reference, [x, index], device)
    check_op(lambda a, i: a.gather(dim, i), reference, [x, index], device)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_add(device, dim):
    x = _x((3, 4), "float64", seed=68)
    src = _x((5, 4) if dim == 0 else (3, 6), "float64", seed=69)
    index = np.random.default_rng(70).integers(0, x.shape[dim], src.shape)  # with repeats

    def reference(a, i, s):
        out = a.copy()
        grid = list(np.indices(i.shape, sparse=True))
        grid[dim] = i
        np.add.at(out, tuple(grid), s)
        return out

    check_op(lambda a, i, s: flambeau.scatter_add(a, dim, i, s), reference, [x, index, src],
             device)
    check_op(lambda a, i, s: a.scatter_add(dim, i, s), reference, [x, index, src], device)
    check_op(lambda a, i, s: (a * 1).scatter_add_(dim, i, s), reference, [x, index, src], device)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_select(device, dim):
    x = _x((3, 4, 2), "float64", seed=71)
    index = np.array([0, 2, 2, 1], np.int64) % x.shape[dim]
    check_op(lambda a, i: flambeau.index_select(a, dim, i), lambda a, i: np.take(a, i, dim),
             [x, index], device)
    check_op(lambda a, i: a.index_select(dim, i), lambda a, i: np.take(a, i, dim),
             [x, index[:0]], device)


def test_masked_fill(device):
    x, mask = _x((3, 4), "float64", seed=72), _x((4,), "bool", seed=73)
    check_op(lambda a, m: a.masked_fill(m, -1.0), lambda a, m: np.where(m, -1.0, a),
             [x, mask], device)
