"""The core's exception classes this backend raises."""

from __future__ import annotations

from flambeau.errors import BackendError, DeviceUnavailableError, DTypeError

try:
    from flambeau.errors import OutOfMemoryError
except ImportError:  # a core older than OutOfMemoryError
    from flambeau.errors import FlambeauError

    class OutOfMemoryError(FlambeauError, MemoryError):  # type: ignore[no-redef]
        """A device ran out of memory."""


__all__ = ["BackendError", "DTypeError", "DeviceUnavailableError", "OutOfMemoryError"]
