"""Reading files: whole objects (:func:`load`) or tensor by tensor (:class:`Reader`).

Two ways to get bytes, chosen per reader:

* ``pread`` (the default): each tensor is read at its offset into a fresh array, which a
  backend that can adopt host memory (the optional kernel ``from_numpy_shared``, which the
  cpu backend has) takes over without a copy; other devices get the bytes through one
  reusable host buffer of the largest tensor's size, copied to the device tensor by
  tensor, so host memory stays near the largest tensor. Once read, a tensor is a value:
  whatever later happens to the file does not change it.
* ``mmap`` (opt-in, ``mmap=True``, like ``torch.load(..., mmap=True)``): the file is
  mapped copy-on-write (``mmap.ACCESS_COPY``, i.e. ``MAP_PRIVATE``) and tensors of a
  backend that can adopt host memory are views of the mapping, so loading copies
  nothing and pages are read when first touched; writing to such a tensor copies that
  page privately and never reaches the file. The hazard: the tensors stay tied to the
  file. If another program truncates it, the next read of a tensor kills the process
  (``SIGBUS``); if it rewrites the file in place, pages not yet copied show the new
  bytes. Replacing the file (``flambeau.save`` renames a new file over it) is safe.
  Use it for files nothing else writes while the tensors live.
"""

from __future__ import annotations

import builtins
import mmap as _mmap
import os
import stat
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._device import resolve_device
from .._dtypes import check_device
from .._tensor import Size, Tensor, _wrap
from ..errors import CheckpointNotFoundError, FlambeauIndexError, SerializationError
from ._format import FILE_DTYPES, Entry, describe_path, read_header
from ._structure import build, plan


@dataclass(frozen=True)
class TensorInfo:
    """What the header says about one tensor (no data is read).

    Attributes:
        name: The name asked for (possibly an alias).
        shape: Its shape.
        dtype: Its numpy dtype, or ``None`` when flambeau lacks the file's dtype.
        file_dtype: The safetensors dtype code (``"F32"``, ``"BF16"``, ...).
        nbytes: Bytes of data in the file.
    """

    name: str
    shape: Size
    dtype: np.dtype | None
    file_dtype: str
    nbytes: int


class Reader:
    """An open flambeau/safetensors file: the validated header now, tensors on demand.

    Create it with :func:`flambeau.serialization.open`; use it as a context manager.
    Tensors already returned stay valid after :meth:`close`.

    >>> import flambeau, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt")
    >>> flambeau.save({"w": flambeau.zeros(4, 3)}, path)
    >>> with flambeau.serialization.open(path) as f:
    ...     f.info("w").shape, f.get_slice("w")[1:3].shape
    (flambeau.Size([4, 3]), flambeau.Size([2, 3]))
    """

    def __init__(self, path: str | os.PathLike, device: Any = None, *,
                 mmap: bool | None = None) -> None:
        self.where = describe_path(path)
        self._device, self._kernels = resolve_device(device)
        self._adopt = getattr(self._kernels, "from_numpy_shared", None)
        use_map = bool(mmap)  # None (the default) reads; see the module docstring
        self._file = _open_file(path, self.where)
        self._map: Any = None
        try:
            size = os.fstat(self._file.fileno()).st_size
            self._header = read_header(self._file, size, self.where)
            self._plan = plan(self._header.entries, self._header.metadata, self.where)
            if use_map:
                self._map = _mmap.mmap(self._file.fileno(), 0, access=_mmap.ACCESS_COPY)
                if len(self._map) != size:
                    raise SerializationError(f"{self.where} changed size while being opened")
        except BaseException:
            self.close()
            raise
        self._lock = threading.Lock()  # for seek + readinto where os.preadv is missing
        self._scratch: np.ndarray | None = None

    # --- the header -----------------------------------------------------------------------

    def keys(self) -> list[str]:
        """Names of the tensors in the file (data order), then their aliases."""
        return [*self._header.entries, *self._plan.aliases]

    names = keys

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._header.entries) + len(self._plan.aliases)

    def __contains__(self, name: object) -> bool:
        return name in self._header.entries or name in self._plan.aliases

    @property
    def aliases(self) -> dict[str, str]:
        """Tied tensors: each alias name and the stored tensor it is."""
        return dict(self._plan.aliases)

    @property
    def metadata(self) -> dict[str, str]:
        """The header's ``__metadata__`` (flambeau's keys included)."""
        return dict(self._header.metadata)

    def info(self, name: str) -> TensorInfo:
        """Shape, dtype and size of tensor ``name`` from the header alone."""
        entry = self._entry(name)
        return TensorInfo(name, Size(entry.shape), _native(entry.dtype), entry.code,
                          entry.nbytes)

    # --- data -----------------------------------------------------------------------------

    def get_tensor(self, name: str) -> Tensor:
        """Tensor ``name`` (or an alias of it), read now, on the reader's device."""
        entry = self._entry(name)
        self._check_dtype(entry)
        return self._tensor(entry)

    __getitem__ = get_tensor

    def get_slice(self, name: str) -> TensorSlice:
        """A handle on tensor ``name`` whose ``[index]`` reads only what it needs (with
        pread: the span of rows the index's first component covers)."""
        entry = self._entry(name)
        self._check_dtype(entry)
        return TensorSlice(self, entry)

    def load(self) -> Any:
        """The whole saved object: every dtype is checked before any data is read, then
        tensors are read in file order; aliases give the same tensor object."""
        entries = self._header.entries
        for entry in entries.values():
            self._check_dtype(entry)
        try:
            tensors = {name: self._tensor(entry, stream=True) for name, entry in entries.items()}
        finally:
            self._scratch = None
        return build(self._plan.tree, tensors, self._plan.aliases)

    def close(self) -> None:
        """Close the file. Tensors mapped from it (``mmap=True``) keep the mapping alive
        until freed."""
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                pass  # arrays still view it; it is unmapped when the last one goes
            self._map = None
        self._file.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._file.closed else f"{len(self)} tensors"
        return f"<flambeau.serialization.Reader {self.where} ({state})>"

    # --- internals ------------------------------------------------------------------------

    def _entry(self, name: str) -> Entry:
        if self._file.closed:
            raise SerializationError(f"the reader of {self.where} is closed")
        stored = self._plan.aliases.get(name, name)
        entry = self._header.entries.get(stored)
        if entry is None:
            shown = ", ".join(map(repr, self.keys()[:8])) + (" ..." if len(self) > 8 else "")
            raise KeyError(f"{self.where} has no tensor {name!r}; it has {shown or 'none'}")
        return entry

    def _check_dtype(self, entry: Entry) -> None:
        if entry.dtype is None:
            raise SerializationError(
                f"{self.where}: tensor {entry.name!r} has dtype {entry.code}, which flambeau "
                f"does not support (it reads {', '.join(FILE_DTYPES)}, BF16); convert the "
                "file, e.g. to F32 with safetensors and PyTorch")
        if entry.code == "BF16":
            check_device(entry.dtype, self._device)

    def _tensor(self, entry: Entry, index: tuple | None = None, *, stream: bool = False
                ) -> Tensor:
        """One tensor on the reader's device; ``stream`` (only :meth:`load`, one thread)
        lets pread reuse one host buffer for devices that copy from it."""
        host, fresh = self._host(entry, index, stream)
        if not host.dtype.isnative or not host.flags.aligned:
            host, fresh = host.astype(_native(host.dtype)), True
        if self._adopt is not None and (fresh or self._map is not None):
            data = self._adopt(host)
        else:
            data = self._kernels.from_numpy(host)
        return _wrap(data, self._device, self._kernels)

    def _host(self, entry: Entry, index: tuple | None, stream: bool
              ) -> tuple[np.ndarray, bool]:
        """(host array in the file's dtype, whether it is a fresh array nobody else uses)."""
        dtype = entry.dtype
        assert dtype is not None
        if entry.nbytes == 0:
            return _index(np.empty(entry.shape, dtype), index), True
        start = self._header.data_start + entry.begin
        if self._map is not None:
            whole = np.frombuffer(self._map, dtype, entry.nbytes // dtype.itemsize, start)
            whole = whole.reshape(entry.shape)
            if index is None:
                return whole, False
            return _index(whole, index).copy(), True
        if index is None or not entry.shape:
            fresh = self._adopt is not None or not stream
            host = self._read(start, entry.nbytes, fresh=fresh)
            return _index(host.view(dtype).reshape(entry.shape), index), fresh
        # Read only the rows the first index component touches, then index those.
        first, rest = index[0], index[1:]
        rows = range(first, first + 1) if isinstance(first, int) else \
            range(*first.indices(entry.shape[0]))
        if len(rows) == 0:
            return _index(np.empty(entry.shape, dtype), index), True
        lo, hi = min(rows), max(rows) + 1
        row_bytes = entry.nbytes // entry.shape[0]
        block = self._read(start + lo * row_bytes, (hi - lo) * row_bytes, fresh=True)
        block = block.view(dtype).reshape((hi - lo, *entry.shape[1:]))
        if isinstance(first, int):
            first = first - lo
        else:
            stop = rows.stop - lo
            first = slice(rows.start - lo, stop if stop >= 0 else None, rows.step)
        return _index(block, (first, *rest)).copy(), True

    def _read(self, offset: int, n: int, *, fresh: bool) -> np.ndarray:
        """``n`` bytes at ``offset`` as uint8: a fresh array, or the reusable buffer."""
        if fresh:
            out = np.empty(n, np.uint8)
        else:
            if self._scratch is None or self._scratch.size < n:
                self._scratch = None
                self._scratch = np.empty(max(n, self._largest()), np.uint8)
            out = self._scratch[:n]
        view = memoryview(out)
        done = 0
        fd = self._file.fileno()
        while done < n:
            if hasattr(os, "preadv"):
                got = os.preadv(fd, [view[done:]], offset + done)
            else:
                with self._lock:
                    self._file.seek(offset + done)
                    got = self._file.readinto(view[done:])
            if not got:
                raise SerializationError(f"{self.where} ended at byte {offset + done} while "
                                         f"reading {n} bytes at {offset}; was it changed?")
            done += got
        return out

    def _largest(self) -> int:
        return max((e.nbytes for e in self._header.entries.values()), default=0)


class TensorSlice:
    """Tensor ``name`` of a :class:`Reader`, not read yet; index it to read part of it.

    Indices are ints, slices (any step) and ``...``, as in ``x[2:8, ::2]``.
    """

    def __init__(self, reader: Reader, entry: Entry) -> None:
        self._reader = reader
        self._entry = entry

    @property
    def shape(self) -> Size:
        """The shape of the whole tensor."""
        return Size(self._entry.shape)

    @property
    def dtype(self) -> np.dtype:
        """The dtype."""
        return _native(self._entry.dtype)

    def __getitem__(self, index: Any) -> Tensor:
        self._reader._entry(self._entry.name)  # raises once the reader is closed
        return self._reader._tensor(self._entry, _normalize(index, self._entry.shape))

    def __repr__(self) -> str:
        return f"<TensorSlice {self._entry.name!r} shape={list(self.shape)} dtype={self.dtype}>"


def _normalize(index: Any, shape: tuple[int, ...]) -> tuple:
    """``index`` as a tuple of in-range non-negative ints and slices, one per dimension."""
    items = list(index) if isinstance(index, tuple) else [index]
    if sum(item is Ellipsis for item in items) > 1:
        raise FlambeauIndexError("an index can only have a single ellipsis ('...')")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at:at + 1] = [slice(None)] * (len(shape) - len(items) + 1)
    if len(items) > len(shape):
        raise FlambeauIndexError(f"too many indices: {len(items)} for a tensor of shape "
                                 f"{list(shape)}")
    out: list[Any] = []
    for dim, (item, size) in enumerate(zip(items, shape)):
        if isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            i = int(item)
            if not -size <= i < size:
                raise FlambeauIndexError(f"index {i} is out of range for dimension {dim} of "
                                         f"size {size}")
            out.append(i % size)
        elif isinstance(item, slice):
            if item.step == 0:
                raise FlambeauIndexError("slice step cannot be zero")
            out.append(item)
        else:
            raise FlambeauIndexError(f"a lazy slice takes ints, slices and '...', got "
                                     f"{type(item).__name__}")
    return (*out, *[slice(None)] * (len(shape) - len(out)))


def _index(array: np.ndarray, index: tuple | None) -> np.ndarray:
    # A trailing ``...`` keeps a full integer index a 0-d array instead of a numpy scalar.
    return array if index is None else array[(*index, ...)]


def _native(dtype: np.dtype | None) -> Any:
    return None if dtype is None else dtype.newbyteorder("=")


def _open_file(path: Any, where: str) -> Any:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"expected a path (str or os.PathLike), got {type(path).__name__}")
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise SerializationError(f"{where} is a directory, not a file; name the "
                                     "checkpoint file inside it")
        if not stat.S_ISREG(mode):
            raise SerializationError(f"{where} is not a regular file")
        return builtins.open(path, "rb")
    except FileNotFoundError:
        raise CheckpointNotFoundError(f"{where} does not exist") from None
    except PermissionError:
        raise SerializationError(f"cannot read {where}: permission denied") from None
    except OSError as exc:
        raise SerializationError(f"cannot read {where}: {exc.strerror or exc}") from None


def load(path: str | os.PathLike, device: Any = None, *, mmap: bool | None = None,
         map_location: Any = None, weights_only: bool = True) -> Any:
    """Read an object written by :func:`save` (or any safetensors file).

    Args:
        path: The file.
        device: Where the tensors go (default: the default device). Files record no
            device: a file saved on any device loads on any other.
        mmap: ``False`` or ``None`` (default): read the data into memory with
            ``pread``, into fresh arrays the cpu backend adopts (one copy, from the page
            cache) and through one reusable buffer for other devices; the tensors are
            values, whatever later happens to the file. ``True``: map the file
            copy-on-write (cpu tensors view the mapping: nothing is read until used).
            Only for files nothing else changes while the tensors live: if another
            program truncates the file, reading a tensor kills the process (SIGBUS), and
            rewriting it in place changes the values (saving over it with
            :func:`flambeau.save` is safe: it replaces the file).
        map_location: PyTorch's name for ``device``.
        weights_only: Accepted for PyTorch code; flambeau never unpickles, so only
            ``True`` is allowed.

    Returns:
        The saved tensor, list, tuple or dict (state dicts come back as dicts; tied
        tensors are one object under every name). A safetensors file written elsewhere
        comes back as a dict of its tensors.

    Raises:
        SerializationError: on any invalid file (checked before any data is read).

    >>> import flambeau, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x-file")
    >>> flambeau.save([flambeau.arange(4), flambeau.zeros(4)], path)
    >>> flambeau.load(path)
    [tensor([0, 1, 2, 3]), tensor([0., 0., 0., 0.])]
    """
    if weights_only is not True:
        raise SerializationError("flambeau.load never unpickles (weights_only=False would "
                                 "allow running code from the file); drop the argument")
    with Reader(path, device if device is not None else map_location, mmap=mmap) as reader:
        return reader.load()
