"""Conversions between dtypes and devices, and random numbers (bit-identical on every
device)."""

from __future__ import annotations

import numpy as np
import pytest

import flambeau

from .._compare import assert_close
from .._opcheck import check_op
from ..kernel_checks import _require
from ._helpers import _devices_other_than, _x

# --- conversions ----------------------------------------------------------------------------

_CASTS = [("float32", "int32"), ("float32", "int64"), ("float64", "float32"),
          ("float32", "float64"), ("float32", "float16"), ("float32", "bool"),
          ("bool", "float32"), ("int64", "float16"), ("int64", "uint8"), ("int32", "bool"),
          ("uint8", "int8"), ("bool", "int64")]


@pytest.mark.parametrize(("source", "target"), _CASTS, ids=str)
def test_to_dtype(device, supported_dtypes, source, target):
    src, dst = _require(supported_dtypes, source), _require(supported_dtypes, target)
    x = _x((11,), src, seed=80, low=0 if dst.kind == "u" else -3, high=100 if src.kind in "iu"
           else 3)
    if src.kind == "f":
        x[:6] = np.array([-2.7, -0.5, 0.0, 0.5, 2.7, -0.0], src)  # truncation toward zero
        if dst.kind == "u":
            x = np.abs(x)
    if src.kind == "i" and dst.itemsize < src.itemsize and dst.kind != "f":
        x = np.abs(x) % 100
    # Between floats a cast is the identity for gradients; finite differences of astype
    # would only see its rounding steps.
    reference = (lambda a: a) if src.kind == dst.kind == "f" else (lambda a: a.astype(dst))
    grad = dst.itemsize >= 4  # float16 rounds the gradient too coarsely for the check
    check_op(lambda t: t.to(dst), reference, [x], device, dtype=dst, grad=grad)
    check_op(lambda t: t.to(dtype=target), reference, [x], device, dtype=dst, grad=grad)


def test_dtype_shortcuts(device):
    x = _x((2, 3), "float64", seed=81)
    for name, dtype in (("float", "float32"), ("double", "float64"), ("half", "float16"),
                        ("int", "int32"), ("long", "int64"), ("bool", "bool")):
        reference = (lambda a: a) if dtype.startswith("float") else \
            (lambda a, d=dtype: a.astype(d))  # see test_to_dtype
        check_op(lambda t, n=name: getattr(t, n)(), reference, [x], device, dtype=dtype,
                 grad=dtype != "float16")
    t = flambeau.tensor(x, device=device)
    assert t.to(device) is t and t.to(flambeau.float64) is t


def test_to_other_devices(device):
    x = _x((2, 3), "float64", seed=82)
    for other in _devices_other_than(device):
        moved = flambeau.tensor(x, device=device).to(other)
        assert moved.device == other, f"to({other}) gave a tensor on {moved.device}"
        assert_close(moved.numpy(), x)
        both = flambeau.tensor(x, device=device).to(other, flambeau.float32)
        assert both.device == other
        assert_close(both.numpy(), x.astype(np.float32))
        check_op(lambda t, o=other: (t.to(o) * 2).to(device), lambda a: a * 2, [x], device)
        with pytest.raises(flambeau.errors.DeviceMismatchError):
            flambeau.tensor(x, device=device) + moved


# --- random numbers -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_rand_is_bit_identical_on_every_device(device, supported_dtypes, dtype):
    dt = _require(supported_dtypes, dtype)
    draws = []
    for where in (device, "cpu"):
        flambeau.manual_seed(1234)
        first = flambeau.rand(3, 5, dtype=dt, device=where)
        second = flambeau.rand(7, dtype=dt, device=where)
        draws.append([first.numpy(), second.numpy()])
    for got, expected in zip(*draws):
        assert got.dtype == dt and got.shape == expected.shape
        assert got.tobytes() == expected.tobytes(), f"rand on {device} differs from the cpu's"
        assert (got >= 0).all() and (got < 1).all()


def test_initialisers_are_bit_identical_on_every_device(device):
    # uniform_ may run the optional random_uniform kernel on one device and the core's
    # composition on the other: the same model either way. (Normals go through the
    # device's log, sqrt, sin and cos, so they agree to rounding, as randn's do.)
    draws = []
    for where in (device, "cpu"):
        flambeau.manual_seed(99)
        weight = flambeau.zeros(33, 8, device=where)
        flambeau.nn.init.kaiming_uniform_(weight[:, 1::2], a=5**0.5)
        uniform = weight.numpy().tobytes()
        normal = flambeau.nn.init.normal_(weight[:3], 0.5, 2.0).numpy()
        draws.append((uniform, normal, flambeau.rand(2, device=where).numpy()))
    assert draws[0][0] == draws[1][0], f"uniform_ on {device} differs from the cpu's"
    assert_close(draws[0][1], draws[1][1], rtol=1e-5, atol=1e-6)
    assert draws[0][2].tobytes() == draws[1][2].tobytes()  # both took as many elements


def test_randn_has_mean_0_and_std_1(device):
    flambeau.manual_seed(7)
    z = flambeau.randn(20000, device=device)
    assert z.dtype == flambeau.float32 and z.device == device and tuple(z.shape) == (20000,)
    values = z.numpy().astype(np.float64)
    assert abs(values.mean()) < 0.03, f"mean {values.mean()}"
    assert abs(values.std() - 1) < 0.03, f"std {values.std()}"
    flambeau.manual_seed(7)
    on_cpu = flambeau.randn(20000, device="cpu")
    assert_close(values, on_cpu.numpy().astype(np.float64), rtol=1e-4, atol=1e-5)
