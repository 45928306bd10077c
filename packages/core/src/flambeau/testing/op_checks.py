"""Checks of the tensor operations on the device under test, against numpy.

Where ``kernel_checks`` calls one kernel at a time, these go through the public API:
operators, functions and methods, PyTorch's type promotion, broadcasting, indexing,
in-place updates, device copies, random numbers and autograd. Most checks are one
:func:`~flambeau.testing.check_op` call: values, dtype and shape against a numpy
reference, and, for float inputs, gradients against finite differences of that reference.

Test names must differ from ``kernel_checks``' ones: suites star-import both modules.
"""

from __future__ import annotations

import contextlib
import math
import operator

import numpy as np
import pytest

import flambeau
from flambeau.errors import DTypeError, FlambeauIndexError, MemoryOverlapError, ShapeError

from ._compare import assert_close
from ._opcheck import check_op
from .kernel_checks import _require, _sample

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _x(shape, dtype="float32", seed=0, low=-3, high=3) -> np.ndarray:
    dtype = np.dtype(dtype)
    return np.asarray(_sample(tuple(shape), dtype, seed, low, high), dtype)


def _loose(dtype) -> dict:
    """Tolerances for results summed or composed from several rounded steps."""
    return {"float16": {"rtol": 1e-2, "atol": 1e-2}, "float32": {"rtol": 1e-4, "atol": 1e-5},
            "float64": {"rtol": 1e-9, "atol": 1e-11}}.get(np.dtype(dtype).name, {})


@contextlib.contextmanager
def _case(label: str):
    """Name the case in the message of a failure inside the block."""
    try:
        yield
    except AssertionError as exc:
        exc.args = (f"{label}: {exc}",)
        raise


def _devices_other_than(device) -> list:
    return [d for d in flambeau.devices() if d != device]


# --- binary arithmetic ------------------------------------------------------------------

_ARITHMETIC = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow,
}
_SHAPE_PAIRS = [((2, 3), (2, 3)), ((2, 1, 3), (4, 1)), ((), (3,)), ((3,), ()), ((), ()),
                ((0, 3), (1, 3))]


def _operands(op: str, dt: np.dtype, shape_a, shape_b):
    a = _x(shape_a, dt, seed=1)
    b = _x(shape_b, dt, seed=2)
    if op in ("/", "//", "%"):  # divisors away from zero, of both signs where possible
        b = _x(shape_b, dt, seed=2, low=1, high=4) if dt.kind in "iu" else \
            _x(shape_b, dt, seed=2, low=0.5, high=2)
        if dt.kind != "u":
            b = np.where(_x(shape_b, "bool", seed=3), -b, b).astype(dt)
    if op == "**":
        a = _x(shape_a, dt, seed=1, low=0.5, high=2) if dt.kind == "f" else a
        b = _x(shape_b, dt, seed=2, low=0, high=3) if dt.kind in "iu" else \
            _x(shape_b, dt, seed=2, low=-2, high=2)
    return a, b


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "int8", "uint8"])
@pytest.mark.parametrize("op", list(_ARITHMETIC))
def test_arithmetic_operators(device, supported_dtypes, op, dtype):
    dt = _require(supported_dtypes, dtype)
    fn = _ARITHMETIC[op]
    expected = np.float32 if op == "/" and dt.kind in "iu" else None
    for shape_a, shape_b in _SHAPE_PAIRS:
        with _case(f"shapes {shape_a} and {shape_b}"):
            check_op(fn, fn, list(_operands(op, dt, shape_a, shape_b)), device, dtype=expected,
                     grad=op != "//")


@pytest.mark.parametrize("op", list(_ARITHMETIC))
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_python_scalar_operands(device, supported_dtypes, op, dtype):
    dt = _require(supported_dtypes, dtype)
    a, _ = _operands(op, dt, (2, 3), ())
    fn = _ARITHMETIC[op]
    scalar = 3 if dt.kind in "iu" or op == "**" else 1.5
    right, left = (lambda x: fn(x, scalar)), (lambda x: fn(scalar, x))
    if op in ("/", "//", "%", "**"):  # non-zero divisors, non-negative integer exponents
        a = _x((2, 3), dt, low=1, high=4)
    float_result = np.float32 if op == "/" and dt.kind in "iu" else None
    check_op(right, right, [a], device, dtype=float_result, grad=op != "//")
    check_op(left, left, [a], device, dtype=float_result, grad=op != "//")


_PROMOTIONS = [  # (a, b, result); a tuple is (dtype, shape), a number is a Python scalar
    ("int32", "float32", "float32"), ("uint8", "int8", "int16"), ("int8", "int64", "int64"),
    ("float32", "float64", "float64"), ("float16", "float32", "float32"),
    ("int64", 2.5, "float32"), ("float16", 2.5, "float16"), ("int32", 2, "int32"),
    ("uint8", 2, "uint8"), ("bool", 1, "int64"), ("bool", 1.5, "float32"),
    ("float32", ("float64", ()), "float32"), ("int8", ("int64", ()), "int8"),
    ("int32", ("float64", ()), "float64"), (("int32", ()), 2.5, "float32"),
    (("int16", ()), ("int64", ()), "int64"),
]


@pytest.mark.parametrize(("a", "b", "result"), _PROMOTIONS, ids=str)
@pytest.mark.parametrize("op", ["+", "*"])
def test_type_promotion(device, supported_dtypes, op, a, b, result):
    _require(supported_dtypes, result)

    def make(spec, seed):
        if isinstance(spec, (int, float)):
            return spec
        dtype, shape = spec if isinstance(spec, tuple) else (spec, (2, 3))
        return _x(shape, _require(supported_dtypes, dtype), seed=seed, low=0, high=4)

    fn = _ARITHMETIC[op]
    check_op(fn, fn, [make(a, 1), make(b, 2)], device, dtype=result, grad=False)


def test_true_division_of_integers_gives_float32(device):
    a, b = np.array([7, -7, 1], np.int64), np.array([2, 2, 3], np.int64)
    check_op(operator.truediv, operator.truediv, [a, b], device, dtype=np.float32)
    check_op(flambeau.div, np.divide, [a, b], device, dtype=np.float32)


def test_division_rounding_modes(device):
    a, b = np.array([7.5, -7.5, 7.0, -7.0]), np.array([2.0, 2.0, -2.0, -2.0])
    floor = lambda x, y: flambeau.div(x, y, rounding_mode="floor")  # noqa: E731
    trunc = lambda x, y: flambeau.div(x, y, rounding_mode="trunc")  # noqa: E731
    check_op(floor, np.floor_divide, [a, b], device, grad=False)
    check_op(trunc, lambda x, y: np.trunc(x / y), [a, b], device, grad=False)
    ints = a.astype(np.int64), b.astype(np.int64)
    check_op(trunc, lambda x, y: np.trunc(x / y).astype(np.int64), list(ints), device)


# --- unary ------------------------------------------------------------------------------


def _gelu(x):
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


# name: (flambeau function, numpy reference, input range, keeps integer dtypes)
_UNARY = {
    "neg": (operator.neg, np.negative, (-3, 3), True),
    "abs": (abs, np.abs, (-3, 3), True),
    "exp": (flambeau.exp, np.exp, (-3, 3), False),
    "log": (flambeau.log, np.log, (0.2, 4), False),
    "log1p": (flambeau.log1p, np.log1p, (-0.8, 3), False),
    "sqrt": (flambeau.sqrt, np.sqrt, (0.2, 4), False),
    "rsqrt": (flambeau.rsqrt, lambda x: 1 / np.sqrt(x), (0.2, 4), False),
    "sin": (flambeau.sin, np.sin, (-3, 3), False),
    "cos": (flambeau.cos, np.cos, (-3, 3), False),
    "tanh": (flambeau.tanh, np.tanh, (-3, 3), False),
    "sigmoid": (flambeau.sigmoid, lambda x: 1 / (1 + np.exp(-x)), (-4, 4), False),
    "relu": (flambeau.relu, lambda x: np.maximum(x, 0), (-3, 3), True),
    "gelu": (flambeau.gelu, _gelu, (-3, 3), False),
    "gelu_tanh": (lambda x: flambeau.gelu(x, approximate="tanh"), _gelu_tanh, (-3, 3), False),
    "erf": (flambeau.erf, _erf, (-2, 2), False),
    "sign": (flambeau.sign, np.sign, (-3, 3), True),
    "floor": (flambeau.floor, np.floor, (-3, 3), True),
    "ceil": (flambeau.ceil, np.ceil, (-3, 3), True),
    "round": (flambeau.round, np.round, (-3, 3), True),
}


def _unary_case(name: str, dt: np.dtype, shape: tuple, seed: int) -> tuple:
    """(function, reference, input, expected dtype, tolerances) of unary op ``name``."""
    fn, reference, (low, high), keeps_ints = _UNARY[name]
    if dt.kind in "iu":
        low, high = math.floor(low), max(math.ceil(high), math.floor(low) + 2)
        low = max(low, 1) if name in ("log", "sqrt", "rsqrt") else low
    result = dt if dt.kind == "f" or keeps_ints else np.dtype("float32")
    loose = name in ("sigmoid", "gelu", "gelu_tanh", "rsqrt") or result.name == "float16"
    x = _x(shape, dt, seed=seed, low=low, high=high)
    return fn, reference, x, result, _loose(result) if loose else {}


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int32", "int64"])
@pytest.mark.parametrize("name", list(_UNARY))
def test_unary_functions(device, supported_dtypes, name, dtype):
    dt = _require(supported_dtypes, dtype)
    if dt.kind in "iu" and name.startswith("gelu"):
        pytest.skip("gelu is defined on floats only")
    for shape, seed in (((2, 3), 4), ((0, 4), 6)):
        fn, reference, x, result, tol = _unary_case(name, dt, shape, seed)
        with _case(f"shape {shape}"):
            check_op(fn, reference, [x], device, dtype=result, **tol)


@pytest.mark.parametrize("dtype", ["float64", "int64"])
@pytest.mark.parametrize("name", list(_UNARY))
def test_unary_functions_of_0d(device, supported_dtypes, name, dtype):
    dt = _require(supported_dtypes, dtype)
    if dt.kind in "iu" and name.startswith("gelu"):
        pytest.skip("gelu is defined on floats only")
    fn, reference, x, result, tol = _unary_case(name, dt, (), 5)
    check_op(fn, reference, [x], device, dtype=result, **tol)


def test_unary_methods_match_functions(device):
    x = flambeau.tensor(_x((2, 3), low=0.2, high=3), device=device)
    for name in ("exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid", "relu", "erf",
                 "abs", "neg", "sign", "floor", "ceil", "round", "log1p"):
        assert_close(getattr(x, name)().numpy(), getattr(flambeau, name)(x).numpy(), what=name)


def test_round_halves_to_even(device):
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999997, 3.7], np.float32)
    check_op(flambeau.round, np.round, [x], device, grad=False)  # halves are steps
    check_op(lambda t: flambeau.round(t, decimals=1), lambda a: np.round(a, 1),
             [np.array([1.26, -0.34, 2.0], np.float64)], device)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log(0), sqrt(-1), ...
def test_unary_functions_of_special_values(device):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1.0], np.float32)
    with np.errstate(all="ignore"):
        for name in ("exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "sign", "floor",
                     "erf", "log1p"):
            fn, reference, _, _ = _UNARY[name]
            check_op(fn, reference, [x], device, grad=False, dtype=x.dtype)


# --- pow, clamp, maximum/minimum, where -------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pow(device, supported_dtypes, dtype):
    dt = _require(supported_dtypes, dtype)
    base = _x((2, 3), dt, seed=7, low=0.5, high=2)
    signed = _x((2, 3), dt, seed=8)
    for exponent in (2, 3, 0, -1, 0.5, 2.5, -1.5):
        check_op(lambda a, e=exponent: a**e, lambda a, e=exponent: a**e, [base], device)
    for exponent in (2, 3, 0):
        check_op(lambda a, e=exponent: flambeau.pow(a, e), lambda a, e=exponent: a**e,
                 [signed], device)
    check_op(flambeau.pow, np.power, [base, _x((3,), dt, seed=9)], device)
    check_op(lambda a: 2.0**a, lambda a: 2.0**a, [signed], device)
    check_op(lambda a: flambeau.pow(2.0, a), lambda a: 2.0**a, [signed], device)
    zero_base = np.array([0.0, 0.0, 2.0], dt)
    check_op(lambda a: a**2.0, lambda a: a**2.0, [zero_base], device)


def test_pow_of_integers(device):
    a = np.array([[-3, -1, 0, 2, 5]], np.int64)
    check_op(lambda t: t**2, lambda t: t**2, [a], device)
    check_op(operator.pow, operator.pow, [a, np.array([0, 1, 3, 2, 1], np.int64)], device)
    check_op(lambda t: t**0.5, lambda t: t**0.5, [np.abs(a)], device, dtype=np.float32)
    with pytest.raises(ValueError, match="negative"):
        flambeau.tensor([2, 3], device=device) ** -1


_CLAMPS = {
    "min": (lambda x: flambeau.clamp(x, min=-1), lambda x: np.maximum(x, -1)),
    "max": (lambda x: flambeau.clamp(x, max=1), lambda x: np.minimum(x, 1)),
    "both": (lambda x: flambeau.clamp(x, -1, 1), lambda x: np.clip(x, -1, 1)),
    "crossed": (lambda x: x.clamp(1, -1), lambda x: np.minimum(np.maximum(x, 1), -1)),
    "clip": (lambda x: flambeau.clip(x, -2, 0), lambda x: np.clip(x, -2, 0)),
}


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int16"])
@pytest.mark.parametrize("kind", list(_CLAMPS))
def test_clamp(device, supported_dtypes, kind, dtype):
    dt = _require(supported_dtypes, dtype)
    fn, reference = _CLAMPS[kind]
    for shape in ((3, 4), (), (0, 2)):
        check_op(fn, reference, [_x(shape, dt, seed=10)], device)


def test_clamp_with_tensor_bounds(device):
    x = _x((3, 4), "float64", seed=11)
    low, high = _x((4,), "float64", seed=12, low=-2, high=0), _x((3, 1), "float64", seed=13,
                                                                  low=0, high=2)
    check_op(flambeau.clamp, np.clip, [x, low, high], device)
    check_op(lambda a, lo: a.clamp(min=lo), np.maximum, [x, low], device)
    check_op(lambda a, hi: flambeau.clamp(a, max=hi), np.minimum, [x, high], device)


def test_clamp_promotes_like_pytorch(device):
    ints = np.array([-3, 0, 2, 5], np.int64)
    check_op(lambda t: t.clamp(min=0.5), lambda a: np.maximum(a, 0.5), [ints], device,
             dtype=np.float32)
    check_op(lambda t: t.clamp(-1, 3), lambda a: np.clip(a, -1, 3), [ints], device)
    halves = _x((2, 3), "float16", seed=87)
    check_op(lambda t: t.clamp(max=0.5), lambda a: np.minimum(a, 0.5), [halves], device)
    check_op(flambeau.clamp, np.maximum, [_x((2, 3), "float32", seed=88),
                                          _x((3,), "float64", seed=89)], device)
    with pytest.raises(DTypeError):
        flambeau.tensor([1, 2], device=device).clamp_(min=0.5)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "uint8"])
@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_maximum_minimum(device, supported_dtypes, name, dtype):
    dt = _require(supported_dtypes, dtype)
    fn, reference = getattr(flambeau, name), getattr(np, name)
    for shape_a, shape_b in _SHAPE_PAIRS:
        check_op(fn, reference, [_x(shape_a, dt, seed=14), _x(shape_b, dt, seed=15)], device)
    if dt.kind == "f":
        a = np.array([np.nan, 1.0, 2.0, -np.inf], dt)
        b = np.array([0.0, np.nan, 1.0, 3.0], dt)
        check_op(fn, reference, [a, b], device, grad=False)
        pick = flambeau.max if name == "maximum" else flambeau.min
        check_op(pick, reference, [_x((2, 3), dt, seed=16), _x((3,), dt, seed=17)], device)


def test_maximum_ties_share_the_gradient(device):
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([1.0, 0.0, 3.0])
    check_op(flambeau.maximum, np.maximum, [a, b], device)  # finite differences give 1/2
    check_op(flambeau.minimum, np.minimum, [a, b], device)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_where_function(device, supported_dtypes, dtype):
    dt = _require(supported_dtypes, dtype)
    cond = _x((2, 1, 3), "bool", seed=18)
    for shape_a, shape_b in (((4, 3), (1,)), ((3,), ()), ((2, 4, 3), (2, 4, 3)), ((0, 3), (3,))):
        a, b = _x(shape_a, dt, seed=19), _x(shape_b, dt, seed=20)
        check_op(flambeau.where, np.where, [cond, a, b], device)
    scalar = True if dt.kind == "b" else 0
    check_op(lambda c, a: flambeau.where(c, a, scalar), lambda c, a: np.where(c, a, scalar),
             [cond, _x((3,), dt, seed=21)], device)
    check_op(lambda c, a, b: a.where(c, b), np.where,
             [cond, _x((4, 3), dt, seed=22), _x((3,), dt, seed=23)], device)


def test_where_promotes_its_values(device):
    cond = _x((2, 3), "bool", seed=24)
    ints, floats = _x((2, 3), "int32", seed=25), _x((3,), "float32", seed=26)
    check_op(flambeau.where, np.where, [cond, ints, floats], device, dtype=np.float32)
    check_op(lambda c, a: flambeau.where(c, a, 0.5), lambda c, a: np.where(c, a, 0.5),
             [cond, ints], device, dtype=np.float32)
    check_op(lambda c, a: flambeau.where(c, a, 0.5), lambda c, a: np.where(c, a, 0.5),
             [cond, _x((2, 3), "float64", seed=27)], device)


def test_where_of_two_python_scalars(device):
    cond = _x((2, 3), "bool", seed=90)
    check_op(lambda c: flambeau.where(c, 1.0, 0.0), lambda c: np.where(c, 1.0, 0.0), [cond],
             device, dtype=np.float32)
    check_op(lambda c: flambeau.where(c, 2, -1), lambda c: np.where(c, 2, -1), [cond], device,
             dtype=np.int64)


# Where a function has a kink, finite differences can't say which one-sided derivative an
# op should pick; these are PyTorch's choices.
_KINKS = {  # name: (function, input, gradient of sum(function(input)))
    "relu at 0": (flambeau.relu, [-1.0, 0.0, 2.0], [0, 0, 1]),
    "abs at 0": (flambeau.abs, [-1.0, 0.0, 2.0], [-1, 0, 1]),
    "sign": (flambeau.sign, [-1.0, 0.0, 2.0], [0, 0, 0]),
    "clamp at its bounds": (lambda t: t.clamp(0.0, 1.0), [0.0, 0.5, 1.0, 2.0], [1, 1, 1, 0]),
    "maximum ties": (lambda t: flambeau.maximum(t, flambeau.zeros_like(t)), [-1.0, 0.0, 1.0],
                     [0, 0.5, 1]),
    "max ties": (lambda t: t.max(), [1.0, 3.0, 3.0], [0, 0.5, 0.5]),
    "max along a dim: first index": (lambda t: t.max(0).values, [1.0, 3.0, 3.0], [0, 1, 0]),
    "min along a dim: first index": (lambda t: t.min(dim=0)[0], [1.0, -1.0, -1.0], [0, 1, 0]),
    "x ** 0 at 0": (lambda t: t**0.0, [0.0, 2.0], [0, 0]),
    "x ** 2 at 0": (lambda t: t**2, [0.0, 2.0], [0, 4]),
    "sqrt at 0": (flambeau.sqrt, [0.0, 4.0], [np.inf, 0.25]),
    "prod with one zero": (lambda t: t.prod(), [0.0, 2.0, 3.0], [6, 0, 0]),
    "prod with two zeros": (lambda t: t.prod(), [0.0, 0.0, 3.0], [0, 0, 0]),
}


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
@pytest.mark.parametrize("name", list(_KINKS))
def test_gradients_at_kinks_follow_pytorch(device, name):
    fn, values, expected = _KINKS[name]
    x = flambeau.tensor(values, device=device, requires_grad=True)
    fn(x).sum().backward()
    assert_close(x.grad.numpy(), np.array(expected, np.float32), what=name)


# --- comparisons and logic --------------------------------------------------------------

_COMPARISONS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
                ">": operator.gt, ">=": operator.ge}
_COMPARISON_FUNCTIONS = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


@pytest.mark.parametrize(("dtype_a", "dtype_b"), [("float32", "float32"), ("int64", "int64"),
                                                  ("int32", "float64"), ("uint8", "int8"),
                                                  ("bool", "bool")])
@pytest.mark.parametrize("op", list(_COMPARISONS))
def test_comparisons(device, supported_dtypes, op, dtype_a, dtype_b):
    da, db = _require(supported_dtypes, dtype_a), _require(supported_dtypes, dtype_b)
    fn = _COMPARISONS[op]
    function = getattr(flambeau, _COMPARISON_FUNCTIONS[op])
    for shape_a, shape_b in _SHAPE_PAIRS:
        # whole numbers, so equal elements are common
        a = _x(shape_a, da, seed=28, low=-2, high=2).astype(np.int8).astype(da)
        b = _x(shape_b, db, seed=29, low=-2, high=2).astype(np.int8).astype(db)
        with _case(f"shapes {shape_a} and {shape_b}"):
            check_op(fn, fn, [a, b], device, dtype=bool)
            check_op(function, fn, [a, b], device, dtype=bool)
    a = _x((2, 3), da, seed=30, low=-2, high=2).astype(np.int8).astype(da)
    check_op(lambda t: fn(t, 1), lambda t: fn(t, 1), [a], device, dtype=bool)
    check_op(lambda t: fn(0.5, t), lambda t: fn(0.5, t), [a], device, dtype=bool)


def test_comparisons_with_nan(device):
    a = np.array([np.nan, 1.0, np.nan], np.float32)
    b = np.array([np.nan, np.nan, 2.0], np.float32)
    for fn in _COMPARISONS.values():
        check_op(fn, fn, [a, b], device)


_LOGICAL = ["logical_and", "logical_or", "logical_xor"]


@pytest.mark.parametrize("dtype", ["bool", "int32", "float32"])
@pytest.mark.parametrize("name", _LOGICAL)
def test_logical(device, supported_dtypes, name, dtype):
    dt = _require(supported_dtypes, dtype)
    fn, reference = getattr(flambeau, name), getattr(np, name)
    for shape_a, shape_b in _SHAPE_PAIRS:
        a = _x(shape_a, dt, seed=31, low=-1, high=2).astype(np.int8).astype(dt)
        b = _x(shape_b, dt, seed=32, low=-1, high=2).astype(np.int8).astype(dt)
        check_op(fn, reference, [a, b], device, grad=False)
        check_op(getattr(flambeau.Tensor, name), reference, [a, b], device, grad=False)
    check_op(flambeau.logical_not, np.logical_not, [a], device, grad=False)
    check_op(lambda t: fn(t, 0), lambda t: reference(t, 0), [a], device, grad=False)


def test_bool_operators(device):
    a, b = _x((2, 3), "bool", seed=33), _x((3,), "bool", seed=34)
    for fn in (operator.and_, operator.or_, operator.xor):
        check_op(fn, fn, [a, b], device)
    check_op(operator.invert, operator.invert, [a], device)


# --- reductions ---------------------------------------------------------------------------

_DIMS = [None, 0, -1, (0, 2), (2, 0, 1)]


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", _DIMS, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int32", "uint8", "bool"])
def test_sum(device, supported_dtypes, dtype, dim, keepdim):
    dt = _require(supported_dtypes, dtype)
    result = dt if dt.kind == "f" else np.dtype("int64")
    total = (lambda t: t.sum(dim=dim, keepdim=keepdim)) if keepdim else \
        (lambda t: flambeau.sum(t, dim))  # the method and the function
    check_op(total, lambda a: np.sum(a, axis=dim, keepdims=keepdim),
             [_x((2, 3, 4), dt, seed=35)], device, dtype=result, **_loose(result))


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", _DIMS, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mean(device, supported_dtypes, dtype, dim, keepdim):
    dt = _require(supported_dtypes, dtype)
    check_op(lambda t: t.mean(dim, keepdim=keepdim),
             lambda a: np.mean(a, axis=dim, keepdims=keepdim), [_x((2, 3, 4), dt, seed=36)],
             device, **_loose(dt))


def test_reductions_of_0d_and_empty_tensors(device):
    scalar, empty = np.array(2.5, np.float64), np.zeros((0, 3), np.float64)
    references = {"sum": np.sum, "prod": np.prod,  # numpy warns on the mean of nothing
                  "mean": lambda a, axis=None: np.sum(a, axis) / max(a.size, 1) * np.nan
                  if a.size == 0 else np.mean(a, axis)}
    for name, reference in references.items():
        check_op(getattr(flambeau, name), reference, [scalar], device)
        check_op(lambda t, n=name: getattr(flambeau, n)(t, 0), lambda a, r=reference:
                 r(a, axis=0), [empty], device)
        check_op(getattr(flambeau, name), reference, [empty], device)
    check_op(flambeau.max, np.max, [scalar], device)
    # A 0-d tensor has a dimension 0 (or -1) to reduce over, as in PyTorch.
    zero = np.array(0, np.int64)
    check_op(lambda t: t.sum(0), lambda a: a * 1, [scalar], device)
    check_op(lambda t: t.mean(-1, keepdim=True), lambda a: a * 1, [scalar], device)
    check_op(lambda t: tuple(t.max(0)), lambda a: (a * 1, zero), [scalar], device)
    check_op(lambda t: tuple(flambeau.min(t, -1, keepdim=True)), lambda a: (a * 1, zero),
             [scalar], device)
    check_op(lambda t: t.argmax(0), lambda a: zero, [scalar], device)
    check_op(lambda t: t.argmin(-1, keepdim=True), lambda a: zero, [scalar], device)
    with pytest.raises(FlambeauIndexError):
        flambeau.tensor(scalar, device=device).sum(1)
    for name in ("max", "min", "argmax", "amax"):
        with pytest.raises(ShapeError):
            getattr(flambeau, name)(flambeau.tensor(empty, device=device))


def test_mean_and_var_need_floats(device):
    ints = flambeau.tensor([[1, 2], [3, 4]], device=device)
    for name in ("mean", "var", "std", "logsumexp"):
        with pytest.raises(DTypeError):
            getattr(flambeau, name)(ints)
    check_op(lambda t: t.mean(dtype=flambeau.float64), lambda a: a.mean(),
             [np.array([1, 2, 4], np.int64)], device)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_prod(device, supported_dtypes, dtype, dim, keepdim):
    dt = _require(supported_dtypes, dtype)
    result = dt if dt.kind == "f" else np.dtype("int64")
    x = _x((3, 4), dt, seed=37, low=0.5, high=1.5) if dt.kind == "f" else _x((3, 4), dt, seed=37)
    with_zeros = x.copy()
    with_zeros[0, 1] = 0  # one zero in row 0 and column 1
    with_zeros[1, 1:3] = 0  # two zeros in row 1, two in column 1
    for data in (x, with_zeros):
        check_op(lambda t: flambeau.prod(t, dim, keepdim),
                 lambda a: np.prod(a, axis=dim, keepdims=keepdim), [data], device,
                 dtype=result, **_loose(result))


def _no_ties(dt: np.dtype) -> np.ndarray:
    if dt.kind == "f":
        return _x((3, 4, 5), dt, seed=38)
    return np.random.default_rng(38).permutation(60).reshape(3, 4, 5).astype(dt)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min(device, supported_dtypes, name, dtype):
    dt = _require(supported_dtypes, dtype)
    x = _no_ties(dt)
    check_op(getattr(flambeau, name), getattr(np, name), [x], device)
    check_op(lambda t: getattr(t, name)(), getattr(np, name), [x], device)
    values, indices = getattr(flambeau, name)(flambeau.tensor(x, device=device), dim=1)
    named = getattr(flambeau.tensor(x, device=device), name)(dim=1)
    assert_close(named.values.numpy(), values.numpy())
    assert_close(named.indices.numpy(), indices.numpy())


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_along_a_dim(device, supported_dtypes, name, dtype, dim, keepdim):
    x = _no_ties(_require(supported_dtypes, dtype))
    reduce, arg = getattr(np, name), getattr(np, "arg" + name)
    check_op(lambda t: tuple(getattr(flambeau, name)(t, dim, keepdim)),
             lambda a: (reduce(a, axis=dim, keepdims=keepdim), arg(a, axis=dim,
                                                                   keepdims=keepdim)),
             [x], device)


def test_full_max_and_min_share_the_gradient_among_ties(device):
    x = np.array([[1.0, 3.0], [3.0, -2.0]])
    check_op(flambeau.max, np.max, [x], device)  # finite differences give 1/2 to each tie
    check_op(flambeau.min, np.min, [-x], device)
    check_op(lambda t: flambeau.amax(t, 1), lambda a: np.max(a, 1), [x], device)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("dtype", ["float32", "int64", "uint8"])
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin(device, supported_dtypes, name, dtype, dim, keepdim):
    dt = _require(supported_dtypes, dtype)
    x = _x((3, 4, 5), dt, seed=39, low=-2, high=2)  # many ties: the first index wins
    reference = getattr(np, name)
    check_op(lambda t: getattr(flambeau, name)(t, dim, keepdim),
             lambda a: reference(a, axis=dim, keepdims=keepdim), [x], device)
    check_op(getattr(flambeau, name), reference, [np.array(1.5, np.float32)], device)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("dim", [None, 0, -1, (0, 2)], ids=str)
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std(device, supported_dtypes, name, dim, correction, keepdim):
    reference = getattr(np, name)
    for dt in ("float32", "float64"):
        dt = _require(supported_dtypes, dt)
        check_op(lambda t: getattr(flambeau, name)(t, dim, correction=correction,
                                                   keepdim=keepdim),
                 lambda a: reference(a, axis=dim, ddof=correction, keepdims=keepdim),
                 [_x((3, 2, 4), dt, seed=40)], device, **_loose(dt))
    check_op(lambda t: getattr(t, name)(unbiased=False), lambda a: reference(a),
             [_x((4,), "float64", seed=41)], device)


def _np_logsumexp(a, axis=None, keepdims=False):
    shift = np.max(a, axis=axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - shift), axis=axis, keepdims=True)) + shift
    return out if keepdims else np.squeeze(out, axis=axis)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, -1, (0, 1), None], ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logsumexp(device, supported_dtypes, dtype, dim, keepdim):
    dt = _require(supported_dtypes, dtype)
    x = _x((3, 4), dt, seed=42, low=-20, high=20)
    partly = x.copy()
    partly[0, :3], partly[2, 1] = -np.inf, -np.inf  # no gradient to -inf entries
    for data in (x, partly):
        check_op(lambda t: flambeau.logsumexp(t, dim, keepdim),
                 lambda a: _np_logsumexp(a, dim, keepdim), [data], device, **_loose(dt))


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # log(0) of -inf rows
def test_logsumexp_of_infinite_and_large_rows(device):
    rows = _x((3, 4), "float32", seed=44)
    rows[1] = -np.inf
    rows[2, 0] = np.inf
    check_op(lambda t: t.logsumexp(-1), lambda a: _np_logsumexp(a, -1), [rows], device,
             grad=False)
    big = np.array([1000.0, 1000.0, -1000.0], np.float32)
    check_op(lambda t: t.logsumexp(0), lambda a: _np_logsumexp(a, 0), [big], device)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, -1, (0, 2)], ids=str)
@pytest.mark.parametrize("dtype", ["bool", "int32", "float32"])
@pytest.mark.parametrize("name", ["all", "any"])
def test_all_any(device, supported_dtypes, name, dtype, dim, keepdim):
    dt = _require(supported_dtypes, dtype)
    reference = getattr(np, name)
    x = _x((2, 3, 4), dt, seed=43, low=0, high=2).astype(np.uint8).astype(dt)
    for data in (x, np.ones((2, 3, 4), dt), np.zeros((2, 0, 4), dt)):
        check_op(lambda t: getattr(flambeau, name)(t, dim, keepdim),
                 lambda a: reference(a, axis=dim, keepdims=keepdim), [data], device)


# --- matrix products --------------------------------------------------------------------

_MATMUL_SHAPES = [
    ((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)), ((3,), (2, 3, 4)), ((2, 3, 4), (4,)), ((3, 0), (0, 2)),
    ((0, 3), (3, 2)), ((1, 1), (1, 1)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize(("shape_a", "shape_b"), _MATMUL_SHAPES, ids=str)
def test_matmul_function(device, supported_dtypes, dtype, shape_a, shape_b):
    dt = _require(supported_dtypes, dtype)
    a, b = _x(shape_a, dt, seed=44), _x(shape_b, dt, seed=45)
    check_op(operator.matmul, operator.matmul, [a, b], device, **_loose(dt))
    check_op(flambeau.matmul, np.matmul, [a, b], device, **_loose(dt))


def test_mm_bmm_mv_dot(device):
    a, b = _x((3, 4), "float64", seed=46), _x((4, 2), "float64", seed=47)
    check_op(flambeau.mm, np.matmul, [a, b], device)
    check_op(lambda x, y: x.mm(y), np.matmul, [a, b], device)
    batch_a, batch_b = _x((2, 3, 4), "float64", seed=48), _x((2, 4, 5), "float64", seed=49)
    check_op(flambeau.bmm, np.matmul, [batch_a, batch_b], device)
    check_op(flambeau.mv, np.matmul, [a, _x((4,), "float64", seed=50)], device)
    check_op(flambeau.dot, np.dot, [a[0], b[:, 0]], device)
    with pytest.raises(ShapeError):
        flambeau.mm(flambeau.tensor(a, device=device), flambeau.tensor(b[0], device=device))
    with pytest.raises(ShapeError):
        flambeau.bmm(flambeau.tensor(batch_a, device=device), flambeau.tensor(b, device=device))
    with pytest.raises(ShapeError):
        flambeau.tensor(a, device=device) @ flambeau.tensor(a, device=device)


# --- shapes -------------------------------------------------------------------------------

# name: (flambeau function, numpy reference, input shape)
_MOVEMENT = {
    "reshape": (lambda x: x.reshape(6, 4), lambda a: a.reshape(6, 4), (2, 3, 4)),
    "reshape_-1": (lambda x: flambeau.reshape(x, (2, -1, 2)), lambda a: a.reshape(2, -1, 2),
                   (2, 3, 4)),
    "reshape_0d": (lambda x: x.reshape(1, 1), lambda a: a.reshape(1, 1), ()),
    "reshape_to_0d": (lambda x: x.reshape(()), lambda a: a.reshape(()), (1, 1)),
    "reshape_empty": (lambda x: x.reshape(3, 0, 2), lambda a: a.reshape(3, 0, 2), (0, 6)),
    "view": (lambda x: x.view(4, 6), lambda a: a.reshape(4, 6), (2, 3, 4)),
    "view_-1": (lambda x: x.view(-1), lambda a: a.reshape(-1), (2, 3, 4)),
    "permute": (lambda x: x.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), (2, 3, 4)),
    "permute_fn": (lambda x: flambeau.permute(x, (1, -1, 0)), lambda a: a.transpose(1, 2, 0),
                   (2, 3, 4)),
    "transpose": (lambda x: x.transpose(0, 2), lambda a: a.swapaxes(0, 2), (2, 3, 4)),
    "transpose_neg": (lambda x: flambeau.transpose(x, -1, -2), lambda a: a.swapaxes(-1, -2),
                      (2, 3, 4)),
    "T": (lambda x: x.T, lambda a: a.T, (3, 4)),
    "t": (lambda x: x.t(), lambda a: a.T, (3, 4)),
    "mT": (lambda x: x.mT, lambda a: a.swapaxes(-1, -2), (2, 3, 4)),
    "reshape_after_permute": (lambda x: x.permute(1, 0, 2).reshape(3, 8),
                              lambda a: a.transpose(1, 0, 2).reshape(3, 8), (2, 3, 4)),
    "squeeze": (lambda x: x.squeeze(), lambda a: a.squeeze(), (1, 3, 1, 2)),
    "squeeze_dim": (lambda x: x.squeeze(0), lambda a: a.squeeze(0), (1, 3, 1, 2)),
    "squeeze_noop": (lambda x: x.squeeze(1), lambda a: a, (1, 3, 1, 2)),
    "squeeze_neg": (lambda x: flambeau.squeeze(x, -2), lambda a: a.squeeze(-2), (1, 3, 1, 2)),
    "squeeze_0d": (lambda x: x.squeeze(), lambda a: a, ()),
    "unsqueeze": (lambda x: x.unsqueeze(0), lambda a: a[None], (2, 3)),
    "unsqueeze_end": (lambda x: x.unsqueeze(-1), lambda a: a[..., None], (2, 3)),
    "unsqueeze_mid": (lambda x: flambeau.unsqueeze(x, 1), lambda a: a[:, None], (2, 3)),
    "unsqueeze_0d": (lambda x: x.unsqueeze(0), lambda a: a.reshape(1), ()),
    "expand": (lambda x: x.expand(2, 4, 3), lambda a: np.broadcast_to(a, (2, 4, 3)),
               (2, 1, 3)),
    "expand_new_dims": (lambda x: x.expand(5, -1, -1, 3),
                        lambda a: np.broadcast_to(a, (5, 2, 1, 3)), (2, 1, 3)),
    "expand_0d": (lambda x: flambeau.expand(x, (2, 2)), lambda a: np.broadcast_to(a, (2, 2)),
                  ()),
    "broadcast_to": (lambda x: flambeau.broadcast_to(x, (4, 3)),
                     lambda a: np.broadcast_to(a, (4, 3)), (3,)),
    "flatten": (lambda x: x.flatten(), lambda a: a.reshape(-1), (2, 3, 4)),
    "flatten_from_1": (lambda x: x.flatten(1), lambda a: a.reshape(2, -1), (2, 3, 4)),
    "flatten_0_1": (lambda x: flambeau.flatten(x, 0, 1), lambda a: a.reshape(6, 4), (2, 3, 4)),
    "flatten_0d": (lambda x: x.flatten(), lambda a: a.reshape(1), ()),
    "flip": (lambda x: x.flip(0), lambda a: np.flip(a, 0), (2, 3, 4)),
    "flip_dims": (lambda x: flambeau.flip(x, (0, 2)), lambda a: np.flip(a, (0, 2)), (2, 3, 4)),
    "flip_neg": (lambda x: x.flip(-1), lambda a: np.flip(a, -1), (2, 3, 4)),
    "repeat": (lambda x: x.repeat(2, 1, 3), lambda a: np.tile(a, (2, 1, 3)), (2, 3, 4)),
    "repeat_new_dims": (lambda x: x.repeat(2, 1, 2), lambda a: np.tile(a, (2, 1, 2)), (3, 2)),
    "repeat_empty": (lambda x: x.repeat(0, 2), lambda a: np.tile(a, (0, 2)), (3, 2)),
    "pad_last": (lambda x: flambeau.pad(x, (1, 2)),
                 lambda a: np.pad(a, ((0, 0), (0, 0), (1, 2))), (2, 3, 4)),
    "pad_two": (lambda x: flambeau.pad(x, (1, 0, 0, 2), value=3.0),
                lambda a: np.pad(a, ((0, 0), (0, 2), (1, 0)), constant_values=3), (2, 3, 4)),
    "pad_crop": (lambda x: flambeau.pad(x, (-1, 2, 1, -2)),
                 lambda a: np.pad(a[:, :-2, 1:], ((0, 0), (1, 0), (0, 2))), (2, 3, 4)),
    "narrow": (lambda x: x.narrow(1, 1, 2), lambda a: a[:, 1:3], (2, 3, 4)),
}


@pytest.mark.parametrize("name", list(_MOVEMENT))
def test_movement(device, supported_dtypes, name):
    fn, reference, shape = _MOVEMENT[name]
    for dtype in [d for d in ("float32", "int64") if np.dtype(d) in supported_dtypes]:
        with _case(dtype):
            check_op(fn, reference, [_x(shape, dtype, seed=51)], device)


_JOINS = {  # name: (flambeau function, numpy reference, input shapes)
    "cat0": (lambda *xs: flambeau.cat(xs), lambda *xs: np.concatenate(xs),
             [(2, 3), (1, 3), (0, 3)]),
    "cat1": (lambda *xs: flambeau.cat(xs, 1), lambda *xs: np.concatenate(xs, 1),
             [(2, 3), (2, 1), (2, 0)]),
    "cat_neg": (lambda *xs: flambeau.cat(list(xs), dim=-1), lambda *xs: np.concatenate(xs, -1),
                [(2, 1, 3), (2, 1, 2)]),
    "concat": (lambda *xs: flambeau.concat(xs), lambda *xs: np.concatenate(xs), [(3,), (2,)]),
    "stack0": (lambda *xs: flambeau.stack(xs), lambda *xs: np.stack(xs), [(2, 3)] * 3),
    "stack1": (lambda *xs: flambeau.stack(xs, 1), lambda *xs: np.stack(xs, 1), [(2, 3)] * 2),
    "stack_neg": (lambda *xs: flambeau.stack(xs, -1), lambda *xs: np.stack(xs, -1),
                  [(2, 3)] * 2),
    "stack_0d": (lambda *xs: flambeau.stack(xs), lambda *xs: np.stack(xs), [(), ()]),
    "stack_empty": (lambda *xs: flambeau.stack(xs, 1), lambda *xs: np.stack(xs, 1),
                    [(0, 2)] * 2),
}


@pytest.mark.parametrize("dtype", ["float32", "int32"])
@pytest.mark.parametrize("name", list(_JOINS))
def test_cat_stack(device, supported_dtypes, name, dtype):
    dt = _require(supported_dtypes, dtype)
    fn, reference, shapes = _JOINS[name]
    check_op(fn, reference, [_x(s, dt, seed=52 + i) for i, s in enumerate(shapes)], device)


def test_cat_promotes_dtypes(device):
    parts = [_x((2,), "int32", seed=53), _x((3,), "float32", seed=54), _x((1,), "int64", 55)]
    check_op(lambda *xs: flambeau.cat(xs), lambda *xs: np.concatenate(xs), parts, device,
             dtype=np.float32)
    with pytest.raises(ShapeError):
        flambeau.cat([flambeau.ones(2, 3, device=device), flambeau.ones(3, 3, device=device)], 1)


_SPLITS = {  # name: (flambeau function, numpy reference)
    "split_size": (lambda x: x.split(2), lambda a: np.split(a, [2, 4])),
    "split_size_dim": (lambda x: flambeau.split(x, 2, dim=1), lambda a: np.split(a, [2], 1)),
    "split_sections": (lambda x: x.split([1, 0, 4]), lambda a: np.split(a, [1, 1])),
    "split_sections_dim": (lambda x: flambeau.split(x, [3, 1], -1),
                           lambda a: np.split(a, [3], -1)),
    "chunk": (lambda x: x.chunk(3), lambda a: np.split(a, [2, 4])),
    "chunk_even": (lambda x: flambeau.chunk(x, 2, dim=-1), lambda a: np.split(a, 2, -1)),
    "chunk_more_than_size": (lambda x: x.chunk(8, 1), lambda a: np.split(a, [1, 2, 3], 1)),
    "unbind": (lambda x: x.unbind(1), lambda a: [a[:, i] for i in range(4)]),
}


@pytest.mark.parametrize("name", list(_SPLITS))
def test_split_chunk(device, name):
    fn, reference = _SPLITS[name]
    check_op(fn, reference, [_x((5, 4), "float32", seed=56)], device)


def test_shape_errors(device):
    x = flambeau.ones(2, 3, device=device)
    with pytest.raises(ShapeError):
        flambeau.pad(x, (1, 1, 1))
    with pytest.raises(ShapeError):
        x.reshape(4, -1)
    with pytest.raises(ShapeError):
        x.expand(3, 3)


# --- indexing -----------------------------------------------------------------------------

_READS = [
    1, -1, (1, 2), (1, -1, 0), slice(1, 3), slice(None, None, 2), slice(None, None, -1),
    slice(3, 0, -2), (slice(None), slice(4, None, -2)), (slice(-2, None), slice(None, -1)),
    (Ellipsis, 1), (None, 1), (1, None, slice(None)), (Ellipsis, None), (slice(1, 3), Ellipsis,
    slice(None, None, -1)), slice(5, 9), (slice(None), slice(2, 2)), (),
    [0, 2, 2], np.array([[0, 1], [3, 3]]), [-1, 0], np.array([], np.int64),
    ([0, 2], [1, 4]), (np.array([[0], [2]]), np.array([1, 3, 3])), ([0, 2], slice(None), [1, 2]),
    (slice(1, 3), [0, 4, 0]), (1, [0, 2]), ([0, 2], slice(None), 1), (Ellipsis, [2, 0]),
    (slice(None, None, -1), [1, 1], slice(None, 1)),
    np.array([True, False, True, True]), (slice(None), np.array([0, 1, 0, 0, 1], bool)),
    (np.array([True, False, True, True]), slice(None), 2),
]


@pytest.mark.parametrize("index", _READS, ids=lambda i: " ".join(repr(i).split()))
def test_getitem(device, index):
    x = _x((4, 5, 3), "float64", seed=57)
    read = lambda a: a[index]  # noqa: E731
    check_op(read, read, [x], device)


def test_getitem_with_tensor_indices(device):
    x = _x((4, 5, 3), "float32", seed=58)
    rows, cols = np.array([3, 0, 3], np.int64), np.array([[1], [4]], np.int32)
    check_op(lambda a, i: a[i], lambda a, i: a[i], [x, rows], device)
    check_op(lambda a, i, j: a[i, j], lambda a, i, j: a[i, j], [x, rows, cols], device)
    check_op(lambda a, i: a[1:, i, 1], lambda a, i: a[1:, i, 1], [x, rows[:2] - 3], device)
    check_op(lambda a, m: a[m], lambda a, m: a[m], [x, x > 0], device)
    check_op(lambda a, m: a[m], lambda a, m: a[m], [x, x[:, :, 0] > 0], device)
    check_op(lambda a, i: a[i], lambda a, i: a[i], [x, np.array(2, np.int64)], device)
    check_op(lambda a: a[flambeau.tensor(1, device=device)], lambda a: a[1], [x], device)


def test_getitem_of_0d_and_empty_tensors(device):
    scalar, empty = np.array(3.0), np.zeros((0, 3))
    for index in ((), Ellipsis, None, (None, Ellipsis)):
        check_op(lambda a, i=index: a[i], lambda a, i=index: a[i], [scalar], device)
    for index in ((slice(None), 1), slice(1, None), [], np.zeros((0,), bool)):
        check_op(lambda a, i=index: a[i], lambda a, i=index: a[i], [empty], device)
    with pytest.raises(FlambeauIndexError):
        flambeau.tensor(empty, device=device)[0]


def test_ints_select_before_index_arrays_as_in_pytorch(device):
    # NumPy moves x[1, :, [0, 2]]'s array dimension first (shape (2, 5)); PyTorch applies the
    # int first, as x[1][:, [0, 2]] (shape (5, 2)).
    x = _x((4, 5, 3), "float64", seed=85)
    check_op(lambda a: a[1, :, [0, 2]], lambda a: a[1][:, [0, 2]], [x], device)
    check_op(lambda a: a[[0, 3], :, 2], lambda a: a[:, :, 2][[0, 3], :], [x], device)

    def write(a, v):
        out = a * 1
        if isinstance(out, np.ndarray):
            out[1][:, [0, 2]] = v
        else:
            out[1, :, [0, 2]] = v
        return out

    check_op(write, write, [x, _x((5, 2), "float64", seed=86)], device)


def test_getitem_errors(device):
    x = flambeau.zeros(2, 3, device=device)
    for index in ((2,), (0, -4), ([0, 5],), (0, 0, 0), (..., ...), (1.5,)):
        with pytest.raises(FlambeauIndexError):
            x[index]


def _written(index, value=None):
    """``a`` with ``v`` (or ``value``) written at ``index``, for flambeau and numpy alike."""

    def fn(a, v=value):
        out = a * 1  # a copy that keeps a's dtype (and, for flambeau, the graph)
        out[index] = v
        return out

    return fn


_WRITES = [  # (index, shape of the value or a Python scalar)
    (1, 5.0), (1, (5, 3)), (slice(1, 3), (5, 3)), (slice(1, 3), (3,)), ((slice(None), 2), (4, 3)),
    ((slice(None), 2), (1, 3)), (slice(None, None, -2), ()), ((Ellipsis, 0), -1.0),
    ((1, slice(3, 0, -1), 2), (3,)), ((slice(None), slice(4, 0, -2)), (1, 2, 1)), (Ellipsis, (3,)),
    ([0, 2], (2, 5, 3)), ([0, 2], (5, 3)), (([0, 2], [1, 3]), (2, 3)), (([3, 0], 1, [2, 0]), ()),
    ((slice(None), [1, 4]), (4, 2, 3)), ((slice(1, 3), [4, 1]), (3,)),
    (np.array([True, False, False, True]), 7.0), ((Ellipsis, [2, 0]), (2,)),
    ((-1, -1, -1), 2.5), ((), (4, 5, 3)),
]


@pytest.mark.parametrize(("index", "value"), _WRITES, ids=lambda i: " ".join(repr(i).split()))
def test_setitem(device, index, value):
    x = _x((4, 5, 3), "float64", seed=59)
    if isinstance(value, tuple):
        check_op(_written(index), _written(index), [x, _x(value, "float64", seed=60)], device)
    else:
        check_op(_written(index, value), _written(index, value), [x], device)


def test_setitem_with_masks_and_tensor_indices(device):
    x = _x((4, 5, 3), "float64", seed=61)

    def masked(a, m, v):
        out = a * 1
        out[m] = v
        return out

    check_op(masked, masked, [x, x > 0, np.array(0.5)], device)
    check_op(masked, masked, [x, x[:, 0, 0] > 0, _x((5, 3), "float64", seed=62)], device)
    check_op(masked, masked, [x, np.array([3, 1], np.int64), _x((3,), "float64", seed=63)],
             device)


def test_setitem_converts_values_and_writes_through_views(device):
    ints = _x((3, 4), "int64", seed=64)
    check_op(_written(0, 2.7), _written(0, 2.7), [ints], device)
    check_op(_written((slice(None), 1)), _written((slice(None), 1)),
             [ints, _x((3,), "float32", seed=65)], device)

    def through_view(a):
        out = a * 1
        row = out[1]
        row[2:] = 9
        out[0][::2] = -1
        return out

    check_op(through_view, through_view, [ints], device)
    with pytest.raises(ShapeError):
        flambeau.zeros(2, 3, device=device)[0] = flambeau.ones(2, device=device)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather_function(device, dim):
    x = _x((3, 4), "float64", seed=66)
    index_shape = {0: (5, 4), 1: (3, 6), -1: (2, 3)}[dim]  # smaller non-gather dims allowed
    index = np.random.default_rng(67).integers(0, x.shape[dim], index_shape)

    def reference(a, i):
        block = tuple(slice(0, s) if d != dim % 2 else slice(None)
                      for d, s in enumerate(i.shape))
        return np.take_along_axis(a[block], i, dim)

    check_op(lambda a, i: flambeau.gather(a, dim, i), reference, [x, index], device)
    check_op(lambda a, i: a.gather(dim, i), reference, [x, index], device)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_add(device, dim):
    x = _x((3, 4), "float64", seed=68)
    src = _x((5, 4) if dim == 0 else (3, 6), "float64", seed=69)
    index = np.random.default_rng(70).integers(0, x.shape[dim], src.shape)  # with repeats

    def reference(a, i, s):
        out = a.copy()
        grid = list(np.indices(i.shape, sparse=True))
        grid[dim] = i
        np.add.at(out, tuple(grid), s)
        return out

    check_op(lambda a, i, s: flambeau.scatter_add(a, dim, i, s), reference, [x, index, src],
             device)
    check_op(lambda a, i, s: a.scatter_add(dim, i, s), reference, [x, index, src], device)
    check_op(lambda a, i, s: (a * 1).scatter_add_(dim, i, s), reference, [x, index, src], device)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_select(device, dim):
    x = _x((3, 4, 2), "float64", seed=71)
    index = np.array([0, 2, 2, 1], np.int64) % x.shape[dim]
    check_op(lambda a, i: flambeau.index_select(a, dim, i), lambda a, i: np.take(a, i, dim),
             [x, index], device)
    check_op(lambda a, i: a.index_select(dim, i), lambda a, i: np.take(a, i, dim),
             [x, index[:0]], device)


def test_masked_fill(device):
    x, mask = _x((3, 4), "float64", seed=72), _x((4,), "bool", seed=73)
    check_op(lambda a, m: a.masked_fill(m, -1.0), lambda a, m: np.where(m, -1.0, a),
             [x, mask], device)


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
