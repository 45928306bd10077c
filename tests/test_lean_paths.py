"""The lean paths of training steps (issue 16) against PyTorch and against the general
compositions they stand in for: linear and mul's gradient straight on the kernels, the
sigmoid and tanh gradients in one buffer, the cpu matmul that multiplies a few rows by a
large transposed matrix the other way round, backward()'s implicit gradient, and
reshape's checks."""

from __future__ import annotations

import numpy as np
import pytest
from torch_reference import check, const, rand, torch

import flambeau
from flambeau._ops import elementwise as ew
from flambeau.errors import ShapeError


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4), (1, 4)], ids=["2d", "3d", "one-row"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_linear_values_and_gradients(shape, bias):
    b = rand(3) if bias else None
    check(lambda lib, x, w, *b: lib.nn.functional.linear(x, w, *b), rand(*shape), rand(3, 4),
          *([b] if bias else []))


def test_linear_of_a_transposed_view_and_a_frozen_weight():
    check(lambda lib, x, w, b: lib.nn.functional.linear(x.t(), w, b), rand(4, 5),
          const(rand(3, 4)), rand(3))


def test_linear_second_derivatives_follow_torch():
    def fn(lib, x, w, b):
        y = lib.nn.functional.linear(x, w, b).tanh().sum()
        (gx,) = lib.autograd.grad(y, x, create_graph=True)
        return (gx * gx).sum()

    check(fn, rand(2, 4), rand(3, 4), rand(3))


@pytest.mark.parametrize("op", ["sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_activation_gradients_are_the_compositions_bit_for_bit(op, dtype):
    rng = np.random.default_rng(1)
    x = flambeau.tensor(rng.standard_normal((6, 7)).astype(dtype), requires_grad=True)
    g = flambeau.tensor(rng.standard_normal((6, 7)).astype(dtype))
    y = getattr(flambeau, op)(x)
    y.backward(g)
    yd = y.detach()
    want = (ew.mul(g, ew.mul(yd, ew.rsub(yd, 1.0))) if op == "sigmoid"
            else ew.mul(g, ew.rsub(ew.mul(yd, yd), 1.0)))
    assert np.array_equal(x.grad.numpy(), want.numpy())


@pytest.mark.parametrize("op", ["sigmoid", "tanh"])
def test_activation_gradients_broadcast_and_differentiate_twice(op):
    check(lambda lib, x: getattr(lib, op)(x).sum(), rand(3, 4))  # an expanded gradient

    def twice(lib, x):
        (gx,) = lib.autograd.grad(getattr(lib, op)(x).sum(), x, create_graph=True)
        return gx

    check(twice, rand(3, 4))


@pytest.mark.parametrize("other", [rand(3, 4), rand(4), rand(3, 4, dtype="float64")],
                         ids=["same-shape", "broadcast", "promoted"])
def test_mul_gradients_follow_torch(other):
    check(lambda lib, x, y: x * y, rand(3, 4), other)


@pytest.mark.parametrize("rows", [1, 8, 32, 48, 49])
def test_cpu_matmul_of_a_transposed_weight(rows):
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, 784)).astype(np.float32)
    w = rng.standard_normal((256, 784)).astype(np.float32)
    got = flambeau.tensor(x) @ flambeau.tensor(w).t()
    np.testing.assert_allclose(got.numpy(), x.astype(np.float64) @ w.T.astype(np.float64),
                               rtol=1e-4, atol=1e-4)
    assert got.is_contiguous() and got.numpy().flags.c_contiguous


@pytest.mark.parametrize(("sa", "sb"), [((16, 1), (1, 24)), ((3, 5, 1), (1, 4)),
                                       ((2, 1, 4, 1), (3, 1, 6))])
def test_matmul_over_an_inner_size_of_one(sa, sb):
    check(lambda lib, a, b: lib.matmul(a, b), rand(*sa), rand(*sb))


def test_backward_starts_from_a_one_of_the_output_dtype():
    x = flambeau.tensor([[2.0]], dtype=flambeau.float64, requires_grad=True)
    (x * 3).backward()
    assert x.grad.dtype == flambeau.float64 and x.grad.tolist() == [[3.0]]
    with pytest.raises(flambeau.autograd.AutogradError, match="scalar outputs"):
        (flambeau.ones(2, requires_grad=True) * 2).backward()


@pytest.mark.parametrize("shape", [(-2, -3), (4, -1, -1), (5,), (0, 6)])
def test_reshape_refuses_bad_shapes(shape):
    x = flambeau.ones(2, 3)
    with pytest.raises(ShapeError):
        x.reshape(*shape)
    with pytest.raises(RuntimeError):
        torch.ones(2, 3).reshape(*shape)


def test_reshape_infers_one_size():
    assert flambeau.arange(6).reshape(-1, 2).tolist() == [[0, 1], [2, 3], [4, 5]]
