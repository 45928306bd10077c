"""Run on 2 ranks by tests/test_distributed.py: the errors of flambeau.distributed, its
debug mode, and a device backend's own collective engine (the contract's optional
``collectives`` member). Each rank prints "rank N: all checks passed" at the end."""

from __future__ import annotations

import os

import flambeau
import flambeau.distributed as dist
from flambeau.errors import DistributedError, DTypeError, MemoryOverlapError, ShapeError


def expect(error, call, *words):
    """``call()`` raises ``error`` whose message holds every one of ``words``."""
    try:
        call()
    except error as exc:
        missing = [w for w in words if w not in str(exc)]
        assert not missing, f"{missing} not in: {exc}"
        return
    raise AssertionError(f"expected {error.__name__} from {call}")


def check_errors() -> None:
    expect(DistributedError, lambda: dist.all_reduce(flambeau.ones(2)), "init_process_group")
    dist.init_process_group(backend="mpi", init_method="env://", world_size=2)
    expect(DistributedError, dist.init_process_group, "already initialized")
    rank = dist.get_rank()
    expect(DistributedError, lambda: dist.broadcast(flambeau.ones(2), 2), "src=2", "0 to 1")
    expect(ShapeError, lambda: dist.all_gather([flambeau.ones(2)], flambeau.ones(2)),
           "list of 2 tensors", "got 1")
    expect(ShapeError, lambda: dist.all_gather_into_tensor(flambeau.ones(3), flambeau.ones(2)),
           "2 x 2 = 4 elements", "got 3")
    expect(DTypeError, lambda: dist.all_reduce(flambeau.ones(2, dtype=flambeau.bool), "avg"),
           "AVG", "bool")
    expect(DistributedError, lambda: dist.all_reduce(flambeau.ones(2), "mean"), "'mean'",
           "SUM")
    expect(MemoryOverlapError, lambda: dist.all_reduce(flambeau.ones(1).expand(3)),
           "share memory", "clone()")
    expect(DistributedError, lambda: dist.all_reduce(flambeau.ones(2), group=object()),
           "group=None")
    # The debug mode checks every call on every rank: mismatched shapes raise everywhere.
    os.environ["FLAMBEAU_DISTRIBUTED_DEBUG"] = "1"
    expect(DistributedError, lambda: dist.all_reduce(flambeau.ones(3 + rank)),
           "rank 0: all_reduce(float32 cpu [3], op=sum)",
           "rank 1: all_reduce(float32 cpu [4], op=sum)")
    x = flambeau.ones(3)
    dist.all_reduce(x)  # matching calls pass the check
    assert x.tolist() == [2.0, 2.0, 2.0]
    del os.environ["FLAMBEAU_DISTRIBUTED_DEBUG"]
    dist.destroy_process_group()
    expect(DistributedError, dist.get_rank, "init_process_group")
    expect(DistributedError, lambda: dist.init_process_group(world_size=3), "world_size=3",
           "MPI says 2")
    expect(DistributedError, lambda: dist.init_process_group(init_method="tcp://h:1"),
           "tcp://h:1")
    expect(DistributedError, lambda: dist.init_process_group("cpu:"), "cannot read")
    # "no collective engine" without flambeau-cuda; "needs a device" with it, GPU-less
    expect(DistributedError, lambda: dist.init_process_group("nccl"), "engine 'nccl'")
    assert not dist.is_initialized()


class FakeEngine:
    """A device engine for the cpu backend's numpy arrays, on mpi4py directly, that
    records its calls (what a backend's NCCL engine does for cuda arrays)."""

    name = "fake"

    def __init__(self, group) -> None:
        from mpi4py import MPI

        self.MPI, self.calls = MPI, []
        self.unique_id = group.broadcast_bytes(b"id-42" if group.rank == 0 else None, 0)
        self.comm = MPI.COMM_WORLD.Dup()
        assert (group.rank, group.size, group.local_rank) == (self.comm.rank, 2,
                                                              self.comm.rank)

    def _op(self, op):
        return {"sum": self.MPI.SUM, "max": self.MPI.MAX}[op]

    def all_reduce(self, x, op):
        self.calls.append("all_reduce")
        self.comm.Allreduce(self.MPI.IN_PLACE, x, self._op(op))
        return Done()

    def broadcast(self, x, root):
        self.calls.append("broadcast")
        self.comm.Bcast(x, root)
        return Done()

    def all_gather(self, out, x):
        self.calls.append("all_gather")
        self.comm.Allgather(x, out)
        return Done()

    def reduce_scatter(self, out, x, op):
        self.calls.append("reduce_scatter")
        self.comm.Reduce_scatter_block(x, out, self._op(op))
        return Done()

    def close(self) -> None:
        self.calls.append("close")
        self.comm.Free()


class Done:
    def wait(self) -> None:
        pass

    def is_completed(self) -> bool:
        return True


def check_device_engine() -> None:
    cpu = flambeau.backends.get("cpu")
    engines = []
    cpu.collectives = lambda index, group: engines.append(FakeEngine(group)) or engines[-1]
    dist.init_process_group()  # backend=None: a backend's own engine first
    rank = dist.get_rank()
    x = flambeau.ones(3) * (rank + 1)
    dist.all_reduce(x)
    assert x.tolist() == [3.0] * 3, x
    assert dist.all_reduce(x, "max", async_op=True).wait()
    b = flambeau.full((2,), float(rank))
    dist.broadcast(b, 1)
    assert b.tolist() == [1.0, 1.0]
    rows = [flambeau.zeros(2) for _ in range(2)]
    dist.all_gather(rows, flambeau.full((2,), float(rank)))
    assert [r.tolist() for r in rows] == [[0.0, 0.0], [1.0, 1.0]]
    out = flambeau.zeros(4)
    dist.all_gather_into_tensor(out, flambeau.full((2,), float(rank)))
    assert out.tolist() == [0.0, 0.0, 1.0, 1.0]
    part = flambeau.zeros(2)
    dist.reduce_scatter(part, [flambeau.ones(2), flambeau.full((2,), 2.0)])
    assert part.tolist() == [2.0 * (rank + 1)] * 2
    dist.reduce_scatter_tensor(part, flambeau.arange(4.0))
    assert part.tolist() == [[0.0, 2.0], [4.0, 6.0]][rank]
    engine = engines[0]
    assert len(engines) == 1 and engine.unique_id == b"id-42"
    assert engine.calls == ["all_reduce", "all_reduce", "broadcast", "all_gather",
                            "all_gather", "reduce_scatter", "reduce_scatter"], engine.calls
    dist.destroy_process_group()
    assert engine.calls[-1] == "close"

    dist.init_process_group("cpu:mpi")  # the host engine, asked for by name
    dist.all_reduce(x)
    assert len(engines) == 1 and x.tolist() == [6.0] * 3
    dist.destroy_process_group()

    dist.init_process_group("cpu:nccl")  # an engine the backend does not offer
    expect(DistributedError, lambda: dist.all_reduce(x), "engine 'nccl' for cpu tensors",
           "offers engine 'fake'")
    dist.destroy_process_group()

    cpu.collectives = lambda index, group: None  # a backend may decline (no NCCL here)
    dist.init_process_group()
    dist.all_reduce(x)
    assert x.tolist() == [12.0] * 3
    dist.destroy_process_group()
    del cpu.collectives


if __name__ == "__main__":
    check_errors()
    check_device_engine()
    from mpi4py import MPI

    print(f"rank {MPI.COMM_WORLD.rank}: all checks passed", flush=True)
