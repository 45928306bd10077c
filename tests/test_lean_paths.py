"""The lean paths of training steps (issue 16) against PyTorch and against the general
compositions they stand in for: linear and mul's gradient straight on the kernels, the
sigmoid and tanh gradients in one buffer, the cpu matmul that multiplies a few rows by a
large transposed matrix the other way round, the cpu kernels' one-element in-place writes
and float reductions, backward()'s implicit gradient, the engine accumulating hookless
leaves at once, and reshape's checks."""

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


@pytest.mark.parametrize("other", ["same-shape", "frozen", "scalar", "broadcast", "0-d"])
def test_mul_gradients_on_the_kernels_are_the_compositions_bit_for_bit(other):
    rng = np.random.default_rng(2)
    x = flambeau.tensor(rng.standard_normal((3, 4)).astype("float32"), requires_grad=True)
    y = {"same-shape": flambeau.tensor(rng.standard_normal((3, 4)).astype("float32"),
                                       requires_grad=True),
         "frozen": flambeau.tensor(rng.standard_normal((3, 4)).astype("float32")),
         "scalar": 2.5,
         "broadcast": flambeau.tensor(rng.standard_normal(4).astype("float32"),
                                      requires_grad=True),
         "0-d": flambeau.tensor(1.5, requires_grad=True)}[other]
    g = flambeau.tensor(rng.standard_normal((3, 4)).astype("float32"))
    inputs = [t for t in (x, y) if isinstance(t, flambeau.Tensor) and t.requires_grad]
    lean = flambeau.autograd.grad(x * y, inputs, g)  # (no graph recorded: the kernel path)
    composed = flambeau.autograd.grad(x * y, inputs, g, create_graph=True)
    for got, want in zip(lean, composed):
        assert got.shape == want.shape and np.array_equal(got.numpy(), want.detach().numpy())


@pytest.mark.parametrize("shape", [(1,), (), (1, 1), (3,)])
@pytest.mark.parametrize("op", ["add", "mul", "sub"])
def test_cpu_binary_into_an_operand_of_one_element_or_more(shape, op):
    kernels = flambeau.ones(1)._k
    a = np.full(shape, 1.5, np.float32)
    b = np.full(shape, -0.25, np.float32)
    want = {"add": a + b, "mul": a * b, "sub": a - b}[op]
    dev, other = kernels.from_numpy(a), kernels.from_numpy(b)
    assert kernels.binary(op, dev, other, out=dev) is dev
    assert np.array_equal(kernels.to_numpy(dev), want) and dev.shape == shape
    dev = kernels.from_numpy(a)
    kernels.binary(op, other, 2.0, out=dev)  # into a third array
    assert np.array_equal(kernels.to_numpy(dev), {"add": b + 2, "mul": b * 2, "sub": b - 2}[op])


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int8", "bool"])
@pytest.mark.parametrize("axes", [None, (0,), (0, 1)])
def test_cpu_reduce_gives_arrays_of_the_input_dtype(dtype, axes):
    kernels = flambeau.ones(1)._k
    host = np.arange(6).reshape(2, 3).astype(dtype)
    for op in ("sum", "max", "any"):
        got = kernels.reduce(op, kernels.from_numpy(host), axes, False)
        want = {"sum": np.sum(host, axes, dtype=host.dtype), "max": np.max(host, axes),
                "any": np.any(host, axes)}[op]
        assert type(got) is np.ndarray and got.dtype == want.dtype
        assert np.array_equal(got, want)


def test_hookless_leaves_accumulate_as_hooked_ones_do():
    def run(hooks: bool) -> tuple[list, list]:
        x = flambeau.tensor([1.5, -2.0], requires_grad=True)  # reached twice: summed first
        y = flambeau.tensor([0.5, 3.0], requires_grad=True)
        log: list = []
        if hooks:  # a hooked leaf waits in the engine's queue; others accumulate at once
            x.register_hook(lambda g: log.append(("x", g.tolist())))
            y.register_post_accumulate_grad_hook(lambda t: log.append(("y", t.grad.tolist())))
        grads = []
        for _ in range(2):  # the second time into the existing .grad
            (x * y * x + y.exp() * x).sum().backward()
            grads.append((x.grad.tolist(), y.grad.tolist()))
        return grads, log

    plain, _ = run(False)
    hooked, log = run(True)
    assert plain == hooked
    assert sorted(log) == sorted([("x", plain[0][0])] * 2 + [("y", plain[0][1]),
                                                              ("y", plain[1][1])])


def test_a_hook_registered_during_backward_on_a_leaf_sees_its_whole_gradient():
    def run(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = lib.tensor([3.0, 4.0], requires_grad=True)
        z = x * 2
        log = []
        z.register_hook(lambda g: x.register_hook(lambda gx: log.append(gx.tolist())) and None)
        ((z * y).sum() + (x * x).sum()).backward()
        return log, x.grad.tolist()

    assert run(flambeau) == run(torch) == ([[8.0, 12.0]], [8.0, 12.0])


def test_a_leaf_waiting_behind_a_node_that_gets_no_gradient_still_accumulates():
    from flambeau.autograd._engine import record

    x = flambeau.tensor(2.0, requires_grad=True)
    hidden = x * 3  # gets no gradient: its leaf, waiting with x * 5's part, runs from there
    blocked = hidden * 1.0
    record(blocked, "NoGradBackward", (hidden,), lambda g: (None,))
    (blocked + x * 5).backward()
    assert x.grad.item() == 5.0


@pytest.mark.parametrize("shape", [(256, 10), (3, 64), (5, 65), (1, 10), (4, 1)])
def test_cpu_softmax_and_cross_entropy_grad_sum_along_rows_as_numpy_does(shape):
    """The cpu kernels take short rows' maxima through a transposed copy (fast, exact in
    any order) but must sum along the rows as numpy does: another order moved the LeNet
    digits demo's losses by 1e-3 after 15 epochs."""
    kernels = flambeau.ones(1)._k
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    x[0, 0] = -np.inf  # a -inf entry is no row's maximum: the rows are still shifted
    target = rng.integers(0, shape[1], shape[0])
    e = np.exp(x - np.max(x, axis=1, keepdims=True))
    want = e / np.add.reduce(e, axis=1, keepdims=True)
    assert np.array_equal(kernels.softmax(x.copy(), 1), want, equal_nan=True)  # (a row of -inf)
    want_grad = want.copy()
    want_grad[np.arange(shape[0]), target] -= 1
    want_grad *= np.float32(0.5)
    got = kernels.cross_entropy_grad(x.copy(), target, np.array(0.5, np.float32))
    assert np.array_equal(got, want_grad, equal_nan=True)
