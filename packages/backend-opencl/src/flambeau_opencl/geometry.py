"""Packing iteration shapes into the kernel argument structs of ``sources/*.cl``.

Dimensions are coalesced first (:func:`~flambeau_opencl.array.coalesce`), so most
operations reach the kernels with one or two dimensions; a shape that still has more than
:data:`~flambeau_opencl.programs.MAXD` is split along its outermost dimension into
several launches.
"""

from __future__ import annotations

from collections.abc import Iterator

from .array import coalesce
from .programs import GEOM, MAXD, PGEOM, RGEOM, pad


def geoms(shape: tuple[int, ...], strides: list[tuple[int, ...]], offsets: list[int],
          chunk_of, flag: int = 0) -> Iterator[tuple[bytes, int]]:
    """``Geom`` structs (with their element counts) covering ``shape`` for up to four
    operands of the given strides and offsets; ``chunk_of(n)`` gives the launch split and
    ``flag`` is passed on (binary kernels: the second operand is a scalar).

    Yields one struct per launch; usually exactly one.
    """
    dims, st = coalesce(shape, strides)
    if len(dims) > MAXD:
        outer, inner = shape[0], shape[1:]
        for k in range(outer):
            yield from geoms(inner, [s[1:] for s in strides],
                             [o + k * s[0] for o, s in zip(offsets, strides)], chunk_of, flag)
        return
    n = 1
    for d in dims:
        n *= d
    st = st + [[0] * len(dims)] * (4 - len(st))
    offsets = list(offsets) + [0] * (4 - len(offsets))
    chunk = chunk_of(n)
    values = [len(dims), n, chunk, flag, *pad(dims)]
    for s in st:
        values += pad(s)
    values += offsets
    yield GEOM.pack(*values), n


def rgeom(rows: int, row_len: int, parts: int, part_len: int, rows_per_group: int,
          kept: tuple[list[int], list[int]], reduced: tuple[list[int], list[int]],
          offset: int, out_offset: int) -> bytes:
    """An ``RGeom``: kept and reduced dimensions as (sizes, strides), innermost first."""
    return RGEOM.pack(rows, row_len, parts, part_len, rows_per_group, len(kept[0]),
                      len(reduced[0]), offset, out_offset, 0, *pad(kept[0]), *pad(kept[1]),
                      *pad(reduced[0]), *pad(reduced[1]))


def pgeom(panels: int, chunk: int, rows: int, cols: int, block: int, blocks: int,
          row_stride: int, col_stride: int, offset: int,
          batch: tuple[list[int], list[int]], inner_cols: int = 0,
          outer_col_stride: int = 0) -> bytes:
    """A ``PGeom`` for the matmul packing kernels; batch dimensions innermost first.
    Column k of the operand is at ``(k // inner_cols) * outer_col_stride + (k %
    inner_cols) * col_stride`` (``inner_cols`` 0: all columns are inner)."""
    return PGEOM.pack(panels, chunk, rows, cols, block, blocks, row_stride, col_stride, offset,
                      len(batch[0]), inner_cols or max(cols, 1), outer_col_stride,
                      *pad(batch[0]), *pad(batch[1]))
