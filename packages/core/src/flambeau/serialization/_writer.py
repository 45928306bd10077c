"""Writing a file: header, then each tensor's own bytes; atomic and durable.

The bytes go to a temporary file in the target's folder, which is flushed and fsynced,
then renamed over the target (``os.replace`` is atomic), and the folder is fsynced so
the rename survives a power cut. On Linux the temporary file is anonymous
(``O_TMPFILE``) until the end, so even a killed process leaves nothing behind; elsewhere
(or on file systems without ``O_TMPFILE``) it is ``.NAME.PID@HOST.RANDOM.tmp``, removed
on any exception, and one left by a killed save is removed by a later save of the same
target (see :mod:`._tempfiles`). A symlink is followed: the file it points to is
replaced.

A target that exists and is not a regular file is never replaced: a FIFO or a
character or block device (``/dev/null``, ``/dev/stdout``, a pipe a reader waits on) is
written through directly, in place and not atomically, as ``torch.save`` writes (opening
a FIFO waits for its reader); a socket cannot be opened as a file and is refused.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
from collections.abc import Mapping
from typing import Any, BinaryIO

import numpy as np

from .._tensor import Tensor
from ._format import WRITE_RANK, SerializationError, code_of, describe_path, file_dtype
from ._structure import flatten
from ._tempfiles import remove_stale, temp_path

#: Metadata key marking tensors in PyTorch's layout; Hugging Face loaders require it.
FORMAT_KEY = "format"
#: Tensors are written in pieces of this size, each followed by a writeback hint.
CHUNK_BYTES = 64 << 20
_FADVISE = getattr(os, "posix_fadvise", None) if sys.platform.startswith("linux") else None


def save(obj: Any, path: str | os.PathLike, *, metadata: Mapping[str, str] | None = None
         ) -> None:
    """Write ``obj`` to ``path`` as a safetensors file (see :mod:`flambeau.serialization`).

    Args:
        obj: A tensor, or lists, tuples and dicts (nested) of tensors, ints, floats,
            bools, strings and None: a state dict, an optimizer's state dict, ...
            Tensors sharing storage (tied parameters) are written once; a view or slice
            writes only its own elements; no device is recorded.
        path: The file (``str`` or ``os.PathLike``; any name, no extension needed).
        metadata: Extra string pairs for the header's ``__metadata__``.

    The write is atomic and durable: the old file stays intact until the new one is
    complete on disk, whatever happens meanwhile. A symlink is followed (the file it
    points to is replaced). A ``path`` that exists and is not a regular file is never
    replaced: a FIFO or a character or block device (``/dev/null``, ``/dev/stdout``) is
    written through directly, in place and *not* atomically, like ``torch.save`` (for a
    FIFO, this waits until a reader opens it; a failed write may leave the reader part
    of the file); a socket is refused.

    Raises:
        SerializationError: for objects a file cannot hold (modules, numpy arrays, lazy
            parameters, ...), bad paths (a directory, a socket, a missing folder) and
            failed writes; nothing is changed then (except what a FIFO or device was
            already sent).

    >>> import flambeau, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x-file")
    >>> flambeau.save(flambeau.arange(4), path)
    >>> flambeau.load(path)
    tensor([0, 1, 2, 3])
    """
    flat = flatten(obj)
    meta = _user_metadata(metadata)
    meta.update(flat.metadata())
    layout, header = _layout(flat.tensors, meta)
    with _AtomicFile(path) as f:
        f.write(len(header).to_bytes(8, "little"))
        f.write(header)
        for tensor, code, nbytes in layout:
            _write_tensor(f, tensor, code, nbytes)


def _user_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    out = {FORMAT_KEY: "pt"}
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise SerializationError(f"metadata must map strings to strings, got {key!r}: "
                                     f"{value!r}")
        if key.startswith("flambeau."):
            raise SerializationError(f"metadata key {key!r}: keys starting with 'flambeau.' "
                                     "are reserved for flambeau")
        out[key] = value
    return out


def _layout(tensors: list[tuple[str, Tensor]], metadata: dict[str, str]
            ) -> tuple[list[tuple[Tensor, str, int]], bytes]:
    """Data order (larger dtypes first, then names: aligned offsets, as ``safetensors``
    writes) and the encoded header, padded with spaces to a multiple of 8 bytes."""
    rows = []
    for name, tensor in tensors:
        code = code_of(tensor.dtype)
        if code is None:
            raise SerializationError(f"cannot save {name!r}: dtype {tensor.dtype} has no "
                                     "safetensors code")
        rows.append((WRITE_RANK[code], name, tensor, code))
    rows.sort(key=lambda row: row[:2])
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    layout = []
    offset = 0
    for _, name, tensor, code in rows:
        nbytes = tensor.numel() * tensor.dtype.itemsize
        header[name] = {"dtype": code, "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + nbytes]}
        layout.append((tensor, code, nbytes))
        offset += nbytes
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return layout, text + b" " * (-len(text) % 8)


def _write_tensor(f: BinaryIO, tensor: Tensor, code: str, nbytes: int) -> None:
    if nbytes == 0:
        return
    kernels = tensor._k
    shared = getattr(kernels, "to_numpy_shared", None)
    host = shared(tensor._data) if shared is not None else kernels.to_numpy(tensor._data)
    # Only a view's own elements are written: a slice of a big tensor costs its slice.
    host = np.ascontiguousarray(host, dtype=file_dtype(code))
    if host.nbytes != nbytes:
        raise SerializationError(f"the backend returned {host.nbytes} bytes for a tensor of "
                                 f"shape {list(tensor.shape)} ({nbytes} expected)")
    data = host.reshape(-1).view(np.uint8)
    for start in range(0, nbytes, CHUNK_BYTES):
        chunk = data[start:start + CHUNK_BYTES]
        f.write(chunk)
        _start_writeback(f, chunk.size)


def _start_writeback(f: BinaryIO, size: int) -> None:
    """Have the kernel start writing the last ``size`` bytes to disk now, so the disk
    works while we write the rest and the final fsync waits only for the tail.

    On Linux ``posix_fadvise(DONTNEED)`` on a range of dirty pages starts their
    asynchronous writeback (PostgreSQL's ``pg_flush_data`` uses it so where
    ``sync_file_range`` is missing); those pages are not dropped from the cache, since
    they are still dirty. Elsewhere this is a no-op.
    """
    if _FADVISE is None:
        return
    f.flush()
    try:
        _FADVISE(f.fileno(), f.tell() - size, size, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass  # advice only


#: What each kind of existing non-regular target is called in messages.
_SPECIAL = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
            stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


class _AtomicFile:
    """``with _AtomicFile(path) as f:`` writes ``f`` and then replaces ``path`` with it;
    on any exception ``path`` is untouched and no temporary file remains. A FIFO or
    device at ``path`` is written through directly instead (``self.special`` says
    which)."""

    def __init__(self, path: Any) -> None:
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise TypeError(f"save() expects a path (str or os.PathLike), got "
                            f"{type(path).__name__}")
        self.where = describe_path(path)
        self.path = os.fsdecode(path)
        # Through symlinks: saving over a link updates the file it points to.
        self.target = os.path.realpath(self.path)
        self.folder = os.path.dirname(self.target)
        try:  # stat the path itself: /dev/stdout may link to a pipe realpath cannot name
            mode: int | None = os.stat(self.path).st_mode
        except OSError:
            mode = None
        if mode is not None and stat.S_ISDIR(mode):
            raise SerializationError(f"cannot save to {self.where}: it is a directory; give a "
                                     "file path such as 'folder/model.safetensors'")
        self.special = None if mode is None else _SPECIAL.get(stat.S_IFMT(mode))
        if mode is not None and stat.S_ISSOCK(mode):
            raise SerializationError(
                f"cannot save to {self.where}: it is a socket, which cannot be opened as a "
                "file; save to a regular file (or a FIFO) and send that, or remove the socket")
        if mode is not None and self.special is None and not stat.S_ISREG(mode):
            raise SerializationError(
                f"cannot save to {self.where}: it is not a regular file, a FIFO or a device "
                f"(file type {stat.S_IFMT(mode):#o}); give a regular file path")
        if self.special is None and not os.path.isdir(self.folder):
            raise SerializationError(f"cannot save to {self.where}: the folder "
                                     f"{self.folder!r} does not exist")
        self.temp: str | None = None  # name of a named temporary file, if one exists
        self.file: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        try:
            fd = self._open_special() if self.special is not None else None
            if fd is None:
                remove_stale(self.folder, os.path.basename(self.target))
                fd = self._open_anonymous()
                self.file = open(fd if fd is not None else self._open_named(), "wb")
                self._keep_mode(self.file.fileno())
            else:
                self.file = open(fd, "wb")
        except OSError as exc:
            self._discard()
            raise self._error(exc) from exc
        except BaseException:
            self._discard()
            raise
        return self.file

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            self._discard()
            if isinstance(exc, OSError):
                raise self._error(exc) from exc
            return
        try:
            self._commit()
        except BaseException as error:
            self._discard()
            if isinstance(error, OSError):
                raise self._error(error) from error
            raise

    def _open_special(self) -> int | None:
        """The FIFO or device itself, opened for writing (a FIFO waits for its reader);
        ``None`` if it became a regular file or vanished meanwhile: then the save is
        atomic after all."""
        try:
            fd = os.open(self.path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) |
                         getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            self.special = None
            return None
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except BaseException:
            os.close(fd)
            raise
        if regular:  # opened without O_TRUNC: nothing changed
            os.close(fd)
            self.special = None
            return None
        return fd

    def _keep_mode(self, fd: int) -> None:
        """Replacing a file keeps its permissions."""
        try:
            mode = stat.S_IMODE(os.stat(self.target).st_mode)
        except FileNotFoundError:
            return
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)

    def _open_anonymous(self) -> int | None:
        flag = getattr(os, "O_TMPFILE", 0)
        if not flag or not os.path.isdir("/proc/self/fd"):
            return None
        try:
            fd = os.open(self.folder, flag | os.O_WRONLY | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
                return None  # the file system has no O_TMPFILE
            raise
        return fd

    def _open_named(self) -> int:
        base = os.path.basename(self.target)
        for _ in range(100):
            name = temp_path(self.folder, base)
            try:
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                             getattr(os, "O_BINARY", 0), 0o666)
            except FileExistsError:
                continue
            self.temp = name
            return fd
        raise SerializationError(f"cannot save to {self.where}: no free temporary file name")

    def _commit(self) -> None:
        assert self.file is not None
        self.file.flush()
        if self.special is not None:  # written in place: nothing to rename
            if self.special == _SPECIAL[stat.S_IFBLK]:
                os.fsync(self.file.fileno())  # FIFOs and character devices cannot fsync
            self.file.close()
            return
        os.fsync(self.file.fileno())
        if self.temp is None:  # anonymous: give it a name in the folder first
            name = temp_path(self.folder, os.path.basename(self.target))
            folder_fd = os.open(self.folder, os.O_RDONLY)
            try:
                # linkat(AT_SYMLINK_FOLLOW) through /proc, as open(2) documents for
                # O_TMPFILE; passing a dir fd makes CPython call linkat, not link.
                os.link(f"/proc/self/fd/{self.file.fileno()}", name,
                        src_dir_fd=folder_fd, follow_symlinks=True)
            finally:
                os.close(folder_fd)
            self.temp = name
        self.file.close()
        os.replace(self.temp, self.target)
        self.temp = None
        _fsync_folder(self.folder)

    def _discard(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass
        if self.temp is not None:
            try:
                os.unlink(self.temp)
            except OSError:
                pass
            self.temp = None

    def _error(self, exc: OSError) -> SerializationError:
        reason = exc.strerror or str(exc)
        if self.special is not None and self.file is None:
            return SerializationError(f"cannot save to {self.where}: {reason} (it is "
                                      f"{self.special}, which is written in place)")
        if self.special is not None:
            return SerializationError(
                f"could not save {self.where}: {reason}; it is {self.special}, written in "
                "place (not atomically), so whatever reads it may have got part of the file")
        if isinstance(exc, PermissionError):
            return SerializationError(f"cannot save to {self.where}: permission denied "
                                      f"(writing in the folder {self.folder!r} needs write "
                                      "permission); nothing was changed")
        return SerializationError(f"could not save {self.where}: {reason}; the previous file "
                                  "(if any) was left intact")


def _fsync_folder(folder: str) -> None:
    """Make the rename durable (POSIX; Windows cannot open a folder for fsync)."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories; the data itself is synced
    finally:
        os.close(fd)
