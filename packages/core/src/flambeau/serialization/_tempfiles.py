"""Names of :func:`save`'s temporary files, and removal of those a killed save left.

A save writes ``.NAME.PID@HOST.RANDOM.tmp`` next to the target ``NAME``, then renames it
over the target. On Linux file systems with ``O_TMPFILE`` that name exists only for the
instant between linking the finished file and the rename; elsewhere (NFS, vfat, macOS,
Windows) it exists for the whole save, so a process killed mid-save leaves it behind,
full size. ``PID`` is the writer's process id, ``HOST`` 8 hex digits naming the machine
and pid namespace it ran in (a hash of the kernel's boot id, ``/proc/self/ns/pid`` and
the host name; the host name alone where ``/proc`` is missing), ``RANDOM`` 8 hex digits.

Every save first removes the stale temporary files of its own target: regular files
whose name is exactly that pattern for the same ``NAME`` and that either

* come from this HOST and a PID that no longer exists (``os.kill(pid, 0)``; skipped on
  Windows, where ``os.kill`` would terminate the process), or
* were last modified more than :data:`STALE_SECONDS` ago (a day), whoever wrote them: a
  writer modifies its file continuously, so this covers files written by other machines
  sharing the folder (NFS) and writers whose pid was reused.

Other files, however similar their names, are never touched. A mistaken removal cannot
lose data: if a writer that was only stopped for a day resumes, its final rename fails
with a ``SerializationError`` and its target stays as it was. The cost is one listing
of the folder per save. Temporary files of flambeau versions before this naming
(``.NAME.RANDOM.tmp``) are left alone: nothing tells whose they are.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
import socket
import stat
import time

#: A temporary file untouched for this long belongs to no running save.
STALE_SECONDS = 24 * 3600


def temp_path(folder: str, base: str) -> str:
    """A fresh temporary file name for target ``base`` in ``folder``."""
    return os.path.join(folder, f".{_stem(base)}.{os.getpid()}@{host_tag()}."
                                f"{secrets.token_hex(4)}.tmp")


def remove_stale(folder: str, base: str) -> list[str]:
    """Remove the stale temporary files of target ``base`` (see the module docstring);
    return their paths. Never raises: failing to clean up must not fail a save."""
    pattern = re.compile(re.escape(f".{_stem(base)}.")
                         + r"([1-9][0-9]{0,9})@([0-9a-f]{8})\.[0-9a-f]{8}\.tmp")
    removed = []
    now = time.time()
    try:
        with os.scandir(folder) as entries:
            candidates = [(entry, match) for entry in entries
                          if (match := pattern.fullmatch(entry.name))]
    except OSError:
        return removed
    for entry, match in candidates:
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                continue
            pid, host = int(match[1]), match[2]
            if now - info.st_mtime > STALE_SECONDS or (host == host_tag() and _dead(pid)):
                os.unlink(entry.path)
                removed.append(entry.path)
        except OSError:
            continue  # gone already (another save removed it), or not ours to remove
    return removed


@functools.cache
def host_tag() -> str:
    """8 hex digits naming this machine and pid namespace (the same for every process
    that can see the others' pids)."""
    parts = [socket.gethostname()]
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            parts.append(f.read().strip())
        parts.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        pass
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=4).hexdigest()


def _dead(pid: int) -> bool:
    """Whether process ``pid`` provably does not exist on this host."""
    if os.name == "nt" or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # PermissionError: it exists, another user's
        return False
    return False


def _stem(base: str) -> str:
    """``base``, shortened so that the temporary name fits in 255 bytes."""
    return base if len(os.fsencode(base)) <= 200 else base[:50]
