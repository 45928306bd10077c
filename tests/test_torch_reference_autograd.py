"""flambeau against PyTorch: autograd beyond one backward of one scalar.

Each test runs the same scenario in both libraries and compares what it returns.
"""

from __future__ import annotations

import pytest
from torch_reference import assert_same, check, rand, run_both, torch

import flambeau

X = rand(3, 4)
W = rand(4)


def test_gradients_accumulate_across_backward_calls():
    def fn(lib, x, w):
        (x * w).sum().backward()
        (x.exp() * 2).mean().backward()
        return x.grad.clone(), w.grad.clone()

    check(fn, X, W, grad=False)


def test_retain_graph_allows_a_second_backward():
    def fn(lib, x):
        y = (x.sin() * x).sum()
        y.backward(retain_graph=True)
        first = x.grad.clone()
        y.backward()
        return first, x.grad

    check(fn, X, grad=False)


def test_second_backward_without_retain_graph_raises():
    for lib in (flambeau, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = (x.exp() * x).sum()
        y.backward()
        with pytest.raises(RuntimeError, match="second time"):
            y.backward()


def test_autograd_grad():
    def fn(lib, x, w):
        y = (x.tanh() @ w).sum()
        gx, gw = lib.autograd.grad(y, [x, w], retain_graph=True)
        (gx2,) = lib.autograd.grad(y * 2, x)
        return gx, gw, gx2, x.grad is None, w.grad is None

    check(fn, X, W, grad=False)


def test_autograd_grad_with_grad_outputs_and_allow_unused():
    def fn(lib, x, w):
        y = x * 2
        v = lib.ones_like(y) * 0.5
        return lib.autograd.grad(y, (x, w), grad_outputs=v, allow_unused=True)

    check(fn, X, W, grad=False)


def test_autograd_grad_create_graph_second_derivative():
    def fn(lib, x):
        (g,) = lib.autograd.grad((x ** 3).sum(), x, create_graph=True)
        (gg,) = lib.autograd.grad(g.sum(), x)
        return g, gg

    check(fn, X, grad=False)


def test_non_scalar_backward_with_gradient():
    def fn(lib, x, w):
        y = x * w
        y.backward(lib.tensor(X) * 0.5)
        return x.grad, w.grad

    check(fn, X, W, grad=False)


def test_non_scalar_backward_without_gradient_raises():
    for lib in (flambeau, torch):
        y = lib.ones(2, requires_grad=True) * 2
        with pytest.raises(RuntimeError, match="scalar outputs"):
            y.backward()


def test_no_grad():
    def fn(lib, x):
        with lib.no_grad():
            y = x * 2
            inner = lib.is_grad_enabled()
        z = (x * 3).detach()
        return y.requires_grad, y.grad_fn is None, inner, z.requires_grad, lib.is_grad_enabled()

    (got, _), (want, _) = run_both(fn, (X,))
    assert got == want


def test_no_grad_decorator_and_set_grad_enabled():
    def fn(lib, x):
        @lib.no_grad()
        def double(t):
            return t * 2

        with lib.set_grad_enabled(False):
            off = (x + 1).requires_grad
        with lib.no_grad(), lib.enable_grad():
            on = (x + 1).requires_grad
        return double(x).requires_grad, off, on

    (got, _), (want, _) = run_both(fn, (X,))
    assert got == want


def test_retain_grad_and_leaf_flags():
    def fn(lib, x):
        h = x * 2
        h.retain_grad()
        (h.sigmoid()).sum().backward()
        return h.grad, x.grad, x.is_leaf, h.is_leaf, h.requires_grad

    check(fn, X, grad=False)


def test_shared_subexpression_and_reused_input():
    """A node reached along several paths gets the sum of their gradients."""
    check(lambda lib, x, w: (x * x + x.exp() * x).sum(0) * (w + w * w), X, W)


def test_grad_is_none_for_unused_leaf_and_no_grad_inputs():
    def fn(lib, x, w):
        (x * 2).sum().backward()
        return x.grad, w.grad

    (got, _), (want, _) = run_both(fn, (X, W))
    assert want[1] is None and got[1] is None
    assert_same(got[0], want[0])


def test_detach_stops_gradient():
    check(lambda lib, x, w: (x.detach() * w + x).sum(), X, W)


def test_zero_grad_by_assignment_then_accumulate():
    def fn(lib, x):
        (x * 3).sum().backward()
        x.grad = None
        (x * x).sum().backward()
        return x.grad

    check(fn, X, grad=False)


def test_int_tensor_cannot_require_grad():
    for lib in (flambeau, torch):
        with pytest.raises((RuntimeError, TypeError), match=r"(?i)floating"):
            lib.tensor([1, 2], requires_grad=True)
