"""Reductions (sum, mean, prod, max/min, argmax/argmin, var/std, logsumexp, all/any)
and matrix products."""

from __future__ import annotations

import operator

import numpy as np
import pytest

import flambeau
from flambeau.errors import DTypeError, FlambeauIndexError, ShapeError

from .._compare import assert_close
from .._opcheck import check_op
from ..kernel_checks import _require
from ._helpers import _loose, _x

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
