"""One wording for running out of memory, so every backend reports it alike.

A backend that fails to allocate raises :func:`out_of_memory`'s error (an
:class:`~flambeau.errors.OutOfMemoryError`, which is also a ``MemoryError``) instead of
its library's own: the message names the device, the bytes asked for and, where the
backend knows them, the bytes free. Tensors that existed before stay usable.
"""

from __future__ import annotations

from ..errors import OutOfMemoryError


def format_bytes(n: int) -> str:
    """``n`` bytes in a binary unit.

    >>> format_bytes(1536), format_bytes(3 << 30), format_bytes(12)
    ('1.5 KiB', '3.0 GiB', '12 bytes')
    """
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError  # unreachable


def out_of_memory(device: str, requested: int, free: int | None = None,
                  total: int | None = None, detail: str = "") -> OutOfMemoryError:
    """The error to raise when ``requested`` bytes cannot be had on ``device``.

    >>> str(out_of_memory("cpu", 2**40, free=2**30, total=2**34))[:70]
    'out of memory on cpu: tried to allocate 1.0 TiB (1099511627776 bytes) '
    """
    have = ""
    if free is not None:
        have = f" with {format_bytes(free)}" + (
            f" of {format_bytes(total)}" if total is not None else "") + " free"
    return OutOfMemoryError(
        f"out of memory on {device}: tried to allocate {format_bytes(requested)} "
        f"({requested} bytes){have}" + (f" ({detail})" if detail else "")
        + ". Existing tensors are unchanged; free some (del) or use smaller batches.")
