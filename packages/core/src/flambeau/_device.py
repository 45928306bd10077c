"""Devices: names users type, resolved to (backend, index, kernels).

A device name is ``TYPE`` or ``TYPE:INDEX`` where ``TYPE`` is a lower-case device type
(``cpu``, ``cuda``, ``opencl``, ``meta`` or a third-party backend's name) and ``INDEX`` a
non-negative integer. Names are taken exactly as written: no case folding and no
whitespace stripping, so a typo is an error that suggests the right spelling.
``TYPE`` alone means the type's device 0 when used; it compares equal to ``TYPE:0``.
"""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass
from typing import Any

from . import _config
from .backends import DeviceInfo, Kernels
from .backends._registry import IN_REPO_BACKENDS, REGISTRY, validate_kernels
from .errors import DeviceUnavailableError, InvalidDeviceError

#: Device types flambeau knows, with the distribution that provides each.
WELL_KNOWN_TYPES: dict[str, str] = {
    **IN_REPO_BACKENDS,
    "meta": "flambeau (built in, for shape inference)",
}
_INSTALL_HINT: dict[str, str] = {
    "cpu": 'pip install flambeau-cpu   (or: pip install "flambeau[cpu]")',
    "cuda": 'pip install "flambeau-cuda[cuda12]"   (or [cuda13], matching your CUDA)',
    "opencl": 'pip install flambeau-opencl   (add "[pocl]" for a CPU OpenCL driver)',
}
_NAME_RE = re.compile(r"^([a-z][a-z0-9_]*)(?::(.*))?$")


@dataclass(frozen=True, eq=False)
class Device:
    """A device: a type (``"cuda"``) and an optional index (``1``).

    Build one with :func:`device`. Devices are values: equal names compare equal and hash
    alike (an absent index equals index 0). A device is also a context manager that
    makes it the default device inside the ``with`` block.

    >>> str(device("cuda:1")), device("cpu") == device("cpu:0")
    ('cuda:1', True)
    """

    type: str
    index: int | None = None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type={self.type!r})"
        return f"device(type={self.type!r}, index={self.index})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except InvalidDeviceError:
                return False
        if not isinstance(other, Device):
            return NotImplemented
        return self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self) -> int:
        return hash((self.type, self.index or 0))

    @property
    def info(self) -> DeviceInfo:
        """What the backend reports about this device (name, memory, dtypes)."""
        backend, index = _resolve(self)
        return backend.device_info(index)

    def __enter__(self) -> Device:
        _SCOPED.set((*_SCOPED.get(), self))
        return self

    def __exit__(self, *exc: object) -> None:
        _SCOPED.set(_SCOPED.get()[:-1])


# Devices of the enclosing ``with`` blocks, innermost last (per thread and task).
_SCOPED: contextvars.ContextVar[tuple[Device, ...]] = contextvars.ContextVar(
    "flambeau_scoped_devices", default=()
)
_GLOBAL_DEFAULT: list[Device] = []
# The one device cache: what users pass (names, Devices) -> (canonical Device, kernels).
_RESOLVED: dict[Any, tuple[Device, Kernels]] = {}


def device(spec: str | Device, index: int | None = None) -> Device:
    """Parse a device name (``"cpu"``, ``"cuda:1"``) or a type and index into a :class:`Device`.

    Well-known types (cpu, cuda, opencl, meta) and installed backends' types are always
    accepted, even where the hardware is absent: the error comes when the device is used.

    Raises:
        InvalidDeviceError: for a malformed name or a type no installed backend provides.
    """
    if isinstance(spec, Device):
        if index is not None:
            raise InvalidDeviceError(f"device {spec} already has an index; got index={index}")
        return spec
    if not isinstance(spec, str):
        raise InvalidDeviceError(
            f"expected a device name such as 'cpu' or 'cuda:0', got {type(spec).__name__}"
        )
    match = _NAME_RE.match(spec)
    if not match:
        raise InvalidDeviceError(_malformed_message(spec))
    type_, index_text = match.groups()
    if index_text is not None:
        if index is not None:
            raise InvalidDeviceError(f"device {spec!r} already has an index; got index={index}")
        if not index_text.isdigit() or not index_text.isascii():
            raise InvalidDeviceError(
                f"device index must be a non-negative integer, got {index_text!r} in {spec!r}"
            )
        index = int(index_text)
    elif index is not None and (not isinstance(index, int) or index < 0):
        raise InvalidDeviceError(f"device index must be a non-negative integer, got {index!r}")
    if type_ not in WELL_KNOWN_TYPES and REGISTRY.get(type_) is None:
        raise InvalidDeviceError(_unknown_type_message(type_))
    return Device(type_, index)


def _malformed_message(spec: str) -> str:
    if spec == "":
        return "empty device name; expected 'TYPE' or 'TYPE:INDEX', e.g. 'cpu' or 'cuda:0'"
    hint = spec.strip().lower()
    suggestion = f"; did you mean {hint!r}?" if hint != spec and _NAME_RE.match(hint) else ""
    return (
        f"malformed device name {spec!r}: expected 'TYPE' or 'TYPE:INDEX' with a lower-case "
        f"TYPE and no spaces, e.g. 'cpu' or 'cuda:0'{suggestion}"
    )


def _unknown_type_message(type_: str) -> str:
    installed = ", ".join(sorted(REGISTRY.all())) or "none"
    lines = [f"unknown device type {type_!r}; installed device types: {installed}."]
    lines += _failure_lines()
    lines.append(
        "Well-known types and the packages that provide them: "
        + ", ".join(f"{t} ({d})" for t, d in WELL_KNOWN_TYPES.items())
    )
    return "\n".join(lines)


def _failure_lines() -> list[str]:
    failures = REGISTRY.errors()
    if not failures:
        return []
    return ["Plugins that failed to load:"] + [f"  - {f}" for f in failures]


def _resolve(dev: Device) -> tuple[Any, int]:
    """The backend and device index for ``dev``, or a clear error saying why not."""
    backend = REGISTRY.get(dev.type)
    if backend is None and dev.type == "meta":
        from ._meta import META

        backend = META
    index = dev.index or 0
    if backend is None:
        raise DeviceUnavailableError(_no_backend_message(dev))
    count = backend.device_count()
    if index >= count:
        if count == 0:
            reason = unavailable_reason(backend)
            raise DeviceUnavailableError(
                f"device {dev} is not available: the {dev.type!r} backend found no devices "
                "on this machine" + (f": {reason}" if reason else "")
            )
        raise DeviceUnavailableError(
            f"device {dev} does not exist: the {dev.type!r} backend has {count} device(s), "
            f"{dev.type}:0 to {dev.type}:{count - 1}"
        )
    return backend, index


def _no_backend_message(dev: Device) -> str:
    if not REGISTRY.all():
        lines = [
            f"cannot use device {dev}: no flambeau backend is installed. Install one, e.g. "
            + _INSTALL_HINT["cpu"]
        ]
        if _config.plugin_autoload_disabled():
            lines.append(f"(plugin loading is off: {_config.DISABLE_PLUGIN_AUTOLOAD_VAR} is set)")
    else:
        lines = [f"cannot use device {dev}: no installed backend provides {dev.type!r}."]
        if dev.type in _INSTALL_HINT:
            lines.append("Install it with: " + _INSTALL_HINT[dev.type])
    return "\n".join(lines + _failure_lines())


def unavailable_reason(backend: Any) -> str | None:
    """Why ``backend`` has no devices, if it says (its optional ``unavailable_reason()``)."""
    reason = getattr(backend, "unavailable_reason", None)
    try:
        return reason() if callable(reason) else None
    except Exception:
        return None


def dlpack_owner(obj: Any) -> tuple[Device, Kernels] | None:
    """The device and kernels that can adopt DLPack producer ``obj`` in place: a backend
    whose optional ``dlpack_index`` names ``obj``'s DLPack device and whose kernels have
    ``from_dlpack``. ``None`` when no backend can (the caller copies through the host)."""
    where = getattr(obj, "__dlpack_device__", None)
    if where is None:
        return None
    dl_type, dl_id = where()
    for name, backend in sorted(REGISTRY.all().items()):
        index_of = getattr(backend, "dlpack_index", None)
        index = index_of(int(dl_type), int(dl_id)) if index_of is not None else None
        if index is not None:
            dev = Device(name, index)
            kernels = kernels_for(dev)
            if getattr(kernels, "from_dlpack", None) is not None:
                return dev, kernels
    return None


def resolve_device(spec: Any = None) -> tuple[Device, Kernels]:
    """(canonical device, kernel set) for a device name, :class:`Device` or ``None`` (the
    default device); cached, and raises if the device cannot be used."""
    if spec is None:
        spec = get_default_device()
    hit = _RESOLVED.get(spec)
    if hit is not None:
        return hit
    dev = spec if isinstance(spec, Device) else device(spec)
    hit = _RESOLVED.get(dev)
    if hit is None:
        backend, index = _resolve(dev)
        kernels = backend.kernels(index)
        validate_kernels(backend.name, kernels)
        # Like PyTorch, tensors on the host report plain ``cpu``; others carry their index.
        canonical = Device("cpu") if dev.type == "cpu" else Device(dev.type, dev.index or 0)
        hit = _RESOLVED[dev] = (canonical, kernels)
    _RESOLVED[spec] = hit
    return hit


def kernels_for(dev: Device) -> Kernels:
    """The (cached) kernel set of ``dev``; raises if the device cannot be used."""
    return resolve_device(dev)[1]


def clear_kernel_cache() -> None:
    """Forget cached kernel sets (after backends are registered or removed)."""
    _RESOLVED.clear()


def synchronize(dev: str | Device | None = None) -> None:
    """Wait for all queued work on ``dev`` (default: the default device)."""
    backend, index = _resolve(device(dev) if dev is not None else get_default_device())
    backend.synchronize(index)


def devices() -> list[Device]:
    """Every usable device of every installed backend, e.g. ``[device(type='cpu', index=0)]``."""
    found: list[Device] = []
    for name, backend in sorted(REGISTRY.all().items()):
        found += [Device(name, i) for i in range(_safe_count(backend))]
    return found


def _safe_count(backend: Any) -> int:
    try:
        return int(backend.device_count())
    except Exception:
        return 0


def device_count(type_: str) -> int:
    """How many devices of type ``type_`` exist (0 for a known type whose backend is absent)."""
    backend = REGISTRY.get(type_)
    if backend is None:
        if type_ == "meta":
            return 1
        if type_ in WELL_KNOWN_TYPES:
            return 0
        raise InvalidDeviceError(_unknown_type_message(type_))
    return _safe_count(backend)


def get_default_device() -> Device:
    """The device new tensors go to: a ``with`` block's, else :func:`set_default_device`'s,
    else ``FLAMBEAU_DEVICE``, else ``cpu``."""
    scoped = _SCOPED.get()
    if scoped:
        return scoped[-1]
    if _GLOBAL_DEFAULT:
        return _GLOBAL_DEFAULT[0]
    return device(_config.default_device_name())


def set_default_device(dev: str | Device | None) -> None:
    """Set the default device for this process (``None`` goes back to the env/``cpu``)."""
    _GLOBAL_DEFAULT.clear()
    if dev is not None:
        _GLOBAL_DEFAULT.append(device(dev))


def type_functions(type_: str) -> tuple[Any, ...]:
    """The functions of the ``torch.cuda``-style modules (``flambeau.cuda``,
    ``flambeau.opencl``) bound to one device type: ``device_count``, ``is_available``,
    ``synchronize``, ``manual_seed``, ``manual_seed_all``, ``get_device_name``,
    ``memory_allocated`` and ``empty_cache``, in that order."""

    def count() -> int:
        return device_count(type_)

    def is_available() -> bool:
        return device_count(type_) > 0

    def sync(index: int | None = None) -> None:
        synchronize(Device(type_, index))

    def manual_seed(seed: int) -> None:
        if device_count(type_) > 0:
            from ._random import default_generator

            default_generator.manual_seed(seed)

    def get_device_name(dev: Any = None) -> str:
        return _of_type(type_, dev).info.name

    def memory_allocated(dev: Any = None) -> int:
        if device_count(type_) == 0:
            return 0
        backend, index = _resolve(_of_type(type_, dev))
        allocated = getattr(backend, "memory_allocated", None)
        return int(allocated(index)) if allocated is not None else 0

    def empty_cache() -> None:
        backend = REGISTRY.get(type_)
        release = getattr(backend, "empty_cache", None)
        if release is not None and _safe_count(backend) > 0:
            release(None)

    count.__doc__ = f"How many {type_} devices exist (0 when none or the backend is absent)."
    is_available.__doc__ = f"True when at least one {type_} device can be used."
    sync.__doc__ = f"Wait for all queued work on {type_} device ``index`` (default 0)."
    manual_seed.__doc__ = (
        f"Seed the random stream {type_} devices draw from. flambeau has one generator for "
        "every device (the same seed gives the same numbers on each), so this is "
        f"``flambeau.manual_seed(seed)``; without a {type_} device it does nothing, as "
        "PyTorch's does without a GPU.")
    get_device_name.__doc__ = (
        f"The name of {type_} device ``dev`` (an index, a name or a Device; default "
        f"{type_}:0), as its backend reports it; raises DeviceUnavailableError when there "
        "is no such device.")
    memory_allocated.__doc__ = (
        f"Bytes held by tensors on {type_} device ``dev`` (default {type_}:0), from the "
        "backend's optional ``memory_allocated`` (its caching allocator's count of live "
        "blocks, rounded up to block sizes as in PyTorch); 0 when the backend does not "
        f"count, or without {type_} devices.")
    empty_cache.__doc__ = (
        f"Give the memory the {type_} backend caches but no tensor uses back to the "
        "driver (the backend's optional ``empty_cache``); does nothing otherwise.")
    return (count, is_available, sync, manual_seed, manual_seed, get_device_name,
            memory_allocated, empty_cache)


def _of_type(type_: str, dev: Any) -> Device:
    """``dev`` (``None``: device 0, an index, a name or a Device) as a device of ``type_``."""
    if dev is None or (isinstance(dev, int) and not isinstance(dev, bool)):
        return Device(type_, dev or 0)
    found = device(dev)
    if found.type != type_:
        raise InvalidDeviceError(f"expected a {type_} device, got {found}")
    return found
