"""The conformance kit's own machinery: its list of check modules and ``check_fused``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

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
