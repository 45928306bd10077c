"""Helpers for the tests that compare flambeau with PyTorch (CPU) as the reference.

A case reads as inputs, a call and a reference: the same expression, written once as a
function of a module ``lib`` (``flambeau`` or ``torch``, whose APIs match), runs on
identical inputs in both libraries; values, dtypes and the gradients of
``sum(out * w)`` (random ``w``) for every float input must agree.

>>> check(lambda lib, x, y: lib.sigmoid(x) * y, rand(3, 4), rand(4))

Inputs are numpy arrays (float arrays become tensors that require grad; wrap one in
:func:`const` to turn that off) or anything else, passed unchanged to both libraries.
torch is a test-only dependency: the modules that import this one are skipped without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import flambeau  # noqa: E402

LIBS = (flambeau, torch)
DTYPES = ("bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64")
# (rtol, atol) per dtype: float32 libraries may sum or approximate in another order.
_TOLERANCES = {"float16": (2e-3, 1e-3), "float32": (2e-5, 2e-6), "float64": (1e-10, 1e-12)}

_rng = np.random.default_rng(0)


def rand(*shape: int, low: float = -2.0, high: float = 2.0, dtype: str = "float32") -> np.ndarray:
    """Uniform random values in ``[low, high)`` (integers for integer dtypes)."""
    if np.dtype(dtype).kind in "iu":
        return _rng.integers(int(low), int(high), size=shape).astype(dtype)
    if dtype == "bool":
        return _rng.random(shape) < 0.5
    return _rng.uniform(low, high, size=shape).astype(dtype)


def positive(*shape: int, dtype: str = "float32") -> np.ndarray:
    """Random values in ``[0.5, 2.5)``, for log, sqrt, fractional powers..."""
    return rand(*shape, low=0.5, high=2.5, dtype=dtype)


class const:
    """An input array that becomes a tensor without ``requires_grad``."""

    def __init__(self, array: Any) -> None:
        self.array = np.asarray(array)


def with_float_dtype(inputs: tuple, dtype: str) -> tuple:
    """``inputs`` with every float array (plain or :class:`const`) converted to ``dtype``."""

    def convert(x: Any) -> Any:
        if isinstance(x, np.ndarray) and x.dtype.kind == "f":
            return x.astype(dtype)
        if isinstance(x, const) and x.array.dtype.kind == "f":
            return const(x.array.astype(dtype))
        return x

    return tuple(convert(x) for x in inputs)


def dtype_name(dtype: Any) -> str:
    """``'float32'`` for ``torch.float32`` and for ``numpy.dtype('float32')``."""
    return str(dtype).removeprefix("torch.")


def to_lib(lib: Any, value: Any) -> Any:
    """``value`` as ``lib``'s tensor where it is an input array; unchanged otherwise."""
    if isinstance(value, const):
        return lib.tensor(value.array)
    if isinstance(value, np.ndarray):
        out = lib.tensor(value)
        if value.dtype.kind == "f":
            out.requires_grad_(True)
        return out
    return value


def host(t: Any) -> np.ndarray:
    """A tensor of either library as a numpy array (detached)."""
    return t.detach().numpy().copy()


def assert_same(got: Any, want: Any, *, rtol: float | None = None, atol: float | None = None,
                what: str = "value") -> None:
    """Assert a flambeau result matches torch's: shape, dtype and values, recursively."""
    if isinstance(want, torch.Tensor):
        assert isinstance(got, flambeau.Tensor), f"{what}: got {type(got).__name__}, want a tensor"
        assert tuple(got.shape) == tuple(want.shape), (
            f"{what}: shape {tuple(got.shape)}, torch gives {tuple(want.shape)}")
        assert dtype_name(got.dtype) == dtype_name(want.dtype), (
            f"{what}: dtype {dtype_name(got.dtype)}, torch gives {dtype_name(want.dtype)}")
        name = dtype_name(want.dtype)
        default_rtol, default_atol = _TOLERANCES.get(name, (0.0, 0.0))
        expected, actual = host(want), host(got)
        if name in _TOLERANCES:
            expected, actual = expected.astype(np.float64), actual.astype(np.float64)
        np.testing.assert_allclose(actual, expected, equal_nan=True, err_msg=what,
                                   rtol=default_rtol if rtol is None else rtol,
                                   atol=default_atol if atol is None else atol)
    elif isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)), f"{what}: got {type(got).__name__}, want a sequence"
        assert len(got) == len(want), f"{what}: {len(got)} items, torch gives {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, rtol=rtol, atol=atol, what=f"{what}[{i}]")
    else:
        assert got == want, f"{what}: {got!r}, torch gives {want!r}"


def _tensors(result: Any) -> list:
    if isinstance(result, (tuple, list)):
        return [t for item in result for t in _tensors(item)]
    return [result] if isinstance(result, (flambeau.Tensor, torch.Tensor)) else []


def run_both(fn: Any, inputs: tuple) -> tuple[tuple, tuple]:
    """``fn`` run in each library on its own tensors: ((flambeau result, args), (torch ...))."""
    runs = []
    for lib in LIBS:
        args = tuple(to_lib(lib, x) for x in inputs)
        runs.append((fn(lib, *args), args))
    return runs[0], runs[1]


def check(fn: Any, *inputs: Any, grad: bool = True, rtol: float | None = None,
          atol: float | None = None, grad_rtol: float | None = None,
          grad_atol: float | None = None) -> None:
    """Run ``fn(lib, *inputs)`` in flambeau and torch; compare results and gradients."""
    (got, fl_args), (want, th_args) = run_both(fn, inputs)
    assert_same(got, want, rtol=rtol, atol=atol)
    if not grad:
        return
    fl_outs, th_outs = _tensors(got), _tensors(want)
    for i, (f, t) in enumerate(zip(fl_outs, th_outs)):
        assert f.requires_grad == t.requires_grad, (
            f"output {i}: requires_grad {f.requires_grad}, torch gives {t.requires_grad}")
    pairs = [(f, t) for f, t in zip(fl_outs, th_outs) if t.requires_grad]
    if not pairs:
        return
    fl_loss, th_loss = 0, 0
    weights = np.random.default_rng(1)  # the same weights whatever order tests run in
    for f, t in pairs:
        w = weights.uniform(-2.0, 2.0, size=tuple(t.shape)).astype(dtype_name(t.dtype))
        fl_loss = fl_loss + (f * flambeau.tensor(w)).sum()
        th_loss = th_loss + (t * torch.tensor(w)).sum()
    th_loss.backward()
    fl_loss.backward()
    for i, (f, t) in enumerate(zip(fl_args, th_args)):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            if t.grad is None:
                assert f.grad is None, f"input {i}: got a gradient, torch gives none"
            else:
                assert f.grad is not None, f"input {i}: no gradient, torch gives one"
                assert_same(f.grad, t.grad, rtol=grad_rtol or rtol, atol=grad_atol or atol,
                            what=f"gradient of input {i}")


def case(fn: Any, *inputs: Any, marks: Any = (), **options: Any) -> Any:
    """One row of a table of cases: ``check(fn, *inputs, **options)``."""
    return pytest.param(fn, inputs, options, marks=marks)


def cases(table: dict) -> list:
    """The rows of ``{name: case(...)}`` as pytest parameters, named by their keys."""
    return [pytest.param(*row.values, marks=row.marks, id=name) for name, row in table.items()]
