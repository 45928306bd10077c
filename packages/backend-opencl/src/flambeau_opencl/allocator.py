"""A caching allocator of OpenCL buffers, one per device.

Creating a buffer per operation is slow on many drivers, so buffers are recycled: sizes
are rounded up to a few buckets per power of two (at most 25% waste), and a buffer whose
last array is garbage-collected goes back to its bucket's free list instead of being
released. Reuse needs no synchronisation: every kernel runs on the device's one in-order
queue, so work already queued on the old contents finishes before any later command
writes the new ones.

Running out of memory raises :class:`~flambeau.errors.OutOfMemoryError` naming the
device, the bytes requested and the bytes free; cached buffers are released and the
allocation retried first, and nothing that already exists is touched.
"""

from __future__ import annotations

from typing import Any

from flambeau.backends import format_bytes, out_of_memory

from ._errors import OutOfMemoryError

#: Smallest buffer handed out; sizes up to SMALL_LIMIT round up to multiples of it.
MIN_BLOCK = 256
SMALL_LIMIT = 4096


def bucket(nbytes: int) -> int:
    """The size of the buffer that holds ``nbytes``.

    >>> bucket(1), bucket(300), bucket(5000), bucket(1 << 20)
    (256, 512, 5120, 1048576)
    """
    if nbytes <= SMALL_LIMIT:
        return max(MIN_BLOCK, -(-nbytes // MIN_BLOCK) * MIN_BLOCK)
    step = 1 << (nbytes.bit_length() - 3)
    return -(-nbytes // step) * step


class Block:
    """One buffer lent to arrays; it returns to the allocator when garbage-collected."""

    __slots__ = ("buffer", "nbytes", "pool")

    def __init__(self, buffer: Any, nbytes: int, pool: CachingAllocator | None) -> None:
        self.buffer = buffer
        self.nbytes = nbytes
        self.pool = pool

    def __del__(self) -> None:
        pool = self.pool
        if pool is not None:
            try:  # back to its bucket's free list (inline: this runs once per array)
                size = self.nbytes
                pool.live_bytes -= size
                pool.cached_bytes += size
                free = pool._free.get(size)
                if free is None:
                    pool._free[size] = [self.buffer]
                else:
                    free.append(self.buffer)
            except Exception:  # interpreter shutdown: nothing left to return to
                pass


class CachingAllocator:
    """Buffers of one OpenCL context, recycled by size bucket.

    Args:
        context: The ``pyopencl.Context`` of the device.
        label: How errors name the device, e.g. ``"opencl:0 (pthread-AMD EPYC)"``.
        total_bytes: The device's global memory size.
        max_alloc: The largest single buffer the device allows.
    """

    def __init__(self, context: Any, label: str, total_bytes: int, max_alloc: int) -> None:
        self.context = context
        self.label = label
        self.total_bytes = total_bytes
        self.max_alloc = max_alloc
        self._free: dict[int, list[Any]] = {}
        self._buckets: dict[int, int] = {}  # request size -> bucket, for the hot path
        self.live_bytes = 0
        self.cached_bytes = 0
        self.created = 0  # buffers created (a measure of cache misses)

    def allocate(self, nbytes: int) -> Block:
        """A block of at least ``nbytes`` bytes (contents undefined)."""
        size = self._buckets.get(nbytes)
        if size is None:
            if len(self._buckets) >= 4096:
                self._buckets.clear()
            size = self._buckets[nbytes] = bucket(nbytes) if nbytes > MIN_BLOCK else MIN_BLOCK
        free = self._free.get(size)
        if free:
            buffer = free.pop()
            self.cached_bytes -= size
        else:
            buffer = self._create(size, nbytes)
        self.live_bytes += size
        return Block(buffer, size, self)

    def _create(self, size: int, requested: int) -> Any:
        import pyopencl as cl

        if size > self.max_alloc:
            raise self._oom(requested, f"a single buffer on this device holds at most "
                                       f"{format_bytes(self.max_alloc)}")
        if self.live_bytes + self.cached_bytes + size > self.total_bytes:
            self.empty_cache()
            if self.live_bytes + size > self.total_bytes:
                raise self._oom(requested)
        for attempt in range(2):
            try:
                buffer = cl.Buffer(self.context, cl.mem_flags.READ_WRITE, size)
                self.created += 1
                return buffer
            except cl.Error as exc:
                if attempt == 0 and self.cached_bytes:
                    self.empty_cache()
                    continue
                raise self._oom(requested, f"the driver said: {exc}") from exc
        raise AssertionError  # unreachable

    def _oom(self, requested: int, why: str = "") -> OutOfMemoryError:
        free = max(self.total_bytes - self.live_bytes - self.cached_bytes, 0)
        held = (f"this process holds {format_bytes(self.live_bytes)} in arrays and "
                f"{format_bytes(self.cached_bytes)} cached")
        return out_of_memory(self.label, requested, free, self.total_bytes,
                             held + (f"; {why}" if why else ""))

    def empty_cache(self) -> None:
        """Release every cached (unused) buffer to the driver."""
        for buffers in self._free.values():
            for buffer in buffers:
                buffer.release()
        self._free.clear()
        self.cached_bytes = 0

    def stats(self) -> dict[str, int]:
        """Bytes in live arrays, bytes cached, and buffers created so far."""
        return {"live_bytes": self.live_bytes, "cached_bytes": self.cached_bytes,
                "buffers_created": self.created}
