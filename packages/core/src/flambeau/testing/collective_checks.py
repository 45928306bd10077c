"""Collective checks, on several processes: ``python -m flambeau.testing DEVICE --ranks 2``.

The kit's multi-rank mode runs this module under ``mpiexec -n N python -m mpi4py -m
pytest`` on every rank. Each check compares every rank's result with numpy (each rank
rebuilds every rank's inputs from a seed) and, for ``all_reduce``, checks that the bytes
are identical on every rank. A device named without an index (``opencl``) means one
device per rank: the rank's local rank modulo the device count.

Every rank runs the same checks in the same order, and each check makes all its
collectives before asserting anything, so that a failure on one rank does not leave the
others waiting inside a collective.
"""

from __future__ import annotations

import hashlib
from functools import reduce

import numpy as np
import pytest

import flambeau
import flambeau.distributed as dist

DTYPES = ("float32", "float64", "int64")
SHAPES = ((), (0,), (1,), (7,), (3, 5), (1001,))  # 0-d, empty and odd sizes
OPS = tuple(dist.ReduceOp)
_IDS = {(): "0d", (0,): "empty"}


def _shape_id(shape: tuple) -> str:
    return _IDS.get(shape, "x".join(map(str, shape)))


@pytest.fixture(scope="session")
def rank_device(device: flambeau.Device) -> flambeau.Device:
    """The device this rank uses (and the process group, set up once)."""
    if not dist.is_initialized():
        dist.init_process_group()
    if device.index is None and device.type != "cpu":
        return flambeau.device(device.type, dist.get_local_rank() %
                               flambeau.device_count(device.type))
    return device


def _skip_unsupported(device: flambeau.Device, dtype: str) -> None:
    if np.dtype(dtype) not in device.info.dtypes:
        pytest.skip(f"{device} does not support {dtype}")


def _inputs(rank: int, shape: tuple, dtype: str, seed: int) -> np.ndarray:
    """Rank ``rank``'s input: numbers of very different sizes for floats (so that the
    order of a sum shows in its last bits), small integers for integers."""
    rng = np.random.default_rng([seed, rank])
    if np.dtype(dtype).kind == "f":
        return (rng.standard_normal(shape) * 10.0 ** rng.integers(-4, 5, shape)).astype(dtype)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    return rng.integers(-9, 10, shape).astype(dtype)


def _reference(op: dist.ReduceOp, arrays: list[np.ndarray]) -> np.ndarray:
    if op is dist.ReduceOp.MIN:
        return reduce(np.minimum, arrays)
    if op is dist.ReduceOp.MAX:
        return reduce(np.maximum, arrays)
    if op is dist.ReduceOp.PRODUCT:
        return reduce(np.multiply, arrays)
    total = reduce(np.add, arrays)
    if op is dist.ReduceOp.SUM:
        return total
    if total.dtype.kind == "f":
        return total / len(arrays)
    return np.trunc(total / len(arrays)).astype(total.dtype)


def _assert_matches(got: np.ndarray, want: np.ndarray, exact: bool) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, (got, want)
    if exact or got.dtype.kind != "f":
        np.testing.assert_array_equal(got, want)
    else:
        tol = 1e-5 if got.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max(initial=1))


def _same_bytes_everywhere(values: np.ndarray) -> list[int]:
    """The ranks whose ``values`` differ from rank 0's bytes (an empty list: none)."""
    from mpi4py import MPI  # the kit runs this module under MPI only

    digest = hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()
    digests = MPI.COMM_WORLD.allgather(digest)
    return [r for r, d in enumerate(digests) if d != digests[0]]


def _all(shape: tuple, dtype: str, seed: int) -> list[np.ndarray]:
    return [_inputs(r, shape, dtype, seed) for r in range(dist.get_world_size())]


@pytest.mark.parametrize("shape", SHAPES, ids=_shape_id)
@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
@pytest.mark.parametrize("dtype", DTYPES)
def test_all_reduce(rank_device, dtype, op, shape):
    _skip_unsupported(rank_device, dtype)
    inputs = _all(shape, dtype, seed=1)
    x = flambeau.tensor(inputs[dist.get_rank()], device=rank_device)
    dist.all_reduce(x, op)
    got = x.numpy()
    differ = _same_bytes_everywhere(got)
    _assert_matches(got, _reference(op, inputs), exact=op in (dist.ReduceOp.MIN,
                                                              dist.ReduceOp.MAX))
    assert not differ, f"all_reduce results differ from rank 0's on ranks {differ}"


@pytest.mark.parametrize("op", (dist.ReduceOp.MIN, dist.ReduceOp.MAX), ids=lambda op: op.name)
@pytest.mark.parametrize("dtype", ("float32", "float64"))
def test_all_reduce_nan_and_signed_zeros_agree(rank_device, dtype, op):
    """Which of a NaN and a number, or of -0.0 and 0.0, MPI's min and max return depends
    on the operand order; every rank must still get the same bits."""
    _skip_unsupported(rank_device, dtype)
    rank = dist.get_rank()
    values = _inputs(rank, (1001,), dtype, seed=9)
    values[rank::7] = np.nan
    values[1::5] = -0.0 if rank % 2 else 0.0
    x = flambeau.tensor(values, device=rank_device)
    dist.all_reduce(x, op)
    got = x.numpy()
    differ = _same_bytes_everywhere(got)
    assert not differ, f"all_reduce results differ from rank 0's on ranks {differ}"


@pytest.mark.parametrize("dtype", ("float16", "int8", "uint8", "int32", "bool"))
@pytest.mark.parametrize("op", (dist.ReduceOp.SUM, dist.ReduceOp.MAX, dist.ReduceOp.MIN))
def test_all_reduce_other_dtypes(rank_device, dtype, op):
    _skip_unsupported(rank_device, dtype)
    inputs = [(np.abs(a) % 3).astype(dtype) for a in _all((9,), "int64", seed=2)]  # exact
    x = flambeau.tensor(inputs[dist.get_rank()], device=rank_device)
    dist.all_reduce(x, op)
    want = _reference(op, inputs)
    if dtype == "bool":
        want = reduce(np.logical_and if op is dist.ReduceOp.MIN else np.logical_or, inputs)
    _assert_matches(x.numpy(), want.astype(dtype), exact=True)


@pytest.mark.parametrize("shape", SHAPES, ids=_shape_id)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("src", ("first", "last"))
def test_broadcast(rank_device, dtype, shape, src):
    _skip_unsupported(rank_device, dtype)
    root = 0 if src == "first" else dist.get_world_size() - 1
    inputs = _all(shape, dtype, seed=3)
    x = flambeau.tensor(inputs[dist.get_rank()], device=rank_device)
    dist.broadcast(x, root)
    _assert_matches(x.numpy(), inputs[root], exact=True)


@pytest.mark.parametrize("shape", SHAPES, ids=_shape_id)
@pytest.mark.parametrize("dtype", DTYPES)
def test_all_gather(rank_device, dtype, shape):
    _skip_unsupported(rank_device, dtype)
    inputs = _all(shape, dtype, seed=4)
    outputs = [flambeau.zeros(shape, dtype=np.dtype(dtype), device=rank_device)
               for _ in inputs]
    dist.all_gather(outputs, flambeau.tensor(inputs[dist.get_rank()], device=rank_device))
    for got, want in zip(outputs, inputs):
        _assert_matches(got.numpy(), want, exact=True)


@pytest.mark.parametrize("layout", ("concatenated", "stacked"))
@pytest.mark.parametrize("shape", ((0,), (1,), (7,), (3, 5)), ids=_shape_id)
@pytest.mark.parametrize("dtype", DTYPES)
def test_all_gather_into_tensor(rank_device, dtype, shape, layout):
    _skip_unsupported(rank_device, dtype)
    inputs = _all(shape, dtype, seed=5)
    want = np.stack(inputs) if layout == "stacked" else np.concatenate(inputs)
    out = flambeau.zeros(want.shape, dtype=np.dtype(dtype), device=rank_device)
    dist.all_gather_into_tensor(out, flambeau.tensor(inputs[dist.get_rank()],
                                                     device=rank_device))
    _assert_matches(out.numpy(), want, exact=True)


@pytest.mark.parametrize("shape", SHAPES, ids=_shape_id)
@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ("list", "tensor"))
def test_reduce_scatter(rank_device, dtype, op, shape, form):
    _skip_unsupported(rank_device, dtype)
    size, rank = dist.get_world_size(), dist.get_rank()
    chunks = [_all(shape, dtype, seed=6 + r) for r in range(size)]  # chunks[r]: for rank r
    mine = [chunks[r][rank] for r in range(size)]
    out = flambeau.zeros(shape, dtype=np.dtype(dtype), device=rank_device)
    if form == "list":
        dist.reduce_scatter(out, [flambeau.tensor(c, device=rank_device) for c in mine], op)
    else:
        dist.reduce_scatter_tensor(out, flambeau.tensor(np.stack(mine), device=rank_device),
                                   op)
    _assert_matches(out.numpy(), _reference(op, chunks[rank]),
                    exact=op in (dist.ReduceOp.MIN, dist.ReduceOp.MAX))


def test_async_handles_in_flight_together(rank_device):
    """Several collectives in flight at once (two-step float reductions among them),
    completed in another order than they started, by polling and by waiting."""
    size, rank = dist.get_world_size(), dist.get_rank()
    float_in, int_in = _all((1001,), "float32", seed=7), _all((5,), "int64", seed=8)
    x = flambeau.tensor(float_in[rank], device=rank_device)
    y = flambeau.tensor(int_in[rank], device=rank_device)
    z = flambeau.tensor(float_in[rank], device=rank_device)
    b = flambeau.tensor(int_in[rank], device=rank_device)
    works = [dist.all_reduce(x, dist.ReduceOp.SUM, async_op=True),
             dist.all_reduce(y, dist.ReduceOp.MAX, async_op=True),
             dist.all_reduce(z, dist.ReduceOp.MIN, async_op=True),
             dist.broadcast(b, size - 1, async_op=True),
             dist.barrier(async_op=True)]
    assert all(isinstance(w, dist.Work) for w in works)
    works[-1].is_completed()  # polling may start later steps; ranks must still agree
    for work in reversed(works):
        assert work.wait() is True
        assert work.is_completed()
    got = x.numpy()
    differ = _same_bytes_everywhere(got)
    _assert_matches(got, _reference(dist.ReduceOp.SUM, float_in), exact=False)
    _assert_matches(y.numpy(), _reference(dist.ReduceOp.MAX, int_in), exact=True)
    _assert_matches(z.numpy(), _reference(dist.ReduceOp.MIN, float_in), exact=True)
    _assert_matches(b.numpy(), int_in[size - 1], exact=True)
    assert not differ


def test_async_handles_polled_and_waited_in_a_different_order_on_each_rank(rank_device):
    rank = dist.get_rank()
    sizes = [1, 1001, 0, 37, 4096, 3, 999, 2, 513, 64]
    inputs = [_all((n,), "float32", seed=20 + i) for i, n in enumerate(sizes)]
    tensors = [flambeau.tensor(a[rank], device=rank_device) for a in inputs]
    ops = [OPS[i % len(OPS)] for i in range(len(sizes))]
    works = [dist.all_reduce(t, op, async_op=True) for t, op in zip(tensors, ops)]
    order = np.random.default_rng(rank).permutation(len(works))  # differs by rank
    for i in order[: len(order) // 2]:
        works[i].is_completed()
    for i in order:
        works[i].wait()
    got = [t.numpy() for t in tensors]
    differ = _same_bytes_everywhere(np.concatenate(got))
    for g, a, op in zip(got, inputs, ops):
        _assert_matches(g, _reference(op, a), exact=op in (dist.ReduceOp.MIN,
                                                           dist.ReduceOp.MAX))
    assert not differ


def test_into_a_view_writes_the_base(rank_device):
    rank, size = dist.get_rank(), dist.get_world_size()
    base = flambeau.zeros((3, 4), device=rank_device)
    base[:, 1] = float(rank + 1)
    view = base[:, 1]
    dist.all_reduce(view)
    want = np.zeros((3, 4), np.float32)
    want[:, 1] = size * (size + 1) / 2
    _assert_matches(base.numpy(), want, exact=True)


def test_result_keeps_gradient_tracking(rank_device):
    """A collective writes in place outside autograd (as in PyTorch), bumping the
    version counter so that a graph that saved the old values notices."""
    w = flambeau.ones(3, device=rank_device, requires_grad=True)
    loss = (w * w).sum()
    with flambeau.no_grad():
        dist.all_reduce(w)
    assert w.requires_grad and w.is_leaf
    with pytest.raises(flambeau.errors.AutogradError):
        loss.backward()
