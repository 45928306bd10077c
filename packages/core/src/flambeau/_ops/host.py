"""Tensor memory for code that moves values itself (``flambeau.distributed``): host copies
or views of a tensor's values, writing host values back, and the raw device array.

Where the backend's device memory is host memory (the optional kernels
``to_numpy_shared`` / ``from_numpy_shared``: the cpu backend), reads and writes go to the
tensor's own memory with no copy; writes do too where the backend lends it for a while
(``lend_host``: an OpenCL CPU device); other devices get a C-contiguous host copy.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from .._tensor import Tensor, shares_elements
from ..autograd._engine import bump_version
from ..errors import MemoryOverlapError

__all__ = ["device_array", "from_host_into", "host_buffer", "host_values", "mark_written",
           "scale_into"]


def _shared_view(t: Tensor) -> np.ndarray | None:
    view = getattr(t._k, "to_numpy_shared", None)
    return None if view is None else view(t._data)


def host_values(t: Tensor) -> np.ndarray:
    """``t``'s values as a C-contiguous numpy array: a view of ``t``'s memory where the
    backend shares it (read it only), else a copy.

    >>> import flambeau
    >>> host_values(flambeau.arange(3))
    array([0, 1, 2])
    """
    host = _shared_view(t)
    if host is None:
        return t._k.to_numpy(t._data)
    return host if host.flags.c_contiguous else np.ascontiguousarray(host)


def host_buffer(t: Tensor, keep: bool = True) -> tuple[np.ndarray, Callable[[], None]]:
    """A C-contiguous numpy array to write ``t``'s new values into, and the step that makes
    them ``t``'s (call it once, after writing). The array is ``t``'s own memory where the
    backend shares it (cpu) or lends it for a while (``lend_host``: an OpenCL CPU device),
    else a host array the step writes back. ``keep``: the array starts with ``t``'s values
    (else its contents are undefined).

    Raises:
        MemoryOverlapError: if ``t``'s elements share memory (an ``expand`` result).
    """
    _check_writable(t)
    host = _shared_view(t)
    if host is not None and host.flags.c_contiguous and host.flags.writeable:
        return host, partial(mark_written, t)
    lend = getattr(t._k, "lend_host", None) if host is None else None
    lent = None if lend is None else lend(t._data)
    if lent is not None:
        return lent[0], partial(_give_back, t, lent[1])
    if not keep:
        buf = np.empty(t._data.shape, t._data.dtype)
    else:
        buf = host_values(t) if host is None else np.array(host, order="C")
    return buf, partial(from_host_into, t, buf)


def _give_back(t: Tensor, release: Callable[[], Any]) -> None:
    release()
    mark_written(t)


def from_host_into(t: Tensor, host: np.ndarray) -> None:
    """Write ``host`` (``t``'s shape and dtype) into ``t``'s memory, in place."""
    k = t._k
    adopt = getattr(k, "from_numpy_shared", None)
    k.assign(t._data, adopt(host) if adopt is not None else k.from_numpy(host))
    bump_version(t)


def mark_written(t: Tensor) -> None:
    """Record that ``t``'s memory was written in place (autograd checks saved tensors)."""
    bump_version(t)


def device_array(t: Tensor, write: bool = False) -> Any:
    """The backend's own array behind ``t`` (for a backend's collective engine), to
    ``write`` into or not (then checked as :func:`host_buffer` checks)."""
    if write:
        _check_writable(t)
    return t._data


def _check_writable(t: Tensor) -> None:
    if shares_elements(t):
        raise MemoryOverlapError(
            f"cannot write a collective's result into a tensor of shape {list(t.shape)} "
            "whose elements share memory (an expand() result); pass a clone() instead")


def scale_into(dst: Tensor, src: Tensor, factor: float) -> None:
    """``dst = src * factor`` in one pass (``src`` of ``dst``'s shape, dtype and device):
    DDP's staging copy with the average's division folded in."""
    dst._k.binary("mul", src._data, float(factor), out=dst._data)
    bump_version(dst)
