"""OpenCL programs: one per (device, dtype), built from the ``sources/*.cl`` files.

Every program holds all the kernels of one dtype (elementwise, reductions, matmul,
movement and, for floats, the fused ones); the dtype comes in through a short prelude of
macros (``T``, ``CT``, ``LOAD``, ``STORE``, ... documented in ``sources/common.cl``).
Few programs keep compile time low: a PoCL build takes about a second, and kernels are
compiled to machine code lazily, on their first launch. Built programs are kept in memory
per device, and pyopencl keeps their binaries on disk (its cache, under
``~/.cache/pyopencl``; PoCL adds its own kernel cache), so later processes skip the
compiler.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from ._errors import BackendError, DTypeError

if TYPE_CHECKING:
    import pyopencl as cl

#: The source files of every program, in order.
SOURCES = ("common.cl", "elementwise.cl", "reduce.cl", "gemm.cl", "movement.cl")
#: Extra sources of float programs.
FLOAT_SOURCES = ("fused.cl",)


@dataclass(frozen=True)
class CType:
    """How one numpy dtype looks in OpenCL C."""

    storage: str  # T
    compute: str  # CT: arithmetic happens in this type
    raw: str  # an unsigned integer of the same size, for moving bits
    gemm: str  # GT: the matmul accumulator
    fmt: str  # struct format of a CT kernel argument
    raw_fmt: str  # struct format of a RAW kernel argument
    lowest: str
    highest: str


CTYPES: dict[str, CType] = {
    "bool": CType("uchar", "uchar", "uchar", "int", "B", "B", "0", "1"),
    "uint8": CType("uchar", "uchar", "uchar", "int", "B", "B", "0", "UCHAR_MAX"),
    "int8": CType("char", "char", "char", "int", "b", "b", "CHAR_MIN", "CHAR_MAX"),
    "int16": CType("short", "short", "short", "int", "h", "h", "SHRT_MIN", "SHRT_MAX"),
    "int32": CType("int", "int", "int", "int", "i", "i", "INT_MIN", "INT_MAX"),
    "int64": CType("long", "long", "long", "long", "q", "q", "LONG_MIN", "LONG_MAX"),
    "uint32": CType("uint", "uint", "uint", "uint", "I", "I", "0", "UINT_MAX"),
    "float16": CType("half", "float", "ushort", "float", "f", "H", "(-INFINITY)", "INFINITY"),
    "float32": CType("float", "float", "uint", "float", "f", "I", "(-INFINITY)", "INFINITY"),
    "float64": CType("double", "double", "ulong", "double", "d", "Q", "(-INFINITY)",
                     "INFINITY"),
}

#: Register block of the matmul kernel per accumulator type: (rows, vectors of 8 columns).
GEMM_TILE = {"float": (6, 2), "int": (6, 2), "uint": (6, 2), "double": (6, 1), "long": (6, 1)}


def _store_macro(name: str, source: CType) -> str:
    ct = CTYPES[name]
    if name == "bool":
        return "((p)[i] = (uchar)((v) != 0))"
    if name == "float16":
        wide = "double" if source.compute == "double" else "float"
        return f"vstore_half_rte(({wide})(v), (i), (p))"
    return f"((p)[i] = ({ct.storage})(v))"


def prelude(dtype: np.dtype, has_fp64: bool, has_int64_atomics: bool) -> str:
    """The macros that make the sources the kernels of ``dtype``."""
    name = dtype.name
    ct = CTYPES[name]
    lines = []
    if has_fp64:
        lines.append("#pragma OPENCL EXTENSION cl_khr_fp64 : enable")
    if has_int64_atomics:
        lines.append("#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable")
    rm, vn = GEMM_TILE[ct.gemm]
    if name == "float16":
        load, store = "vload_half((i), (p))", "vstore_half_rte((float)(v), (i), (p))"
    elif name == "bool":
        load, store = "((p)[i])", "((p)[i] = (uchar)((v) != 0))"
    else:
        load, store = "((p)[i])", f"((p)[i] = ({ct.storage})(v))"
    flags = {
        "IS_FLOAT": dtype.kind == "f",
        "IS_INT": dtype.kind in "biu",
        "IS_BOOL": dtype.kind == "b",
        "IS_UNSIGNED": dtype.kind in "bu",
        "IS_HALF": name == "float16",
        "IS_DOUBLE": name == "float64",
        "IS_UINT32": name == "uint32",
        "HAS_FP64": has_fp64,
        "HAS_INT64_ATOMICS": has_int64_atomics,
    }
    lines += [f"#define {k} {int(v)}" for k, v in flags.items()]
    lines += [
        f"#define T {ct.storage}",
        f"#define CT {ct.compute}",
        f"#define RAW {ct.raw}",
        f"#define GT {ct.gemm}",
        f"#define GT8 {ct.gemm}8",
        f"#define GEMM_RM {rm}",
        f"#define GEMM_VN {vn}",
        f"#define DTYPE_SIZE {dtype.itemsize}",
        f"#define T_LOWEST (({ct.compute}){ct.lowest})",
        f"#define T_HIGHEST (({ct.compute}){ct.highest})",
        f"#define LOAD(p, i) {load}",
        f"#define STORE(p, i, v) {store}",
    ]
    for other, oct_ in CTYPES.items():
        if other == "float64" and not has_fp64:
            continue
        lines.append(f"#define DT_{other} {oct_.storage}")
        lines.append(f"#define DSTORE_{other}(p, i, v) {_store_macro(other, ct)}")
    return "\n".join(lines) + "\n"


def read_source(name: str) -> str:
    """The text of ``sources/<name>``."""
    return resources.files(__package__).joinpath("sources", name).read_text()


def program_source(dtype: np.dtype, has_fp64: bool, has_int64_atomics: bool) -> str:
    """The full source of the program of ``dtype``."""
    files = SOURCES + (FLOAT_SOURCES if dtype.kind == "f" else ())
    parts = [prelude(dtype, has_fp64, has_int64_atomics)]
    parts += [f"/* ---- {f} ---- */\n" + read_source(f) for f in files]
    return "\n".join(parts)


class ProgramBuildError(BackendError):
    """An OpenCL program failed to compile; the message has the build log."""


def build(context: cl.Context, source: str, options: list[str], what: str) -> cl.Program:
    """Compile ``source``; on failure raise :class:`ProgramBuildError` naming ``what`` and
    quoting the compiler's log."""
    import pyopencl as cl

    try:
        return cl.Program(context, source).build(options=options)
    except cl.Error as exc:
        log = str(exc).strip()
        raise ProgramBuildError(
            f"building the OpenCL program {what} failed. Build log:\n{log}"
        ) from exc


# ---- kernel arguments ----------------------------------------------------------------

MAXD = 8
LIN = struct.Struct("<" + "q" * 8)
GEOM = struct.Struct("<" + "q" * (4 + MAXD + 4 * MAXD + 4))
RGEOM = struct.Struct("<" + "q" * (10 + 4 * MAXD))
CGEOM = struct.Struct("<" + "q" * 24)
PGEOM = struct.Struct("<" + "q" * (12 + 2 * MAXD))
LONG = struct.Struct("<q")
INT = struct.Struct("<i")
UINT = struct.Struct("<I")
ULONG = struct.Struct("<Q")


def pad(values: list[int] | tuple[int, ...]) -> list[int]:
    """``values`` followed by zeros up to :data:`MAXD` entries."""
    return [*values, *([0] * (MAXD - len(values)))]


class DTypeUnsupported(DTypeError):
    """The device cannot run kernels of this dtype."""


