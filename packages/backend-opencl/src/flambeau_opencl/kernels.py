"""The kernel table of the contract for one OpenCL device.

Each method picks a kernel of ``sources/*.cl`` by name (``binary_add``, ``reduce_sum``,
...) in the program of the operand's dtype, packs its arguments and enqueues it; nothing
waits except ``to_numpy``. Elementwise kernels have a contiguous variant and a strided one
(``_s``) that reads broadcast and permuted operands and writes strided ``out`` views.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from flambeau.backends import broadcast_shape

from . import geometry, programs
from ._errors import DTypeError
from .array import CLArray, broadcast_strides, coalesce
from .device import DeviceState
from .fused import FusedKernels
from .gemm import GemmKernels
from .programs import LIN, LONG, ULONG

BOOL = np.dtype(bool)
INT64 = np.dtype(np.int64)
UINT32 = np.dtype(np.uint32)

_FLOAT_ONLY_UNARY = {"exp", "expm1", "log", "log1p", "sqrt", "sin", "cos", "tanh", "erf"}
_ROUNDING = {"floor", "ceil", "round"}
_BOOL_RESULT = {"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
                "logical_xor"}
_IDENTITY = {"sum": 0, "prod": 1, "all": True, "any": False}


def _typed(value: Any, dtype: np.dtype) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # out-of-range values wrap like C casts
        return np.asarray(value).astype(dtype)


@functools.lru_cache(maxsize=4096)
def _cached_scalar(value: Any, kind: type, dtype: np.dtype, raw: bool) -> bytes:
    typed = _typed(value, dtype)
    if not raw and dtype == np.float16:
        typed = typed.astype(np.float32)
    return typed.tobytes()


def _compute_scalar(value: Any, dtype: np.dtype) -> bytes:
    """``value`` as a kernel argument of ``dtype``'s compute type (CT)."""
    if value == 0 and isinstance(value, float):  # the cache cannot tell -0.0 from 0.0
        return _cached_scalar.__wrapped__(value, float, dtype, False)
    return _cached_scalar(value, value.__class__, dtype, False)


def _raw_scalar(value: Any, dtype: np.dtype) -> bytes:
    """``value`` as the bits of one element of ``dtype``."""
    if value == 0 and isinstance(value, float):
        return _cached_scalar.__wrapped__(value, float, dtype, True)
    return _cached_scalar(value, value.__class__, dtype, True)


def _prod(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


class OpenCLKernels(FusedKernels, GemmKernels):
    """The kernels of one OpenCL device; device arrays are :class:`CLArray`."""

    def __init__(self, device: DeviceState) -> None:
        self._dev = device
        self._plans: dict[tuple[str, np.dtype, int], tuple] = {}

    # ---- helpers ------------------------------------------------------------------------

    def _arr(self, x: Any) -> CLArray:
        if x.__class__ is CLArray and x.device is self._dev:
            return x
        if isinstance(x, CLArray):
            raise ValueError(f"expected an array on {self._dev.name}, got one on "
                             f"{x.device.name}")
        if isinstance(x, np.ndarray):
            raise TypeError(f"{self._dev.name} kernels take CLArray, got a numpy array of "
                            f"shape {x.shape}; copy it to the device with from_numpy first")
        raise TypeError(f"{self._dev.name} kernels take CLArray, got {type(x).__name__}")

    def _new(self, shape: tuple[int, ...], dtype: np.dtype) -> CLArray:
        return self._dev.empty(tuple(shape), dtype)

    def _contiguous(self, x: CLArray) -> CLArray:
        return x if x.contiguous else self.copy(x)

    def _launch_strided(self, dtype: np.dtype, name: str, shape: tuple[int, ...],
                        operands: list[CLArray], buffers: list, extra: list,
                        flag: int = 0) -> None:
        """Run the strided kernel ``name``: Geom over ``shape`` for ``operands`` (output
        first, each broadcast to ``shape``), then ``buffers`` and ``extra`` arguments."""
        dev = self._dev
        kernel = dev.kernel(dtype, name)
        strides = [broadcast_strides(x, shape) for x in operands]
        offsets = [x.offset for x in operands]
        for geom, n in geometry.geoms(shape, strides, offsets, lambda n: dev.split(n)[2], flag):
            if n:
                glob, loc, _ = dev.split(n)
                dev.run(kernel, glob, loc, [geom, *buffers, *extra])

    def _aliased(self, out: CLArray, *inputs: Any) -> bool:
        """True when ``out`` shares memory with an input laid out differently (writing
        it element by element could then clobber inputs not yet read)."""
        for x in inputs:
            if x.__class__ is CLArray and x.block is out.block and (
                    x.offset != out.offset or x.shape != out.shape or x.strides != out.strides):
                return True
        return False

    # ---- memory -------------------------------------------------------------------------

    def empty(self, shape, dtype):
        dtype = np.dtype(dtype)
        self._dev.check_dtype(dtype)
        return self._new(tuple(shape), dtype)

    def full(self, shape, value, dtype):
        out = self.empty(shape, dtype)
        self._fill(out, value)
        return out

    def _fill(self, out: CLArray, value: Any) -> None:
        if out.size == 0:
            return
        raw = _raw_scalar(value, out.dtype)
        if out.contiguous:
            glob, loc, chunk = self._dev.split(out.size)
            kernel = self._dev.kernel(out.dtype, "fill")
            self._dev.run(kernel, glob, loc, [LIN.pack(out.size, chunk, out.offset, 0, 0, 0, 0, 0),
                                              out.buffer, raw])
        else:
            self._launch_strided(out.dtype, "fill_s", out.shape, [out], [out.buffer], [raw])

    def from_numpy(self, host):
        dtype = host.dtype
        if not dtype.isnative:
            host = host.astype(dtype.newbyteorder("="))
            dtype = host.dtype
        self._dev.check_dtype(dtype)
        out = self._new(host.shape, dtype)
        # A private snapshot: the copy runs later, and the caller may reuse host at once.
        self._dev.upload(np.array(host, order="C", copy=True), out)
        return out

    def to_numpy(self, x):
        x = self._contiguous(self._arr(x))
        return self._dev.download(x)

    def lend_host(self, x):
        x = self._arr(x)
        if not (self._dev.host_unified and x.contiguous and x.size):
            return None  # a host copy is no slower there (or the view could not be one)
        return self._dev.map_host(x)

    def copy(self, x):
        x = self._arr(x)
        out = self._new(x.shape, x.dtype)
        if x.contiguous:
            self._dev.copy_buffer(out, x, x.size * x.dtype.itemsize)
        else:
            self._copy_into(out, x)
        return out

    def _copy_into(self, dst: CLArray, src: CLArray) -> None:
        """dst[...] = src (broadcast, cast to dst's dtype) for ``src`` not overlapping dst."""
        if dst.size == 0:
            return
        if src.dtype != dst.dtype:
            self._launch_strided(src.dtype, f"cast_to_{dst.dtype.name}", dst.shape, [dst, src],
                                 [src.buffer, dst.buffer], [])
        elif dst.contiguous and src.contiguous and src.shape == dst.shape:
            self._dev.copy_buffer(dst, src, dst.size * dst.dtype.itemsize)
        else:
            self._launch_strided(dst.dtype, "copy_s", dst.shape, [dst, src],
                                 [src.buffer, dst.buffer], [])

    def assign(self, dst, src):
        dst = self._arr(dst)
        if src.__class__ is not CLArray:
            self._fill(dst, src)
            return
        src = self._arr(src)
        if src.block is dst.block:
            if (src.offset, src.shape, src.strides) == (dst.offset, dst.shape, dst.strides):
                return
            src = self.copy(src)
        self._copy_into(dst, src)

    # ---- random numbers -----------------------------------------------------------------

    def random_bits(self, n, seed, offset):
        out = self._new((n,), UINT32)
        if n == 0:
            return out
        first, last = offset // 8, (offset + n - 1) // 8  # eight elements a Philox block
        blocks = last - first + 1
        glob, loc, chunk = self._dev.split(blocks)
        kernel = self._dev.kernel(UINT32, "random_bits")
        self._dev.run(kernel, glob, loc, [
            ULONG.pack(first), LONG.pack(chunk), LONG.pack(blocks), LONG.pack(offset - first * 8),
            LONG.pack(n), ULONG.pack(seed), out.buffer])
        return out

    # ---- elementwise --------------------------------------------------------------------

    def unary(self, op, x, out=None):
        x = self._arr(x)
        dtype = x.dtype
        if (op in _ROUNDING and dtype.kind in "biu") or (op == "abs" and dtype.kind == "b"):
            result = out if out is not None else self._new(x.shape, dtype)
            self.assign(result, x)
            return result
        if op in _FLOAT_ONLY_UNARY and dtype.kind != "f":
            raise DTypeError(f"{op} takes a float array, got {dtype}")
        out_dtype = BOOL if op == "logical_not" else dtype
        if out is None:
            out = self._new(x.shape, out_dtype)
        else:
            out = self._arr(out)
            if self._aliased(out, x):
                self.assign(out, self.unary(op, x))
                return out
        if out.size == 0:
            return out
        name = "unary_" + op
        if x.contiguous and out.contiguous and x.shape == out.shape:
            dev = self._dev
            glob, loc, chunk = dev.split(out.size)
            dev.run(dev.kernel(dtype, name), glob, loc, [
                LIN.pack(out.size, chunk, out.offset, x.offset, 0, 0, 0, 0), x.block.buffer,
                out.block.buffer])
        else:
            self._launch_strided(dtype, name + "_s", out.shape, [out, x],
                                 [x.buffer, out.buffer], [])
        return out

    def binary(self, op, a, b, out=None):
        dev = self._dev
        if (out is None and a.__class__ is CLArray and b.__class__ is CLArray
                and a.contiguous and b.contiguous and a.shape == b.shape and a.size
                and a.dtype == b.dtype and a.device is dev and b.device is dev):
            # The commonest call, kept to these checks: per-op overhead is what small
            # models pay.
            plan = self._binary_plan(op, a.dtype, a.size)
            out = dev.empty(a.shape, plan[0])
            self._binary_linear(plan, out, a, b.block.buffer, b.offset, plan[6], 0)
            return out
        if a.__class__ is not CLArray or a.device is not dev:
            a = self._arr(a)
        dtype = a.dtype
        scalar = b.__class__ is not CLArray
        if not scalar:
            if b.device is not dev:
                b = self._arr(b)
            if b.dtype != dtype:
                raise DTypeError(f"binary {op}: operands must have one dtype, got {dtype} "
                                 f"and {b.dtype}")
        if out is None:
            shape = a.shape if scalar or a.shape == b.shape else broadcast_shape(a.shape,
                                                                                  b.shape)
            out = dev.empty(shape, BOOL if op in _BOOL_RESULT else dtype)
        else:
            out = self._arr(out)
            if self._aliased(out, a, b):
                self.assign(out, self.binary(op, a, b))
                return out
        if out.size == 0:
            return out
        if scalar:
            bval, flag, zbuf, zoff = _compute_scalar(b, dtype), 1, a.block.buffer, 0
        else:
            bval, flag, zbuf, zoff = _compute_scalar(0, dtype), 0, b.block.buffer, b.offset
        if (a.contiguous and out.contiguous and a.shape == out.shape
                and (scalar or (b.contiguous and b.shape == out.shape))):
            self._binary_linear(self._binary_plan(op, dtype, out.size), out, a, zbuf, zoff,
                                bval, flag)
        else:
            operands = [out, a] if scalar else [out, a, b]
            self._launch_strided(dtype, f"binary_{op}_s", out.shape, operands,
                                 [a.buffer, zbuf], [bval, out.buffer], flag)
        return out

    def _binary_plan(self, op: str, dtype: np.dtype, size: int) -> tuple:
        """What a contiguous launch of binary ``op`` over ``size`` elements of ``dtype``
        needs, computed once: (output dtype, kernel, global and local size, chunk, packed
        geometry for offsets 0, the scalar argument when ``b`` is an array)."""
        key = (op, dtype, size)
        plan = self._plans.get(key)
        if plan is None:
            dev = self._dev
            kernel = dev.kernel(dtype, "binary_" + op)
            glob, loc, chunk = dev.split(size)
            if len(self._plans) >= 4096:
                self._plans.clear()
            plan = self._plans[key] = (
                BOOL if op in _BOOL_RESULT else dtype, kernel, glob, loc, chunk,
                LIN.pack(size, chunk, 0, 0, 0, 0, 0, 0), _compute_scalar(0, dtype))
        return plan

    def _binary_linear(self, plan: tuple, out: CLArray, a: CLArray, zbuf: Any, zoff: int,
                       bval: bytes, flag: int) -> None:
        """Launch the contiguous binary kernel of ``plan``: ``out = a <op> z`` with ``z``
        the array at ``zbuf[zoff:]`` or, with ``flag`` 1, the scalar ``bval``."""
        _, kernel, glob, loc, chunk, head, _ = plan
        if out.offset or a.offset or zoff or flag:
            head = LIN.pack(out.size, chunk, out.offset, a.offset, zoff, 0, flag, 0)
        self._dev.run(kernel, glob, loc, [head, a.block.buffer, zbuf, bval, out.block.buffer])

    def where(self, cond, a, b):
        cond, a, b = self._arr(cond), self._arr(a), self._arr(b)
        if cond.dtype != BOOL:
            cond = self.cast(cond, BOOL)
        shape = broadcast_shape(cond.shape, a.shape, b.shape)
        out = self._new(shape, a.dtype)
        if out.size == 0:
            return out
        dev = self._dev
        if all(x.contiguous and x.shape == shape for x in (cond, a, b)):
            glob, loc, chunk = dev.split(out.size)
            dev.run(dev.kernel(a.dtype, "where"), glob, loc, [
                LIN.pack(out.size, chunk, 0, a.offset, b.offset, cond.offset, 0, 0),
                cond.buffer, a.buffer, b.buffer, out.buffer])
        else:
            self._launch_strided(a.dtype, "where_s", shape, [out, a, b, cond],
                                 [cond.buffer, a.buffer, b.buffer, out.buffer], [])
        return out

    def cast(self, x, dtype):
        x = self._arr(x)
        dtype = np.dtype(dtype)
        if dtype == x.dtype:
            return self.copy(x)
        self._dev.check_dtype(dtype)
        out = self._new(x.shape, dtype)
        if out.size == 0:
            return out
        name = f"cast_to_{dtype.name}"
        if x.contiguous:
            dev = self._dev
            glob, loc, chunk = dev.split(out.size)
            dev.run(dev.kernel(x.dtype, name), glob, loc, [
                LIN.pack(out.size, chunk, 0, x.offset, 0, 0, 0, 0), x.buffer, out.buffer])
        else:
            self._launch_strided(x.dtype, name + "_s", x.shape, [out, x], [x.buffer, out.buffer],
                                 [])
        return out

    # ---- reductions ---------------------------------------------------------------------

    def reduce(self, op, x, axes, keepdims):
        x = self._arr(x)
        axes = tuple(range(x.ndim)) if axes is None else tuple(axes)
        out_dtype = BOOL if op in ("all", "any") else x.dtype
        out_shape = self._reduced_shape(x.shape, axes, keepdims)
        rows = _prod(out_shape)
        row_len = _prod([x.shape[a] for a in axes])
        if rows == 0 or row_len == 0:
            if op not in _IDENTITY and rows:
                raise ValueError(f"reduce {op}: zero-size reduction has no identity")
            return self.full(out_shape, _IDENTITY.get(op, 0), out_dtype)
        out = self._new(out_shape, out_dtype)
        self._reduce_rows(op, x, axes, out, rows, row_len)
        return out

    @staticmethod
    def _reduced_shape(shape, axes, keepdims) -> tuple[int, ...]:
        if keepdims:
            return tuple(1 if d in axes else n for d, n in enumerate(shape))
        return tuple(n for d, n in enumerate(shape) if d not in axes)

    def _row_layout(self, x: CLArray, axes: tuple[int, ...]):
        """(x, kept dims, reduced dims) with dims as (sizes, strides) innermost first; x is
        copied when the dimensions do not fit the kernel's struct."""
        kept = [d for d in range(x.ndim) if d not in axes]
        k = coalesce(tuple(x.shape[d] for d in kept), [tuple(x.strides[d] for d in kept)])
        r = coalesce(tuple(x.shape[d] for d in axes), [tuple(x.strides[d] for d in axes)])
        if len(k[0]) > programs.MAXD or len(r[0]) > programs.MAXD:
            moved = x.view(tuple(x.shape[d] for d in kept + list(axes)),
                           tuple(x.strides[d] for d in kept + list(axes)), x.offset)
            x = self.copy(moved)
            nk = len(kept)
            return self._row_layout(x, tuple(range(nk, x.ndim)))
        return x, (k[0], k[1][0]), (r[0], r[1][0])

    def _row_split(self, rows: int, row_len: int, op_parts: bool, kernel: Any = None):
        """(local size, parts, rows per group) for reducing ``rows`` rows with ``kernel``."""
        dev = self._dev
        if dev.gpu_style:
            local = dev.group if kernel is None else dev.group_limit(kernel)
            while local > 32 and local // 2 >= row_len:
                local //= 2
            parts = 1
            if op_parts and rows < dev.units * 4:
                parts = max(1, min(-(-row_len // (local * 16)), -(-dev.units * 8 // rows)))
            return local, parts, 1
        wanted = max(1, min(rows * row_len // 16384, dev.units * 4))
        if rows >= wanted:
            return 1, 1, -(-rows // wanted)
        parts = -(-wanted // rows) if op_parts else 1
        if op_parts:
            parts = max(min(parts, -(-row_len // 4096)), -(-row_len // 65536), 1)
        return 1, parts, 1

    def _reduce_rows(self, op: str, x: CLArray, axes, out: CLArray, rows: int,
                     row_len: int) -> None:
        x, kept, reduced = self._row_layout(x, axes)
        kernel = self._dev.kernel(x.dtype, "reduce_" + op)
        local, parts, per_group = self._row_split(rows, row_len, True, kernel)
        part_len = -(-row_len // parts)
        groups = -(-rows // per_group) * parts
        target = out if parts == 1 else self._new((rows, parts), out.dtype)
        geom = geometry.rgeom(rows, row_len, parts, part_len, per_group, kept, reduced,
                              x.offset, target.offset)
        scratch = self._dev.local(local * 8)  # fits every accumulator type
        self._dev.run(kernel, (groups * local,), (local,), [geom, x.buffer, target.buffer, scratch])
        if parts > 1:  # second pass over the partial results
            self._reduce_rows(op, target, (1,), out, rows, parts)

    def arg_reduce(self, op, x, axis, keepdims):
        x = self._arr(x)
        axes = tuple(range(x.ndim)) if axis is None else (axis,)
        if axis is None:
            out_shape = (1,) * x.ndim if keepdims else ()
        else:
            out_shape = self._reduced_shape(x.shape, axes, keepdims)
        rows = _prod(out_shape)
        row_len = _prod([x.shape[a] for a in axes])
        out = self._new(out_shape, INT64)
        if rows == 0:
            return out
        if row_len == 0:
            raise ValueError(f"{op} of an empty sequence (axis {axis} has size 0)")
        x, kept, reduced = self._row_layout(x, axes)
        kernel = self._dev.kernel(x.dtype, "arg_" + op)
        local, _, per_group = self._row_split(rows, row_len, False, kernel)
        groups = -(-rows // per_group)
        geom = geometry.rgeom(rows, row_len, 1, row_len, per_group, kept, reduced, x.offset, 0)
        scratch = self._dev.local(local * 8)
        self._dev.run(kernel, (groups * local,), (local,),
                      [geom, x.buffer, out.buffer, scratch, scratch])
        return out

    # ---- movement -----------------------------------------------------------------------

    def reshape(self, x, shape):
        x = self._arr(x)
        shape = tuple(shape)
        if x.contiguous:
            return x.view(shape, None, x.offset)
        return self.copy(x).view(shape, None, 0)

    def permute(self, x, axes):
        x = self._arr(x)
        return x.view(tuple(x.shape[a] for a in axes), tuple(x.strides[a] for a in axes),
                      x.offset)

    def broadcast_to(self, x, shape):
        x = self._arr(x)
        shape = tuple(shape)
        return x.view(shape, broadcast_strides(x, shape), x.offset)

    def getitem(self, x, index):
        x = self._arr(x)
        if len(index) > x.ndim:
            raise IndexError(f"too many indices: {len(index)} for an array of {x.ndim} "
                             "dimension(s)")
        shape: list[int] = []
        strides: list[int] = []
        offset = x.offset
        for d, item in enumerate(index):
            n, s = x.shape[d], x.strides[d]
            if isinstance(item, slice):
                start, stop, step = item.indices(n)
                length = len(range(start, stop, step))
                if length:
                    offset += start * s
                shape.append(length)
                strides.append(s * step)
            else:
                i = int(item)
                if not -n <= i < n:
                    raise IndexError(f"index {i} is out of bounds for dimension {d} of size {n}")
                offset += (i % n) * s
        shape += x.shape[len(index):]
        strides += x.strides[len(index):]
        return x.view(tuple(shape), tuple(strides), offset)

    def setitem(self, x, index, value):
        self.assign(self.getitem(x, index), value)

    def concatenate(self, arrays, axis):
        arrays = [self._arr(a) for a in arrays]
        first = arrays[0]
        total = sum(a.shape[axis] for a in arrays)
        shape = (*first.shape[:axis], total, *first.shape[axis + 1:])
        out = self._new(shape, first.dtype)
        at = 0
        for part in arrays:
            size = part.shape[axis]
            if size and part.size:
                index = (slice(None),) * axis + (slice(at, at + size),)
                self._copy_into(self.getitem(out, index), part)
            at += size
        return out

    def pad(self, x, widths, value):
        x = self._arr(x)
        shape = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, widths))
        out = self.full(shape, value, x.dtype)
        if x.size:
            inner = tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape, widths))
            self._copy_into(self.getitem(out, inner), x)
        return out

    def gather(self, x, axis, index):
        x, index = self._arr(x), self._arr(index)
        other = tuple(1 if d == axis else n for d, n in enumerate(x.shape))
        shape = broadcast_shape(index.shape, other)
        out = self._new(shape, x.dtype)
        if out.size == 0:
            return out
        x_strides = list(broadcast_strides(x.view(other, x.strides, x.offset), shape))
        x_view = x.view(shape, tuple(x_strides), x.offset)
        self._launch_strided(x.dtype, "gather_s", shape, [out, index, x_view],
                             [x.buffer, index.buffer, out.buffer],
                             [LONG.pack(x.strides[axis]), LONG.pack(x.shape[axis])])
        return out

    def take(self, x, index, axis):
        x, index = self._arr(x), self._arr(index)
        shape = (*x.shape[:axis], *index.shape, *x.shape[axis + 1:])
        out = self._new(shape, x.dtype)
        if out.size == 0:
            return out
        x, index = self._contiguous(x), self._contiguous(index)
        inner = _prod(x.shape[axis + 1:])
        dev = self._dev
        glob, loc, chunk = dev.split(out.size)
        dev.run(dev.kernel(x.dtype, "take"), glob, loc, [
            LIN.pack(out.size, chunk, 0, x.offset, index.offset, 0, 0, 0), x.buffer,
            index.buffer, out.buffer, LONG.pack(x.shape[axis]), LONG.pack(inner),
            LONG.pack(index.size)])
        return out

    def scatter_add(self, dst, axis, index, src):
        dst, index, src = self._arr(dst), self._arr(index), self._arr(src)
        if src.size == 0:
            return
        if src.dtype != dst.dtype:
            src = self.cast(src, dst.dtype)
        dev = self._dev
        zeroed = tuple(0 if d == axis else s for d, s in enumerate(dst.strides))
        shape = src.shape
        if dst.dtype.itemsize == 8 and not dev.has_int64_atomics:
            # Deterministic, without atomics: over the other dimensions, see movement.cl.
            other = tuple(1 if d == axis else n for d, n in enumerate(shape))
            d_view = dst.view(other, zeroed, dst.offset)
            i_view = index.view(other, tuple(0 if d == axis else s
                                             for d, s in enumerate(index.strides)), index.offset)
            s_view = src.view(other, tuple(0 if d == axis else s
                                           for d, s in enumerate(src.strides)), src.offset)
            self._launch_strided(dst.dtype, "scatter_add_owner_s", other,
                                 [d_view, i_view, s_view],
                                 [dst.buffer, index.buffer, src.buffer],
                                 [LONG.pack(dst.strides[axis]), LONG.pack(index.strides[axis]),
                                  LONG.pack(src.strides[axis]), LONG.pack(dst.shape[axis]),
                                  LONG.pack(shape[axis])])
            return
        d_view = dst.view(shape, zeroed[:len(shape)], dst.offset)
        self._launch_strided(dst.dtype, "scatter_add_s", shape, [d_view, index, src],
                             [dst.buffer, index.buffer, src.buffer],
                             [LONG.pack(dst.strides[axis]), LONG.pack(dst.shape[axis])])

