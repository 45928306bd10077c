"""Every setting of flambeau-cuda, and the environment variables they start from (read
here and nowhere else).

``FLAMBEAU_CUDA_TF32=1`` lets float32 matrix products (``matmul``, ``Linear``, and the
convolutions, which are matrix products) use TF32 tensor cores on GPUs of compute
capability 8.0 or newer: several times faster, with about 10 bits of mantissa in the
products instead of 23. It is off by default, as in PyTorch; :func:`set_tf32` switches it
at run time.
"""

from __future__ import annotations

import os

#: Set to ``1`` to allow TF32 in float32 matrix products (off by default).
TF32_VAR = "FLAMBEAU_CUDA_TF32"
#: Which GPUs the CUDA driver shows; read only to explain an empty device list.
VISIBLE_DEVICES_VAR = "CUDA_VISIBLE_DEVICES"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


_tf32 = _flag(TF32_VAR)


def tf32_enabled() -> bool:
    """Whether float32 matrix products may use TF32 (``FLAMBEAU_CUDA_TF32``, or the last
    :func:`set_tf32`)."""
    return _tf32


def set_tf32(enabled: bool) -> None:
    """Allow (``True``) or forbid (``False``, the default) TF32 in float32 matrix products.

    The setting is cupy's, so it is process-wide: it also applies to cupy code outside
    flambeau (and overrides cupy's own ``CUPY_TF32``).

    >>> import flambeau_cuda
    >>> flambeau_cuda.set_tf32(False)
    >>> flambeau_cuda.tf32_enabled()
    False
    """
    global _tf32
    _tf32 = bool(enabled)


def visible_devices() -> str | None:
    """``CUDA_VISIBLE_DEVICES`` as set, or ``None``."""
    return os.environ.get(VISIBLE_DEVICES_VAR)
