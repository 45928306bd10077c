"""The default process group: setting it up and down, ranks, and which engine serves
each device.

Engines. ``init_process_group(backend=...)`` names an engine per device type, as in
PyTorch: ``"mpi"`` (every device type), ``"cpu:mpi,cuda:nccl"``. ``"mpi"`` (and ``"gloo"``,
PyTorch's name for its CPU engine) is the core's host engine. Any other name is a
device backend's own engine: the backend's optional ``collectives(index, group)`` member
(:class:`flambeau.backends.CollectiveEngine`), whose ``name`` must match. With
``backend=None`` each device uses its backend's engine when the backend offers one and
returns it, else the host engine. Engines are made on the first collective on a device,
on every rank at once, and kept until :func:`destroy_process_group`.
"""

from __future__ import annotations

import datetime
from typing import Any

from .. import _config, backends
from .._device import Device, unavailable_reason
from ..errors import DistributedError, EngineUnavailableError
from . import _mpi
from ._host_engine import HostEngine
from ._work import seconds

#: Engine names that mean the core's host engine (``gloo`` is PyTorch's CPU engine).
HOST_ENGINE_NAMES = ("mpi", "gloo")

_NOT_INITIALIZED = (
    "the default process group has not been initialized: call "
    "flambeau.distributed.init_process_group() first, in a script started with "
    "`flambeau run -n N script.py` (or mpiexec -n N python -m mpi4py script.py)")


class ProcessGroup:
    """Every process of the job (the default group) and the engines serving its devices.

    Attributes:
        rank: This process's rank, ``0 <= rank < size``.
        size: The number of processes.
        local_rank: This process's rank among the processes on its machine.
        local_size: The number of processes on this machine.
        host: The host engine (MPI), on a private duplicate of ``MPI.COMM_WORLD``.
        backend: The backend string given to ``init_process_group`` (``"mpi"`` if none).
        timeout: The default limit of ``Work.wait()``, in seconds, or ``None``.
    """

    def __init__(self, comm: Any, spec: dict[str | None, str], backend: str,
                 timeout: float | None) -> None:
        MPI = _mpi.load()
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        shared = comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_rank, self.local_size = shared.Get_rank(), shared.Get_size()
        shared.Free()
        self.host = HostEngine(comm.Dup())
        self.backend = backend
        self.timeout = timeout
        self._spec = spec
        self._engines: dict[Device, Any] = {}

    def broadcast_bytes(self, data: bytes | None, root: int) -> bytes:
        """``root``'s ``data`` on every rank (device engines share their ids with it)."""
        return self.host.broadcast_bytes(data, root)

    def engine_for(self, dev: Device) -> Any:
        """The engine serving device ``dev`` (made on first use, on every rank at once)."""
        engine = self._engines.get(dev)
        if engine is None:
            engine = self._engines[dev] = self._make_engine(dev)
        return engine

    def _make_engine(self, dev: Device) -> Any:
        name = self._spec.get(dev.type, self._spec.get(None))
        if name in HOST_ENGINE_NAMES:
            return self.host
        make = getattr(backends.get(dev.type), "collectives", None)
        try:
            engine = make(dev.index or 0, self) if make is not None else None
        except EngineUnavailableError:
            if name is not None:  # the user named this engine: say why it cannot run
                raise
            engine = None  # backend=None: the host engine serves this device instead
        if engine is None and name is None:
            return self.host
        if name is not None and (engine is None or engine.name != name):
            offered = "no engine of its own" if engine is None else f"engine {engine.name!r}"
            raise DistributedError(
                f"the process group's backend {self.backend!r} asks for engine {name!r} for "
                f"{dev.type} tensors, but the {dev.type} backend offers {offered}; pass "
                f"backend=None (each device's default engine) or '{dev.type}:mpi'")
        return engine

    def close(self) -> None:
        """Close the device engines (their optional ``close()``) and the host engine."""
        for engine in {id(e): e for e in self._engines.values()}.values():
            close = getattr(engine, "close", None)
            if engine is not self.host and close is not None:
                close()
        self.host.close()


class _State:
    group: ProcessGroup | None = None


_STATE = _State()


def parse_backend(backend: str | None) -> dict[str | None, str]:
    """``{device type (None: every type): engine name}`` from a PyTorch backend string.

    >>> parse_backend("cpu:mpi,cuda:nccl"), parse_backend("MPI")
    ({'cpu': 'mpi', 'cuda': 'nccl'}, {None: 'mpi'})
    """
    spec: dict[str | None, str] = {}
    for part in (backend or "").lower().split(","):
        device_type, sep, name = part.strip().rpartition(":")
        if not name or (sep and not device_type):
            raise DistributedError(
                f"cannot read backend {backend!r}: expected an engine name ('mpi') or "
                "device:engine pairs separated by commas ('cpu:mpi,cuda:nccl')")
        spec[device_type if sep else None] = name
    return spec


def _check_spec(spec: dict[str | None, str], backend: str) -> None:
    for device_type, name in spec.items():
        if name in HOST_ENGINE_NAMES:
            continue
        owners = [t for t, b in backends.available().items()
                  if device_type in (None, t) and getattr(b, "collectives", None) is not None]
        if not owners:
            where = "any installed backend" if device_type is None else \
                f"the {device_type!r} backend"
            raise DistributedError(
                f"backend {backend!r}: engine {name!r} is not available, as {where} offers no "
                "collective engine of its own; 'mpi' serves every device (the default)")
        if not any(backends.get(t).device_count() for t in owners):  # a GPU-less "cuda:nccl"
            why = "; ".join(f"{t}: {unavailable_reason(backends.get(t)) or 'no device'}"
                            for t in owners)
            raise DistributedError(
                f"backend {backend!r}: engine {name!r} needs a device of {owners}, but there "
                f"is none here ({why}); use 'mpi' (every device) on this machine")


def init_process_group(backend: str | None = None, init_method: str | None = None,
                       timeout: datetime.timedelta | float | None = None,
                       world_size: int = -1, rank: int = -1, store: Any = None,
                       group_name: str = "", pg_options: Any = None,
                       device_id: Any = None) -> None:
    """Join the job's processes into the default process group (PyTorch's signature).

    MPI decides the ranks and the world size (start the script with ``flambeau run -n N``
    or ``mpiexec``; a plain ``python script.py`` is a world of one).

    Args:
        backend: Engines per device type: ``None`` (each device's default: MPI, or its
            backend's own engine such as NCCL), ``"mpi"``, or ``"cpu:mpi,cuda:nccl"``.
        init_method: ``None`` or ``"env://"`` (MPI does the rendezvous).
        timeout: Default limit of ``Work.wait()`` (seconds or ``timedelta``).
        world_size: ``-1``, or the world size MPI must report.
        rank: ``-1``, or the rank MPI must report.
        store, group_name, pg_options: PyTorch's; a store or options are not supported.
        device_id: A device to set up its engine for now rather than at first use.

    Raises:
        DistributedError: if already initialized, MPI is missing (with the install
            command), or an argument disagrees with MPI.
    """
    if _STATE.group is not None:
        raise DistributedError("the default process group is already initialized; call "
                               "destroy_process_group() before initializing it again")
    if store is not None or pg_options is not None:
        raise DistributedError("init_process_group: store= and pg_options= are not supported "
                               "(MPI does the rendezvous); leave them out")
    if init_method not in (None, "env://"):
        raise DistributedError(
            f"init_method={init_method!r} is not supported: MPI does the rendezvous; start "
            "the processes with `flambeau run -n N script.py` and leave init_method out")
    name = backend or "mpi"
    spec = parse_backend(backend) if backend else {}
    _check_spec(spec, name)
    comm = _mpi.load().COMM_WORLD
    for what, asked, got in (("world_size", world_size, comm.Get_size()),
                             ("rank", rank, comm.Get_rank())):
        if asked is not None and asked != -1 and asked != got:
            raise DistributedError(
                f"init_process_group: {what}={asked}, but MPI says {got} (set by the launcher:"
                f" `flambeau run -n N`); leave {what} out")
    _STATE.group = ProcessGroup(comm, spec, name, seconds(timeout))
    if device_id is not None:
        from .._device import resolve_device

        _STATE.group.engine_for(resolve_device(device_id)[0])


def current(group: Any = None) -> ProcessGroup:
    """The default process group (``group`` must be ``None`` or it).

    Raises:
        DistributedError: if it has not been initialized.
    """
    if _STATE.group is None:
        raise DistributedError(_NOT_INITIALIZED)
    if group is not None and group is not _STATE.group:
        raise DistributedError("only the default process group is supported: pass group=None")
    return _STATE.group


def is_available() -> bool:
    """True when mpi4py is installed, so that :func:`init_process_group` can work."""
    return _mpi.available()


def is_initialized() -> bool:
    """True between :func:`init_process_group` and :func:`destroy_process_group`."""
    return _STATE.group is not None


def destroy_process_group(group: Any = None) -> None:
    """Finish the collectives in flight, close the engines and leave the process group
    (MPI itself stays up until the process exits)."""
    pg = current(group)
    _STATE.group = None
    pg.close()


def get_rank(group: Any = None) -> int:
    """This process's rank in the default group, ``0 <= rank < get_world_size()``."""
    return current(group).rank


def get_world_size(group: Any = None) -> int:
    """The number of processes in the default group."""
    return current(group).size


def get_backend(group: Any = None) -> str:
    """The backend string the default group was initialized with (``"mpi"`` if none)."""
    return current(group).backend


def get_default_group() -> ProcessGroup:
    """The default process group object (PyTorch's ``_get_default_group()``)."""
    return current()


def get_local_rank() -> int:
    """This process's rank among the processes on its machine: the index of the device it
    should use (``device=f"cuda:{get_local_rank()}"``).

    From MPI's shared-memory split once initialized; before that, from the launcher's
    environment (``LOCAL_RANK``, MPICH's ``MPI_LOCALRANKID``, Open MPI's, Slurm's), else 0.

    >>> isinstance(get_local_rank(), int)
    True
    """
    if _STATE.group is not None:
        return _STATE.group.local_rank
    found = _config.local_rank_from_env()
    return 0 if found is None else found


def get_local_world_size() -> int:
    """The number of processes on this machine (1 before initialization)."""
    return _STATE.group.local_size if _STATE.group is not None else 1
