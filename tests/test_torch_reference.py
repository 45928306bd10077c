"""flambeau against PyTorch: elementwise operations, reductions and matrix products.

Each case is an expression written once for ``lib`` (flambeau or torch) and its inputs;
:func:`torch_reference.check` compares values, dtypes and gradients. Shapes, indexing
and in-place updates: ``test_torch_reference_shape.py``; dtypes, creation and repr:
``test_torch_reference_dtypes.py``; autograd: ``test_torch_reference_autograd.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from torch_reference import case, cases, check, const, positive, rand, with_float_dtype

# Inputs with exact zeros, ties and halves, where gradient conventions differ most.
# flambeau-cpu computes with numpy, which warns where PyTorch is silent (0 / 0, log(0)...).
NUMPY_FP_WARNINGS = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")
NO_DOF_WARNING = pytest.mark.filterwarnings("ignore:.*degrees of freedom:UserWarning")

EDGES = np.array([-2.5, -1.0, -0.5, 0.0, 0.0, 0.5, 1.0, 1.5, 2.5], dtype=np.float32)
TIES = np.array([1.0, -1.0, 0.0, 2.0, 0.5, 0.0, 3.0, -2.0, 0.5], dtype=np.float32)


BINARY = {
    "add": case(lambda lib, x, y: x + y, rand(3, 4), rand(4)),
    "add_alpha": case(lambda lib, x, y: lib.add(x, y, alpha=2), rand(3, 4), rand(3, 1)),
    "radd_scalar": case(lambda lib, x: 2 + x, rand(3)),
    "sub": case(lambda lib, x, y: x - y, rand(2, 3, 4), rand(3, 1)),
    "rsub_scalar": case(lambda lib, x: 1.5 - x, rand(3)),
    "sub_alpha": case(lambda lib, x, y: lib.sub(x, y, alpha=0.5), rand(4), rand(4)),
    "mul": case(lambda lib, x, y: x * y, rand(3, 1), rand(1, 4)),
    "mul_scalar": case(lambda lib, x: x * 3, rand(3)),
    "div": case(lambda lib, x, y: x / y, rand(3, 4), positive(4)),
    "rdiv_scalar": case(lambda lib, x: 2.0 / x, positive(5)),
    "div_ints": case(lambda lib, x, y: x / y, rand(6, dtype="int64", low=-9, high=9),
                     np.array([2, -3, 4, 5, -7, 1])),
    "div_floor": case(lambda lib, x, y: lib.div(x, y, rounding_mode="floor"),
                      rand(6, low=-5, high=5), positive(6), grad=False),
    "div_trunc": case(lambda lib, x, y: lib.div(x, y, rounding_mode="trunc"),
                      np.array([-7, -6, 5, 7]), np.array([2, 4, -3, 2])),
    "floordiv_float": case(lambda lib, x, y: x // y, rand(8, low=-5, high=5),
                           rand(8, low=0.5, high=3), grad=False),
    "floordiv_int": case(lambda lib, x, y: x // y, np.array([-7, -6, 5, 7, 0]),
                         np.array([2, 4, -3, -2, 3])),
    "floordiv_scalar": case(lambda lib, x: x // 2, np.array([-3, -2, 3, 5])),
    "rfloordiv_scalar": case(lambda lib, x: 7 // x, np.array([-3, -2, 3, 5])),
    "mod_float": case(lambda lib, x, y: x % y, rand(8, low=-5, high=5),
                      np.array([1.5, -1.5, 2.0, -2.0, 0.7, 3.0, -0.9, 1.1], np.float32)),
    "mod_int": case(lambda lib, x, y: x % y, np.array([-7, -6, 5, 7, 0]),
                    np.array([2, 4, -3, -2, 3])),
    "mod_scalar": case(lambda lib, x: x % 1.5, rand(6, low=-5, high=5)),
    "rmod_scalar": case(lambda lib, x: 5 % x, np.array([-3, 2, 3, -4])),
    "pow_tensor": case(lambda lib, x, y: x ** y, positive(3, 4), rand(4)),
    "pow_scalar_2": case(lambda lib, x: x ** 2, rand(5)),
    "pow_scalar_3": case(lambda lib, x: lib.pow(x, 3), EDGES),
    "pow_scalar_half": case(lambda lib, x: x ** 0.5, positive(5)),
    "pow_scalar_neg": case(lambda lib, x: x ** -1.5, positive(5)),
    "pow_scalar_zero": case(lambda lib, x: x ** 0, EDGES),
    "pow_zero_zero_tensor": case(lambda lib, x, y: x ** y,
                                 np.array([0.0, 0.0, 2.0, 0.0], np.float32),
                                 np.array([0.0, 2.0, 0.0, 1.0], np.float32),
                                 marks=NUMPY_FP_WARNINGS),
    "rpow_scalar": case(lambda lib, x: 2.0 ** x, rand(5)),
    "pow_int": case(lambda lib, x: x ** 2, np.array([-3, 0, 4])),
    "pow_int_float_exp": case(lambda lib, x: x ** 0.5, np.array([1, 4, 9])),
    "maximum": case(lambda lib, x, y: lib.maximum(x, y), rand(3, 4), rand(4)),
    "maximum_ties": case(lambda lib, x, y: lib.maximum(x, y), EDGES, TIES),
    "minimum_ties": case(lambda lib, x, y: lib.minimum(x, y), EDGES, TIES),
    "maximum_int": case(lambda lib, x, y: lib.maximum(x, y), np.array([1, 5, -2]),
                        np.array([3, 5, -4])),
}

UNARY = {
    "neg": case(lambda lib, x: -x, rand(3, 4)),
    "neg_int": case(lambda lib, x: -x, np.array([1, -2, 0])),
    "abs": case(lambda lib, x: lib.abs(x), EDGES),
    "abs_int": case(lambda lib, x: abs(x), np.array([1, -2, 0], np.int32)),
    "exp": case(lambda lib, x: lib.exp(x), rand(3, 4)),
    "log": case(lambda lib, x: lib.log(x), positive(3, 4)),
    "log1p": case(lambda lib, x: lib.log1p(x), rand(5, low=-0.9, high=3)),
    "sqrt": case(lambda lib, x: lib.sqrt(x), positive(5)),
    "rsqrt": case(lambda lib, x: lib.rsqrt(x), positive(5)),
    "sin": case(lambda lib, x: lib.sin(x), rand(5)),
    "cos": case(lambda lib, x: lib.cos(x), rand(5)),
    "tanh": case(lambda lib, x: lib.tanh(x), rand(5)),
    "sigmoid": case(lambda lib, x: lib.sigmoid(x), rand(5, low=-8, high=8)),
    "relu": case(lambda lib, x: lib.relu(x), EDGES),
    "relu_method": case(lambda lib, x: x.relu(), rand(3, 4)),
    "relu_int": case(lambda lib, x: lib.relu(x), np.array([-2, 0, 3])),
    "gelu": case(lambda lib, x: lib.nn.functional.gelu(x) if lib.__name__ == "torch"
                 else lib.gelu(x), rand(7, low=-4, high=4)),
    "gelu_tanh": case(lambda lib, x: lib.nn.functional.gelu(x, approximate="tanh")
                      if lib.__name__ == "torch" else lib.gelu(x, approximate="tanh"),
                      rand(7, low=-4, high=4)),
    "erf": case(lambda lib, x: lib.erf(x), rand(5)),
    "sign": case(lambda lib, x: lib.sign(x), EDGES),
    "sign_int": case(lambda lib, x: lib.sign(x), np.array([-4, 0, 7])),
    "floor": case(lambda lib, x: lib.floor(x), EDGES),
    "ceil": case(lambda lib, x: lib.ceil(x), EDGES),
    "round_half_even": case(lambda lib, x: lib.round(x), EDGES),
    "round_decimals": case(lambda lib, x: lib.round(x, decimals=1),
                           np.array([1.26, -0.34, 2.71], np.float32)),
    "floor_int": case(lambda lib, x: lib.floor(x), np.array([-3, 4])),
    "exp_int": case(lambda lib, x: lib.exp(x), np.array([0, 1, 2])),
    "sqrt_int": case(lambda lib, x: lib.sqrt(x), np.array([0, 1, 4])),
    "sigmoid_float64": case(lambda lib, x: lib.sigmoid(x), rand(4, dtype="float64")),
    "tanh_float16": case(lambda lib, x: lib.tanh(x), rand(4, dtype="float16")),
}

SELECT = {
    "clamp": case(lambda lib, x: lib.clamp(x, -1.0, 1.0), EDGES),
    "clamp_min": case(lambda lib, x: lib.clamp(x, min=0.5), EDGES),
    "clamp_max": case(lambda lib, x: x.clamp(max=-0.5), EDGES),
    "clamp_tensor_bounds": case(lambda lib, x, lo, hi: lib.clamp(x, lo, hi), rand(3, 4),
                                rand(4, low=-2, high=0), rand(3, 1, low=0, high=2)),
    "clamp_int": case(lambda lib, x: lib.clamp(x, 0, 3), np.array([-2, 1, 5])),
    "clamp_int_float_bound": case(lambda lib, x: lib.clamp(x, 0.5, 3), np.array([-2, 1, 5])),
    "where": case(lambda lib, c, x, y: lib.where(c, x, y), const(EDGES > 0), EDGES, TIES),
    "where_broadcast": case(lambda lib, c, x, y: lib.where(c, x, y),
                            const(rand(3, 1, dtype="bool")), rand(4), rand(3, 4)),
    "where_scalar": case(lambda lib, x: lib.where(x > 0, x, 0.0), EDGES),
    "where_method": case(lambda lib, x, y: x.where(x > y, y), rand(5), rand(5)),
    "where_int_scalar": case(lambda lib, x: lib.where(x > 0, x, -1), np.array([-2, 0, 3])),
}

COMPARE = {
    name: case(fn, rand(3, 4, low=-2, high=3, dtype="int64").astype(np.float32),
               rand(4, low=-2, high=3, dtype="int64").astype(np.float32))
    for name, fn in {
        "eq": lambda lib, x, y: x == y, "ne": lambda lib, x, y: x != y,
        "lt": lambda lib, x, y: x < y, "le": lambda lib, x, y: x <= y,
        "gt": lambda lib, x, y: lib.gt(x, y), "ge": lambda lib, x, y: x.ge(y),
        "lt_scalar": lambda lib, x, y: x < 0.5, "eq_scalar": lambda lib, x, y: x == 1,
        "logical_and": lambda lib, x, y: lib.logical_and(x, y),
        "logical_or": lambda lib, x, y: lib.logical_or(x, y),
        "logical_xor": lambda lib, x, y: lib.logical_xor(x, y),
        "logical_not": lambda lib, x, y: lib.logical_not(x),
        "bool_and": lambda lib, x, y: (x > 0) & (y > 0),
        "bool_or": lambda lib, x, y: (x > 0) | (y > 0),
        "bool_xor": lambda lib, x, y: (x > 0) ^ (y > 0),
        "bool_invert": lambda lib, x, y: ~(x > 0),
        "mixed_int_float": lambda lib, x, y: x.long() < y,
    }.items()
}

SPECIAL = const(np.array([np.nan, np.inf, -np.inf, 0.0, -1.0, 2.0], np.float32))

EDGE_CASES = {
    "div_int_by_zero": case(lambda lib, x: x / 0, np.array([1, 0, -1]), marks=NUMPY_FP_WARNINGS),
    "div_float_by_zero": case(lambda lib, x: x / 0.0, SPECIAL, marks=NUMPY_FP_WARNINGS),
    "mod_float_by_zero": case(lambda lib, x: x % 0.0, SPECIAL, marks=NUMPY_FP_WARNINGS),
    "floordiv_negative_float": case(lambda lib, x: x // -0.7, rand(6), grad=False),
    "mod_negative_float": case(lambda lib, x: x % -0.7, rand(6)),
    "int8_wraps": case(lambda lib, x: x + 100, np.array([100, -100], np.int8)),
    "uint8_minus_scalar_wraps": case(lambda lib, x: x - 3, np.array([1, 200], np.uint8)),
    "uint8_compare_negative": case(lambda lib, x: x < -3, np.array([1, 200], np.uint8)),
    "bool_add": case(lambda lib, x, y: x + y, np.array([True, False]), np.array([True, True])),
    "bool_mul": case(lambda lib, x, y: x * y, np.array([True, False]), np.array([True, True])),
    "bool_div": case(lambda lib, x, y: x / y, np.array([True, False]), np.array([True, True])),
    "bool_pow": case(lambda lib, x: x ** 2, np.array([True, False])),
    "int_rpow": case(lambda lib, x: 2 ** x, np.array([0, 3])),
    "float_rpow_int": case(lambda lib, x: 2.5 ** x, np.array([0, 3])),
    "int_eq_float": case(lambda lib, x: x == 1.5, np.array([1, 2])),
    "pow_negative_base_half": case(lambda lib, x: x ** 0.5, np.array([-1.0, 1.0], np.float32),
                                   marks=NUMPY_FP_WARNINGS),
    "pow_negative_base_tensor": case(lambda lib, x, y: x ** y, np.array([-2.0, -2.0], np.float32),
                                     np.array([2.0, 3.0], np.float32), marks=NUMPY_FP_WARNINGS),
    "abs_at_zero": case(lambda lib, x: x.abs(), np.array([0.0, -0.0, 1.0], np.float32)),
    "sqrt_at_zero": case(lambda lib, x: x.sqrt(), np.array([0.0, 1.0], np.float32),
                         marks=NUMPY_FP_WARNINGS),
    "log_at_zero": case(lambda lib, x: x.log(), np.array([0.0, 1.0], np.float32),
                        marks=NUMPY_FP_WARNINGS),
    "sign_at_zero": case(lambda lib, x: x.sign(), np.array([0.0, 1.0], np.float32)),
    "square": case(lambda lib, x: lib.square(x), rand(4)),
    "square_int": case(lambda lib, x: lib.square(x), np.array([1, -2])),
    "expm1": case(lambda lib, x: lib.expm1(x), rand(4)),
    "reciprocal": case(lambda lib, x: lib.reciprocal(x), positive(4)),
    "reciprocal_int": case(lambda lib, x: lib.reciprocal(x), np.array([1, 2])),
    "trunc": case(lambda lib, x: lib.trunc(x), np.array([-1.5, 1.5, 0.0, -0.2], np.float32)),
    "trunc_int": case(lambda lib, x: lib.trunc(x), np.array([-1, 2])),
    "silu": case(lambda lib, x: lib.nn.functional.silu(x) if lib.__name__ == "torch"
                 else lib.silu(x), rand(4)),
    "isnan_isinf_isfinite": case(lambda lib, x: (x.isnan(), lib.isinf(x), lib.isfinite(x)),
                                 SPECIAL),
    "isinf_int": case(lambda lib, x: (lib.isnan(x), lib.isinf(x)), np.array([1, 2])),
    "clamp_min_above_max": case(lambda lib, x: x.clamp(1.0, -1.0), rand(4)),
    "clamp_nan": case(lambda lib, x: x.clamp(0, 1), SPECIAL),
    "relu_nan": case(lambda lib, x: x.relu(), SPECIAL),
    "minimum_nan": case(lambda lib, x, y: lib.minimum(x, y), SPECIAL, const(rand(6))),
    "maximum_int_float": case(lambda lib, x, y: lib.maximum(x, y), np.array([1, 5]),
                              np.array([2.5, 3.0], np.float32)),
    "where_int_float": case(lambda lib, x, y: lib.where(x > 2, x, y), np.array([1, 5]),
                            np.array([2.5, 3.0], np.float32)),
}

ELEMENTWISE = {**BINARY, **UNARY, **SELECT, **COMPARE, **EDGE_CASES}


@pytest.mark.parametrize(("fn", "inputs", "options"), cases(ELEMENTWISE))
def test_elementwise(fn, inputs, options):
    check(fn, *inputs, **options)


X34 = rand(3, 4)
X234 = rand(2, 3, 4)
# Full reductions with ties: max and min appear twice, PyTorch shares the gradient.
TIED = np.array([[3.0, -1.0, 3.0], [0.5, -1.0, 2.0]], dtype=np.float32)
EDGES_NAN = np.array([1.0, np.nan, 2.0], dtype=np.float32)
WITH_ZEROS = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 1.5], [1.0, -2.0, 0.5]], dtype=np.float32)

REDUCTIONS = {
    "sum": case(lambda lib, x: x.sum(), X234),
    "sum_dim": case(lambda lib, x: x.sum(1), X234),
    "sum_dims_keepdim": case(lambda lib, x: lib.sum(x, (0, 2), keepdim=True), X234),
    "sum_neg_dim": case(lambda lib, x: x.sum(dim=-1), X234),
    "sum_int": case(lambda lib, x: x.sum(), rand(5, dtype="int32")),
    "sum_bool": case(lambda lib, x: (x > 0).sum(0), X34),
    "sum_dtype": case(lambda lib, x: x.sum(dtype=lib.float64), X34),
    "mean": case(lambda lib, x: x.mean(), X234),
    "mean_dim": case(lambda lib, x: x.mean((0, 1)), X234),
    "mean_keepdim": case(lambda lib, x: lib.mean(x, -1, keepdim=True), X234),
    "prod": case(lambda lib, x: x.prod(), positive(5)),
    "prod_dim_zeros": case(lambda lib, x: x.prod(1), WITH_ZEROS),
    "prod_dim0_zeros_keepdim": case(lambda lib, x: x.prod(0, keepdim=True), WITH_ZEROS),
    "prod_all_one_zero": case(lambda lib, x: x.prod(), np.array([2.0, 0.0, 3.0], np.float32)),
    "prod_all_two_zeros": case(lambda lib, x: x.prod(), WITH_ZEROS),
    "prod_int": case(lambda lib, x: x.prod(0), rand(3, 2, low=1, high=4, dtype="int16")),
    "max_ties": case(lambda lib, x: x.max(), TIED),
    "min_ties": case(lambda lib, x: lib.min(x), TIED),
    "max_dim": case(lambda lib, x: x.max(1), X34),
    "max_dim_keepdim": case(lambda lib, x: lib.max(x, dim=0, keepdim=True), X34),
    "min_dim": case(lambda lib, x: x.min(-1), X234),
    "max_dim_values": case(lambda lib, x: x.max(dim=1).values, X34),
    "min_dim_indices": case(lambda lib, x: x.min(dim=0).indices, X34),
    "max_binary": case(lambda lib, x, y: lib.max(x, y), EDGES, TIES),
    "amax": case(lambda lib, x: lib.amax(x, (0, 1)), X234),
    "amax_ties": case(lambda lib, x: lib.amax(x, 1), TIED),
    "amin_ties": case(lambda lib, x: lib.amin(x, 0, keepdim=True), TIED),
    "argmax": case(lambda lib, x: x.argmax(), X34),
    "argmax_dim": case(lambda lib, x: lib.argmax(x, 1), X34),
    "argmax_keepdim": case(lambda lib, x: x.argmax(dim=0, keepdim=True), X34),
    "argmin": case(lambda lib, x: lib.argmin(x), X234),
    "argmin_dim": case(lambda lib, x: x.argmin(-1, keepdim=True), X234),
    "var": case(lambda lib, x: x.var(), X234),
    "var_dim": case(lambda lib, x: x.var(1), X234),
    "var_keepdim": case(lambda lib, x: lib.var(x, (0, 2), keepdim=True), X234),
    "var_biased": case(lambda lib, x: x.var(0, unbiased=False), X34),
    "var_correction": case(lambda lib, x: x.var(dim=1, correction=0), X34),
    "std": case(lambda lib, x: x.std(), X234),
    "std_dim": case(lambda lib, x: lib.std(x, -1, keepdim=True), X234),
    "logsumexp": case(lambda lib, x: lib.logsumexp(x, 1), X34),
    "logsumexp_keepdim": case(lambda lib, x: x.logsumexp((0, 2), keepdim=True), X234),
    "logsumexp_large": case(lambda lib, x: x.logsumexp(0), rand(4, 3, low=80, high=100)),
    "all": case(lambda lib, x: (x > -1).all(), X34),
    "all_dim": case(lambda lib, x: lib.all(x > -1, 1), X34),
    "any_dim_keepdim": case(lambda lib, x: (x > 1).any(0, keepdim=True), X34),
    "any": case(lambda lib, x: lib.any(x > 1.9), X34),
    "all_int": case(lambda lib, x: x.all(0), np.array([[1, 0], [2, 3]])),
    "all_float": case(lambda lib, x: x.all(), np.array([1.0, 0.0], np.float32)),
    "any_empty": case(lambda lib, x: x.any(), rand(0)),
    "sum_empty": case(lambda lib, x: x.sum(), rand(0)),
    "mean_empty": case(lambda lib, x: x.mean(), rand(0)),
    "sum_float16": case(lambda lib, x: x.sum(), rand(5, dtype="float16")),
    "mean_float16": case(lambda lib, x: x.mean(0), rand(5, 3, dtype="float16")),
    "mean_dtype": case(lambda lib, x: x.mean(dtype=lib.float64), np.array([1, 2])),
    "sum_int8_to_int64": case(lambda lib, x: x.sum(), np.array([100, 100], np.int8)),
    "prod_bool": case(lambda lib, x: x.prod(), np.array([True, True])),
    "sum_0d": case(lambda lib, x: x.sum(0), np.array(2.0, np.float32)),
    "argmax_0d": case(lambda lib, x: x.argmax(), np.array(2.0, np.float32)),
    "argmin_0d_dim": case(lambda lib, x: x.argmin(-1), np.array(2.0, np.float32)),
    "max_0d_dim": case(lambda lib, x: x.max(0), np.array(2.0, np.float32)),
    "argmax_ties_first": case(lambda lib, x: x.argmax(1), TIED),
    "argmin_ties_first": case(lambda lib, x: x.argmin(), TIED),
    "max_dim_ties_first": case(lambda lib, x: x.max(1), TIED),
    "min_dim_ties_first": case(lambda lib, x: x.min(0), TIED),
    "max_nan": case(lambda lib, x: (x.max(), x.argmax()), const(EDGES_NAN)),
    "std_one_element": case(lambda lib, x: x.std(), rand(1),
                            marks=[NUMPY_FP_WARNINGS, NO_DOF_WARNING]),
    "var_dim_one_row": case(lambda lib, x: x.var(0), rand(1, 3),
                            marks=[NUMPY_FP_WARNINGS, NO_DOF_WARNING]),
    "logsumexp_all_neg_inf": case(lambda lib, x: x.logsumexp(0),
                                  const(np.full(2, -np.inf, np.float32)), marks=NUMPY_FP_WARNINGS),
    "cumsum": case(lambda lib, x: x.cumsum(1), X34),
    "cumsum_int": case(lambda lib, x: lib.cumsum(x, 0), rand(3, 4, dtype="int32")),
    "count_nonzero": case(lambda lib, x: lib.count_nonzero(x, 0), np.array([[0, 1], [2, 0]])),
}


@pytest.mark.parametrize(("fn", "inputs", "options"), cases(REDUCTIONS))
def test_reductions(fn, inputs, options):
    check(fn, *inputs, **options)


MATMUL = {
    "matmul_2d": case(lambda lib, a, b: a @ b, rand(3, 4), rand(4, 5)),
    "matmul_1d_2d": case(lambda lib, a, b: a @ b, rand(4), rand(4, 5)),
    "matmul_2d_1d": case(lambda lib, a, b: lib.matmul(a, b), rand(3, 4), rand(4)),
    "matmul_1d_1d": case(lambda lib, a, b: a @ b, rand(4), rand(4)),
    "matmul_batch_broadcast": case(lambda lib, a, b: a @ b, rand(2, 1, 3, 4), rand(5, 4, 2)),
    "matmul_batch_2d": case(lambda lib, a, b: a @ b, rand(2, 3, 4), rand(4, 2)),
    "matmul_3d_1d": case(lambda lib, a, b: a @ b, rand(2, 3, 4), rand(4)),
    "matmul_1d_3d": case(lambda lib, a, b: a.matmul(b), rand(3), rand(2, 3, 4)),
    "matmul_int": case(lambda lib, a, b: a @ b, rand(2, 3, dtype="int64"),
                       rand(3, 2, dtype="int64")),
    "matmul_const": case(lambda lib, a, b: a @ b, const(rand(2, 3)), rand(3, 2)),
    "mm": case(lambda lib, a, b: lib.mm(a, b), rand(3, 4), rand(4, 2)),
    "bmm": case(lambda lib, a, b: a.bmm(b), rand(2, 3, 4), rand(2, 4, 5)),
    "mv": case(lambda lib, a, b: lib.mv(a, b), rand(3, 4), rand(4)),
    "dot": case(lambda lib, a, b: lib.dot(a, b), rand(4), rand(4)),
    "outer": case(lambda lib, a, b: lib.outer(a, b), rand(3), rand(4)),
}


@pytest.mark.parametrize(("fn", "inputs", "options"), cases(MATMUL))
def test_matmul(fn, inputs, options):
    check(fn, *inputs, **options)


def test_compositions():
    check(lambda lib, x, y, w: lib.tanh(x @ w + y).sigmoid().mean(0).logsumexp(0),
          rand(5, 3), rand(4), rand(3, 4))


# float16 sums and transcendental functions round differently in each library.
_HALF = {"rtol": 1e-2, "atol": 1e-2, "grad_rtol": 2e-2, "grad_atol": 2e-2}


@pytest.mark.parametrize("dtype", ["float64", "float16"])
@pytest.mark.parametrize(("fn", "inputs", "options"),
                         cases({**ELEMENTWISE, **REDUCTIONS, **MATMUL}))
def test_other_float_dtypes(fn, inputs, options, dtype):
    """Every case again with float64 and float16 inputs: dtypes are kept, values agree."""
    check(fn, *with_float_dtype(inputs, dtype), **{**options, **(_HALF if dtype == "float16"
                                                             else {})})
