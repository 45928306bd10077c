"""The ``boxed`` backend object: two devices, each a numpy store behind a box."""

from __future__ import annotations

from flambeau.backends import CONTRACT_VERSION, DTYPES, DeviceInfo

from .kernels import BoxedKernels


class BoxedBackend:
    """Device type ``boxed`` with ``count`` devices (two by default).

    Example:
        >>> backend = BoxedBackend()
        >>> backend.device_count(), backend.device_info(1).name
        (2, 'boxed numpy device 1')
    """

    name = "boxed"
    contract_version = CONTRACT_VERSION

    def __init__(self, count: int = 2) -> None:
        self._kernels = [BoxedKernels(i) for i in range(count)]

    def device_count(self) -> int:
        """How many ``boxed`` devices there are."""
        return len(self._kernels)

    def device_info(self, index: int) -> DeviceInfo:
        """Describe device ``index``."""
        self._check(index)
        return DeviceInfo(
            name=f"boxed numpy device {index}",
            memory_bytes=None,
            dtypes=tuple(DTYPES.values()),
            vendor="flambeau example",
        )

    def synchronize(self, index: int) -> None:
        """Wait for device ``index``; numpy is synchronous, so only the index is checked."""
        self._check(index)

    def kernels(self, index: int) -> BoxedKernels:
        """The kernel set bound to device ``index``."""
        self._check(index)
        return self._kernels[index]

    def _check(self, index: int) -> None:
        count = len(self._kernels)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise IndexError(
                f"the boxed backend has {count} device(s), boxed:0 to boxed:{count - 1}; "
                f"got index {index!r}"
            )
