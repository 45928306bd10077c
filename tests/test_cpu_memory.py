"""flambeau-cpu's allocations: large tensors come without numpy's huge-page hint."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import flambeau

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="madvise flags are read from Linux's /proc/self/smaps")

try:
    from numpy._core.multiarray import _get_madvise_hugepage, _set_madvise_hugepage
except ImportError:  # pragma: no cover
    pytest.skip("this numpy has no huge-page switch", allow_module_level=True)


def _advised_huge(array: np.ndarray) -> bool:
    """Whether the mapping holding the middle of ``array`` carries MADV_HUGEPAGE ("hg");
    numpy advises from the first page boundary inside the array on."""
    address = array.__array_interface__["data"][0] + array.nbytes // 2
    inside = False
    with open("/proc/self/smaps", encoding="ascii") as smaps:
        for line in smaps:
            head = line.split(maxsplit=1)[0]
            if "-" in head and not head.endswith(":"):
                start, end = (int(part, 16) for part in head.split("-"))
                inside = start <= address < end
            elif inside and head == "VmFlags:":
                return "hg" in line.split()[1:]
    raise AssertionError("no mapping holds the array")


@pytest.fixture
def numpy_hints():
    previous = _set_madvise_hugepage(True)
    yield
    _set_madvise_hugepage(previous)


def test_numpy_itself_hints_large_arrays(numpy_hints):
    # The premise of the test below: if numpy stops hinting, that test proves nothing.
    assert _advised_huge(np.empty(16 << 20, np.uint8))


@pytest.mark.parametrize("make", [lambda: flambeau.empty(2048, 2048),
                                  lambda: flambeau.zeros(4 << 20, dtype=flambeau.float64),
                                  lambda: flambeau.nn.Linear(2048, 2048).weight])
def test_large_cpu_tensors_are_not_hinted(numpy_hints, make):
    tensor = make()
    assert not _advised_huge(tensor._data)
    assert _get_madvise_hugepage()  # numpy's own switch is left as it was


def test_numpy_madvise_hugepage_1_keeps_the_hint():
    # Asking numpy for huge pages explicitly is a user's choice that the backend honours.
    script = ("import flambeau, test_cpu_memory as t; "
              "assert t._advised_huge(flambeau.empty(2048, 2048)._data)")
    env = {**os.environ, "NUMPY_MADVISE_HUGEPAGE": "1"}
    subprocess.run([sys.executable, "-c", script], env=env, check=True,
                   cwd=os.path.dirname(__file__), timeout=120)
