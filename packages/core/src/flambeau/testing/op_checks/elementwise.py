"""Element-wise operations: binary arithmetic and PyTorch's type promotion, unary
functions, pow, clamp, maximum/minimum and where (with gradients at kinks), comparisons
and logic."""

from __future__ import annotations

import math
import operator

import numpy as np
import pytest

import flambeau
from flambeau.errors import DTypeError

from .._compare import assert_close
from .._opcheck import check_op
from ..kernel_checks import _require
from ._helpers import _case, _loose, _x

_erf = np.vectorize(math.erf, otypes=[np.float64])


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
