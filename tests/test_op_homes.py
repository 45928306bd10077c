"""Every public operation is written once, checked, and a method where PyTorch has one.

Adding an op touches several places (its ``_ops`` module, ``flambeau/__init__`` or
``nn.functional``, ``_methods``, a check); this test is what keeps them in step.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import flambeau
from flambeau.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / "packages" / "core" / "src" / "flambeau" / "testing"
# Public functions that are not operations on tensors, with their homes.
NOT_OPS = {"flambeau._compile", "flambeau._creation", "flambeau._device", "flambeau._dtypes",
           "flambeau._random", "flambeau.autograd._mode", "flambeau.serialization._reader",
           "flambeau.serialization._writer"}


def _public_functions() -> dict[str, object]:
    found = {}
    for namespace, names in ((flambeau, flambeau.__all__), (F, F.__all__)):
        for name in names:
            obj = getattr(namespace, name)
            if inspect.isfunction(obj):
                found[f"{namespace.__name__}.{name}"] = obj
    return found


def _operations() -> dict[str, object]:
    return {path.rsplit(".", 1)[1]: fn for path, fn in _public_functions().items()
            if fn.__module__ not in NOT_OPS}


def _reference_test_sources() -> str:
    """The conformance kit and the test files that compare with PyTorch."""
    files = list(KIT.rglob("*.py"))
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        text = path.read_text()
        if re.search(r'^torch = pytest\.importorskip\("torch"', text, re.M) or \
                "from torch_reference import" in text or "import torch_reference" in text:
            files.append(path)
    return "\n".join(path.read_text() for path in files)


def test_every_public_operation_lives_in_ops():
    misplaced = sorted(f"{path} (in {fn.__module__})" for path, fn in
                       _public_functions().items()
                       if fn.__module__ not in NOT_OPS and
                       not fn.__module__.startswith("flambeau._ops."))
    assert not misplaced, f"operations must be defined in flambeau._ops: {misplaced}"


def test_a_name_means_one_function_everywhere():
    by_name: dict[str, set] = {}
    for path, fn in _public_functions().items():
        by_name.setdefault(path.rsplit(".", 1)[1], set()).add(fn)
    for name in dir(flambeau.Tensor):
        if name in by_name:
            by_name[name].add(None)  # methods may wrap; only functions are compared here
    twice = sorted(name for name, fns in by_name.items() if len(fns - {None}) > 1)
    assert not twice, f"one name, several implementations (keep one in _ops): {twice}"


def test_every_operation_is_checked_against_a_reference():
    sources = _reference_test_sources()
    unchecked = sorted(name for name in _operations()
                       if not re.search(rf"\b{re.escape(name)}\b", sources))
    assert not unchecked, (
        f"no check in the conformance kit (flambeau/testing) nor in a PyTorch reference "
        f"test names these operations: {unchecked}; add a check_op line or a comparison")


def test_every_operation_pytorch_has_as_a_method_is_a_method():
    torch = pytest.importorskip("torch", reason="PyTorch (CPU) tells which ops are methods")
    missing = sorted(name for name in _operations()
                     if hasattr(torch.Tensor, name) and not hasattr(flambeau.Tensor, name))
    assert not missing, f"PyTorch has these as Tensor methods, flambeau doesn't: {missing}"
