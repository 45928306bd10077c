"""The safetensors container: dtype codes, and reading + validating a header.

:func:`read_header` checks everything the header claims (JSON shape, dtypes, shapes,
sizes, offsets, coverage of the data section) before any caller touches tensor data.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from ..errors import SerializationError

#: Largest header accepted (the ``safetensors`` package's own limit): a corrupt length
#: field must not make the reader allocate gigabytes.
MAX_HEADER_BYTES = 100_000_000

#: Most dimensions a tensor may have (numpy's limit, ``numpy.ndarray``'s ``MAXDIMS``).
MAX_DIMS = 64
#: Largest dimension, and largest byte count even of an empty tensor's non-zero
#: dimensions: what int64 (numpy's ``intp``) holds.
MAX_SIZE = 2**63 - 1

#: Bits per element of every dtype code the safetensors format defines.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F4": 4,
    "F6_E2M3": 6, "F6_E3M2": 6, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32,
    "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}

#: The codes flambeau reads and writes, as little-endian numpy dtypes.
FILE_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("bool"), "U8": np.dtype("uint8"), "I8": np.dtype("int8"),
    "I16": np.dtype("<i2"), "I32": np.dtype("<i4"), "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
}
CODES: dict[np.dtype, str] = {dt.newbyteorder("="): code for code, dt in FILE_DTYPES.items()}
#: ``BF16`` too, as ``flambeau.bfloat16``: :func:`file_dtype` and :func:`code_of` import it
#: (``ml_dtypes``) only when a file or a tensor has it.

#: Order of tensors in the data section, as the ``safetensors`` package writes them
#: (larger dtypes first, then by name): every offset is aligned to its element size.
WRITE_RANK: dict[str, int] = {"I64": 0, "F64": 1, "F32": 2, "I32": 3, "BF16": 4, "F16": 5,
                              "I16": 6, "I8": 7, "U8": 8, "BOOL": 9}


def file_dtype(code: str) -> np.dtype | None:
    """The numpy dtype of safetensors dtype ``code``, or ``None`` when flambeau lacks it."""
    if code == "BF16":
        from .._dtypes import load_bfloat16

        return load_bfloat16()
    return FILE_DTYPES.get(code)


def code_of(dtype: np.dtype) -> str | None:
    """The safetensors code of ``dtype``, or ``None``."""
    return "BF16" if dtype.kind == "V" and dtype.name == "bfloat16" else CODES.get(dtype)

_ENTRY_KEYS = {"dtype", "shape", "data_offsets"}


@dataclass(frozen=True)
class Entry:
    """One tensor of the header: dtype code, shape and byte range in the data section."""

    name: str
    code: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin

    @property
    def dtype(self) -> np.dtype | None:
        """The little-endian numpy dtype, or ``None`` when flambeau lacks the code."""
        return file_dtype(self.code)


@dataclass(frozen=True)
class Header:
    """A validated header: tensors in data order, metadata, where the data starts."""

    entries: dict[str, Entry]
    metadata: dict[str, str]
    data_start: int
    file_size: int


def read_header(f: BinaryIO, size: int, where: str) -> Header:
    """Read and validate the header of open file ``f`` of ``size`` bytes.

    Raises:
        SerializationError: naming ``where`` (the path) and the first problem found.
    """
    if size < 8:
        got = "is empty (0 bytes)" if size == 0 else f"has only {size} bytes"
        raise SerializationError(
            f"{where} {got}; a safetensors file starts with an 8-byte header length, then "
            "a JSON header and the tensor data")
    prefix = _read_exactly(f, 0, 8, where)
    length = int.from_bytes(prefix, "little")
    if length > MAX_HEADER_BYTES or length > size - 8 or length < 2:
        _refuse_foreign(f, prefix, where)
        if length < 2:
            raise SerializationError(f"{where}: the header length is {length} bytes; a "
                                     "header holds at least '{}' (2 bytes)")
        if length > MAX_HEADER_BYTES:
            raise SerializationError(
                f"{where}: the header length field says {length} bytes, more than the "
                f"{MAX_HEADER_BYTES}-byte limit; the file is corrupt or not safetensors")
        raise SerializationError(
            f"{where}: the header length field says {length} bytes but only {size - 8} "
            "bytes follow it; the file is truncated or not safetensors")
    raw = _read_exactly(f, 8, length, where)
    if raw[:1] != b"{":
        _refuse_foreign(f, prefix, where)
        raise SerializationError(f"{where}: the header must be a JSON object starting with "
                                 f"'{{', got {raw[:16]!r}...")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SerializationError(f"{where}: the header is not valid UTF-8 ({exc.reason} at "
                                 f"header byte {exc.start})") from None
    parsed = _parse_json(text, f"{where}: the header")
    if not isinstance(parsed, dict):
        raise SerializationError(f"{where}: the header must be a JSON object, got "
                                 f"{type(parsed).__name__}")
    metadata = parsed.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict) or not all(
            isinstance(v, str) for v in metadata.values()):
        raise SerializationError(f"{where}: '__metadata__' must map strings to strings, got "
                                 f"{_short(metadata)}")
    data_size = size - 8 - length
    entries = [_entry(name, value, data_size, where) for name, value in parsed.items()]
    entries.sort(key=lambda e: (e.begin, e.end))
    expected = 0
    for entry in entries:
        if entry.begin < expected:
            raise SerializationError(
                f"{where}: tensor {entry.name!r} has data_offsets [{entry.begin}, "
                f"{entry.end}], overlapping the tensor before it (which ends at {expected})")
        if entry.begin > expected:
            raise SerializationError(
                f"{where}: tensor {entry.name!r} starts at data byte {entry.begin}, leaving "
                f"a gap after byte {expected}; tensors must cover the data without gaps")
        expected = entry.end
    if expected != data_size:
        raise SerializationError(
            f"{where}: {data_size - expected} bytes of trailing data after the last tensor "
            f"(the tensors end at data byte {expected}, the data section has {data_size})")
    return Header({e.name: e for e in entries}, metadata, 8 + length, size)


def _entry(name: str, value: Any, data_size: int, where: str) -> Entry:
    what = f"{where}: tensor {name!r}"
    if not isinstance(value, dict) or set(value) != _ENTRY_KEYS:
        raise SerializationError(f"{what} must be an object with exactly the keys dtype, "
                                 f"shape and data_offsets, got {_short(value)}")
    code, shape, offsets = value["dtype"], value["shape"], value["data_offsets"]
    if not isinstance(code, str) or code not in DTYPE_BITS:
        raise SerializationError(f"{what} has unknown dtype {_short(code)}; safetensors "
                                 f"dtypes are {', '.join(DTYPE_BITS)}")
    if not isinstance(shape, list) or not all(_is_count(s) for s in shape):
        raise SerializationError(f"{what} has shape {_short(shape)}; expected a list of "
                                 "non-negative integers")
    _check_shape(shape, DTYPE_BITS[code], what)
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(_is_count(o) for o in offsets)):
        raise SerializationError(f"{what} has data_offsets {_short(offsets)}; expected "
                                 "[begin, end], two non-negative integers")
    begin, end = offsets
    if begin > end:
        raise SerializationError(f"{what} has data_offsets [{begin}, {end}]: begin after end")
    if end > data_size:
        raise SerializationError(
            f"{what} has data_offsets [{begin}, {end}], past the end of the data section "
            f"({data_size} bytes); the file is truncated or the header is corrupt")
    bits = _numel_capped(shape, 8 * data_size + 8) * DTYPE_BITS[code]
    if bits != 8 * (end - begin):
        raise SerializationError(
            f"{what}: shape {shape} of {code} needs {_bytes(bits)} bytes but data_offsets "
            f"[{begin}, {end}] hold {end - begin}")
    return Entry(name, code, tuple(shape), begin, end)


def _check_shape(shape: list[int], bits: int, what: str) -> None:
    """Refuse shapes no tensor can have, even an empty one (whose bytes check passes)."""
    if len(shape) > MAX_DIMS:
        raise SerializationError(f"{what} has {len(shape)} dimensions; a tensor has at most "
                                 f"{MAX_DIMS}; the header is corrupt")
    big = max(shape, default=0)
    if big > MAX_SIZE:
        raise SerializationError(f"{what} has shape {_short(shape)} with a dimension of {big}; "
                                 f"dimensions are at most 2**63 - 1; the header is corrupt")
    if 0 in shape:  # numpy still refuses when the other dimensions overflow int64 bytes
        nonzero = [size for size in shape if size]
        if _numel_capped(nonzero, MAX_SIZE + 1) * -(-bits // 8) > MAX_SIZE:
            raise SerializationError(
                f"{what} has shape {_short(shape)}: empty, but its other dimensions "
                "multiply to more than 2**63 - 1 bytes, which no tensor can have; the "
                "header is corrupt")


def _numel_capped(shape: list[int], cap: int) -> int:
    """The product of ``shape``, or ``cap`` once it exceeds ``cap`` (no huge integers)."""
    if 0 in shape:
        return 0
    n = 1
    for size in shape:
        n *= size
        if n > cap:
            return cap
    return n


def _bytes(bits: int) -> str:
    return str(bits // 8) if bits % 8 == 0 else f"{bits / 8:g}"


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _short(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list, str, int, float)) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _parse_json(text: str, what: str) -> Any:
    """Strict JSON (no NaN/Infinity, no duplicate keys); errors name ``what``."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except RecursionError:
        raise SerializationError(f"{what} is nested too deeply to be valid") from None
    except ValueError as exc:
        raise SerializationError(f"{what} is not valid JSON: {exc}") from None


def _read_exactly(f: BinaryIO, offset: int, n: int, where: str) -> bytes:
    f.seek(offset)
    data = f.read(n)
    if len(data) != n:
        raise SerializationError(f"{where} ended at byte {offset + len(data)} while reading "
                                 f"{n} bytes at {offset}; was it changed while being read?")
    return data


_CONVERT = ("flambeau never unpickles files (unpickling can run arbitrary code). Convert "
            "it once with PyTorch: `import torch; from safetensors.torch import save_file; "
            "save_file(torch.load(PATH, weights_only=True), 'model.safetensors')` (for a "
            "state dict of tensors), then flambeau.load('model.safetensors')")


def _refuse_foreign(f: BinaryIO, prefix: bytes, where: str) -> None:
    """Raise a tailored error when the file is a pickle or zip archive (never unpickled)."""
    if prefix[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        f.seek(0)
        head = f.read(4096)
        if b"data.pkl" in head or b"/version" in head or b"archive/" in head:
            raise SerializationError(f"{where} is a PyTorch pickle checkpoint (the zip "
                                     f"archive torch.save writes), not safetensors; "
                                     + _CONVERT)
        raise SerializationError(f"{where} is a zip archive (e.g. numpy's .npz), not a "
                                 "safetensors file")
    if prefix[0] == 0x80 and 2 <= prefix[1] <= 5:
        raise SerializationError(f"{where} is a Python pickle (e.g. a PyTorch checkpoint in "
                                 f"torch.save's legacy format), not safetensors; " + _CONVERT)


def describe_path(path: Any) -> str:
    """The path as text for messages (``os.PathLike`` allowed)."""
    return repr(os.fsdecode(path)) if isinstance(path, (str, bytes, os.PathLike)) else \
        repr(path)
