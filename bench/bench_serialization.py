"""Saving and loading a state dict of float32 tensors (default 8 x 4096 x 4096, 512 MB):
flambeau vs torch.save / torch.load(weights_only=True) vs safetensors, in paired rounds,
and the peak RSS of each load measured in a fresh subprocess.

flambeau's save is atomic and durable (temporary file, fsync, rename, fsync of the
folder); torch.save and safetensors write in place without fsync. Every save starts
with a clean page cache (os.sync() before it, untimed).

Loads (files in the page cache), each library's own file: flambeau's default load reads
the data into fresh arrays (pread) and ``mmap=True`` maps the file; torch.load reads a
torch.save file, or maps it with ``mmap=True``; safetensors.numpy ``load_file`` reads a
safetensors file and safetensors.torch's maps it. A mapped load returns without reading
the data, so "+ read" (sum every tensor) is reported beside each mapped load, and beside
the reading loads of flambeau and torch for comparison (the sums are numpy's and torch's).
Files go to a temporary folder under /tmp (or $TMPDIR), deleted at the end.

Run: python bench/bench_serialization.py   [--repeats N] [--tensors N] [--side N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

import _harness  # first: pins BLAS/torch threads before they load
import numpy as np

import flambeau

TENSORS = 8
SHAPE = (4096, 4096)  # 64 MB of float32 each, 512 MB in all (--tensors, --side change it)


def _largest_mb() -> float:
    return SHAPE[0] * SHAPE[1] * 4 / 2**20


def _total_mb() -> float:
    return TENSORS * _largest_mb()


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"layer{i}.weight": rng.standard_normal(SHAPE, dtype=np.float32)
            for i in range(TENSORS)}


def _fsynced(save, obj, path: str) -> None:
    """``save`` and then fsync the file: what durability costs torch.save."""
    save(obj, path)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _settle_disk() -> None:
    """Write out every dirty page (untimed) before each save: otherwise the data a save
    without fsync leaves in the page cache is written back during the next candidate's
    timing, charging one library's deferred disk work to another."""
    if hasattr(os, "sync"):
        os.sync()


def _read_all(tensors) -> float:
    return float(sum(float(t.sum()) for t in tensors))


def _loaders(folder: str, torch, safetensors_numpy, safetensors_torch) -> dict:
    fl, pt, st = (os.path.join(folder, name) for name in ("flambeau", "torch.pt", "st"))
    out = {
        "flambeau.load": lambda: flambeau.load(fl),
        "flambeau.load + read": lambda: _read_all(flambeau.load(fl).values()),
        "flambeau mmap=True": lambda: flambeau.load(fl, mmap=True),
        "flambeau mmap=True + read": lambda: _read_all(flambeau.load(fl, mmap=True).values()),
    }
    if torch is not None:
        out["torch.load"] = lambda: torch.load(pt, weights_only=True)
        out["torch.load + read"] = lambda: _read_all(torch.load(pt, weights_only=True)
                                                     .values())
        out["torch mmap=True"] = lambda: torch.load(pt, weights_only=True, mmap=True)
        out["torch mmap=True + read"] = lambda: _read_all(
            torch.load(pt, weights_only=True, mmap=True).values())
    if safetensors_numpy is not None:
        out["safetensors.numpy load"] = lambda: safetensors_numpy.load_file(st)
    if safetensors_torch is not None:  # its tensors view a mapping of the file
        out["safetensors.torch load"] = lambda: safetensors_torch.load_file(st)
        out["safetensors.torch + read"] = lambda: _read_all(safetensors_torch.load_file(st)
                                                            .values())
    return out


def _safetensors():
    """(safetensors.numpy, safetensors.torch), each None when missing."""
    try:
        import safetensors.numpy as safetensors_numpy
    except ImportError:
        return None, None
    try:
        import safetensors.torch as safetensors_torch
    except ImportError:
        safetensors_torch = None
    return safetensors_numpy, safetensors_torch


def main(repeats: int) -> None:
    torch = _harness.torch_or_none()
    safetensors_numpy, safetensors_torch = _safetensors()
    folder = tempfile.mkdtemp(prefix="flambeau-bench-")
    try:
        _bench_saves(folder, repeats, torch, safetensors_numpy)  # its arrays are freed after
        loads = _loaders(folder, torch, safetensors_numpy, safetensors_torch)
        baseline = "torch.load" if torch is not None else "flambeau.load"
        _harness.report(f"load it back ({_total_mb():.0f} MB in the page cache), per call",
                        _harness.paired(loads, 1, repeats), baseline, unit="ms")
        print(f"\npeak RSS of a load in a fresh process (the data is {_total_mb():.0f} MB, the "
              f"largest tensor {_largest_mb():.0f} MB)")
        print(f"  {'candidate':<28}{'peak MB':>10}{'before load':>14}{'added':>10}")
        for name in loads:
            peak, base = _peak_rss(name, folder)
            print(f"  {name:<28}{peak:>10.0f}{base:>14.0f}{peak - base:>10.0f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _bench_saves(folder: str, repeats: int, torch, safetensors_numpy) -> None:
    arrays = _arrays()
    state = {name: flambeau.from_numpy(a) for name, a in arrays.items()}
    target = os.path.join(folder, "flambeau")
    saves = {"flambeau.save": lambda: flambeau.save(state, target)}

    def save_without_fsync():  # not an API: shows what the durability costs
        with mock.patch.object(os, "fsync", lambda fd: None):
            flambeau.save(state, os.path.join(folder, "flambeau-unsynced"))

    saves["flambeau.save, fsync skipped"] = save_without_fsync
    if torch is not None:
        torch_state = {name: torch.from_numpy(a) for name, a in arrays.items()}
        saves["torch.save"] = lambda: torch.save(torch_state, os.path.join(folder, "torch.pt"))
        saves["torch.save + fsync"] = lambda: _fsynced(
            torch.save, torch_state, os.path.join(folder, "torch-synced.pt"))
    if safetensors_numpy is not None:
        saves["safetensors.numpy save_file"] = lambda: safetensors_numpy.save_file(
            arrays, os.path.join(folder, "st"))
    baseline = "torch.save" if torch is not None else "flambeau.save"
    _harness.report(f"save {TENSORS} x {SHAPE} float32 ({_total_mb():.0f} MB), per call",
                    _harness.paired(saves, 1, repeats, before=_settle_disk), baseline, unit="ms")
    for extra in ("flambeau-unsynced", "torch-synced.pt"):
        if os.path.exists(os.path.join(folder, extra)):
            os.remove(os.path.join(folder, extra))


def _peak_rss(name: str, folder: str) -> tuple[float, float]:
    """(peak RSS in MB of a fresh process that loads with ``name``, its peak before)."""
    done = subprocess.run([sys.executable, __file__, "--rss-child", name, folder],
                          capture_output=True, text=True, check=True)
    peak, base = done.stdout.split()
    return float(peak), float(base)


def _high_water_mb() -> float:
    """Peak RSS of this process so far: VmHWM (Linux; a fresh count after exec, unlike
    ru_maxrss, which a child inherits from its forking parent), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _rss_child(name: str, folder: str) -> None:
    # Import only what this candidate needs: torch alone adds ~150 MB to the baseline.
    torch = _harness.torch_or_none() if "torch" in name else None
    safetensors_numpy = safetensors_torch = None
    if name.startswith("safetensors.numpy"):
        import safetensors.numpy as safetensors_numpy
    elif name.startswith("safetensors.torch"):
        import safetensors.torch as safetensors_torch
    loader = _loaders(folder, torch, safetensors_numpy, safetensors_torch)[name]
    base = _high_water_mb()
    result = loader()
    peak = _high_water_mb()
    del result
    print(peak, base)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tensors", type=int, default=TENSORS, help="how many tensors")
    parser.add_argument("--side", type=int, default=SHAPE[0],
                        help="each tensor is SIDE x SIDE float32")
    parser.add_argument("--rss-child", nargs=2, metavar=("NAME", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    TENSORS, SHAPE = args.tensors, (args.side, args.side)
    if args.rss_child:
        _rss_child(*args.rss_child)
    else:
        main(args.repeats)
