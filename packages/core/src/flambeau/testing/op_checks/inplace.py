"""In-place updates: arithmetic, writes through views, writes to shared elements
refused, result-type rules, fill/zero/copy/clamp."""

from __future__ import annotations

import operator

import numpy as np
import pytest

import flambeau
from flambeau.errors import DTypeError, MemoryOverlapError, ShapeError

from .._compare import assert_close
from .._opcheck import check_op
from ..kernel_checks import _require
from ._helpers import _devices_other_than, _x

# --- in place -----------------------------------------------------------------------------

_INPLACE = {  # name: (in-place update, out-of-place numpy reference)
    "add_": (lambda t, o: t.add_(o), operator.add),
    "sub_": (lambda t, o: t.sub_(o), operator.sub),
    "mul_": (lambda t, o: t.mul_(o), operator.mul),
    "div_": (lambda t, o: t.div_(o), operator.truediv),
    "+=": (operator.iadd, operator.add),
    "-=": (operator.isub, operator.sub),
    "*=": (operator.imul, operator.mul),
    "/=": (operator.itruediv, operator.truediv),
    "add_alpha": (lambda t, o: t.add_(o, alpha=2), lambda a, b: a + 2 * b),
}


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("name", list(_INPLACE))
def test_inplace_arithmetic(device, supported_dtypes, name, dtype):
    dt = _require(supported_dtypes, dtype)
    update, reference = _INPLACE[name]
    if dt.kind in "iu" and name in ("div_", "/="):
        target = flambeau.tensor(_x((2, 3), dt), device=device)
        with pytest.raises(DTypeError):
            update(target, 2)
        return
    x = _x((2, 3), dt, seed=74)
    for other in (_x((3,), dt, seed=75, low=1, high=3), _x((2, 3), dt, seed=76, low=1, high=3),
                  np.array(2, dt), 3):
        target = flambeau.tensor(x, device=device)
        version = target._version[0]
        operand = flambeau.tensor(other, device=device) if isinstance(other, np.ndarray) \
            else other
        result = update(target, operand)
        assert result is target, f"{name} must return the tensor it updated"
        assert target._version[0] > version, f"{name} must bump the version counter"
        assert_close(target.numpy(), reference(x, other), dtype=dt)

    def on_a_copy(a, o):  # in a recorded graph: gradients flow through the update
        return update(a * 1, o)

    check_op(on_a_copy, reference, [x, _x((3,), dt, seed=77, low=1, high=3)], device)


def test_inplace_updates_write_through_views(device):
    x = _x((3, 4), "float32", seed=78)
    t = flambeau.tensor(x, device=device)
    t[1:].add_(1)
    t[:, 0].mul_(2)
    view = t[0]
    view -= 5
    expected = x.copy()
    expected[1:] += 1
    expected[:, 0] *= 2
    expected[0] -= 5
    assert_close(t.numpy(), expected)


def test_contiguous_of_an_expanded_tensor_owns_its_elements(device):
    base = flambeau.ones(1, device=device)
    x = base.expand(4).contiguous()
    x[0] = 5
    assert_close(x.numpy(), np.array([5, 1, 1, 1], np.float32))
    assert_close(base.numpy(), np.ones(1, np.float32))
    rows = flambeau.tensor([[1.0], [2.0]], device=device)
    flat = rows.expand(2, 3).reshape(6)  # a copy, as in PyTorch: writable
    flat.add_(1)
    assert_close(flat.numpy(), np.array([2, 2, 2, 3, 3, 3], np.float32))
    assert_close(rows.numpy(), np.array([[1], [2]], np.float32))


_OVERLAPPING_WRITES = {
    "add_": lambda t: t.add_(1),
    "mul_ (operator)": lambda t: t.__imul__(2),
    "fill_": lambda t: t.fill_(3),
    "zero_": lambda t: t.zero_(),
    "copy_": lambda t: t.copy_(flambeau.zeros(t.shape, device=t.device)),
    "exp_": lambda t: t.exp_(),
    "setitem": lambda t: t.__setitem__(0, 7),
}


@pytest.mark.parametrize("name", sorted(_OVERLAPPING_WRITES))
@pytest.mark.parametrize("view", ["expand", "expand_then_slice", "expand_then_permute"])
def test_inplace_writes_to_shared_elements_are_refused(device, name, view):
    base = flambeau.tensor([[1.0], [2.0]], device=device)
    target = {"expand": lambda: base.expand(2, 3),
              "expand_then_slice": lambda: base.expand(2, 3)[:, 1:],
              "expand_then_permute": lambda: base.expand(2, 3).t()}[view]()
    with pytest.raises(MemoryOverlapError, match=r"share memory.*clone"):
        _OVERLAPPING_WRITES[name](target)
    assert_close(base.numpy(), np.array([[1], [2]], np.float32))
    fresh = base.expand(2, 3).clone()
    _OVERLAPPING_WRITES[name](fresh)  # a copy owns its elements
    assert_close(base.numpy(), np.array([[1], [2]], np.float32))


def test_inplace_result_type_rules(device):
    ints = flambeau.tensor([1, 2, 3], device=device)
    with pytest.raises(DTypeError):
        ints += 1.5
    with pytest.raises(DTypeError):
        ints.mul_(flambeau.tensor([0.5, 1.0, 2.0], device=device))
    floats = flambeau.tensor([1.0, 2.0], device=device)
    floats += flambeau.tensor([1, 2], device=device)
    assert floats.dtype == flambeau.float32
    assert_close(floats.numpy(), np.array([2.0, 4.0], np.float32))
    with pytest.raises(ShapeError):
        flambeau.zeros(3, device=device).add_(flambeau.ones(2, 3, device=device))


def test_fill_zero_copy_clamp(device):
    x = _x((2, 3), "float32", seed=79)
    cases = {
        "zero_": (lambda t: t.zero_(), lambda a: np.zeros_like(a)),
        "fill_": (lambda t: t.fill_(2.5), lambda a: np.full_like(a, 2.5)),
        "fill_0d": (lambda t: t.fill_(flambeau.tensor(-1.0, device=device)),
                    lambda a: np.full_like(a, -1.0)),
        "copy_": (lambda t: t.copy_(flambeau.tensor([1, 2, 3], device=device)),
                  lambda a: np.broadcast_to(np.array([1, 2, 3], a.dtype), a.shape)),
        "clamp_": (lambda t: t.clamp_(-1, 1), lambda a: np.clip(a, -1, 1)),
        "clamp_min": (lambda t: t.clamp_(min=flambeau.zeros(3, dtype=t.dtype, device=device)),
                      lambda a: np.maximum(a, 0)),
        "clamp_max": (lambda t: t.clamp_(max=2), lambda a: np.minimum(a, 2)),
    }
    for name, (update, reference) in cases.items():
        for dtype in ("float32", "int64"):
            host = x.astype(dtype)
            t = flambeau.tensor(host, device=device)
            assert update(t) is t, f"{name} must return the tensor it updated"
            assert_close(t.numpy(), reference(host), what=f"{name} {dtype}")
    for other in _devices_other_than(device):
        t = flambeau.zeros(2, 3, device=device)
        t.copy_(flambeau.tensor(x, device=other))
        assert t.device == device
        assert_close(t.numpy(), x)
    check_op(lambda a: (a * 1).clamp_(-1, 1), lambda a: np.clip(a, -1, 1), [x], device)
    check_op(lambda a: (a * 1).zero_(), lambda a: np.zeros_like(a), [x], device)
    check_op(lambda a, b: (a * 1).copy_(b), lambda a, b: a * 0 + b, [x, x[0] * 2], device)
