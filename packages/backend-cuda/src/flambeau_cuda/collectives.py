"""NCCL collectives for cuda tensors: the backend's optional ``collectives`` member.

``flambeau.distributed`` asks for this engine on the first collective on a GPU, on every
rank at once. Rank 0 makes NCCL's unique id, the process group shares it over MPI, and
each rank opens one NCCL communicator for its GPU. Each collective runs on a
communication stream of the engine's own, ordered after the work already queued on the
GPU's compute stream (the kernel set's stream) by an event; ``wait()`` makes the compute
stream wait for the collective's done event, so it does not block the host, as with
PyTorch's NCCL handles.

NCCL reduces a dtype it has directly; ``bool`` as bytes (``sum``/``max``: any, ``min``/
``product``: all) and ``int16`` widened to ``int32`` (wrapped sums and products agree
with ``int16``'s). Copies (broadcast, all_gather) move bytes. ``avg`` is NCCL's own
(NCCL 2.10 and newer; integers truncate toward zero), else a sum then a division on the
communication stream. NCCL takes C-contiguous buffers: views of another layout go
through a contiguous copy made on the communication stream and written back there.

Without a GPU this glue runs on the host emulation of cupy and NCCL in
``tests/cuda_emulation.py`` (two ranks, in CI); it has not run on GPUs yet.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from flambeau.errors import DistributedError, DTypeError, EngineUnavailableError

#: How to get NCCL: the NCCL wheel matching cupy's CUDA (the extras of flambeau-cuda).
INSTALL_HINT = 'pip install "flambeau-cuda[cuda12,nccl]" (or "flambeau-cuda[cuda13,nccl13]")'
#: NCCL's version code from which ``ncclAvg`` exists (2.10.0).
AVG_VERSION = 21000

# numpy dtype name -> cupy's NCCL constant; dtypes NCCL lacks reduce as another one.
_TYPES = {"int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32",
          "uint32": "NCCL_UINT32", "int64": "NCCL_INT64", "float16": "NCCL_FLOAT16",
          "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64", "bfloat16": "NCCL_BFLOAT16"}
_OPS = {"sum": "NCCL_SUM", "product": "NCCL_PROD", "min": "NCCL_MIN", "max": "NCCL_MAX",
        "avg": "NCCL_AVG"}
_BOOL_OPS = {"sum": "max", "max": "max", "product": "min", "min": "min"}


def load_nccl() -> Any:
    """cupy's NCCL binding, ``cupy.cuda.nccl`` (NCCL's library taken from the
    ``nvidia-nccl-cu*`` wheel where one is installed).

    Raises:
        EngineUnavailableError: if cupy has no usable NCCL, with the install command.
    """
    _load_wheel_library()
    try:
        nccl = importlib.import_module("cupy.cuda.nccl")
    except ImportError as exc:
        cause = f"cupy.cuda.nccl cannot be imported ({type(exc).__name__}: {exc})"
    else:
        if getattr(nccl, "available", True) and hasattr(nccl, "NcclCommunicator"):
            return nccl
        cause = "cupy finds no NCCL library (libnccl.so.2)"
    raise EngineUnavailableError(
        f"NCCL, the engine for cuda tensors, is not available: {cause}. Install it with: "
        f"{INSTALL_HINT}; or send cuda tensors through MPI with "
        "init_process_group('cuda:mpi')")


_wheel_loaded: list[bool] = []


def _load_wheel_library() -> None:
    """Load ``libnccl.so.2`` from the nvidia-nccl wheel, once: cupy 13 looks for it only
    in its own library cache and the loader's path, not in the wheel; once loaded, cupy's
    binding links to it."""
    if _wheel_loaded:
        return
    _wheel_loaded.append(True)
    try:
        spec = importlib.util.find_spec("nvidia")  # the namespace of NVIDIA's wheels
    except ImportError:
        return
    for root in (spec.submodule_search_locations or []) if spec else []:
        for layout in ("nccl", "cu13", "cu12"):  # nvidia-nccl-cu12, and newer wheels
            library = os.path.join(root, layout, "lib", "libnccl.so.2")
            if os.path.exists(library):
                try:
                    ctypes.CDLL(library, mode=ctypes.RTLD_GLOBAL)
                except OSError:
                    pass  # a broken wheel: cupy's own search, and its error, come next
                return


def make_engine(kernels: Any, group: Any) -> NcclEngine:
    """The NCCL engine of the GPU of ``kernels`` (a ``CupyKernels``) in ``group``.

    Raises:
        EngineUnavailableError: if NCCL is missing.
        DistributedError: if NCCL fails to set up the communicator.
    """
    return NcclEngine(load_nccl(), kernels, group)


def _share_id(nccl: Any, group: Any) -> tuple[int, ...]:
    """Rank 0's NCCL unique id on every rank, over the host engine. A rank 0 that cannot
    make one sends an empty id, so that every rank fails instead of waiting."""
    data, failure = None, None
    if group.rank == 0:
        try:
            data = bytes(c & 0xFF for c in nccl.get_unique_id())
        except Exception as exc:  # NCCL's error type varies with cupy's version
            data, failure = b"", exc
    data = group.broadcast_bytes(data, 0)
    if not data:
        why = f" ({type(failure).__name__}: {failure})" if failure is not None else ""
        raise DistributedError(f"rank 0 could not make an NCCL unique id{why}; check "
                               "NCCL_DEBUG=INFO output on rank 0") from failure
    return tuple(b - 256 if b > 127 else b for b in data)  # NCCL's id holds C chars


class NcclWork:
    """One collective queued on the communication stream (``wait()``, ``is_completed()``).

    It keeps the arrays it uses alive until the compute stream is ordered after it
    (``wait()``) or it is seen to have finished.
    """

    __slots__ = ("_arrays", "_compute", "_device", "_done", "waited")

    def __init__(self, device: Any, compute: Any, done: Any, arrays: tuple) -> None:
        self._device, self._compute, self._done = device, compute, done
        self._arrays = arrays
        self.waited = False

    def wait(self) -> None:
        """Order the work queued on the compute stream from now on after the collective
        (the host does not block)."""
        if self.waited or self._done is None:
            return
        with self._device:
            self._compute.wait_event(self._done)
        self.waited, self._arrays = True, ()

    def is_completed(self) -> bool:
        """True once the collective has finished on the GPU."""
        return self._done is None or bool(self._done.query())


class NcclEngine:
    """Collectives over cupy arrays of one GPU through one NCCL communicator.

    Attributes:
        name: ``"nccl"`` (``init_process_group("cuda:nccl")`` names it).
        index: The GPU (``cuda:index``).
        rank, size: This rank and the number of ranks.
    """

    name = "nccl"

    def __init__(self, nccl: Any, kernels: Any, group: Any) -> None:
        import cupy

        self._cp, self._nccl = cupy, nccl
        self.index, self.rank, self.size = kernels.index, group.rank, group.size
        self._compute = kernels.stream
        self._device = cupy.cuda.Device(self.index)
        with self._device:
            self._stream = cupy.cuda.Stream(non_blocking=True)
        uid = _share_id(nccl, group)
        try:
            with self._device:
                self._comm = nccl.NcclCommunicator(self.size, uid, self.rank)
            version = int(nccl.get_version())
        except Exception as exc:  # cupy's NcclError or a CUDA error: say what to check
            raise DistributedError(
                f"NCCL could not set up cuda:{self.index} on rank {self.rank} of {self.size}"
                f" ({type(exc).__name__}: {exc}); each rank needs a GPU of its own "
                "(device=f'cuda:{flambeau.distributed.get_local_rank()}') and must reach "
                "the other ranks (NCCL_DEBUG=INFO says more)") from exc
        self._avg = version >= AVG_VERSION and hasattr(nccl, "NCCL_AVG")
        self._in_flight: deque[NcclWork] = deque()

    def close(self) -> None:
        """Finish the collectives in flight and free the communicator."""
        with self._device:
            self._stream.synchronize()
        self._in_flight.clear()
        self._comm.destroy()

    # --- the collectives --------------------------------------------------------------

    def all_reduce(self, x: Any, op: str) -> NcclWork:
        """Reduce ``x`` over the ranks, in place (bitwise identical on every rank: NCCL's
        rings and trees compute each element once and copy it to every rank)."""
        def run(ptr: int) -> None:
            buf, dtype, back = self._stage(x, reduce=True)
            nccl_op, divide = self._op(op, x.dtype)
            self._call("allReduce", buf.data.ptr, buf.data.ptr, buf.size, dtype, nccl_op,
                       ptr)
            self._finish(buf, divide, back)

        return self._queue(run, x.size, (x,))

    def broadcast(self, x: Any, root: int) -> NcclWork:
        """Copy rank ``root``'s ``x`` into ``x`` on every rank."""
        def run(ptr: int) -> None:
            buf, dtype, back = self._stage(x, reduce=False)
            self._call("bcast", buf.data.ptr, buf.size, dtype, root, ptr)
            if back is not None and self.rank != root:
                back()

        return self._queue(run, x.size, (x,))

    def all_gather(self, out: Any, x: Any) -> NcclWork:
        """Every rank's ``x`` into ``out`` (``size * x.size`` elements), in rank order."""
        def run(ptr: int) -> None:
            send, dtype, _ = self._stage(x, reduce=False)
            recv, _, back = self._stage(out, reduce=False)
            self._call("allGather", send.data.ptr, recv.data.ptr, send.size, dtype, ptr)
            self._finish(recv, False, back)

        return self._queue(run, x.size, (out, x))

    def reduce_scatter(self, out: Any, x: Any, op: str) -> NcclWork:
        """Reduce ``x`` (``size * out.size`` elements) over the ranks; chunk ``rank`` of
        the result into ``out``."""
        def run(ptr: int) -> None:
            send, dtype, _ = self._stage(x, reduce=True)
            recv, _, back = self._stage(out, reduce=True)
            nccl_op, divide = self._op(op, x.dtype)
            self._call("reduceScatter", send.data.ptr, recv.data.ptr, recv.size, dtype,
                       nccl_op, ptr)
            self._finish(recv, divide, back)

        return self._queue(run, out.size, (out, x))

    # --- machinery --------------------------------------------------------------------

    def _queue(self, run: Callable[[int], None], count: int, arrays: tuple) -> NcclWork:
        """``run(stream pointer)`` queued on the communication stream after the compute
        stream's work; its handle. Nothing to move (``count == 0``) queues nothing."""
        while self._in_flight and (self._in_flight[0].waited or
                                   self._in_flight[0].is_completed()):
            self._in_flight.popleft()
        if count == 0:  # every rank has the same shapes, so every rank skips it
            return NcclWork(self._device, self._compute, None, ())
        with self._device:
            self._stream.wait_event(self._compute.record())
            with self._stream:  # staging copies and write-backs run on this stream too
                run(self._stream.ptr)
            work = NcclWork(self._device, self._compute, self._stream.record(), arrays)
        self._in_flight.append(work)
        return work

    def _call(self, method: str, *args: Any) -> None:
        try:
            getattr(self._comm, method)(*args)
        except getattr(self._nccl, "NcclError", RuntimeError) as exc:
            raise DistributedError(
                f"NCCL {method} failed on rank {self.rank} (cuda:{self.index}): {exc}; every"
                " rank must call the same collectives in the same order, with tensors of "
                "the same shapes and dtypes") from exc

    def _stage(self, x: Any, reduce: bool) -> tuple[Any, int, Callable[[], None] | None]:
        """(the C-contiguous buffer NCCL works on, its NCCL dtype, the step that writes
        it back into ``x``, or ``None`` where it is ``x``'s memory). For copies
        (``reduce=False``) the buffer is ``x``'s bytes."""
        cp = self._cp
        c = x if x.flags.c_contiguous else x.copy(order="C")
        name = x.dtype.name
        if not reduce or name == "bool":
            buf = c.reshape(-1).view(np.uint8) if not reduce else c.view(np.uint8)
            kind = "uint8"
        elif name == "int16":
            buf, kind = c.astype(np.int32), "int32"
        else:
            buf, kind = c, name
        back = None
        if kind == "int32" and name == "int16":
            back = partial(cp.copyto, x, buf, casting="unsafe")
        elif c is not x:
            back = partial(cp.copyto, x, c)
        nccl_type = getattr(self._nccl, _TYPES.get(kind, ""), None)
        if nccl_type is None:  # bfloat16 with a cupy older than its NCCL constant
            raise DTypeError(f"this cupy's NCCL binding has no {kind}; send {kind} tensors "
                             "through MPI (init_process_group('cuda:mpi')) or update cupy")
        return buf, nccl_type, back

    def _op(self, op: str, dtype: Any) -> tuple[int, bool]:
        """(NCCL's reduction for ``op`` on ``dtype``, whether to divide by the number of
        ranks afterwards: ``avg`` before NCCL 2.10)."""
        if dtype == np.bool_:
            op = _BOOL_OPS[op]
        if op == "avg" and not self._avg:
            return self._nccl.NCCL_SUM, True
        return getattr(self._nccl, _OPS[op]), False

    def _finish(self, buf: Any, divide: bool, back: Callable[[], None] | None) -> None:
        if divide:
            cp = self._cp
            if buf.dtype.kind == "f":
                cp.divide(buf, self.size, out=buf)
            else:  # NCCL's integer average truncates toward zero
                quotient = cp.floor_divide(cp.absolute(buf), self.size)
                cp.copyto(buf, cp.where(buf < 0, -quotient, quotient))
        if back is not None:
            back()
