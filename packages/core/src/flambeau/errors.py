"""The exception hierarchy.

Every flambeau error derives from :class:`FlambeauError` and also from the builtin
exception a PyTorch user would catch (``ValueError``, ``RuntimeError``, ...), so
``except ValueError`` keeps working. Messages say what was expected, what was got,
and what to do about it.
"""

from __future__ import annotations

from typing import Any


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


class ScalarTypeError(DTypeError, RuntimeError):
    """A tensor has a dtype the operation does not take, where PyTorch raises a
    ``RuntimeError`` (``one_hot`` of int32 indices, a float64 class weight beside float32
    logits): both a :class:`DTypeError` and a ``RuntimeError``."""


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



class AutogradError(FlambeauError, RuntimeError):
    """Backward cannot run: freed graph, modified saved tensor, missing gradient..."""


class MetaDataError(FlambeauError, RuntimeError):
    """Values of a meta tensor were read; meta tensors only have shapes."""


class UninitializedParameterError(FlambeauError, RuntimeError):
    """An uninitialised (lazy) parameter was used before it got its shape."""


class StateDictError(FlambeauError, RuntimeError):
    """A state dict does not fit the module; the module was left unchanged."""


class LayerInputError(ShapeError):
    """A layer got an input it cannot take; the message names the layer by its dotted path
    in the model that was called (filled in as the error leaves each enclosing module)."""

    def __init__(self, layer: Any, detail: str) -> None:
        super().__init__(detail)
        self.layer = layer
        self.detail = detail
        self.path: list[str] = []
        self._innermost = layer

    def entered(self, module: Any) -> None:
        """Record that the error is leaving ``module``'s ``__call__``."""
        if module is self._innermost:
            return
        for name, child in module._modules.items():
            if child is self._innermost:
                self.path.insert(0, name)
                break
        else:  # called through a container that is not called itself (a ModuleList)
            for name, child in module.named_modules():
                if child is self._innermost and name:
                    self.path[0:0] = name.split(".")
                    break
        self._innermost = module

    def __str__(self) -> str:
        where = ".".join(self.path) or "the model"
        return f"layer {where!r} ({self.layer._get_name()}): {self.detail}"


class SerializationError(FlambeauError, ValueError):
    """A file is not a valid flambeau/safetensors file, or an object cannot be saved.

    The message names the file, what was expected there and what was found.
    """


class CheckpointNotFoundError(SerializationError, FileNotFoundError):
    """The path to load does not exist (also a ``FileNotFoundError``)."""


class DistributedError(FlambeauError, RuntimeError):
    """A collective cannot run: no process group, MPI missing, ranks that disagree, an
    engine that failed; the message says which and what to do."""


class EngineUnavailableError(DistributedError):
    """A device backend's own collective engine cannot run here (its library is missing,
    say). With ``init_process_group(backend=None)`` the host engine (MPI) serves the device
    instead; where the engine was named (``"cuda:nccl"``), the message reaches the user."""


class DataLoaderError(FlambeauError, RuntimeError):
    """A ``DataLoader`` worker process died (the message names the worker and the signal),
    timed out, or could not send its batch back. Errors raised by the dataset itself keep
    their own type."""


__all__ = [
    "AutogradError",
    "BackendError",
    "CheckpointNotFoundError",
    "DataLoaderError",
    "DTypeError",
    "DeviceMismatchError",
    "DeviceUnavailableError",
    "DistributedError",
    "EngineUnavailableError",
    "FlambeauError",
    "FlambeauIndexError",
    "InvalidDeviceError",
    "LayerInputError",
    "MemoryOverlapError",
    "MetaDataError",
    "OutOfMemoryError",
    "ScalarTypeError",
    "SerializationError",
    "ShapeError",
    "StateDictError",
    "UninitializedParameterError",
]
