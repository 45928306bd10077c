"""The exception hierarchy.

Every flambeau error derives from :class:`FlambeauError` and also from the builtin
exception a PyTorch user would catch (``ValueError``, ``RuntimeError``, ...), so
``except ValueError`` keeps working. Messages say what was expected, what was got,
and what to do about it.
"""

from __future__ import annotations


class FlambeauError(Exception):
    """Base class of every error flambeau raises on purpose."""


class BackendError(FlambeauError, RuntimeError):
    """A backend plugin is broken: failed to import, wrong contract version, ..."""


class InvalidDeviceError(FlambeauError, ValueError):
    """A device name is malformed or names a device type nobody provides."""


class DeviceUnavailableError(FlambeauError, RuntimeError):
    """A well-formed device cannot be used here (no backend, no hardware, bad index)."""


class ShapeError(FlambeauError, ValueError):
    """Shapes do not fit together."""


class DTypeError(FlambeauError, TypeError):
    """A dtype is not supported by an operation or a device."""


class DeviceMismatchError(FlambeauError, RuntimeError):
    """An operation got tensors that live on different devices."""


class FlambeauIndexError(FlambeauError, IndexError):
    """An index is out of range or of an unsupported kind."""


class MemoryOverlapError(FlambeauError, RuntimeError):
    """An in-place write to a tensor whose elements share memory (an ``expand`` result);
    ``clone()`` it first."""


class OutOfMemoryError(FlambeauError, MemoryError):
    """A device ran out of memory; the message names the device, the bytes asked for and
    the bytes free. Tensors that existed before stay usable."""


__all__ = [
    "BackendError",
    "DTypeError",
    "DeviceMismatchError",
    "DeviceUnavailableError",
    "FlambeauError",
    "FlambeauIndexError",
    "InvalidDeviceError",
    "MemoryOverlapError",
    "OutOfMemoryError",
    "ShapeError",
]
