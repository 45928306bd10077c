"""flambeau: a small deep-learning framework with device backends as plugins.

>>> import flambeau
>>> flambeau.device("cuda:1")
device(type='cuda', index=1)
"""

from __future__ import annotations

from . import backends, cuda, errors, opencl
from ._device import (
    Device,
    device,
    device_count,
    devices,
    get_default_device,
    set_default_device,
    synchronize,
)
from .errors import FlambeauError

__version__ = "0.1.0"

__all__ = [
    "Device",
    "FlambeauError",
    "__version__",
    "backends",
    "cuda",
    "device",
    "device_count",
    "devices",
    "errors",
    "get_default_device",
    "opencl",
    "set_default_device",
    "synchronize",
]
