"""Checks of every required kernel against numpy, on the device under test.

Each check uploads numpy inputs with ``from_numpy``, runs one kernel, downloads the result
with ``to_numpy`` and compares it with numpy's answer. Inputs cover every dtype the device
supports, broadcasting, zero-size arrays and non-contiguous views (made on the device with
``permute`` and ``getitem``), and in-place kernels are checked to write where they should.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from flambeau.backends import (
    ARG_REDUCE_OPS,
    BINARY_OPS,
    DTYPES,
    REDUCE_OPS,
    REQUIRED_KERNELS,
    UNARY_OPS,
    philox,
)

from ._compare import assert_close, tolerance

FLOATS = ("float16", "float32", "float64")
INTS = ("uint8", "int8", "int16", "int32", "int64")
NUMERIC = INTS + FLOATS
ALL = ("bool", *NUMERIC)

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _require(supported: tuple, dtype: str) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in supported:
        pytest.skip(f"device does not support {dtype}")
    return dt


def _sample(shape: tuple[int, ...], dtype: np.dtype, seed: int = 0, low=-4, high=4):
    """Deterministic values of ``dtype`` in [low, high) that every dtype can hold."""
    rng = np.random.default_rng(seed)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind == "u":
        low = max(low, 0)
    if dtype.kind in "iu":
        return rng.integers(low, high, shape).astype(dtype)
    return rng.uniform(low, high, shape).astype(dtype)


def _roundtrip(kernels, host: np.ndarray) -> np.ndarray:
    return kernels.to_numpy(kernels.from_numpy(host))


def _noncontiguous(kernels, host: np.ndarray):
    """A device view with ``host``'s values whose memory is neither C- nor F-ordered."""
    padded = np.zeros((host.shape[1] * 2, host.shape[0]), host.dtype)
    padded[::2] = host.T
    dev = kernels.from_numpy(padded)
    return kernels.permute(kernels.getitem(dev, (slice(None, None, 2),)), (1, 0))


def test_every_required_kernel_is_callable(kernels):
    missing = [k for k in REQUIRED_KERNELS if not callable(getattr(kernels, k, None))]
    assert not missing, f"missing required kernels: {missing}"


# --- memory -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (2, 0, 4), (1, 2, 3, 2)])
def test_from_numpy_to_numpy_roundtrip(kernels, supported_dtypes, dtype, shape):
    dt = _require(supported_dtypes, dtype)
    host = _sample(shape, dt)
    dev = kernels.from_numpy(host)
    assert tuple(dev.shape) == shape and np.dtype(dev.dtype) == dt
    assert_close(kernels.to_numpy(dev), host)


def test_from_numpy_takes_noncontiguous_host_arrays(kernels):
    host = np.arange(24, dtype=np.float32).reshape(4, 6)[::2, ::-3]
    assert_close(_roundtrip(kernels, host), host)


def test_to_numpy_returns_an_independent_copy(kernels):
    dev = kernels.from_numpy(np.zeros(3, np.float32))
    out = kernels.to_numpy(dev)
    out[:] = 5
    assert_close(kernels.to_numpy(dev), np.zeros(3, np.float32))


@pytest.mark.parametrize("dtype", ALL)
def test_empty_has_shape_and_dtype(kernels, supported_dtypes, dtype):
    dt = _require(supported_dtypes, dtype)
    for shape in [(), (0,), (2, 3)]:
        arr = kernels.empty(shape, dt)
        assert tuple(arr.shape) == shape and np.dtype(arr.dtype) == dt


@pytest.mark.parametrize("dtype", ALL)
def test_full(kernels, supported_dtypes, dtype):
    dt = _require(supported_dtypes, dtype)
    value = True if dt.kind == "b" else 3
    for shape in [(), (0, 2), (2, 3)]:
        assert_close(kernels.to_numpy(kernels.full(shape, value, dt)), np.full(shape, value, dt))


def test_full_float_values_are_exact(kernels):
    got = kernels.to_numpy(kernels.full((2,), -0.1, np.dtype("float32")))
    assert_close(got, np.full((2,), -0.1, np.float32), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", ALL)
def test_copy_is_independent(kernels, supported_dtypes, dtype):
    dt = _require(supported_dtypes, dtype)
    host = _sample((2, 3), dt)
    dev = kernels.from_numpy(host)
    duplicate = kernels.copy(dev)
    kernels.assign(dev, kernels.full((2, 3), 1, dt))
    assert_close(kernels.to_numpy(duplicate), host)


def test_copy_of_noncontiguous_view(kernels):
    host = _sample((3, 4), np.dtype("float32"))
    assert_close(kernels.to_numpy(kernels.copy(_noncontiguous(kernels, host))), host)


@pytest.mark.parametrize("dtype", NUMERIC)
def test_assign_broadcasts_arrays_and_scalars(kernels, supported_dtypes, dtype):
    dt = _require(supported_dtypes, dtype)
    dst = kernels.from_numpy(np.zeros((2, 3), dt))
    row = _sample((3,), dt, seed=1)
    kernels.assign(dst, kernels.from_numpy(row))
    assert_close(kernels.to_numpy(dst), np.broadcast_to(row, (2, 3)))
    kernels.assign(dst, 2)
    assert_close(kernels.to_numpy(dst), np.full((2, 3), 2, dt))


def test_assign_into_a_view_writes_through(kernels):
    base = kernels.from_numpy(np.zeros((3, 4), np.float32))
    kernels.assign(kernels.getitem(base, (slice(1, 2),)), 7)
    expected = np.zeros((3, 4), np.float32)
    expected[1:2] = 7
    assert_close(kernels.to_numpy(base), expected)


def test_zero_dim_results_are_writable_arrays(kernels):
    f32 = np.dtype("float32")
    scalar = kernels.from_numpy(np.array(2.0, f32))
    results = {
        "unary": kernels.unary("neg", scalar),
        "binary": kernels.binary("add", scalar, 1.0),
        "reduce": kernels.reduce("sum", kernels.from_numpy(np.ones(3, f32)), None, False),
        "take": kernels.take(kernels.from_numpy(np.ones(3, f32)),
                             kernels.from_numpy(np.array(1, np.int64)), 0),
    }
    for name, result in results.items():
        assert tuple(result.shape) == (), f"{name} of 0-d gave shape {result.shape}"
        kernels.binary("add", result, 1.0, out=result)
        kernels.assign(result, 7.0)
        assert_close(kernels.to_numpy(result), np.array(7.0, f32), what=name)


def test_getitem_of_a_single_element_is_a_writable_view(kernels):
    base = kernels.from_numpy(np.zeros((2, 3), np.float32))
    element = kernels.getitem(base, (1, 2))
    assert tuple(element.shape) == ()
    kernels.assign(element, 5.0)
    kernels.setitem(kernels.getitem(base, (0,)), (1,), 3.0)
    expected = np.zeros((2, 3), np.float32)
    expected[1, 2], expected[0, 1] = 5, 3
    assert_close(kernels.to_numpy(base), expected)


# --- random numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "seed", "offset"),
    [(0, 0, 0), (1, 0, 0), (7, 42, 0), (9, 42, 3), (1000, 2**40 + 17, 12345),
     (5, 2**64 - 1, 2**33), (3, 8, 7), (70001, 3, 13)],
)
def test_random_bits_match_the_reference_bit_for_bit(kernels, n, seed, offset):
    got = kernels.to_numpy(kernels.random_bits(n, seed, offset))
    expected = philox.random_bits(n, seed, offset)
    assert got.dtype == np.uint32, f"random_bits must return uint32, got {got.dtype}"
    np.testing.assert_array_equal(got, expected)


def test_random_bits_streams_are_offset_addressable(kernels):
    whole = kernels.to_numpy(kernels.random_bits(20, 7, 0))
    part = kernels.to_numpy(kernels.random_bits(9, 7, 5))
    np.testing.assert_array_equal(part, whole[5:14])


@pytest.mark.parametrize(("shape", "offset", "low", "high"), [
    ((1000,), 0, 0.0, 1.0), ((37, 5), 13, -0.25, 0.5), ((3, 7001), 7, 1.0, 0.0)])
def test_random_uniform_if_provided_matches_its_meaning_bit_for_bit(kernels, shape, offset,
                                                                    low, high):
    fill = getattr(kernels, "random_uniform", None)
    if fill is None:
        pytest.skip("the backend has no random_uniform (an optional kernel)")
    n = math.prod(shape)
    expected = (philox.random_bits(n, 11, offset) >> 8).astype(np.float32)
    expected *= np.float32((high - low) * 2.0**-24)
    if low:
        expected += np.float32(low)
    out = kernels.full(shape, 0, np.float32)
    fill(out, 11, offset, low, high)
    assert kernels.to_numpy(out).tobytes() == expected.tobytes()
    # A view that is not contiguous is filled in its own C order; the rest stays.
    base = kernels.full((shape[-1], 2 * n // shape[-1]), 0, np.float32)
    view = kernels.permute(kernels.getitem(base, (slice(None), slice(0, None, 2))), (1, 0))
    fill(view, 11, offset, low, high)
    assert kernels.to_numpy(view).reshape(-1).tobytes() == expected.tobytes()
    assert (kernels.to_numpy(base)[:, 1::2] == 0).all()


# --- elementwise ------------------------------------------------------------------------

# Inputs inside each op's domain, so references are finite where the op is.
_UNARY_DOMAIN = {"log": (0.1, 4), "sqrt": (0, 4), "log1p": (-0.9, 4), "exp": (-4, 4)}
_UNARY_INTEGER_OPS = ("neg", "abs", "sign", "floor", "ceil", "round", "logical_not")
_UNARY_REFERENCE = {
    "neg": np.negative, "abs": np.abs, "sign": np.sign, "exp": np.exp, "expm1": np.expm1,
    "log": np.log, "log1p": np.log1p, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos,
    "tanh": np.tanh, "erf": _erf, "floor": np.floor, "ceil": np.ceil, "round": np.round,
    "logical_not": np.logical_not,
}


def _unary_reference(op: str, host: np.ndarray) -> np.ndarray:
    if op in ("floor", "ceil", "round") and host.dtype.kind in "iu":
        return host.copy()
    result = _UNARY_REFERENCE[op](host.astype(np.float64) if host.dtype.kind == "f" else host)
    return result if op == "logical_not" else result.astype(host.dtype)


def test_unary_reference_table_covers_the_contract():
    assert set(_UNARY_REFERENCE) == set(UNARY_OPS)


@pytest.mark.parametrize("dtype", (*FLOATS, "int32", "int64"))
@pytest.mark.parametrize("op", sorted(UNARY_OPS))
def test_unary(kernels, supported_dtypes, op, dtype):
    dt = _require(supported_dtypes, dtype)
    if dt.kind != "f" and op not in _UNARY_INTEGER_OPS:
        pytest.skip(f"{op} takes float inputs")
    low, high = _UNARY_DOMAIN.get(op, (-4, 4))
    host = _sample((3, 5), dt, low=low, high=high)
    if op == "round" and dt.kind == "f":
        host.flat[:4] = np.array([0.5, 1.5, -2.5, 2.4999], dt)
    expected = _unary_reference(op, host)
    assert_close(kernels.to_numpy(kernels.unary(op, kernels.from_numpy(host))), expected, what=op)
    view = _noncontiguous(kernels, host)
    assert_close(kernels.to_numpy(kernels.unary(op, view)), expected, what=f"{op} on a view")
    assert_close(kernels.to_numpy(kernels.unary(op, kernels.from_numpy(host[:0]))),
                 expected[:0], what=f"{op} on an empty array")


@pytest.mark.parametrize("op", sorted(UNARY_OPS))
def test_unary_of_zero_dim_arrays(kernels, op):
    host = np.array(0.5 if op not in ("logical_not",) else 1.0, np.float32)
    got = kernels.to_numpy(kernels.unary(op, kernels.from_numpy(host)))
    assert_close(got, _unary_reference(op, host), what=f"{op} of a 0-d array")


@pytest.mark.parametrize("op", ["neg", "exp", "sqrt"])
def test_unary_out_writes_in_place(kernels, op):
    host = _sample((4,), np.dtype("float32"), low=0, high=2)
    dev = kernels.from_numpy(host)
    kernels.unary(op, dev, out=dev)
    assert_close(kernels.to_numpy(dev), _unary_reference(op, host), what=op)


def test_unary_special_values(kernels):
    host = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], np.float32)
    for op in ("exp", "abs", "tanh", "floor", "sign"):
        got = kernels.to_numpy(kernels.unary(op, kernels.from_numpy(host)))
        assert_close(got, _unary_reference(op, host), what=op)


_BINARY_REFERENCE = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "floordiv": np.floor_divide, "mod": np.remainder, "pow": np.power,
    "maximum": np.maximum, "minimum": np.minimum, "eq": np.equal, "ne": np.not_equal,
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}
_COMPARISONS = {"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"}
_BOOL_OPS = {"eq", "ne", "logical_and", "logical_or", "logical_xor", "maximum", "minimum"}


def _binary_inputs(op: str, dt: np.dtype, shape_a, shape_b):
    a = _sample(shape_a, dt, seed=1)
    b = _sample(shape_b, dt, seed=2)
    if op in ("div", "floordiv", "mod") and dt.kind != "b":
        b = np.where(b == 0, 3, b).astype(dt)  # integer division by zero is undefined
    if op == "pow":
        a = _sample(shape_a, dt, seed=1, low=0, high=3)
        b = _sample(shape_b, dt, seed=2, low=0, high=3)
    return a, b


def _binary_reference(op: str, a, b) -> np.ndarray:
    wide = (lambda x: np.asarray(x, np.float64)) if np.asarray(a).dtype.kind == "f" else np.asarray
    with np.errstate(all="ignore"):
        result = _BINARY_REFERENCE[op](wide(a), wide(b))
    return result if op in _COMPARISONS else result.astype(np.asarray(a).dtype)


def test_binary_reference_table_covers_the_contract():
    assert set(_BINARY_REFERENCE) == set(BINARY_OPS)


@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("op", sorted(BINARY_OPS))
def test_binary_broadcasting(kernels, supported_dtypes, op, dtype):
    dt = _require(supported_dtypes, dtype)
    if dt.kind == "b" and op not in _BOOL_OPS:
        pytest.skip(f"{op} is not defined on bool")
    if op == "div" and dt.kind != "f":
        pytest.skip("div takes float inputs")
    for shape_a, shape_b in [((2, 3), (2, 3)), ((3, 1), (1, 4)), ((2, 3), (3,)), ((), (2,)),
                             ((0, 3), (1, 3))]:
        a, b = _binary_inputs(op, dt, shape_a, shape_b)
        got = kernels.binary(op, kernels.from_numpy(a), kernels.from_numpy(b))
        what = f"{op} {shape_a} with {shape_b}"
        assert_close(kernels.to_numpy(got), _binary_reference(op, a, b), what=what)


@pytest.mark.parametrize("dtype", ("int32", "int64", "float32", "float64"))
@pytest.mark.parametrize("op", sorted(set(BINARY_OPS) - {"div"}))
def test_binary_with_scalar_operand(kernels, supported_dtypes, op, dtype):
    dt = _require(supported_dtypes, dtype)
    a = _sample((2, 3), dt, seed=3, low=0, high=4)
    scalar = 2
    got = kernels.to_numpy(kernels.binary(op, kernels.from_numpy(a), scalar))
    assert_close(got, _binary_reference(op, a, np.asarray(scalar, dt)), what=f"{op} scalar")


def test_binary_on_noncontiguous_views(kernels):
    a = _sample((3, 4), np.dtype("float32"), seed=4)
    b = _sample((3, 4), np.dtype("float32"), seed=5)
    got = kernels.binary("mul", _noncontiguous(kernels, a), _noncontiguous(kernels, b))
    assert_close(kernels.to_numpy(got), a * b)


@pytest.mark.parametrize("op", ["add", "mul", "maximum"])
def test_binary_out_aliasing_the_first_operand(kernels, op):
    a = _sample((2, 3), np.dtype("float32"), seed=6)
    b = _sample((3,), np.dtype("float32"), seed=7)
    dev = kernels.from_numpy(a)
    kernels.binary(op, dev, kernels.from_numpy(b), out=dev)
    assert_close(kernels.to_numpy(dev), _binary_reference(op, a, b), what=op)


def test_python_semantics_of_floordiv_and_mod(kernels):
    a = np.array([7, -7, 7, -7], np.int64)
    b = np.array([2, 2, -2, -2], np.int64)
    for op, expected in (("floordiv", [3, -4, -4, 3]), ("mod", [1, 1, -1, -1])):
        got = kernels.to_numpy(kernels.binary(op, kernels.from_numpy(a), kernels.from_numpy(b)))
        assert_close(got, np.array(expected, np.int64), what=op)


def test_maximum_minimum_propagate_nan(kernels):
    a = np.array([np.nan, 1.0, 2.0], np.float32)
    b = np.array([0.0, np.nan, 1.0], np.float32)
    for op in ("maximum", "minimum"):
        got = kernels.to_numpy(kernels.binary(op, kernels.from_numpy(a), kernels.from_numpy(b)))
        assert_close(got, _binary_reference(op, a, b), what=op)


@pytest.mark.parametrize("dtype", ALL)
def test_where(kernels, supported_dtypes, dtype):
    dt = _require(supported_dtypes, dtype)
    cond = _sample((2, 1, 3), np.dtype(bool), seed=8)
    a = _sample((4, 3), dt, seed=9)
    b = _sample((1,), dt, seed=10)
    got = kernels.where(*(kernels.from_numpy(x) for x in (cond, a, b)))
    assert_close(kernels.to_numpy(got), np.where(cond, a, b))


@pytest.mark.parametrize("source", ALL)
@pytest.mark.parametrize("target", ALL)
def test_cast(kernels, supported_dtypes, source, target):
    src, dst = _require(supported_dtypes, source), _require(supported_dtypes, target)
    host = _sample((11,), src, seed=11, low=-3, high=100 if src.kind in "iu" else 3)
    if src.kind == "f":
        host[:4] = np.array([-2.7, -0.5, 0.5, 2.7], src)
    if dst.kind == "u" or (src.kind in "iuf" and dst.itemsize < src.itemsize and dst.kind != "f"):
        host = np.abs(host) % 100  # out-of-range conversions are undefined; stay in range
    got = kernels.to_numpy(kernels.cast(kernels.from_numpy(host), dst))
    with np.errstate(all="ignore"):
        expected = host.astype(dst)
    assert_close(got, expected, what=f"{source} -> {target}")


# --- reductions ---------------------------------------------------------------------------

_AXES = [None, (0,), (1,), (0, 2), (), (0, 1, 2)]


@pytest.mark.parametrize("dtype", ("bool", "int32", "int64", "float16", "float32", "float64"))
@pytest.mark.parametrize("op", sorted(REDUCE_OPS))
def test_reduce(kernels, supported_dtypes, op, dtype):
    dt = _require(supported_dtypes, dtype)
    if dt.kind == "b" and op not in ("all", "any", "max", "min"):
        pytest.skip(f"{op} of bool is promoted by the core")
    host = _sample((2, 3, 4), dt, seed=12, low=-2, high=3)
    if op == "prod" and dt.kind == "f":
        host = _sample((2, 3, 4), dt, seed=12, low=0.5, high=1.5)
    reference = getattr(np, op)
    rtol, atol = tolerance(dt)
    for axes in _AXES:
        for keepdims in (False, True):
            got = kernels.to_numpy(kernels.reduce(op, kernels.from_numpy(host), axes, keepdims))
            wide = host.astype(np.float64) if dt.kind == "f" else host
            expected = np.asarray(reference(wide, axis=axes, keepdims=keepdims))
            if op not in ("all", "any"):
                expected = expected.astype(dt)
            assert_close(got, expected, rtol=rtol * 10, atol=atol * 10,
                         what=f"{op} axes={axes} keepdims={keepdims}")


@pytest.mark.parametrize("op", ["sum", "prod", "all", "any"])
def test_reduce_over_zero_size_gives_the_identity(kernels, op):
    host = np.zeros((0, 3), np.float32)
    got = kernels.to_numpy(kernels.reduce(op, kernels.from_numpy(host), (0,), False))
    assert_close(got, np.asarray(getattr(np, op)(host, axis=0)), what=op)


def test_reduce_on_noncontiguous_view(kernels):
    host = _sample((3, 4), np.dtype("float64"), seed=13)
    got = kernels.reduce("sum", _noncontiguous(kernels, host), (1,), False)
    assert_close(kernels.to_numpy(got), host.sum(axis=1))


def test_reduce_long_float32_sum_is_accurate(kernels):
    host = np.full(100_000, 0.1, np.float32)
    got = kernels.to_numpy(kernels.reduce("sum", kernels.from_numpy(host), None, False))
    assert abs(float(got) - 10_000.0) < 1.0, f"sum of 100000 x 0.1 gave {got}"


@pytest.mark.parametrize("dtype", ("int32", "float32", "float64"))
@pytest.mark.parametrize("op", sorted(ARG_REDUCE_OPS))
def test_arg_reduce(kernels, supported_dtypes, op, dtype):
    dt = _require(supported_dtypes, dtype)
    host = _sample((3, 4, 5), dt, seed=14, low=-2, high=2)  # many ties: first index wins
    reference = getattr(np, op)
    for axis in (None, 0, 1, 2):
        for keepdims in (False, True):
            got = kernels.to_numpy(kernels.arg_reduce(op, kernels.from_numpy(host), axis,
                                                      keepdims))
            expected = np.asarray(reference(host, axis=axis, keepdims=keepdims), np.int64)
            assert_close(got, expected, what=f"{op} axis={axis} keepdims={keepdims}")


# --- matmul -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ("float16", "float32", "float64", "int32", "int64"))
@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [((3, 4), (4, 5)), ((1, 1), (1, 1)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
     ((3, 0), (0, 4)), ((0, 3), (3, 2)), ((33, 65), (65, 17))],
)
def test_matmul(kernels, supported_dtypes, dtype, shape_a, shape_b):
    dt = _require(supported_dtypes, dtype)
    a = _sample(shape_a, dt, seed=15, low=-3, high=3)
    b = _sample(shape_b, dt, seed=16, low=-3, high=3)
    got = kernels.to_numpy(kernels.matmul(kernels.from_numpy(a), kernels.from_numpy(b)))
    wide = (lambda x: x.astype(np.float64)) if dt.kind == "f" else (lambda x: x)
    expected = np.matmul(wide(a), wide(b)).astype(dt)
    rtol, atol = tolerance(dt)
    assert_close(got, expected, rtol=rtol * 10, atol=atol * 100 if dt.itemsize > 2 else 0.1)


def test_matmul_on_transposed_views(kernels):
    a = _sample((4, 3), np.dtype("float32"), seed=17)
    b = _sample((5, 4), np.dtype("float32"), seed=18)
    a_t = kernels.permute(kernels.from_numpy(a), (1, 0))
    b_t = kernels.permute(kernels.from_numpy(b), (1, 0))
    assert_close(kernels.to_numpy(kernels.matmul(a_t, b_t)), a.T @ b.T, rtol=1e-5, atol=1e-5)


# --- movement -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ALL)
def test_reshape_permute_broadcast(kernels, supported_dtypes, dtype):
    dt = _require(supported_dtypes, dtype)
    host = _sample((2, 3, 4), dt, seed=19)
    dev = kernels.from_numpy(host)
    assert_close(kernels.to_numpy(kernels.reshape(dev, (6, 4))), host.reshape(6, 4))
    assert_close(kernels.to_numpy(kernels.reshape(dev, ())), host) if host.size == 1 else None
    assert_close(kernels.to_numpy(kernels.permute(dev, (2, 0, 1))), host.transpose(2, 0, 1))
    row = kernels.from_numpy(host[0, :1])
    assert_close(kernels.to_numpy(kernels.broadcast_to(row, (5, 1, 4))),
                 np.broadcast_to(host[0, :1], (5, 1, 4)))
    assert_close(kernels.to_numpy(kernels.reshape(kernels.from_numpy(host[:0]), (0, 7))),
                 np.zeros((0, 7), dt))


def test_reshape_of_a_permuted_view(kernels):
    host = _sample((3, 4), np.dtype("float32"), seed=20)
    view = kernels.permute(kernels.from_numpy(host), (1, 0))
    assert_close(kernels.to_numpy(kernels.reshape(view, (12,))), host.T.reshape(12))


_INDICES = [
    (0,), (-1,), (slice(1, 3),), (slice(None, None, -1),), (slice(None), 2),
    (slice(None, None, 2), slice(3, 0, -2)), (1, slice(None), -1), (slice(5, 9),),
    (slice(None), slice(2, 2)),
]


@pytest.mark.parametrize("index", _INDICES, ids=repr)
def test_getitem_basic_slicing(kernels, index):
    host = _sample((4, 5, 3), np.dtype("float32"), seed=21)
    got = kernels.to_numpy(kernels.getitem(kernels.from_numpy(host), index))
    assert_close(got, host[index])


@pytest.mark.parametrize("index", _INDICES, ids=repr)
def test_setitem_basic_slicing(kernels, index):
    host = _sample((4, 5, 3), np.dtype("float32"), seed=22)
    dev = kernels.from_numpy(host)
    value = _sample(np.empty((4, 5, 3))[index].shape, np.dtype("float32"), seed=23)
    kernels.setitem(dev, index, kernels.from_numpy(value))
    host[index] = value
    assert_close(kernels.to_numpy(dev), host)


def test_setitem_scalar_and_broadcast_value(kernels):
    host = np.zeros((3, 4), np.int64)
    dev = kernels.from_numpy(host)
    kernels.setitem(dev, (slice(None), 1), 9)
    kernels.setitem(dev, (slice(1, 3),), kernels.from_numpy(np.arange(4, dtype=np.int64)))
    host[:, 1] = 9
    host[1:3] = np.arange(4)
    assert_close(kernels.to_numpy(dev), host)


@pytest.mark.parametrize("dtype", ALL)
def test_concatenate(kernels, supported_dtypes, dtype):
    dt = _require(supported_dtypes, dtype)
    parts = [_sample((2, n, 3), dt, seed=n) for n in (1, 0, 3)]
    for axis in (0, 1, 2):
        chunks = [p if axis == 1 else np.moveaxis(p, 1, axis) for p in parts]
        if axis != 1:
            chunks = [c for c in chunks if c.shape[1] == chunks[0].shape[1]]
        got = kernels.concatenate([kernels.from_numpy(c) for c in chunks], axis)
        assert_close(kernels.to_numpy(got), np.concatenate(chunks, axis), what=f"axis={axis}")


@pytest.mark.parametrize("dtype", NUMERIC)
def test_pad(kernels, supported_dtypes, dtype):
    dt = _require(supported_dtypes, dtype)
    host = _sample((2, 3), dt, seed=24)
    for widths, value in ((((1, 0), (2, 1)), 0), (((0, 0), (0, 0)), 5), (((2, 2), (0, 3)), 1)):
        got = kernels.to_numpy(kernels.pad(kernels.from_numpy(host), widths, value))
        assert_close(got, np.pad(host, widths, constant_values=value), what=str(widths))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather(kernels, axis):
    host = _sample((3, 4), np.dtype("float32"), seed=25)
    index = np.random.default_rng(26).integers(0, host.shape[axis], (3, 4) if axis else (5, 4))
    got = kernels.gather(kernels.from_numpy(host), axis % 2, kernels.from_numpy(index))
    assert_close(kernels.to_numpy(got), np.take_along_axis(host, index, axis))


@pytest.mark.parametrize("axis", [0, 1])
def test_take(kernels, axis):
    host = _sample((3, 4), np.dtype("float64"), seed=27)
    index = np.array([[0, 2], [2, 2], [1, 0]], np.int64)
    got = kernels.take(kernels.from_numpy(host), kernels.from_numpy(index), axis)
    assert_close(kernels.to_numpy(got), np.take(host, index, axis=axis))
    empty = kernels.take(kernels.from_numpy(host), kernels.from_numpy(index[:0]), axis)
    assert_close(kernels.to_numpy(empty), np.take(host, index[:0], axis=axis))


@pytest.mark.parametrize("dtype", ("int64", "float32", "float64"))
@pytest.mark.parametrize("axis", [0, 1])
def test_scatter_add_accumulates_duplicates(kernels, supported_dtypes, dtype, axis):
    dt = _require(supported_dtypes, dtype)
    dst = _sample((3, 4), dt, seed=28)
    src = _sample((5, 4) if axis == 0 else (3, 6), dt, seed=29)
    index = np.random.default_rng(30).integers(0, dst.shape[axis], src.shape)
    dev = kernels.from_numpy(dst)
    kernels.scatter_add(dev, axis, kernels.from_numpy(index), kernels.from_numpy(src))
    expected = dst.copy()
    grid = list(np.indices(index.shape, sparse=True))
    grid[axis] = index
    np.add.at(expected, tuple(grid), src)
    rtol, atol = tolerance(dt)
    assert_close(kernels.to_numpy(dev), expected, rtol=rtol * 10, atol=atol * 10)


def test_kernels_accept_every_declared_dtype(supported_dtypes):
    # bfloat16 (numpy's, from ml_dtypes) is the one dtype outside DTYPES a device may list.
    unknown = [d for d in supported_dtypes
               if np.dtype(d) not in DTYPES.values() and np.dtype(d).name != "bfloat16"]
    assert not unknown, f"device_info lists dtypes outside the contract: {unknown}"
