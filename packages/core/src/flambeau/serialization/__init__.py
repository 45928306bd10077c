"""Saving and loading tensors, state dicts and nested containers: safetensors files.

File layout (the safetensors format, https://github.com/huggingface/safetensors)::

    bytes 0..8        N, the header length: unsigned 64-bit little-endian
    bytes 8..8+N      the header: a UTF-8 JSON object, padded with spaces
    bytes 8+N..       the data: every tensor's raw little-endian bytes, C order,
                      back to back with no gaps, overlaps or trailing bytes

    header = {"__metadata__": {STR: STR, ...},                      (optional)
              NAME: {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]},
              ...}

``data_offsets`` count from the start of the data. dtypes: ``BOOL U8 I8 I16 I32 I64 F16
F32 F64`` (flambeau's dtypes); other safetensors codes (``BF16``, ``U32``, ...) are
validated but refused when read. flambeau writes the data in the order the
``safetensors`` package does (larger dtypes first, then by name), so every tensor is
aligned to its element size, and pads the header to a multiple of 8 bytes.

flambeau's keys in ``__metadata__`` (all values are strings, as the format requires):

* ``"format": "pt"``: tensors are in PyTorch's layout (Hugging Face loaders require it).
* ``"flambeau.format": "1"``: the version of the keys below.
* ``"flambeau.structure"``: JSON of the saved object's tree, so lists, tuples, nested
  dicts (with str/int/float/bool/None keys) and plain values (ints, floats, bools,
  strings, None, e.g. an optimizer's step counters and hyper-parameters) come back as
  they were. Nodes: ``{"tensor": NAME}``, ``{"list": [...]}``, ``{"tuple": [...]}``,
  ``{"dict": [[KEY, NODE], ...]}``, ``{"value": SCALAR}``, ``{"float": "nan"|"inf"|"-inf"}``.
  A tensor's NAME is its path, joined with dots (``"0.weight"``, ``"state.0.exp_avg"``;
  ``"tensor"`` for a lone tensor; ``#1``, ``#2``... appended if two paths collide).
* ``"flambeau.aliases"`` (only when some tensors are tied): JSON ``{ALIAS: NAME}``.
  Tensors sharing one storage (a tied parameter under two names) are stored once under
  the first NAME; loading returns one tensor object under every alias.

No device is recorded. Nothing is ever pickled, and a pickle (``torch.save``'s format) is
refused unread. Loading validates the whole header (and flambeau's keys) before reading
any data; a file without flambeau's keys (from ``safetensors`` or PyTorch) loads as a
dict of its tensors. Loads read the data into memory, so loaded tensors are values
whatever later happens to the file; ``mmap=True`` maps the file instead (zero-copy, but
see :func:`load` for the hazard). Saves are atomic and durable; a FIFO or device (such as
``/dev/null``) is written through in place instead, never replaced: see :mod:`._writer`.

>>> import flambeau, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "mydict")
>>> flambeau.save({"x": flambeau.arange(4), "step": 3}, path)
>>> flambeau.load(path)
{'x': tensor([0, 1, 2, 3]), 'step': 3}
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import CheckpointNotFoundError, SerializationError
from ._format import MAX_HEADER_BYTES
from ._reader import Reader, TensorInfo, TensorSlice, load
from ._writer import save


def open(path: str | os.PathLike, device: Any = None, *,
         mmap: bool | None = None) -> Reader:
    """Open a file lazily: names, shapes and dtypes come from the header alone, and
    tensors (or slices of them) are read when asked for.

    Args:
        path: The file.
        device: Where tensors read from it go (default: the default device).
        mmap: As for :func:`load`: by default tensors and slices are read into memory
            when asked for; ``True`` maps the file (see the hazard there).

    >>> import flambeau, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt")
    >>> flambeau.save({"w": flambeau.ones(3, 2)}, path)
    >>> with flambeau.serialization.open(path) as f:
    ...     f.keys(), f.info("w").dtype, f.get_slice("w")[0]
    (['w'], dtype('float32'), tensor([1., 1.]))
    """
    return Reader(path, device, mmap=mmap)


__all__ = [
    "MAX_HEADER_BYTES", "CheckpointNotFoundError", "Reader", "SerializationError",
    "TensorInfo", "TensorSlice", "load", "open", "save",
]
