"""flambeau against PyTorch: type promotion, creation defaults and ``repr`` strings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from torch_reference import DTYPES, LIBS, dtype_name, torch

import flambeau

PAIRS = list(itertools.product(DTYPES, DTYPES))


def _ones(lib, dtype: str, shape: tuple = (2,)):
    return lib.ones(shape, dtype=getattr(lib, dtype))


def _result_dtypes(fn) -> list[str]:
    """``fn(lib)``'s dtype in flambeau and torch, or ``"error"`` where it raises."""
    names = []
    for lib in LIBS:
        try:
            names.append(dtype_name(fn(lib).dtype))
        except (RuntimeError, TypeError, ValueError):
            names.append("error")
    return names


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_promotion_tensor_tensor(a, b):
    """Both with dimensions: the usual lattice (uint8 + int8 = int16, ...)."""
    got = flambeau.result_type(_ones(flambeau, a), _ones(flambeau, b))
    assert dtype_name(got) == dtype_name(torch.result_type(_ones(torch, a), _ones(torch, b)))
    for op in (lambda x, y: x + y, lambda x, y: x - y, lambda x, y: y * x):
        fl, th = _result_dtypes(lambda lib, op=op: op(_ones(lib, a), _ones(lib, b)))
        assert fl == th


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_promotion_tensor_0d_tensor(a, b):
    """A 0-d tensor only decides the dtype when it is of a higher category."""
    got = flambeau.result_type(_ones(flambeau, a), _ones(flambeau, b, ()))
    want = torch.result_type(_ones(torch, a), _ones(torch, b, ()))
    assert dtype_name(got) == dtype_name(want)
    for op in (lambda x, y: x * y, lambda x, y: y - x, lambda x, y: x + y):
        fl, th = _result_dtypes(lambda lib, op=op: op(_ones(lib, a), _ones(lib, b, ())))
        assert fl == th


SCALARS = [True, 2, -3, 2.5]


@pytest.mark.parametrize("scalar", SCALARS, ids=[type(s).__name__ + str(s) for s in SCALARS])
@pytest.mark.parametrize("a", DTYPES)
def test_promotion_tensor_python_scalar(a, scalar):
    """Python scalars count only by category: int64 tensor + 2.5 is float32."""
    got = flambeau.result_type(_ones(flambeau, a), scalar)
    assert dtype_name(got) == dtype_name(torch.result_type(_ones(torch, a), scalar))
    for op in (lambda x: x + scalar, lambda x: scalar * x, lambda x: x / scalar,
               lambda x: x - scalar):
        fl, th = _result_dtypes(lambda lib, op=op: op(_ones(lib, a)))
        assert fl == th


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_promotion_division_and_comparison(a, b):
    """True division of integers gives the default float; comparisons give bool."""
    for op in (lambda x, y: x / y, lambda x, y: x < y, lambda x, y: x == y,
               lambda x, y: x.maximum(y)):
        fl, th = _result_dtypes(lambda lib, op=op: op(_ones(lib, a), _ones(lib, b)))
        assert fl == th


def test_promotion_where_and_cat():
    for fn in (lambda lib: lib.where(lib.tensor([True]), _ones(lib, "int8"), 2.5),
               lambda lib: lib.where(lib.tensor([True]), _ones(lib, "int32"), 7),
               lambda lib: lib.where(lib.tensor([True]), _ones(lib, "float16"),
                                     _ones(lib, "float64", ())),
               lambda lib: lib.cat([_ones(lib, "uint8"), _ones(lib, "int8")]),
               lambda lib: lib.cat([_ones(lib, "int64"), _ones(lib, "float16")])):
        fl, th = _result_dtypes(fn)
        assert fl == th


CREATION = {
    "tensor_ints": lambda lib: lib.tensor([1, 2]),
    "tensor_floats": lambda lib: lib.tensor([1.0, 2.0]),
    "tensor_mixed": lambda lib: lib.tensor([1, 2.5]),
    "tensor_bools": lambda lib: lib.tensor([True, False]),
    "tensor_int_scalar": lambda lib: lib.tensor(3),
    "tensor_float_scalar": lambda lib: lib.tensor(3.0),
    "tensor_empty": lambda lib: lib.tensor([]),
    "tensor_numpy_float64": lambda lib: lib.tensor(np.array([1.0])),
    "tensor_numpy_int32": lambda lib: lib.tensor(np.array([1], np.int32)),
    "tensor_dtype": lambda lib: lib.tensor([1, 2], dtype=lib.float16),
    "zeros": lambda lib: lib.zeros(2, 3),
    "ones_tuple": lambda lib: lib.ones((2,)),
    "zeros_dtype": lambda lib: lib.zeros(2, dtype=lib.int32),
    "empty": lambda lib: lib.empty(2).fill_(1),
    "zeros_like_int": lambda lib: lib.zeros_like(lib.tensor([1, 2])),
    "ones_like_dtype": lambda lib: lib.ones_like(lib.tensor([1, 2]), dtype=lib.float64),
    "full_int": lambda lib: lib.full((2,), 1),
    "full_float": lambda lib: lib.full((2,), 1.5),
    "full_bool": lambda lib: lib.full((2,), True),
    "full_like": lambda lib: lib.full_like(lib.tensor([1, 2]), 2.7),
    "arange_int": lambda lib: lib.arange(4),
    "arange_float": lambda lib: lib.arange(4.0),
    "arange_step": lambda lib: lib.arange(1, 2, 0.25),
    "arange_negative_step": lambda lib: lib.arange(5, 0, -2),
    "arange_dtype": lambda lib: lib.arange(3, dtype=lib.float64),
    "linspace": lambda lib: lib.linspace(0, 1, 5),
    "linspace_ints": lambda lib: lib.linspace(-2, 2, steps=3),
    "eye": lambda lib: lib.eye(3),
    "eye_rect": lambda lib: lib.eye(2, 3, dtype=lib.int64),
    "tensor_to_double": lambda lib: lib.tensor([1, 2]).double(),
    "tensor_to_dtype": lambda lib: lib.tensor([1.7, -1.7]).to(lib.int32),
    "tensor_float_to_bool": lambda lib: lib.tensor([0.0, 0.5]).bool(),
    "tensor_long": lambda lib: lib.tensor([1.9, -1.9]).long(),
    "new_zeros": lambda lib: lib.tensor([1, 2], dtype=lib.int16).new_zeros(3),
}


@pytest.mark.parametrize("make", list(CREATION.values()), ids=list(CREATION))
def test_creation_defaults(make):
    got, want = make(flambeau), make(torch)
    assert dtype_name(got.dtype) == dtype_name(want.dtype)
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(got.numpy().astype(np.float64),
                               want.numpy().astype(np.float64), rtol=1e-6)


def _grad_leaf(lib):
    return lib.tensor([1.0, -2.0], requires_grad=True)


REPRS = {
    "floats": lambda lib: lib.tensor([1.5, -2.25, 3.0]),
    "whole_floats": lambda lib: lib.tensor([1.0, 2.0]),
    "float_scalar": lambda lib: lib.tensor(0.5),
    "ints": lambda lib: lib.tensor([1, -20, 300]),
    "int_scalar": lambda lib: lib.tensor(7),
    "bools": lambda lib: lib.tensor([True, False]),
    "matrix": lambda lib: lib.tensor([[1.0, 2.5], [-3.0, 4.0]]),
    "int32": lambda lib: lib.tensor([1, 2], dtype=lib.int32),
    "float64": lambda lib: lib.tensor([1.5, 2.0], dtype=lib.float64),
    "float16": lambda lib: lib.tensor([0.5], dtype=lib.float16),
    "uint8": lambda lib: lib.tensor([3], dtype=lib.uint8),
    "requires_grad": _grad_leaf,
    "add_backward": lambda lib: _grad_leaf(lib) + 1,
    "mul_backward": lambda lib: _grad_leaf(lib) * 2,
    "sub_backward": lambda lib: _grad_leaf(lib) - 1,
    "div_backward": lambda lib: _grad_leaf(lib) / 2,
    "neg_backward": lambda lib: -_grad_leaf(lib),
    "exp_backward": lambda lib: _grad_leaf(lib).exp(),
    "sum_backward": lambda lib: _grad_leaf(lib).sum(),
    "mean_backward": lambda lib: _grad_leaf(lib).mean(),
    "mm_backward": lambda lib: lib.mm(_grad_leaf(lib)[None], lib.ones(2, 1)),
    "float_requires_grad_dtype": lambda lib: lib.zeros(1, dtype=lib.float64,
                                                       requires_grad=True),
    "small": lambda lib: lib.tensor([1e-5, 1.0]),
    "large": lambda lib: lib.tensor([1e9, 1.0]),
    "nan_inf": lambda lib: lib.tensor([float("nan"), float("inf"), -1.5]),
    "inf_with_whole_floats": lambda lib: lib.tensor([float("inf"), 1.0, 2.0]),
    "all_nan": lambda lib: lib.tensor([float("nan"), float("nan")]),
    "nan_in_matrix": lambda lib: lib.tensor([[1.0, float("nan")], [float("-inf"), 2.5]]),
    "whole_floats_wide_ratio": lambda lib: lib.tensor([1.0, 2000.0]),
    "negative_zero": lambda lib: lib.tensor([-0.0, 1.0]),
    "bool_scalar": lambda lib: lib.tensor(True),
    "bools_all_true": lambda lib: lib.tensor([[True], [True]]),
    "summarized_floats": lambda lib: lib.arange(2000.0),
    "summarized_whole_floats": lambda lib: lib.arange(1001.0),
    "summarized_matrix": lambda lib: lib.arange(2000.0).reshape(40, 50),
    "summarized_ints": lambda lib: lib.arange(2000).reshape(40, 50),
    "summarized_bools": lambda lib: lib.ones(2000, dtype=lib.bool),
    "summarized_fractions": lambda lib: lib.linspace(0, 1, 2000),
    "empty": lambda lib: lib.tensor([]),
    "empty_2d": lambda lib: lib.zeros(0, 3),
    "empty_int": lambda lib: lib.zeros(0, dtype=lib.int64),
}


def _both_reprs(make) -> tuple[str, str]:
    return repr(make(flambeau)), repr(make(torch)).replace("torch.", "flambeau.")


@pytest.mark.parametrize("make", list(REPRS.values()), ids=list(REPRS))
def test_repr(make):
    got, want = _both_reprs(make)
    assert got == want


def test_size_repr():
    assert repr(flambeau.zeros(2, 3).shape) == repr(torch.zeros(2, 3).shape).replace(
        "torch.", "flambeau.")
