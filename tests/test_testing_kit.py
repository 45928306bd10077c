"""The conformance kit's own machinery: its list of check modules, ``check_fused``, and its
command line (``python -m flambeau.testing``)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

import flambeau
import flambeau.testing
from flambeau.testing import CHECK_MODULES, RANK_CHECK_MODULES, check_fused


def _tests_defined_in(module) -> list[str]:
    return [name for name, obj in vars(module).items() if name.startswith("test_")
            and inspect.isfunction(obj) and obj.__module__ == module.__name__]


def test_check_modules_list_every_module_of_checks_and_names_are_unique():
    """Suites star-import the modules (tests/test_conformance.py): a test name defined
    twice would hide one of them, and a module left out of CHECK_MODULES would not run
    under ``python -m flambeau.testing``."""
    with_tests = [info.name for info in pkgutil.walk_packages(flambeau.testing.__path__,
                                                               "flambeau.testing.")
                  if _tests_defined_in(importlib.import_module(info.name))]
    assert sorted(with_tests) == sorted(CHECK_MODULES + RANK_CHECK_MODULES)
    names = [n for m in CHECK_MODULES for n in _tests_defined_in(importlib.import_module(m))]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})
    star = {}
    exec("from flambeau.testing.op_checks import *", star)
    in_op_checks = [m for m in CHECK_MODULES if m.startswith("flambeau.testing.op_checks.")]
    assert {n for n in star if n.startswith("test_")} == {
        n for m in in_op_checks for n in _tests_defined_in(importlib.import_module(m))}


def test_check_fused_compares_a_fused_kernel_with_its_reference():
    cpu = flambeau.device("cpu")
    x = np.array([[0.5, -1.0, 2.0], [0.0, 3.0, -2.0]], np.float32)

    def softmax(t, dim):
        return t.exp() / t.exp().sum(dim, keepdim=True)

    check_fused("softmax", softmax, [x, 1], cpu, what="rows")
    with pytest.raises(AssertionError, match="columns"):
        check_fused("softmax", lambda t, dim: softmax(t, 0), [x, 1], cpu, what="columns")
    with pytest.raises(pytest.skip.Exception, match="boxed:0 has no fused softmax kernel"):
        check_fused("softmax", softmax, [x, 1], flambeau.device("boxed:0"))


def _kit(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
    command = ["-c", code] if code else ["-m", "flambeau.testing"]
    return subprocess.run([sys.executable, *command, *args], capture_output=True, text=True,
                          timeout=300)


def test_help_prints_the_usage_and_succeeds():
    result = _kit("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m flambeau.testing DEVICE")
    assert _kit().returncode == 2  # no device named: the usage, as an error


def test_without_pytest_it_says_what_to_install():
    code = ("import runpy, sys; sys.modules['pytest'] = None; sys.argv[1:] = ['cpu']; "
            "runpy.run_module('flambeau.testing', run_name='__main__')")
    result = _kit(code=code)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert 'pip install "flambeau[testing]"' in result.stderr


@pytest.mark.parametrize("name", ["cpu:3", "boxed:5"])
def test_a_device_that_does_not_exist_is_one_line_before_anything_runs(name):
    result = _kit(name, "-q", "-p", "no:randomly", "-p", "no:cacheprovider")
    assert result.returncode == 4  # pytest's usage error
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"ERROR: --flambeau-device {name}: "), lines


def test_absent_optional_kernels_are_summed_up_once_per_device():
    result = _kit("boxed:0", "-q", "-ra", "-p", "no:randomly", "-p", "no:cacheprovider",
                  "-k", "softmax")
    assert result.returncode == 0, result.stdout[-2000:]
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith("SKIPPED") and "has no" in line]
    summary = [line for line in lines if line.startswith("boxed:0 lacks the optional kernels")]
    assert len(summary) == 1, lines
    kernels = summary[0].split("optional kernels ")[1].split(" (the core's")[0].split(", ")
    assert {"log_softmax", "softmax"} <= set(kernels) and kernels == sorted(kernels)
    assert "without an optional kernel" in lines[-1]
