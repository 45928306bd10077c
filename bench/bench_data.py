"""DataLoader throughput, in paired rounds (medians), two tables from one run:

(a) one shuffled epoch over a TensorDataset of 60,000 x 784 float32 images and int64
    labels (MNIST's size) in batches of 256, ``num_workers=0``: flambeau's DataLoader vs
    torch's over the same data (torch tensors for torch). flambeau's TensorDataset has
    ``__getitems__``, so a batch is one fancy index per tensor; torch indexes and stacks
    sample by sample.
(b) a dataset whose samples each cost ~1 ms of Python work (a deliberately slow
    transform), 512 samples in batches of 32: flambeau with ``num_workers=2`` vs
    ``num_workers=0`` (the worker time includes starting the workers, every epoch, with
    Python's default start method).

Run: python bench/bench_data.py   [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import time

import _harness  # first: pins BLAS/torch threads before they load
import numpy as np

import flambeau
from flambeau.utils import data

N, FEATURES, BATCH = 60_000, 784, 256
SLOW_SAMPLES, SLOW_BATCH, SLOW_SECONDS = 512, 32, 1e-3


class SlowDataset(data.Dataset):
    """Each sample busy-waits ~1 ms in Python (a stand-in for decoding and augmenting)."""

    def __len__(self) -> int:
        return SLOW_SAMPLES

    def __getitem__(self, i: int):
        end = time.perf_counter() + SLOW_SECONDS
        x = 0
        while time.perf_counter() < end:
            x += 1
        return np.full(16, i, dtype=np.float32), i


def _epoch(loader) -> int:
    n = 0
    for x, _ in loader:
        n += len(x)
    return n


def tensor_dataset_table(repeats: int) -> None:
    rng = np.random.default_rng(0)
    images = rng.standard_normal((N, FEATURES), dtype=np.float32)
    labels = rng.integers(0, 10, N).astype(np.int64)
    fl = data.DataLoader(data.TensorDataset(flambeau.tensor(images), flambeau.tensor(labels)),
                         batch_size=BATCH, shuffle=True,
                         generator=flambeau.Generator().manual_seed(0))
    candidates = {"flambeau DataLoader": lambda: _epoch(fl)}
    torch = _harness.torch_or_none()
    if torch is not None:
        from torch.utils import data as tdata

        tl = tdata.DataLoader(tdata.TensorDataset(torch.from_numpy(images),
                                                  torch.from_numpy(labels)),
                              batch_size=BATCH, shuffle=True,
                              generator=torch.Generator().manual_seed(0))
        candidates["torch DataLoader"] = lambda: _epoch(tl)
    medians = _harness.paired(candidates, number=1, repeats=repeats)
    baseline = "torch DataLoader" if torch is not None else "flambeau DataLoader"
    _harness.report(f"(a) one shuffled epoch, TensorDataset {N:,} x {FEATURES} float32 + "
                    f"int64 labels, batch {BATCH}, num_workers=0", medians, baseline, "ms")


def slow_transform_table(repeats: int) -> None:
    ds = SlowDataset()
    loaders = {f"flambeau num_workers={w}": data.DataLoader(ds, batch_size=SLOW_BATCH,
                                                            num_workers=w)
               for w in (0, 2)}
    candidates = {name: (lambda loader=loader: _epoch(loader))
                  for name, loader in loaders.items()}
    medians = _harness.paired(candidates, number=1, repeats=repeats)
    _harness.report(f"(b) one epoch, {SLOW_SAMPLES} samples of ~{SLOW_SECONDS * 1e3:g} ms "
                    f"Python work each, batch {SLOW_BATCH}", medians,
                    "flambeau num_workers=0", "ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = f", load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    print(f"{cpus} CPUs{load} (table (b) needs two idle cores to halve its time)")
    tensor_dataset_table(args.repeats)
    slow_transform_table(max(args.repeats // 2, 3))


if __name__ == "__main__":
    main()
