"""The small public types: :class:`ReduceOp` and the :class:`Work` handle."""

from __future__ import annotations

import datetime
import enum
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import DistributedError


class ReduceOp(enum.Enum):
    """How :func:`all_reduce` and :func:`reduce_scatter` combine the ranks' values.

    ``AVG`` is the sum divided by the number of ranks (truncated toward zero for integer
    tensors, as NCCL does); bool tensors take ``SUM``/``MAX`` (any) and ``PRODUCT``/``MIN``
    (all).

    >>> ReduceOp.SUM, ReduceOp("max")
    (<ReduceOp.SUM: 'sum'>, <ReduceOp.MAX: 'max'>)
    """

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


def seconds(timeout: datetime.timedelta | float | None) -> float | None:
    """A timeout in seconds (``timedelta`` or number), or ``None``."""
    if isinstance(timeout, datetime.timedelta):
        return timeout.total_seconds()
    return None if timeout is None else float(timeout)


class Work:
    """A collective started with ``async_op=True``.

    Its result is in the tensors once :meth:`wait` returns (or :meth:`is_completed` has
    returned True); until then, leave the tensors alone.
    """

    def __init__(self, inner: Any, finish: Iterable[Callable[[], None]] = (),
                 timeout: float | None = None) -> None:
        self._inner = inner  # the engine's handle: wait() and is_completed()
        self._finish = list(finish)  # writes results back (staged tensors), once
        self._timeout = timeout
        self._done = False

    def is_completed(self) -> bool:
        """True once the collective has finished and its result is in the tensors."""
        if not self._done and self._inner.is_completed():
            self._complete()
        return self._done

    def is_success(self) -> bool:
        """True once completed (a failed collective raises instead)."""
        return self.is_completed()

    def wait(self, timeout: datetime.timedelta | float | None = None) -> bool:
        """Block until the result is in the tensors; returns True.

        Args:
            timeout: At most this long (seconds or a ``timedelta``; default: the process
                group's ``timeout``, else no limit).

        Raises:
            DistributedError: if the time runs out (a rank is probably stuck or ahead).
        """
        if self._done:
            return True
        limit = seconds(timeout) if timeout is not None else self._timeout
        if limit is None:
            self._inner.wait()
            self._complete()
            return True
        deadline = time.monotonic() + limit
        while not self.is_completed():
            if time.monotonic() > deadline:
                raise DistributedError(
                    f"a collective did not finish within {limit:g} s; every rank must call "
                    "the same collectives in the same order (is one rank stuck or ahead?)")
            time.sleep(1e-4)
        return True

    def _complete(self) -> None:
        self._done = True
        finish, self._finish = self._finish, []
        for step in finish:
            step()
