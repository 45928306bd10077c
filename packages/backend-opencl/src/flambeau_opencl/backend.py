"""The ``opencl`` backend object: every OpenCL device of every platform, GPUs first.

``FLAMBEAU_OPENCL_DEVICES`` (see :mod:`flambeau_opencl._config`) narrows the list. With
no OpenCL platform at all (no driver installed) the backend still loads and reports 0
devices, with :meth:`OpenCLBackend.unavailable_reason` saying what to install.
"""

from __future__ import annotations

from typing import Any

from flambeau.backends import CONTRACT_VERSION, DeviceInfo, format_bytes

from . import _config
from ._errors import DeviceUnavailableError
from .device import DeviceState, supported_dtypes

INSTALL_HINT = ('pip install "flambeau-opencl[pocl]" for a CPU OpenCL driver (PoCL), or '
                "install your GPU vendor's OpenCL driver")
_TYPE_ORDER = ("GPU", "ACCELERATOR", "CPU")


def _type_name(cl_device: Any) -> str:
    import pyopencl as cl

    for name in _TYPE_ORDER:
        if cl_device.type & getattr(cl.device_type, name):
            return name
    return "OTHER"


def find_devices(selection: list[str] | None = None) -> tuple[list[Any], str | None]:
    """Every OpenCL device, GPUs first, then accelerators, then CPUs (platform order
    within a kind), filtered by ``selection`` (default: ``FLAMBEAU_OPENCL_DEVICES``);
    and why the list is empty, if it is."""
    try:
        import pyopencl as cl
    except ImportError as exc:
        return [], f"pyopencl cannot be imported ({exc}); {INSTALL_HINT}"
    try:
        platforms = cl.get_platforms()
    except cl.Error as exc:
        if "PLATFORM_NOT_FOUND" not in str(exc):
            return [], f"listing OpenCL platforms failed ({exc}); {INSTALL_HINT}"
        platforms = []
    if not platforms:
        return [], f"no OpenCL platform is installed; {INSTALL_HINT}"
    found: list[Any] = []
    problems: list[str] = []
    for platform in platforms:
        try:
            found += platform.get_devices()
        except cl.Error as exc:
            problems.append(f"{platform.name}: {exc}")
    found.sort(key=lambda d: (_TYPE_ORDER + ("OTHER",)).index(_type_name(d)))
    if not found:
        detail = f" ({'; '.join(problems)})" if problems else ""
        return [], f"the OpenCL platforms have no devices{detail}; {INSTALL_HINT}"
    selection = _config.device_filter() if selection is None else selection
    if not selection:
        return found, None
    chosen = [d for i, d in enumerate(found) if any(_matches(item, i, d) for item in selection)]
    if not chosen:
        listing = "; ".join(f"{i}: {_describe(d)}" for i, d in enumerate(found))
        return [], (f"{_config.DEVICES_VAR}={','.join(selection)!r} matches none of the "
                    f"OpenCL devices ({listing})")
    return chosen, None


def _describe(cl_device: Any) -> str:
    return f"{cl_device.platform.name.strip()}: {cl_device.name.strip()}"


def _matches(item: str, position: int, cl_device: Any) -> bool:
    if item.isdigit():
        return int(item) == position
    if item.upper() in _TYPE_ORDER:
        return _type_name(cl_device) == item.upper()
    platform = cl_device.platform
    text = f"{platform.name} {platform.vendor} {cl_device.name} {cl_device.vendor}".lower()
    return item.lower() in text


class OpenCLBackend:
    """Device type ``opencl``: ``opencl:0`` .. ``opencl:N-1``.

    Args:
        selection: Device filter items as in ``FLAMBEAU_OPENCL_DEVICES`` (default: that
            variable).
        gpu_style: Launch kernels as on a GPU even on CPU devices (for tests).

    Example:
        >>> backend = OpenCLBackend()  # doctest: +SKIP
        >>> backend.device_count(), backend.device_info(0).name  # doctest: +SKIP
        (1, 'pthread-AMD EPYC')
    """

    name = "opencl"
    contract_version = CONTRACT_VERSION

    def __init__(self, selection: list[str] | None = None,
                 gpu_style: bool | None = None) -> None:
        self._selection = selection
        self._gpu_style = gpu_style
        self._devices: list[Any] | None = None
        self._reason: str | None = None
        self._states: dict[int, DeviceState] = {}
        self._kernels: dict[int, Any] = {}

    def _found(self) -> list[Any]:
        if self._devices is None:
            self._devices, self._reason = find_devices(self._selection)
        return self._devices

    def device_count(self) -> int:
        """How many OpenCL devices are usable (after ``FLAMBEAU_OPENCL_DEVICES``)."""
        return len(self._found())

    def unavailable_reason(self) -> str | None:
        """Why there are no devices, or ``None``."""
        self._found()
        return self._reason

    def device_info(self, index: int) -> DeviceInfo:
        """Name, vendor, memory and dtypes of ``opencl:index``."""
        d = self._device(index)
        fp64 = "cl_khr_fp64" in d.extensions.split() or bool(d.double_fp_config)
        fp16 = "cl_khr_fp16" in d.extensions.split()
        return DeviceInfo(
            name=d.name.strip(),
            memory_bytes=int(d.global_mem_size),
            dtypes=supported_dtypes(fp64),
            vendor=d.vendor.strip(),
            extra={
                "platform": d.platform.name.strip(),
                "type": _type_name(d).lower(),
                "version": d.version.strip(),
                "driver": d.driver_version.strip(),
                "compute units": str(d.max_compute_units),
                "largest buffer": format_bytes(int(d.max_mem_alloc_size)),
                "float64": "yes" if fp64 else "no (the device lacks cl_khr_fp64)",
                "float16": "stored as half, computed in float32"
                + (" (device has cl_khr_fp16)" if fp16 else ""),
            },
        )

    def synchronize(self, index: int) -> None:
        """Wait for every kernel queued on ``opencl:index``."""
        self._device(index)
        state = self._states.get(index)
        if state is not None:
            state.finish()

    def empty_cache(self, index: int | None = None) -> None:
        """Give the cached, unused buffers of ``opencl:index`` (``None``: every device in
        use) back to the driver; the contract's optional ``empty_cache``."""
        for i, state in list(self._states.items()):
            if index is None or i == index:
                state.allocator.empty_cache()

    def memory_allocated(self, index: int) -> int:
        """Bytes in the live buffers of ``opencl:index`` (rounded up to the allocator's
        size buckets); the contract's optional ``memory_allocated``."""
        self._device(index)
        state = self._states.get(index)
        return state.allocator.live_bytes if state is not None else 0

    def kernels(self, index: int) -> Any:
        """The kernel set of ``opencl:index`` (creates its context and queue)."""
        kernels = self._kernels.get(index)
        if kernels is None:
            from .kernels import OpenCLKernels

            kernels = self._kernels[index] = OpenCLKernels(self.state(index))
        return kernels

    def state(self, index: int) -> DeviceState:
        """The context, queue and allocator of ``opencl:index``."""
        state = self._states.get(index)
        if state is None:
            state = self._states[index] = DeviceState(self._device(index), index,
                                                      self._gpu_style)
        return state

    def _device(self, index: int) -> Any:
        devices = self._found()
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(devices):
            if not devices:
                raise DeviceUnavailableError(f"no OpenCL device is available: {self._reason}")
            raise IndexError(f"the opencl backend has {len(devices)} device(s), opencl:0 to "
                             f"opencl:{len(devices) - 1}; got index {index!r}")
        return devices[index]
