"""The ``cuda`` backend object: NVIDIA GPUs ``cuda:0`` .. ``cuda:N-1`` through cupy.

Counting devices imports only cupy's small CUDA-runtime binding; all of cupy is imported
when a GPU is there. Without cupy, a driver or a GPU the backend still loads, reports
0 devices and says why (:meth:`CudaBackend.unavailable_reason`, shown by
``flambeau devices``).

Each device gets one kernel set, which queues its work on a non-blocking stream of its
own; memory comes from cupy's memory pool. Work is asynchronous: the host waits only
where a value reaches it (``to_numpy``, ``.item()``) or on :meth:`synchronize`.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from flambeau.backends import CONTRACT_VERSION, DTYPES, DeviceInfo
from flambeau.errors import EngineUnavailableError, OutOfMemoryError

from . import _config

#: DLPack's device type of CUDA device memory (``kDLCUDA``).
DLPACK_CUDA = 2

_INSTALL_HINT = 'pip install "flambeau-cuda[cuda12]" (or [cuda13], matching your CUDA driver)'


def _runtime() -> Any:
    """cupy's CUDA-runtime binding, without importing the rest of cupy."""
    try:
        from cupy_backends.cuda.api import runtime
    except ImportError:
        import cupy  # a cupy that moved the binding: load it the long way

        runtime = cupy.cuda.runtime
    return runtime


def probe() -> tuple[int, str | None]:
    """(number of usable GPUs, why there are none or ``None``)."""
    try:
        runtime = _runtime()
    except ImportError:
        return 0, f"cupy is not installed; {_INSTALL_HINT}"
    except Exception as exc:  # a broken cupy install: say so rather than fail discovery
        return 0, f"cupy failed to load ({_one_line(exc)}); reinstall it: {_INSTALL_HINT}"
    try:
        count = int(runtime.getDeviceCount())
    except Exception as exc:  # no driver, a driver older than cupy's CUDA, ...
        return 0, f"the CUDA runtime cannot reach a GPU: {_one_line(exc)}"
    if count == 0:
        visible = _config.visible_devices()
        hidden = f" ({_config.VISIBLE_DEVICES_VAR}={visible!r})" if visible is not None else ""
        return 0, f"the CUDA driver reports no GPU{hidden}"
    try:
        import cupy  # noqa: F401  (the kernels need all of it; fail here, visibly)
    except Exception as exc:
        return 0, f"cupy failed to import ({_one_line(exc)}); {_INSTALL_HINT}"
    return count, None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class CudaBackend:
    """Device type ``cuda``: one device per GPU cupy sees."""

    name = "cuda"
    contract_version = CONTRACT_VERSION

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: int | None = None
        self._reason: str | None = None
        self._kernels: dict[int, Any] = {}

    # --- devices ----------------------------------------------------------------------

    def device_count(self) -> int:
        if self._count is None:
            with self._lock:
                if self._count is None:
                    self._count, self._reason = probe()
        return self._count

    def unavailable_reason(self) -> str | None:
        """Why there are no devices (``None`` when there are)."""
        self.device_count()
        return self._reason

    def device_info(self, index: int) -> DeviceInfo:
        self._check(index)
        import cupy

        runtime = cupy.cuda.runtime
        props = runtime.getDeviceProperties(index)
        with cupy.cuda.Device(index):
            free, total = runtime.memGetInfo()
            pool = cupy.get_default_memory_pool()
            pooled, in_use = pool.total_bytes(), pool.used_bytes()
        name = props["name"]
        return DeviceInfo(
            name=name.decode() if isinstance(name, bytes) else str(name),
            memory_bytes=int(total),
            dtypes=tuple(DTYPES.values()),
            vendor="NVIDIA",
            extra={
                "compute_capability": f"{props['major']}.{props['minor']}",
                "free_bytes": str(free),
                "pool_bytes": f"{pooled} ({in_use} in use)",
                "tf32": "on" if _config.tf32_enabled() else "off",
                "cuda_driver": _version(runtime.driverGetVersion()),
                "cuda_runtime": _version(runtime.runtimeGetVersion()),
                "cupy": cupy.__version__,
            },
        )

    def synchronize(self, index: int) -> None:
        self._check(index)
        import cupy

        with cupy.cuda.Device(index):
            cupy.cuda.runtime.deviceSynchronize()

    def kernels(self, index: int) -> Any:
        self._check(index)
        with self._lock:
            kernels = self._kernels.get(index)
            if kernels is None:
                from .kernels import CupyKernels

                kernels = self._kernels[index] = CupyKernels(index, self)
        return kernels

    def empty_cache(self, index: int | None = None) -> None:
        """Return the memory pool's unused cached blocks of ``cuda:index`` (``None``: every
        GPU) to the driver, like ``torch.cuda.empty_cache()``; a no-op without cupy or
        GPUs. The contract's optional ``empty_cache``."""
        count = self.device_count()
        if count == 0:
            return
        import cupy

        pool = cupy.get_default_memory_pool()
        for i in range(count) if index is None else (index,):
            with cupy.cuda.Device(i):
                pool.free_all_blocks()

    def memory_allocated(self, index: int) -> int:
        """Bytes of cupy's memory pool in use on ``cuda:index`` (blocks are rounded up to
        the pool's sizes, as PyTorch's are); the contract's optional ``memory_allocated``."""
        self._check(index)
        import cupy

        with cupy.cuda.Device(index):
            return int(cupy.get_default_memory_pool().used_bytes())

    def collectives(self, index: int, group: Any) -> Any:
        """The NCCL engine of ``cuda:index`` for ``flambeau.distributed`` (the contract's
        optional member; see :mod:`flambeau_cuda.collectives`).

        Raises:
            EngineUnavailableError: without a GPU or without NCCL, naming the cause and
                the fix (``init_process_group()`` then uses MPI for cuda tensors).
        """
        if not 0 <= index < self.device_count():
            raise EngineUnavailableError(
                f"NCCL needs a GPU, and cuda:{index} is not there: "
                f"{self._reason or f'{self._count} GPU(s)'}")
        from .collectives import make_engine

        return make_engine(self.kernels(index), group)

    def dlpack_index(self, device_type: int, device_id: int) -> int | None:
        """The index of ``cuda:i`` for DLPack device ``(kDLCUDA, i)``, else ``None``."""
        if device_type == DLPACK_CUDA and 0 <= device_id < self.device_count():
            return device_id
        return None

    def _check(self, index: int) -> None:
        count = self.device_count()
        if not 0 <= index < count:
            there = f"{count} device(s), cuda:0 to cuda:{count - 1}" if count else \
                f"no devices ({self._reason})"
            raise IndexError(f"the cuda backend has {there}; got index {index}")


def _version(number: int) -> str:
    """CUDA's 12040 as ``"12.4"`` (0: no driver)."""
    return f"{number // 1000}.{number % 1000 // 10}" if number else "none"


_REQUESTED = re.compile(r"allocating ([\d,]+) bytes")


def out_of_memory(index: int, exc: BaseException) -> OutOfMemoryError:
    """flambeau's error for cupy's OutOfMemoryError ``exc`` on device ``index``: the
    device, the bytes asked for and the bytes free, and what to do."""
    import cupy

    match = _REQUESTED.search(str(exc))
    requested = f"{int(match.group(1).replace(',', '')):,} bytes" if match else \
        "an unknown number of bytes"
    try:
        with cupy.cuda.Device(index):
            free, total = cupy.cuda.runtime.memGetInfo()
            held = cupy.get_default_memory_pool().total_bytes()
        state = (f"{free:,} bytes are free of {total:,} ({held:,} held by the memory "
                 "pool, in use or cached)")
    except Exception as info_exc:  # the device is in a bad state: report what we know
        state = f"free memory unknown ({_one_line(info_exc)})"
    return OutOfMemoryError(
        f"cuda:{index} is out of memory: requested {requested}, but {state}. Tensors "
        "that existed before are intact. Free tensors you no longer need (del x), use a "
        "smaller batch, or call flambeau_cuda.empty_cache() to return cached blocks to "
        "the driver"
    )


def empty_cache(index: int | None = None) -> None:
    """Return the memory pool's unused cached blocks of ``cuda:index`` (default: every
    GPU) to the driver, like ``torch.cuda.empty_cache()``: the ``cuda`` backend's
    :meth:`CudaBackend.empty_cache`; a no-op without cupy or GPUs."""
    from flambeau import backends

    backend = backends.get("cuda")
    if backend is not None:
        backend.empty_cache(index)
