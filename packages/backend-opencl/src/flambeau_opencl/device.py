"""One OpenCL device in use: its context, in-order queue, allocator, programs and
launch sizes.

Kernels are enqueued and never waited for; the host waits only to read a result back
(``download``) or in :meth:`DeviceState.finish` (``synchronize``). Host-to-device copies
are enqueued without blocking too: their host buffers are kept until they complete.

On CPU devices launches are released to the driver in batches: a CPU driver (PoCL) wakes
one of its worker threads for every command that becomes ready, and on a machine whose
cores the host shares with those workers that wake costs more than the launch itself.
Small launches (one work-item) queue behind a user event (the gate) that is completed
after :data:`GATE_BATCH` of them, with the next larger launch, or before anything waits on
the queue.
"""

from __future__ import annotations

import atexit
import threading
from collections import deque
from functools import partial
from typing import Any

import numpy as np

from flambeau.backends import format_bytes

from . import programs
from ._errors import BackendError, DTypeError, OutOfMemoryError
from .allocator import CachingAllocator
from .array import CLArray, layout

# Setting a kernel's scalar argument from bytes: pyopencl's fast path when it has one.
_SET_ARG_BUF = "_set_arg_buf"

#: Work-items per group on GPUs (elementwise and reductions).
GPU_GROUP = 256
#: Smallest share of elements per work-item on CPUs (below it, one work-group does all).
CPU_MIN_CHUNK = 2048
#: Host copies in flight kept before waiting for the oldest.
MAX_PENDING_UPLOADS = 256
#: Small launches held behind the gate of a CPU device before it is opened.
GATE_BATCH = 64


class DeviceState:
    """The resources of one device, created on first use.

    Args:
        cl_device: The ``pyopencl.Device``.
        index: Its index ``i`` in ``opencl:i``.
        gpu_style: Launch like a GPU (groups of 256, one element per work-item) even on a
            CPU; ``None`` decides by device type. Tests use it to run the GPU code paths.
    """

    def __init__(self, cl_device: Any, index: int, gpu_style: bool | None = None) -> None:
        import pyopencl as cl

        self.cl_device = cl_device
        self.index = index
        self.name = f"opencl:{index}"
        self.label = f"{self.name} ({cl_device.name.strip()})"
        extensions = set(cl_device.extensions.split())
        self.has_fp64 = "cl_khr_fp64" in extensions or bool(cl_device.double_fp_config)
        self.has_int64_atomics = "cl_khr_int64_base_atomics" in extensions
        self.little_endian = bool(cl_device.endian_little)
        try:  # deprecated since OpenCL 2.0, where a driver may no longer answer
            self.host_unified = bool(cl_device.host_unified_memory)
        except cl.Error:
            self.host_unified = False
        is_cpu = bool(cl_device.type & cl.device_type.CPU)
        self.gpu_style = (not is_cpu) if gpu_style is None else gpu_style
        self.units = max(int(cl_device.max_compute_units), 1)
        max_group = int(cl_device.max_work_group_size)
        self.group = 1 << (min(GPU_GROUP, max_group).bit_length() - 1)
        self.context = cl.Context([cl_device])
        self.queue = cl.CommandQueue(self.context)
        self.gated = is_cpu
        self._gate: Any = None
        self._held = 0
        atexit.register(self.release)  # a closed gate would leave the queue unfinishable
        self.allocator = CachingAllocator(self.context, self.label,
                                          int(cl_device.global_mem_size),
                                          int(cl_device.max_mem_alloc_size))
        self.dtypes = supported_dtypes(self.has_fp64)
        self.options = ["-cl-std=CL1.2"]
        fp_config = int(cl_device.single_fp_config)
        if fp_config & int(cl.device_fp_config.CORRECTLY_ROUNDED_DIVIDE_SQRT):
            self.options.append("-cl-fp32-correctly-rounded-divide-sqrt")
        self._programs: dict[np.dtype, Any] = {}
        self._kernels: dict[tuple[np.dtype, str], Any] = {}
        self._pending: deque = deque()
        self._cl = cl
        self._last_args: dict[int, list] = {}
        self._splits: dict[int, tuple] = {}
        self._local: dict[int, Any] = {}
        self._fast_set = hasattr(cl.Kernel, _SET_ARG_BUF)
        self._enqueue = cl.enqueue_nd_range_kernel
        self._limits: dict[int, int] = {}
        # Setting arguments and enqueueing must not interleave between threads.
        self._lock = threading.Lock()
        self.finish_calls = 0

    # ---- programs and launches ------------------------------------------------------------

    def check_dtype(self, dtype: np.dtype) -> None:
        """Raise a clear error for a dtype this device cannot handle."""
        if dtype not in self.dtypes:
            if dtype == np.float64:
                raise DTypeError(
                    f"{self.label} does not support float64: the device lacks the cl_khr_fp64 "
                    "extension. Use float32 (tensor.float()) on this device."
                )
            raise DTypeError(f"{self.label} does not support dtype {dtype}; it supports "
                             + ", ".join(d.name for d in self.dtypes))

    def program(self, dtype: np.dtype) -> Any:
        """The built program of ``dtype`` (built on first use)."""
        prog = self._programs.get(dtype)
        if prog is None:
            self.check_dtype(dtype)
            source = programs.program_source(dtype, self.has_fp64, self.has_int64_atomics)
            prog = programs.build(self.context, source, self.options,
                                  f"'{dtype.name}' for {self.label}")
            self._programs[dtype] = prog
        return prog

    def kernel(self, dtype: np.dtype, name: str) -> Any:
        """The kernel ``name`` of the program of ``dtype``."""
        key = (dtype, name)
        kernel = self._kernels.get(key)
        if kernel is None:
            prog = self.program(dtype)
            try:
                kernel = getattr(prog, name)
            except (AttributeError, self._cl.Error) as exc:
                raise DTypeError(f"{self.label} has no kernel {name!r} for {dtype}: the "
                                 f"operation is not defined for {dtype}") from exc
            self._kernels[key] = kernel
        return kernel

    def run(self, kernel: Any, global_size: tuple[int, ...], local_size: tuple[int, ...] | None,
            args: list | tuple) -> None:
        """Set ``args`` (buffers, local memory, or packed scalars as bytes) and enqueue.

        Arguments equal to the ones the kernel already holds are not set again: setting an
        argument costs about as much as the launch itself on some drivers.
        """
        last = self._last_args.get(id(kernel))
        if last is None:
            last = self._last_args[id(kernel)] = [None] * len(args)
        with self._lock:
            try:
                for i, arg in enumerate(args):
                    prev = last[i]
                    if prev is arg:
                        continue
                    if arg.__class__ is bytes:
                        if prev == arg:
                            continue
                        if self._fast_set:
                            kernel._set_arg_buf(i, arg)
                        else:
                            kernel.set_arg(i, arg)
                    else:
                        kernel.set_arg(i, arg)
                    last[i] = arg
                if not self.gated:
                    self._enqueue(self.queue, kernel, global_size, local_size)
                elif global_size == (1,):  # one work-item: small work, held back
                    if self._gate is None:
                        self._close()
                    self._enqueue(self.queue, kernel, global_size, local_size)
                    self._held += 1
                    if self._held >= GATE_BATCH:
                        self._open()
                else:  # work for several threads: it goes now, with whatever waits
                    self._enqueue(self.queue, kernel, global_size, local_size)
                    if self._gate is not None:
                        self._open()
            except self._cl.Error as exc:
                raise self.launch_error(kernel, exc) from exc

    def _close(self) -> None:
        cl = self._cl
        self._gate = cl.UserEvent(self.context)
        cl.enqueue_barrier(self.queue, wait_for=[self._gate])
        self._held = 0

    def _open(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set_status(self._cl.command_execution_status.COMPLETE)

    def release(self) -> None:
        """Let the device start every command queued so far (before anything waits)."""
        if self._gate is not None:
            with self._lock:
                self._open()

    def group_limit(self, kernel: Any) -> int:
        """The largest power-of-two work-group ``kernel`` can run with (at most
        :attr:`group`): register-hungry kernels may allow fewer than the device does."""
        limit = self._limits.get(id(kernel))
        if limit is None:
            cl = self._cl
            most = kernel.get_work_group_info(cl.kernel_work_group_info.WORK_GROUP_SIZE,
                                              self.cl_device)
            limit = self._limits[id(kernel)] = min(self.group,
                                                   1 << (max(int(most), 1).bit_length() - 1))
        return limit

    def local(self, nbytes: int) -> Any:
        """A (cached) local-memory kernel argument of ``nbytes``."""
        mem = self._local.get(nbytes)
        if mem is None:
            mem = self._local[nbytes] = self._cl.LocalMemory(nbytes)
        return mem

    def launch_error(self, kernel: Any, exc: Exception) -> Exception:
        """A clear error for a failed launch (out of resources, a lost device...)."""
        try:
            name = kernel.function_name
        except Exception:
            name = "?"
        text = str(exc)
        if "MEM_OBJECT_ALLOCATION_FAILURE" in text or "OUT_OF_RESOURCES" in text:
            alloc = self.allocator
            return OutOfMemoryError(
                f"out of memory on {self.label} running kernel {name!r}: {text}; this "
                f"process holds {format_bytes(alloc.live_bytes)} in arrays of "
                f"{format_bytes(alloc.total_bytes)}"
            )
        return BackendError(f"{self.label}: kernel {name!r} failed: {text}")

    def split(self, n: int) -> tuple[tuple[int], tuple[int], int]:
        """(global size, local size, chunk) for ``n`` elements handled ``chunk`` per
        work-item."""
        found = self._splits.get(n)
        if found is None:
            found = self._splits[n] = self._split(n)
            if len(self._splits) > 4096:
                self._splits.clear()
        return found

    def _split(self, n: int) -> tuple[tuple[int], tuple[int], int]:
        if not self.gpu_style:
            chunk = max(-(-n // (self.units * 4)), CPU_MIN_CHUNK)
            chunk = (chunk + 15) & ~15
            return (-(-n // chunk),), (1,), chunk
        chunk = max(1, -(-n // (1 << 26)))
        items = -(-n // chunk)
        group = self.group
        return (-(-items // group) * group,), (group,), chunk

    # ---- memory -------------------------------------------------------------------------

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> CLArray:
        """A new C-contiguous array (contents undefined)."""
        strides, size = layout(shape)
        return CLArray.packed(self.allocator.allocate(max(size, 1) * dtype.itemsize), shape,
                              strides, size, dtype, self)

    def upload(self, host: np.ndarray, x: CLArray) -> None:
        """Copy C-contiguous ``host`` into contiguous ``x`` without waiting."""
        if host.size == 0:
            return
        cl = self._cl
        pending = self._pending
        done = cl.command_execution_status.COMPLETE
        while pending and pending[0].command_execution_status == done:
            pending.popleft()
        if len(pending) >= MAX_PENDING_UPLOADS:
            self.release()
            pending.popleft().wait()
        raw = host.view(np.uint8) if host.dtype == np.bool_ else host
        event = cl.enqueue_copy(self.queue, x.buffer, raw, dst_offset=x.offset * x.dtype.itemsize,
                                is_blocking=False)
        pending.append(event)  # keeps ``raw`` alive until the copy is done

    def download(self, x: CLArray) -> np.ndarray:
        """The elements of contiguous ``x`` on the host (waits for the work queued before)."""
        host = np.empty(x.shape, np.uint8 if x.dtype == np.bool_ else x.dtype)
        if host.size:
            self.release()
            try:
                self._cl.enqueue_copy(self.queue, host, x.buffer,
                                      src_offset=x.offset * x.dtype.itemsize, is_blocking=True)
            except self._cl.Error as exc:
                raise BackendError(f"{self.label}: reading an array back failed: {exc}. "
                                   "A kernel queued before it may have failed.") from exc
        return host.view(np.bool_) if x.dtype == np.bool_ else host

    def map_host(self, x: CLArray) -> tuple[np.ndarray, Any]:
        """(A writable numpy view of contiguous ``x``'s memory, the step that unmaps it):
        maps after every command queued before (so pending writes to ``x`` land first);
        the unmap is enqueued, so commands queued after it see the host's writes."""
        cl = self._cl
        self.release()
        dtype = np.dtype(np.uint8) if x.dtype == np.bool_ else x.dtype
        try:
            host, _ = cl.enqueue_map_buffer(
                self.queue, x.buffer, cl.map_flags.READ | cl.map_flags.WRITE,
                x.offset * x.dtype.itemsize, x.shape, dtype, is_blocking=True)
        except cl.Error as exc:
            raise BackendError(f"{self.label}: mapping an array to the host failed: {exc}. "
                               "A kernel queued before it may have failed.") from exc
        mapping = host.base
        while not isinstance(mapping, cl.MemoryMap):  # reshaped views stack up bases
            mapping = mapping.base
        return (host.view(np.bool_) if x.dtype == np.bool_ else host), partial(
            mapping.release, self.queue)

    def copy_buffer(self, dst: CLArray, src: CLArray, nbytes: int) -> None:
        """Copy ``nbytes`` from contiguous ``src`` to contiguous ``dst`` on the device."""
        if nbytes:
            self._cl.enqueue_copy(self.queue, dst.buffer, src.buffer, byte_count=nbytes,
                                  src_offset=src.offset * src.dtype.itemsize,
                                  dst_offset=dst.offset * dst.dtype.itemsize)

    def finish(self) -> None:
        """Block until everything queued on this device has run."""
        self.finish_calls += 1
        self.release()
        try:
            self.queue.finish()
        except self._cl.Error as exc:
            raise BackendError(f"{self.label}: waiting for the device failed: {exc}") from exc
        self._pending.clear()


def supported_dtypes(has_fp64: bool) -> tuple[np.dtype, ...]:
    """Every contract dtype; float64 only with cl_khr_fp64. float16 is always there: it is
    stored as half and computed in float32 (vload_half/vstore_half, core OpenCL 1.2)."""
    from flambeau.backends import DTYPES

    return tuple(d for d in DTYPES.values() if has_fp64 or d != np.float64)
