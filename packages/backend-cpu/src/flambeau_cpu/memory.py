"""Host memory: its size, what is free, allocating it, and running out of it as a
flambeau error."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from flambeau.backends import out_of_memory

try:  # numpy's switch for its huge-page hint; private, so absent means "leave it alone"
    from numpy._core.multiarray import _set_madvise_hugepage
except ImportError:  # pragma: no cover
    _set_madvise_hugepage = None

# numpy hints MADV_HUGEPAGE on every allocation of 4 MiB or more. Where the kernel's THP
# defrag setting is "madvise" (Debian's and Ubuntu's default), a hinted region faulted in
# while no huge page is free stalls in synchronous compaction (numpy/numpy#31590): building
# AlexNet took 545 ms instead of 175 ms here, 2.8x PyTorch, whose allocator gives no hint.
# So tensors created by the backend (parameters, above all) are allocated without it,
# unless the user asked numpy for it explicitly.
_UNHINTED_FROM = 4 << 20
_HINT_UNTOUCHED = _set_madvise_hugepage is None or os.environ.get("NUMPY_MADVISE_HUGEPAGE") == "1"


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
    """``make(shape, dtype, *args)`` (4 MiB and more without numpy's huge-page hint), with
    numpy's ``MemoryError`` (and its ``ValueError`` for sizes no address space holds)
    raised as flambeau's ``OutOfMemoryError``."""
    try:
        if shape and not _HINT_UNTOUCHED \
                and math.prod(shape) * np.dtype(dtype).itemsize >= _UNHINTED_FROM:
            return _without_hugepage_hint(make, shape, dtype, *args)
        return make(shape, dtype, *args)
    except (MemoryError, ValueError) as exc:
        requested = math.prod(shape) * np.dtype(dtype).itemsize
        if isinstance(exc, MemoryError):
            raise out_of_memory("cpu", requested, free_memory(), total_memory()) from None
        if requested > sys.maxsize:  # numpy: "array is too big"
            raise out_of_memory("cpu", requested, free_memory(), total_memory(),
                                "more than this machine can address") from None
        raise


def _without_hugepage_hint(make: Callable[..., np.ndarray], *args: Any) -> np.ndarray:
    previous = _set_madvise_hugepage(False)
    try:
        return make(*args)
    finally:
        _set_madvise_hugepage(previous)
