"""Random numbers and model construction (issue 16, section 2), one thread each, medians
of paired rounds:

* ``randn(4096, 4096)`` against numpy's ``default_rng().standard_normal(..., float32)``;
* ``nn.Linear(4096, 4096)`` construction against torch's;
* D2L's AlexNet (lazy layers, 1 input channel, 10 classes) built and run once on
  1x1x224x224, against torch's.

:func:`candidates` gives each row's ``{name: fn}`` (bench/bench_speed.py imports it).

Fresh memory: every candidate writes 64 to 190 MB it has just allocated, so the cost
of first touching pages counts. numpy asks for transparent huge pages on large arrays
(``NUMPY_MADVISE_HUGEPAGE``, printed below), torch by default not; on a VM whose host backs
guest memory lazily a huge page's first touch can cost several times a small page's,
so run the rows both ways.

Run: python bench/bench_init.py [--rows randn,linear,alexnet] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import _harness  # first: pins BLAS/torch threads before they load
import numpy as np

import flambeau
from flambeau import nn

ROWS = ("randn", "linear", "alexnet")
BASELINES = {"randn": "numpy", "linear": "torch", "alexnet": "torch"}


def alexnet(lib, num_classes: int = 10):
    """D2L's AlexNet with lazy layers, in ``lib`` (``flambeau.nn`` or ``torch.nn``)."""
    return lib.Sequential(
        lib.LazyConv2d(96, kernel_size=11, stride=4, padding=1), lib.ReLU(),
        lib.MaxPool2d(kernel_size=3, stride=2),
        lib.LazyConv2d(256, kernel_size=5, padding=2), lib.ReLU(),
        lib.MaxPool2d(kernel_size=3, stride=2),
        lib.LazyConv2d(384, kernel_size=3, padding=1), lib.ReLU(),
        lib.LazyConv2d(384, kernel_size=3, padding=1), lib.ReLU(),
        lib.LazyConv2d(256, kernel_size=3, padding=1), lib.ReLU(),
        lib.MaxPool2d(kernel_size=3, stride=2), lib.Flatten(),
        lib.LazyLinear(4096), lib.ReLU(), lib.Dropout(p=0.5),
        lib.LazyLinear(4096), lib.ReLU(), lib.Dropout(p=0.5),
        lib.LazyLinear(num_classes))


def randn_row(torch=None) -> dict[str, Callable[[], object]]:
    """``randn(4096, 4096)`` against numpy's generator (and torch's, when given)."""
    generator = np.random.default_rng(0)
    row = {"flambeau": lambda: flambeau.randn(4096, 4096),
           "numpy": lambda: generator.standard_normal((4096, 4096), np.float32)}
    if torch is not None:
        row["torch"] = lambda: torch.randn(4096, 4096)
    return row


def linear_row(torch) -> dict[str, Callable[[], object]]:
    """``nn.Linear(4096, 4096)`` construction against torch's."""
    return {"flambeau": lambda: nn.Linear(4096, 4096),
            "torch": lambda: torch.nn.Linear(4096, 4096)}


def alexnet_row(torch) -> dict[str, Callable[[], object]]:
    """AlexNet built and run once on one 1x224x224 image, against torch."""
    fx, tx = flambeau.zeros(1, 1, 224, 224), torch.zeros(1, 1, 224, 224)
    return {"flambeau": lambda: alexnet(nn)(fx), "torch": lambda: alexnet(torch.nn)(tx)}


def candidates(row: str, torch) -> dict[str, Callable[[], object]]:
    """``{candidate: fn}`` of ``row`` (one of :data:`ROWS`); its baseline is
    ``BASELINES[row]``."""
    makers = {"randn": randn_row, "linear": linear_row, "alexnet": alexnet_row}
    return makers[row](torch)


def _numpy_hugepages() -> bool:
    try:
        from numpy._core.multiarray import _get_madvise_hugepage
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _get_madvise_hugepage
    return bool(_get_madvise_hugepage())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch = _harness.torch_or_none()
    print(f"load average before: {os.getloadavg()[0]:.2f}; numpy huge pages: "
          f"{'on' if _numpy_hugepages() else 'off'} (NUMPY_MADVISE_HUGEPAGE)")
    for row in args.rows.split(","):
        if torch is None and row != "randn":
            print(f"\n{row}: skipped (torch is not installed)")
            continue
        spreads: dict[str, float] = {}
        medians = _harness.paired(candidates(row, torch), 1, args.repeats, spreads=spreads)
        _harness.report(f"{row} (spread: " + ", ".join(
            f"{name} {spread:.0%}" for name, spread in spreads.items()) + ")",
            medians, BASELINES[row], unit="ms")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
