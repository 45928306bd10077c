"""The host engine: collectives over C-contiguous numpy arrays, on MPI (mpi4py's buffer API).

Every device without a collective engine of its own goes through it: the core hands it
the tensor's memory where the backend shares host memory (cpu), else a host copy that is
written back when the collective completes.

Determinism. ``all_reduce`` results are bitwise identical on every rank by construction,
whatever algorithm MPI picks: ``MPI_Allreduce`` is used only where every evaluation order
gives the same bits (integers and bools, whose reductions are exact; floating-point sum
and product over two ranks, one commutative operation per element). Other floating-point
reductions (sum and product over more ranks; min and max, whose result for a NaN or for
-0.0 against 0.0 depends on the operand order: MPICH's recursive doubling gives two ranks
different bits) run as a reduce-scatter, where one rank computes each chunk, then an
allgather, which only copies. Those are the two steps of MPICH's own long-message
allreduce; on a 2-core machine they took about 1.7x its two-rank shared-memory
``MPI_Allreduce`` (``bench/bench_distributed.py``, the MAX rows).

Ordering. Each collective starts on the engine's communicator when it is called, so all
ranks start them in program order. The allgather steps run on a second communicator and
start in issue order too (:meth:`HostEngine._advance`), whichever handle is waited for or
polled first, so ranks never match steps of different collectives.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np

from .._config import DISTRIBUTED_DEBUG_VAR
from ..errors import DistributedError
from . import _mpi

_MPI_TYPES = {"float32": "FLOAT", "float64": "DOUBLE", "int8": "INT8_T", "int16": "INT16_T",
              "int32": "INT32_T", "int64": "INT64_T", "uint8": "UINT8_T"}
_MPI_OPS = {"sum": "SUM", "avg": "SUM", "product": "PROD", "min": "MIN", "max": "MAX"}
_BOOL_OPS = {"sum": "MAX", "max": "MAX", "product": "MIN", "min": "MIN"}


class _Pending:
    """One collective in flight: its MPI requests, the step still to start, what to do
    once it completes."""

    __slots__ = ("finish", "requests", "then")

    def __init__(self, requests: list, then: Callable[[], Any] | None,
                 finish: Callable[[], None] | None) -> None:
        self.requests = requests
        self.then = then
        self.finish = finish


class HostWork:
    """The engine's handle on one collective (``wait()``, ``is_completed()``)."""

    def __init__(self, engine: HostEngine, pending: _Pending) -> None:
        self._engine = engine
        self._pending = pending
        self._done = False

    def is_completed(self) -> bool:
        if self._done:
            return True
        self._engine._advance(None)
        pending = self._pending
        with self._engine._reporting():
            if pending.then is not None or not self._engine.MPI.Request.Testall(
                    pending.requests):
                return False
        self._complete()
        return True

    def wait(self) -> None:
        if self._done:
            return
        self._engine._advance(self._pending)
        with self._engine._reporting():
            self._engine.MPI.Request.Waitall(self._pending.requests)
        self._complete()

    def _complete(self) -> None:
        self._done = True
        if self._pending.finish is not None:
            self._pending.finish()


class HostEngine:
    """Collectives over numpy arrays on an MPI communicator (a private duplicate).

    Methods take C-contiguous numpy arrays, work in place like
    :class:`flambeau.backends.CollectiveEngine`'s, and return a :class:`HostWork`;
    ``blocking=True`` completes the collective before returning (MPI's blocking call
    where it is one step).
    """

    name = "mpi"

    def __init__(self, comm: Any) -> None:
        self.MPI = _mpi.load()
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self._second = comm.Dup()  # the allgather steps, started in issue order
        self._chained: deque[_Pending] = deque()
        self._spare: list[np.ndarray] = []  # scratch buffers of finished collectives

    def close(self) -> None:
        """Finish the two-step collectives in flight and free the communicators."""
        chained = list(self._chained)
        if chained:
            self._advance(chained[-1])
        with self._reporting():
            self.MPI.Request.Waitall([r for pending in chained for r in pending.requests])
        self._second.Free()
        self.comm.Free()

    # --- the collectives --------------------------------------------------------------

    def all_reduce(self, x: np.ndarray, op: str, blocking: bool = False) -> HostWork:
        """Reduce ``x`` over the ranks in place, bitwise identical on every rank."""
        flat, mpi_type, mpi_op, back = self._reduction(x, op)
        size, scratch = self.size, None

        def finish() -> None:
            if scratch is not None:
                self._spare.append(scratch)
            if op == "avg":
                _divide(flat, size)
            if back is not None:
                back()

        exact = size <= 1 or flat.dtype.kind in "biu" or (
            size == 2 and op in ("sum", "avg", "product"))
        if exact and blocking:
            with self._reporting():
                self.comm.Allreduce(self.MPI.IN_PLACE, [flat, mpi_type], mpi_op)
            return self._done_work(finish)
        if exact:
            return self._start(lambda: self.comm.Iallreduce(
                self.MPI.IN_PLACE, [flat, mpi_type], mpi_op), None, finish, blocking)
        counts = [flat.size // size + (r < flat.size % size) for r in range(size)]
        displs = np.cumsum([0, *counts[:-1]]).tolist()
        scratch = self._scratch(counts[self.rank] * flat.dtype.itemsize)
        chunk = scratch[:counts[self.rank] * flat.dtype.itemsize].view(flat.dtype)
        return self._start(
            lambda: self.comm.Ireduce_scatter([flat, mpi_type], [chunk, mpi_type], counts,
                                              mpi_op),
            lambda: self._second.Iallgatherv([chunk, mpi_type],
                                             [flat, (counts, displs), mpi_type]),
            finish, blocking)

    def broadcast(self, x: np.ndarray, root: int, blocking: bool = False) -> HostWork:
        """Copy rank ``root``'s ``x`` into ``x`` on every rank."""
        data = [_bytes(x), self.MPI.BYTE]
        return self._start(lambda: self.comm.Ibcast(data, root), None, None, blocking)

    def all_gather(self, out: np.ndarray, x: np.ndarray, blocking: bool = False) -> HostWork:
        """Write every rank's ``x`` into ``out`` (``size * x.size`` elements), in rank order."""
        send, recv = [_bytes(x), self.MPI.BYTE], [_bytes(out), self.MPI.BYTE]
        return self._start(lambda: self.comm.Iallgather(send, recv), None, None, blocking)

    def reduce_scatter(self, out: np.ndarray, x: np.ndarray, op: str,
                       blocking: bool = False) -> HostWork:
        """Reduce ``x`` over the ranks; this rank's chunk of the result goes to ``out``."""
        flat, mpi_type, mpi_op, _ = self._reduction(x, op)
        result, _, _, back = self._reduction(out, op)
        size = self.size

        def finish() -> None:
            if op == "avg":
                _divide(result, size)
            if back is not None:
                back()

        return self._start(lambda: self.comm.Ireduce_scatter_block(
            [flat, mpi_type], [result, mpi_type], mpi_op), None, finish, blocking)

    def barrier(self, blocking: bool = False) -> HostWork:
        """Wait until every rank has called ``barrier``."""
        return self._start(self.comm.Ibarrier, None, None, blocking)

    def broadcast_bytes(self, data: bytes | None, root: int) -> bytes:
        """``root``'s ``data`` on every rank (for engines' bootstrap ids), blocking."""
        length = np.array([len(data) if self.rank == root else 0], np.int64)
        with self._reporting():
            self.comm.Bcast([length, self.MPI.INT64_T], root)
            buf = bytearray(data) if self.rank == root else bytearray(int(length[0]))
            self.comm.Bcast([buf, self.MPI.BYTE], root)
        return bytes(buf)

    def check_same(self, signature: str) -> None:
        """Raise on every rank unless every rank passed the same ``signature``."""
        with self._reporting():
            seen = self.comm.allgather(signature)  # a short string, the debug mode only
        if len(set(seen)) > 1:
            lines = "\n".join(f"  rank {r}: {s}" for r, s in enumerate(seen))
            raise DistributedError(
                f"ranks called collectives that do not match ({DISTRIBUTED_DEBUG_VAR} is "
                f"set, so each call is checked):\n{lines}")

    # --- machinery --------------------------------------------------------------------

    def _reduction(self, x: np.ndarray, op: str) -> tuple[np.ndarray, Any, Any, Any]:
        """(flat array MPI reduces, its MPI type, the MPI op, a step that writes results
        back into ``x`` or None): float16 reduces in float32, bool as uint8."""
        flat = x.reshape(-1)
        name = _MPI_OPS[op]
        back = None
        if flat.dtype == np.float16:
            back = partial(np.copyto, flat, flat.astype(np.float32), casting="unsafe")
            flat = back.args[1]
        elif flat.dtype == np.bool_:
            flat, name = flat.view(np.uint8), _BOOL_OPS[op]
        MPI = self.MPI
        return flat, getattr(MPI, _MPI_TYPES[flat.dtype.name]), getattr(MPI, name), back

    def _scratch(self, nbytes: int) -> np.ndarray:
        """A byte buffer of at least ``nbytes``: a spare one when there is one (a fresh
        large one costs a page fault per page on first use)."""
        for i, raw in enumerate(self._spare):
            if raw.nbytes >= nbytes:
                return self._spare.pop(i)
        if len(self._spare) >= 4:
            self._spare.pop(0)
        return np.empty(nbytes, np.uint8)

    def _start(self, first: Callable[[], Any], then: Callable[[], Any] | None,
               finish: Callable[[], None] | None, blocking: bool) -> HostWork:
        self._advance(None)  # keeps earlier two-step collectives moving (DDP's buckets)
        with self._reporting():
            pending = _Pending([first()], then, finish)
        if then is not None:
            self._chained.append(pending)
        work = HostWork(self, pending)
        if blocking:
            work.wait()
        return work

    def _done_work(self, finish: Callable[[], None]) -> HostWork:
        work = HostWork(self, _Pending([], None, finish))
        work._complete()
        return work

    def _advance(self, until: _Pending | None) -> None:
        """Start the second steps whose first steps are done, in issue order; up to and
        including ``until``'s, waiting for first steps as needed, when it has one."""
        block = until is not None and until in self._chained
        with self._reporting():
            while self._chained:
                head = self._chained[0]
                if block:
                    self.MPI.Request.Waitall(head.requests)
                elif not self.MPI.Request.Testall(head.requests):
                    return
                head.requests = [head.then()]
                head.then = None
                self._chained.popleft()
                if head is until:
                    return

    @contextmanager
    def _reporting(self) -> Iterator[None]:
        try:
            yield
        except self.MPI.Exception as exc:
            raise DistributedError(
                f"MPI failed on rank {self.rank}: {exc.Get_error_string()}; every rank must "
                "call the same collectives in the same order, with tensors of the same shapes "
                f"and dtypes (set {DISTRIBUTED_DEBUG_VAR}=1 to check each call)") from exc


def _bytes(x: np.ndarray) -> np.ndarray:
    """The bytes of C-contiguous ``x`` (0-d too), as a uint8 view."""
    return x.reshape(-1).view(np.uint8)


def _divide(flat: np.ndarray, size: int) -> None:
    """``flat /= size`` in place; integers truncate toward zero (NCCL's average)."""
    if flat.dtype.kind == "f":
        np.divide(flat, size, out=flat)
    else:
        quotient = np.abs(flat) // size
        np.copyto(flat, np.where(flat < 0, -quotient, quotient))
