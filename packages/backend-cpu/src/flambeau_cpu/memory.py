"""Host memory: its size, what is free, and running out of it as a flambeau error."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from flambeau.backends import out_of_memory


def total_memory() -> int | None:
    """Physical memory of the host, in bytes (``None`` where the OS won't say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def free_memory() -> int | None:
    """Memory available to new allocations (Linux's MemAvailable), in bytes."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def allocate(make: Callable[..., np.ndarray], shape: Any, dtype: Any, *args: Any
             ) -> np.ndarray:
    """``make(shape, dtype, *args)``, with numpy's ``MemoryError`` (and its ``ValueError``
    for sizes no address space holds) raised as flambeau's ``OutOfMemoryError``."""
    try:
        return make(shape, dtype, *args)
    except (MemoryError, ValueError) as exc:
        requested = math.prod(shape) * np.dtype(dtype).itemsize
        if isinstance(exc, MemoryError):
            raise out_of_memory("cpu", requested, free_memory(), total_memory()) from None
        if requested > sys.maxsize:  # numpy: "array is too big"
            raise out_of_memory("cpu", requested, free_memory(), total_memory(),
                                "more than this machine can address") from None
        raise
