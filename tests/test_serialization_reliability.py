"""flambeau.save / flambeau.load when the world misbehaves (issue 11): special files as
targets, files changed under loaded tensors, temporary files of killed saves.

Hostile headers (defect 9) are rows of the table in test_serialization_errors.py.
"""

from __future__ import annotations

import os
import pathlib
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import flambeau
from flambeau.serialization import SerializationError, _tempfiles, _writer

POSIX = pytest.mark.skipif(os.name == "nt", reason="POSIX special files")
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def never_replace_special_files(monkeypatch):
    """Fail, instead of doing it, any rename over an existing non-regular file: flambeau
    code with the bug then fails these tests without turning /dev/null into a file."""
    for name in ("replace", "rename"):
        original = getattr(os, name)

        def guarded(src, dst, *args, _original=original, **kwargs):
            try:
                mode = os.stat(dst).st_mode
            except OSError:
                mode = None
            if mode is not None and not stat.S_ISREG(mode):
                raise AssertionError(f"save would replace the special file {dst!r}")
            return _original(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, name, guarded)


def _saved_bytes(obj, tmp_path) -> bytes:
    flambeau.save(obj, tmp_path / "regular")
    return (tmp_path / "regular").read_bytes()


# --- defect 1: special files are written through, never replaced ---------------------------


@POSIX
def test_save_through_a_symlink_to_dev_null_leaves_it_a_device(tmp_path,
                                                                never_replace_special_files):
    link = tmp_path / "link"
    link.symlink_to(os.devnull)
    flambeau.save({"w": flambeau.ones(1000)}, link)
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode) and link.is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["link"]


@POSIX
@pytest.mark.skipif(not ROOT, reason="only root could replace /dev/null")
def test_save_to_dev_null_as_root_leaves_it_a_device(never_replace_special_files):
    flambeau.save(flambeau.arange(10), os.devnull)
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert not [n for n in os.listdir("/dev") if n.startswith(".null.")]


@POSIX
@pytest.mark.skipif(not ROOT, reason="mknod needs root")
def test_save_to_a_character_device_writes_through_it(tmp_path):
    """A private copy of /dev/null, so that the check needs no guard."""
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        device.write_bytes(b"probe")
    except OSError as exc:
        pytest.skip(f"cannot make or use a device node here: {exc}")
    flambeau.save(flambeau.ones(3), device)
    assert stat.S_ISCHR(device.stat().st_mode) and os.listdir(tmp_path) == ["null"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_device_that_fails_writes_gives_a_serialization_error(never_replace_special_files):
    with pytest.raises(SerializationError, match="could not save '/dev/full': No space left on "
                       r"device; it is a character device, written in place \(not atomically\)"):
        flambeau.save(flambeau.ones(10), "/dev/full")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def _read_fifo(spare: pathlib.Path, got: list) -> None:
    with open(spare, "rb") as f:
        got.append(f.read())


def _unblock(spare: pathlib.Path, thread: threading.Thread) -> None:
    """Let a reader still waiting for a writer see end of file."""
    while thread.is_alive():
        try:
            os.close(os.open(spare, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # ENXIO: the reader has not opened it yet
            pass
        thread.join(0.05)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_save_to_a_fifo_streams_to_its_reader(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    spare = tmp_path / "same-pipe"
    os.link(fifo, spare)  # the reader opens this name, which a buggy save cannot replace
    obj = {"w": flambeau.arange(100_000.0).reshape(1000, 100), "step": 3}  # > a pipe buffer
    got: list[bytes] = []
    reader = threading.Thread(target=_read_fifo, args=(spare, got), daemon=True)
    reader.start()
    try:
        flambeau.save(obj, fifo)
    finally:
        reader.join(30)
        _unblock(spare, reader)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    expected = _saved_bytes(obj, tmp_path)
    assert got == [expected]
    (tmp_path / "copy").write_bytes(got[0])
    loaded = flambeau.load(tmp_path / "copy")
    assert loaded["step"] == 3 and loaded["w"].tolist() == obj["w"].tolist()
    assert sorted(os.listdir(tmp_path)) == ["copy", "pipe", "regular", "same-pipe"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_a_fifo_whose_reader_leaves_gives_a_serialization_error(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    spare = tmp_path / "same-pipe"
    os.link(fifo, spare)

    def read_a_little():
        with open(spare, "rb") as f:
            f.read(10)

    reader = threading.Thread(target=read_a_little, daemon=True)
    reader.start()
    try:
        with pytest.raises(SerializationError, match=r"could not save .*pipe': Broken pipe; "
                           r"it is a FIFO \(named pipe\), written in place \(not atomically\), "
                           "so whatever reads it may have got part of the file"):
            flambeau.save(flambeau.zeros(100_000), fifo)
    finally:
        _unblock(spare, reader)
    assert stat.S_ISFIFO(fifo.stat().st_mode)


@POSIX
def test_save_to_dev_stdout_writes_to_the_pipe(tmp_path):
    """/dev/stdout links to a pipe that realpath cannot name; it is written through."""
    script = "import flambeau; flambeau.save({'w': flambeau.arange(5.0)}, '/dev/stdout')"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == _saved_bytes({"w": flambeau.arange(5.0)}, tmp_path)


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")
def test_save_to_a_socket_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a short relative path: socket paths are limited to ~100 bytes
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind("sock")
        with pytest.raises(SerializationError, match="cannot save to 'sock': it is a socket, "
                           "which cannot be opened as a file; save to a regular file"):
            flambeau.save(flambeau.ones(2), "sock")
        link = tmp_path / "link"
        link.symlink_to(tmp_path / "sock")
        with pytest.raises(SerializationError, match="it is a socket"):
            flambeau.save(flambeau.ones(2), link)
    finally:
        server.close()
    assert stat.S_ISSOCK(os.stat("sock").st_mode)
    assert sorted(os.listdir(tmp_path)) == ["link", "sock"]


# --- defect 3: a loaded tensor is a value, whatever happens to the file ----------------------


def test_default_load_survives_truncation_of_the_file(tmp_path):
    """Run apart: with a memory-mapped load, the read after truncation is a SIGBUS."""
    path = tmp_path / "ckpt"
    script = textwrap.dedent(f"""
        import os, flambeau
        path = {str(path)!r}
        flambeau.save({{"w": flambeau.arange(1 << 20, dtype=flambeau.int32)}}, path)
        w = flambeau.load(path)["w"]
        with flambeau.serialization.open(path) as f:
            lazy = f.get_tensor("w")
        os.truncate(path, 0)
        print(int(w.sum().item()), int(lazy.sum().item()))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"the process died (rc {done.returncode}): {done.stderr}"
    total = (1 << 20) * ((1 << 20) - 1) // 2
    assert done.stdout.split() == [str(total), str(total)]


def test_default_load_is_unchanged_by_rewriting_the_file_in_place(tmp_path):
    path = tmp_path / "ckpt"
    flambeau.save({"w": flambeau.ones(4096), "i": flambeau.arange(5)}, path)
    loaded = flambeau.load(path)
    with flambeau.serialization.open(path) as f:
        lazy = f.get_tensor("w")
        row = f.get_slice("w")[10:20]
    size = path.stat().st_size
    with open(path, "r+b") as f:  # same size, same header, other data: in place
        n = int.from_bytes(f.read(8), "little")
        f.seek(8 + n)
        f.write(b"\xff" * (size - 8 - n))
    assert loaded["w"].tolist() == [1.0] * 4096 and loaded["i"].tolist() == [0, 1, 2, 3, 4]
    assert lazy.tolist() == [1.0] * 4096 and row.tolist() == [1.0] * 10


# --- defect 10: temporary files of killed saves are removed by the next save ---------------


@pytest.fixture
def no_o_tmpfile(monkeypatch):
    """As on NFS, vfat, macOS and Windows: the temporary file has a name all along."""
    monkeypatch.setattr(_writer._AtomicFile, "_open_anonymous", lambda self: None)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _age(path: pathlib.Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_save_removes_stale_temporaries_of_its_own_target_only(tmp_path, no_o_tmpfile):
    host, dead, me = _tempfiles.host_tag(), _dead_pid(), os.getpid()
    other_host = "0" * 8 if host != "0" * 8 else "1" * 8
    day = _tempfiles.STALE_SECONDS
    stale = [f".ckpt.{dead}@{host}.0123abcd.tmp",         # its writer is dead
             f".ckpt.{me}@{other_host}.0123abcd.tmp"]     # untouched for over a day
    kept = [f".ckpt.{me}@{host}.0123abcd.tmp",            # a running save (this process)
            f".ckpt.{dead}@{other_host}.4567cdef.tmp",    # another machine's, recent
            f".ckpt2.{dead}@{host}.0123abcd.tmp",         # another target's
            f".ck.{dead}@{host}.0123abcd.tmp",
            f".ckpt.{dead}@{host}.0123abcd.tmp.bak",      # not the exact pattern
            f"ckpt.{dead}@{host}.0123abcd.tmp",
            f".ckpt.{dead}@{host}.0123abcdef.tmp",
            f".ckpt.0.{dead}@{host}.0123abcd.tmp",
            ".ckpt.0123abcd.tmp", ".ckpt.notes.tmp", "ckpt.old"]
    if os.name == "nt":  # no pid check there (os.kill would terminate): only the age counts
        kept.append(stale.pop(0))
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x" * 100)
    _age(tmp_path / stale[1], day + 600)
    for name in kept[2:]:
        _age(tmp_path / name, 10 * day)  # old, but not this target's temporaries
    folder = tmp_path / f".ckpt.{dead}@{host}.89abcdef.tmp"  # a folder is never removed
    folder.mkdir()
    flambeau.save(flambeau.ones(2), tmp_path / "ckpt")
    assert sorted(os.listdir(tmp_path)) == sorted(["ckpt", folder.name, *kept])
    assert flambeau.load(tmp_path / "ckpt").tolist() == [1.0, 1.0]


def test_a_killed_save_without_o_tmpfile_is_cleaned_up_by_the_next_save(tmp_path,
                                                                       no_o_tmpfile):
    path = tmp_path / "ckpt"
    flambeau.save({"a": flambeau.ones(3)}, path)
    script = textwrap.dedent(f"""
        import os, flambeau
        from flambeau.serialization import _writer
        _writer._AtomicFile._open_anonymous = lambda self: None
        original = _writer._write_tensor
        def die(f, *args):
            original(f, *args)
            f.flush()
            os._exit(9)  # no cleanup, like a crash or SIGKILL
        _writer._write_tensor = die
        flambeau.save({{"a": flambeau.zeros(1 << 16)}}, {str(path)!r})
    """)
    done = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert done.returncode == 9
    left = [name for name in os.listdir(tmp_path) if name != "ckpt"]
    assert len(left) == 1 and left[0].startswith(".ckpt.") and left[0].endswith(".tmp")
    assert (tmp_path / left[0]).stat().st_size > 1 << 18  # the full-size temporary file
    flambeau.save({"a": flambeau.full((3,), 2.0)}, path)
    assert os.listdir(tmp_path) == ["ckpt"]
    assert flambeau.load(path)["a"].tolist() == [2.0] * 3


def test_temporary_names_fit_long_target_names(tmp_path, no_o_tmpfile):
    name = "m" * 240
    flambeau.save(flambeau.ones(1), tmp_path / name)
    assert os.listdir(tmp_path) == [name]
    assert np.array_equal(flambeau.load(tmp_path / name).numpy(), np.ones(1, np.float32))
