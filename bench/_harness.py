"""Paired, repeated timing with medians; BLAS and torch pinned to one thread.

Import this module before numpy or torch so the thread pins take effect.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

# What time_per_call measures with: wall time; time.thread_time (CPU time of this thread)
# discounts time other processes take from it, for a loaded machine (bench_speed --timer).
clock = time.perf_counter


def time_per_call(fn: Callable[[], object], number: int,
                  before: Callable[[], object] | None = None) -> float:
    """Seconds per call of ``fn`` over ``number`` calls; ``before`` runs ahead of each
    call, untimed."""
    if before is None:
        start = clock()
        for _ in range(number):
            fn()
        return (clock() - start) / number
    total = 0.0
    for _ in range(number):
        before()
        start = clock()
        fn()
        total += clock() - start
    return total / number


def paired(candidates: dict[str, Callable[[], object]], number: int,
           repeats: int, before: Callable[[], object] | None = None,
           spreads: dict[str, float] | None = None) -> dict[str, float]:
    """Median seconds per call of each candidate, measured in interleaved rounds so that
    machine noise hits all of them alike; ``before`` (untimed) runs ahead of each call,
    e.g. to settle what the previous candidate left behind. A ``spreads`` dict given is
    filled with each candidate's (max - min) / median over the rounds (the noise)."""
    for fn in candidates.values():  # warm up caches and lazy imports
        time_per_call(fn, max(number // 10, 1), before)
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            samples[name].append(time_per_call(fn, number, before))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    if spreads is not None:
        spreads.update({name: (max(v) - min(v)) / medians[name] for name, v in samples.items()})
    return medians


def report(title: str, medians: dict[str, float], baseline: str, unit: str = "us") -> None:
    """Print a table of medians and their ratio to ``baseline``."""
    scale = {"us": 1e6, "ms": 1e3}[unit]
    print(f"\n{title}")
    print(f"  {'candidate':<28}{'median ' + unit:>14}{'vs ' + baseline:>16}")
    for name, seconds in medians.items():
        ratio = seconds / medians[baseline]
        print(f"  {name:<28}{seconds * scale:>14.2f}{ratio:>15.2f}x")


def torch_or_none():
    """torch pinned to one thread, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch
