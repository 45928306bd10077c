"""Matrix products: packing kernels plus the register-blocked product of ``gemm.cl``.

Every product, batched matmul and the convolutions of :mod:`~flambeau_opencl.fused`
alike, runs as: pack operand A into row panels, pack operand B into column panels
(both of any strides: transposed or broadcast operands cost nothing extra), then one
``gemm`` launch over (column blocks, row blocks, batches).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flambeau.backends import broadcast_shape

from . import geometry, programs
from ._errors import DTypeError
from .array import CLArray, broadcast_strides, coalesce
from .programs import CTYPES, GEMM_TILE, LONG

GEMM_DTYPES = {name: np.dtype(dt) for name, dt in (
    ("float", "float32"), ("double", "float64"), ("int", "int32"), ("uint", "uint32"),
    ("long", "int64"))}


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def tile(dtype: np.dtype) -> tuple[int, int]:
    """(rows, columns) of the block of C one work-item computes for ``dtype``."""
    rm, vn = GEMM_TILE[CTYPES[dtype.name].gemm]
    return rm, 8 * vn


class Panels:
    """An operand packed for ``gemm``: the buffer, the batch stride of its panels (0 for
    one matrix shared by every batch) and the batch modulus (batch b uses panels b % mod).
    """

    __slots__ = ("array", "mod", "stride")

    def __init__(self, array: CLArray, stride: int, mod: int) -> None:
        self.array, self.stride, self.mod = array, stride, mod


class GemmKernels:
    """``matmul`` and the packing and product helpers the fused convolutions share."""

    _dev: Any

    def matmul(self, a, b):
        a, b = self._arr(a), self._arr(b)
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul needs operands with ndim >= 2, got {a.shape} and {b.shape}")
        (m, k), (k2, n) = a.shape[-2:], b.shape[-2:]
        if k != k2:
            raise ValueError(f"matmul: inner sizes differ, {a.shape} @ {b.shape}")
        if a.dtype != b.dtype:
            raise DTypeError(f"matmul: operands must have one dtype, got {a.dtype} and "
                             f"{b.dtype}")
        batch = broadcast_shape(a.shape[:-2], b.shape[:-2])
        out = self._new((*batch, m, n), a.dtype)
        if out.size == 0:
            return out
        if k == 0:
            self._fill(out, 0)
            return out
        rm, nr = tile(a.dtype)
        ap = self._pack("pack_a", a, batch, m, k, rm, a.strides[-2], a.strides[-1])
        bp = self._pack("pack_b", b, batch, n, k, nr, b.strides[-1], b.strides[-2])
        self._gemm(ap, bp, out, m, n, k, _prod(batch))
        return out

    def _pack(self, name: str, x: CLArray, batch: tuple[int, ...], rows: int, cols: int,
              block: int, row_stride: int, col_stride: int, *, inner_cols: int = 0,
              outer_col_stride: int = 0) -> Panels:
        """The matrices of ``x`` over ``batch`` (rows x cols at the given strides) as
        zero-padded panels of ``block`` rows in the accumulator type (see gemm.cl).

        Batch dimensions x lacks are shared: when only leading ones are missing or
        broadcast, x is packed once per distinct matrix and found by a modulus."""
        dev = self._dev
        bstrides = broadcast_strides(x.view(x.shape[:-2], x.strides[:-2], x.offset), batch)
        lead = 0
        while lead < len(batch) and bstrides[lead] == 0:
            lead += 1
        own = batch[lead:]
        if any(s == 0 and n != 1 for s, n in zip(bstrides[lead:], own)):
            own, lead = batch, 0  # broadcast in the middle: one copy per batch
        bshape, bst = coalesce(own, [bstrides[lead:]])
        if len(bshape) > programs.MAXD:
            raise ValueError(f"matmul: too many batch dimensions in {x.shape}")
        nbatch = _prod(own)
        blocks = -(-rows // block)
        gt = GEMM_DTYPES[CTYPES[x.dtype.name].gemm]
        panel = blocks * cols * block
        packed = self._new((nbatch * panel,), gt)
        panels = nbatch * blocks
        if dev.gpu_style:
            chunk, local = 1, (64, 1)
            glob = (-(-cols // 64) * 64, panels)
        else:  # a few thousand elements per work-item
            chunk = max(1, min(cols, -(-4096 // block), -(-cols * panels // (dev.units * 8))))
            local, glob = (1, 1), (-(-cols // chunk), panels)
        geom = geometry.pgeom(panels, chunk, rows, cols, block, blocks, row_stride, col_stride,
                              x.offset, (bshape, bst[0]), inner_cols, outer_col_stride)
        dev.run(dev.kernel(x.dtype, name), glob, local, [geom, x.buffer, packed.buffer])
        return Panels(packed, 0 if nbatch == 1 else panel, max(nbatch, 1))

    def _gemm(self, a: Panels, b: Panels, out: CLArray, m: int, n: int, k: int,
              batches: int) -> None:
        """out (batches, m, n), contiguous = A @ B from packed panels."""
        dev = self._dev
        rm, nr = tile(out.dtype)
        mb, nb = -(-m // rm), -(-n // nr)
        if dev.gpu_style:
            local = (8, 8, 1)
            glob = (-(-nb // 8) * 8, -(-mb // 8) * 8, batches)
        else:
            local, glob = (1, 1, 1), (nb, mb, batches)
        dev.run(dev.kernel(out.dtype, "gemm"), glob, local, [
            a.array.buffer, b.array.buffer, out.buffer, LONG.pack(m), LONG.pack(n),
            LONG.pack(k), LONG.pack(mb), LONG.pack(nb), LONG.pack(a.stride),
            LONG.pack(b.stride), LONG.pack(a.mod), LONG.pack(b.mod)])
