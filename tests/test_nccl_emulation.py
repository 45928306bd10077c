"""flambeau-cuda's NCCL engine (``flambeau_cuda.collectives``) without a GPU.

On 2 ranks, the engine runs on the host emulation of cupy and of ``cupy.cuda.nccl``
(tests/cuda_emulation.py: a communicator that performs NCCL's calls, with their raw
pointers, counts, NCCL dtypes and ops, through mpi4py on the emulated arrays). That checks
the glue: the unique id shared by rank 0, the dtype and op maps, counts and offsets of
views, the average with and without NCCL's own, and the order of stream and event calls.
NCCL and the GPU themselves are not exercised. In one process: the errors without a GPU
or without NCCL.

This file is also the per-rank script: ``mpiexec -n 2 python -m mpi4py
tests/test_nccl_emulation.py MODE``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import types
from functools import reduce
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
needs_cuda_package = pytest.mark.skipif(importlib.util.find_spec("flambeau_cuda") is None,
                                        reason="needs flambeau-cuda (packages/backend-cuda)")


# --- on 2 ranks -------------------------------------------------------------------------


def _ranks(mode: str, **env: str) -> str:
    from mpi_jobs import run

    from flambeau.distributed import launch

    result = run([launch.find_mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py",
                  __file__, mode], timeout=120, MPIEXEC_TIMEOUT="110",
                 PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
                 **env)
    assert result.returncode == 0, result.stdout[-5000:]
    assert result.stdout.count(f"{mode}: ok") == 2, result.stdout[-5000:]
    return result.stdout


def _needs_mpi(test):
    from mpi_jobs import needs_mpi

    return needs_cuda_package(needs_mpi(test))


@_needs_mpi
def test_every_collective_op_and_dtype_against_numpy_on_2_ranks():
    """all_reduce x op x dtype (0-d, empty, odd sizes), broadcast from each root,
    all_gather and reduce_scatter in both forms, bucket slices and strided views, async
    handles, bitwise identity across ranks; NCCL's own average (NCCL 2.10 and newer)."""
    _ranks("checks")


@_needs_mpi
def test_average_is_a_sum_then_a_division_before_nccl_2_10():
    _ranks("checks", CUDAEMU_NCCL_VERSION="20903")


@_needs_mpi
def test_without_nccl_backend_none_uses_mpi_and_cuda_nccl_says_how_to_install():
    """Also: a rank 0 that cannot make NCCL's id makes every rank raise (none waits)."""
    _ranks("missing")


@_needs_mpi
def test_conformance_kit_collectives_on_the_nccl_engine():
    """The kit's multi-rank mode (``--ranks 2``) on the emulated device with NCCL."""
    from test_distributed import kit

    out = kit("cudaemu:0", 2, "-p", "cuda_emulation", CUDAEMU_NCCL="1",
              PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    calls = [int(n) for n in re.findall(r"emulated NCCL calls: (\d+)", out)]
    assert len(calls) == 2 and min(calls) > 100, out[-3000:]  # not the host engine


# --- in one process: errors -------------------------------------------------------------


def _cuda_backend_without_gpu():
    from flambeau import backends

    backend = backends.get("cuda")
    if backend is None or backend.device_count() > 0:
        pytest.skip("needs flambeau-cuda on a machine without a GPU")
    return backend


@needs_cuda_package
def test_engine_without_a_gpu_is_a_flambeau_error_naming_the_cause():
    from flambeau.errors import EngineUnavailableError

    backend = _cuda_backend_without_gpu()
    with pytest.raises(EngineUnavailableError, match="NCCL needs a GPU") as info:
        backend.collectives(0, types.SimpleNamespace(rank=0, size=1, local_rank=0))
    assert backend.unavailable_reason() in str(info.value)


@needs_cuda_package
def test_gpu_less_init_naming_nccl_is_a_flambeau_error():
    import flambeau.distributed as dist
    from flambeau.errors import DistributedError

    backend = _cuda_backend_without_gpu()
    for name in ("cuda:nccl", "nccl"):
        with pytest.raises(DistributedError, match="engine 'nccl' needs a device") as info:
            dist.init_process_group(name)  # fails before MPI is loaded
        assert backend.unavailable_reason() in str(info.value)
        assert not dist.is_initialized()


@needs_cuda_package
@pytest.mark.parametrize("nccl", ("import fails", "no library"))
def test_missing_nccl_is_a_flambeau_error_with_the_install_command(monkeypatch, nccl):
    from flambeau.errors import DistributedError, EngineUnavailableError
    from flambeau_cuda import collectives

    cupy, cuda = types.ModuleType("cupy"), types.ModuleType("cupy.cuda")
    module = None
    if nccl == "no library":  # what cupy.cuda.nccl is when libnccl.so.2 is not found
        module = types.ModuleType("cupy.cuda.nccl")
        module.available = False
    for name, value in (("cupy", cupy), ("cupy.cuda", cuda), ("cupy.cuda.nccl", module)):
        monkeypatch.setitem(sys.modules, name, value)
    with pytest.raises(EngineUnavailableError) as info:
        collectives.load_nccl()
    assert collectives.INSTALL_HINT in str(info.value) and "cuda:mpi" in str(info.value)
    assert isinstance(info.value, DistributedError)


@needs_cuda_package
def test_the_nccl_wheel_library_is_loaded_before_cupy_looks(monkeypatch, tmp_path):
    from flambeau_cuda import collectives

    lib = tmp_path / "nvidia" / "nccl" / "lib"
    lib.mkdir(parents=True)
    (lib / "libnccl.so.2").write_bytes(b"")
    spec = types.SimpleNamespace(submodule_search_locations=[str(tmp_path / "nvidia")])
    loaded = []
    monkeypatch.setattr(collectives.importlib.util, "find_spec",
                        lambda name: spec if name == "nvidia" else None)
    monkeypatch.setattr(collectives.ctypes, "CDLL", lambda path, mode: loaded.append((path,
                                                                                      mode)))
    monkeypatch.setattr(collectives, "_wheel_loaded", [])
    collectives._load_wheel_library()
    collectives._load_wheel_library()  # once per process
    assert loaded == [(str(lib / "libnccl.so.2"), collectives.ctypes.RTLD_GLOBAL)]


# --- the per-rank script ----------------------------------------------------------------

DTYPES = ("float32", "float64", "int64", "int32", "int16", "int8", "uint8", "float16", "bool")
SHAPES = ((), (0,), (1,), (7,), (3, 5), (1001,))


def _inputs(rank: int, shape: tuple, dtype: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, rank])
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if np.dtype(dtype).kind == "f":
        scale = 1 if dtype == "float16" else 3  # products stay finite
        return (rng.standard_normal(shape) * 10.0 ** rng.integers(-scale, scale + 1, shape)
                ).astype(dtype)
    low = 0 if dtype == "uint8" else -9
    return rng.integers(low, 10, shape).astype(dtype)


def _reference(op: str, arrays: list[np.ndarray]) -> np.ndarray:
    if arrays[0].dtype == np.bool_:
        return reduce(np.logical_and if op in ("min", "product") else np.logical_or, arrays)
    fn = {"min": np.minimum, "max": np.maximum, "product": np.multiply}.get(op, np.add)
    total = reduce(fn, arrays)
    if op != "avg":
        return total
    if total.dtype.kind == "f":
        return (total / len(arrays)).astype(total.dtype)
    return (np.trunc(total / len(arrays))).astype(total.dtype)


class _Checker:
    """Runs the checks of one rank; every rank makes the same calls in the same order,
    and assertions come after the collectives they check."""

    def __init__(self) -> None:
        import cuda_emulation

        import flambeau
        import flambeau.distributed as dist

        self.emu, self.fl, self.dist = cuda_emulation, flambeau, dist
        self.rank, self.size = dist.get_rank(), dist.get_world_size()
        self.device = flambeau.device("cudaemu:0")
        self.results: list[np.ndarray] = []

    def tensor(self, values: np.ndarray):
        return self.fl.tensor(values, device=self.device)

    def all(self, shape, dtype, seed):
        return [_inputs(r, shape, dtype, seed) for r in range(self.size)]

    def same(self, got, want, everywhere=True):
        """``got`` equals ``want``; ``everywhere``: and must be bitwise equal on every rank
        (checked at the end)."""
        assert got.dtype == want.dtype and got.shape == want.shape, (got, want)
        np.testing.assert_array_equal(got, want)
        if everywhere:
            self.results.append(got)

    def nccl_calls(self, since: int) -> list[tuple]:
        return [e for e in self.emu.LOG[since:] if e[0] == "nccl"]

    def all_reduce(self) -> None:
        ops = [op for op in self.dist.ReduceOp]
        for dtype in DTYPES:
            for shape in SHAPES:
                for op in ops:
                    if dtype == "bool" and op.value == "avg":
                        continue
                    inputs = self.all(shape, dtype, seed=1)
                    x = self.tensor(inputs[self.rank])
                    self.dist.all_reduce(x, op)
                    self.same(x.numpy(), _reference(op.value, inputs))

    def broadcast_and_gather(self) -> None:
        for dtype in ("float32", "float64", "int64", "bool", "int16"):
            for shape in SHAPES:
                inputs = self.all(shape, dtype, seed=2)
                for root in range(self.size):
                    x = self.tensor(inputs[self.rank])
                    self.dist.broadcast(x, root)
                    self.same(x.numpy(), inputs[root])
                outs = [self.fl.zeros(shape, dtype=np.dtype(dtype), device=self.device)
                        for _ in range(self.size)]
                self.dist.all_gather(outs, self.tensor(inputs[self.rank]))
                for got, want in zip(outs, inputs):
                    self.same(got.numpy(), want)
                out = self.fl.zeros((self.size, *shape), dtype=np.dtype(dtype),
                                    device=self.device)
                self.dist.all_gather_into_tensor(out, self.tensor(inputs[self.rank]))
                self.same(out.numpy(), np.stack(inputs))

    def reduce_scatter(self) -> None:
        for dtype in ("float32", "float64", "int64", "int16", "bool"):
            for shape in SHAPES:
                for op in self.dist.ReduceOp:
                    if dtype == "bool" and op.value == "avg":
                        continue
                    chunks = [self.all(shape, dtype, seed=3 + r) for r in range(self.size)]
                    mine = [chunks[r][self.rank] for r in range(self.size)]
                    out = self.fl.zeros(shape, dtype=np.dtype(dtype), device=self.device)
                    self.dist.reduce_scatter(out, [self.tensor(c) for c in mine], op)
                    self.same(out.numpy(), _reference(op.value, chunks[self.rank]), False)
                    out = self.fl.zeros(shape, dtype=np.dtype(dtype), device=self.device)
                    self.dist.reduce_scatter_tensor(out, self.tensor(np.stack(mine)), op)
                    self.same(out.numpy(), _reference(op.value, chunks[self.rank]), False)

    def views_and_counts(self) -> None:
        """Contiguous slices of a flat bucket (DDP's gradient views): counts and offsets;
        a strided view goes through a contiguous copy and back."""
        values = [np.arange(40, dtype=np.float32) + 100 * r for r in range(self.size)]
        bucket = self.tensor(values[self.rank])
        since = len(self.emu.LOG)
        self.dist.all_reduce(bucket[5:20])
        self.dist.all_reduce(bucket[20:27], self.dist.ReduceOp.MAX)
        want = values[self.rank].copy()
        want[5:20] = sum(v[5:20] for v in values)
        want[20:27] = values[-1][20:27]
        self.same(bucket.numpy(), want, everywhere=False)  # the rest of it is this rank's
        calls = self.nccl_calls(since)
        assert [c[1:2] + c[3:] for c in calls] == [("allReduce", 15, 7, 0),
                                                   ("allReduce", 7, 7, 2)], calls

        grid = [_inputs(r, (6, 5), "float64", seed=5) for r in range(self.size)]
        m = self.tensor(grid[self.rank])
        self.dist.all_reduce(m[:, 1:4], self.dist.ReduceOp.SUM)  # a strided view
        self.dist.all_reduce(m.t()[0], self.dist.ReduceOp.MIN)   # column 0, stride 5
        want = grid[self.rank].copy()
        want[:, 1:4] = sum(g[:, 1:4] for g in grid)
        want[:, 0] = np.minimum.reduce([g[:, 0] for g in grid])
        self.same(m.numpy(), want, everywhere=False)

        since = len(self.emu.LOG)
        flags = self.tensor(np.array([True, False, self.rank == 0]))
        halves = self.tensor(np.arange(3, dtype=np.int16) * (self.rank + 1))
        self.dist.all_reduce(flags, self.dist.ReduceOp.SUM)
        self.dist.all_reduce(halves, self.dist.ReduceOp.PRODUCT)
        self.dist.broadcast(self.tensor(np.ones(3, np.int64)), 0)
        calls = [c[1:2] + c[3:] for c in self.nccl_calls(since)]
        # bool: bytes with MAX (any); int16: widened to int32; copies: bytes (UINT8)
        assert calls == [("allReduce", 3, 1, 2), ("allReduce", 3, 2, 1), ("bcast", 24, 1, 0)
                         ], calls
        assert flags.numpy().tolist() == [True, False, True]

    def streams_and_average(self) -> None:
        """Each collective: compute stream's event -> comm stream waits -> NCCL on the
        comm stream -> done event; wait() makes the compute stream wait on it."""
        compute = self.fl.backends.get("cudaemu").kernels(0).stream.ptr
        x = self.tensor(np.full(9, 1.0 + self.rank, np.float32))
        since = len(self.emu.LOG)
        work = self.dist.all_reduce(x, self.dist.ReduceOp.AVG, async_op=True)
        work.wait()
        log = self.emu.LOG[since:]
        assert [e[0] for e in log] == ["record", "wait", "nccl", "record", "wait"], log
        (_, s0, e0), (_, comm, e1), nccl, (_, s2, done), (_, s3, e3) = log
        assert s0 == compute and e1 == e0 and comm != compute, log
        assert nccl[2] == comm and nccl[3] == 9 and nccl[4] == 7, log
        assert s2 == comm and s3 == compute and e3 == done, log
        new_nccl = int(os.environ.get("CUDAEMU_NCCL_VERSION", "22105")) >= 21000
        assert nccl[5] == (4 if new_nccl else 0), f"avg as op {nccl[5]}"
        self.same(x.numpy(), np.full(9, 1.0 + (self.size - 1) / 2, np.float32))
        # empty tensors queue nothing at all
        since = len(self.emu.LOG)
        self.dist.all_reduce(self.tensor(np.zeros(0, np.float32)))
        assert self.emu.LOG[since:] == []

    def async_in_flight(self) -> None:
        sizes = (1, 1001, 0, 37, 3)
        inputs = [self.all((n,), "float32", seed=10 + i) for i, n in enumerate(sizes)]
        tensors = [self.tensor(a[self.rank]) for a in inputs]
        ops = [op for op in self.dist.ReduceOp]
        works = [self.dist.all_reduce(t, ops[i % len(ops)], async_op=True)
                 for i, t in enumerate(tensors)]
        for w in reversed(works):
            assert w.wait() is True and w.is_completed()
        for i, (t, a) in enumerate(zip(tensors, inputs)):
            self.same(t.numpy(), _reference(ops[i % len(ops)].value, a))

    def bfloat16_on_the_engine(self) -> None:
        """bfloat16 (NCCL_BFLOAT16, 9), on the engine itself: flambeau-cuda's kernels do
        not make bfloat16 tensors yet."""
        try:
            import ml_dtypes
        except ImportError:
            return
        import cupy  # the emulation's

        engine = self.dist.get_default_group().engine_for(self.device)
        inputs = [np.arange(5, dtype=np.float32).astype(ml_dtypes.bfloat16) * (r + 1)
                  for r in range(self.size)]
        x = cupy.asarray(inputs[self.rank])
        since = len(self.emu.LOG)
        engine.all_reduce(x, "max").wait()
        assert self.nccl_calls(since)[0][4] == 9
        self.same(np.asarray(x).astype(np.float32), inputs[-1].astype(np.float32))

    def bitwise_equal_across_ranks(self) -> None:
        from mpi4py import MPI

        digest = hashlib.sha256()
        for r in self.results:
            digest.update(np.ascontiguousarray(r).tobytes())
        seen = MPI.COMM_WORLD.allgather(digest.hexdigest())
        assert len(set(seen)) == 1, seen


def _main(mode: str) -> None:
    os.environ["CUDAEMU_NCCL"] = "1"
    import cuda_emulation  # cupy and NCCL emulated, device cudaemu:0

    import flambeau
    import flambeau.distributed as dist
    from flambeau.errors import DistributedError, EngineUnavailableError
    from flambeau_cuda.collectives import INSTALL_HINT, NcclEngine

    device = flambeau.device("cudaemu:0")
    if mode == "missing":
        unavailable = types.ModuleType("cupy.cuda.nccl")
        unavailable.available = False
        sys.modules["cupy.cuda.nccl"] = unavailable
        dist.init_process_group()  # backend=None: MPI serves cuda tensors without NCCL
        assert dist.get_default_group().engine_for(device) is dist.get_default_group().host
        x = flambeau.tensor([1.0, 2.0], device=device)
        dist.all_reduce(x)
        assert x.tolist() == [2.0, 4.0]
        dist.destroy_process_group()
        dist.init_process_group("cudaemu:nccl")
        try:
            dist.all_reduce(x)
        except EngineUnavailableError as exc:
            assert INSTALL_HINT in str(exc), exc
        else:
            raise AssertionError("expected EngineUnavailableError")
        dist.destroy_process_group()
        # rank 0 cannot make an id: every rank fails (none waits for the id forever)
        sys.modules["cupy.cuda.nccl"] = nccl = cuda_emulation.fake_nccl()
        nccl.get_unique_id = lambda: {}["NCCL: no network"]
        dist.init_process_group()
        try:
            dist.all_reduce(x)
        except DistributedError as exc:
            assert "rank 0 could not make an NCCL unique id" in str(exc), exc
            assert ("(KeyError: 'NCCL: no network')" in str(exc)) == (dist.get_rank() == 0)
        else:
            raise AssertionError("expected DistributedError")
        dist.destroy_process_group()
    else:
        dist.init_process_group()
        assert isinstance(dist.get_default_group().engine_for(device), NcclEngine)
        check = _Checker()
        for step in (check.all_reduce, check.broadcast_and_gather, check.reduce_scatter,
                     check.views_and_counts, check.streams_and_average,
                     check.async_in_flight, check.bfloat16_on_the_engine,
                     check.bitwise_equal_across_ranks):
            step()
        dist.destroy_process_group()
        dist.init_process_group("cudaemu:nccl")  # named: the same engine
        assert isinstance(dist.get_default_group().engine_for(device), NcclEngine)
        dist.destroy_process_group()
    print(f"{mode}: ok", flush=True)


if __name__ == "__main__":
    _main(sys.argv[1])
