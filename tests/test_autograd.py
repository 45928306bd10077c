"""Autograd semantics: accumulation, graph freeing, in-place detection, grad modes."""

from __future__ import annotations

import copy
import sys

import numpy as np
import pytest

import flambeau
from flambeau.autograd import AutogradError


def test_backward_accumulates_into_grad():
    x = flambeau.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])


def test_zero_grad_in_place_keeps_identity():
    x = flambeau.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    grad = x.grad
    x.grad.zero_()
    (x * 5).sum().backward()
    assert x.grad is grad
    np.testing.assert_allclose(grad.numpy(), [5, 5])


def test_shared_gradients_are_not_aliased_between_leaves():
    a = flambeau.ones(3, requires_grad=True)
    b = flambeau.ones(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad.zero_()
    np.testing.assert_allclose(b.grad.numpy(), [1, 1, 1])


def test_user_gradient_is_not_aliased():
    x = flambeau.ones(2, requires_grad=True)
    seed = flambeau.tensor([1.0, 2.0])
    x.clone().backward(seed)
    x.grad.add_(10)
    np.testing.assert_allclose(seed.numpy(), [1, 2])


def test_non_scalar_backward_needs_a_gradient():
    x = flambeau.ones(2, 3, requires_grad=True)
    y = x * 2
    with pytest.raises(AutogradError, match=r"only for scalar outputs.*shape \[2, 3\]"):
        y.backward()
    y.backward(flambeau.ones_like(y))
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3), 2.0))


def test_gradient_argument_shape_is_checked():
    y = flambeau.ones(2, requires_grad=True) * 2
    with pytest.raises(AutogradError, match=r"gradient of shape \[3\].*output shape \[2\]"):
        y.backward(flambeau.ones(3))


def test_backward_on_tensor_without_grad_fails_clearly():
    with pytest.raises(AutogradError, match="does not require grad"):
        flambeau.ones(2).sum().backward()


def test_second_backward_needs_retain_graph():
    x = flambeau.tensor(2.0, requires_grad=True)
    y = x * x
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.item() == 8.0
    with pytest.raises(AutogradError, match=r"backward through the graph a second time.*"
                       "retain_graph=True"):
        y.backward()


def test_inplace_change_of_saved_tensor_is_detected():
    a = flambeau.tensor([1.0, 2.0], requires_grad=True)
    b = a * 2
    c = b * b  # saves b
    b.add_(1)
    with pytest.raises(AutogradError, match=r"modified by an in-place operation.*MulBackward0.*"
                       r"written after it was saved \(it is now at version 1\)"):
        c.sum().backward()


def test_only_writes_after_saving_fail_the_backward():
    a = flambeau.tensor([1.0, 2.0], requires_grad=True)
    b = a * 2
    b.add_(1)  # written before mul saves it: its values are the ones the rule reads
    (b * b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [12.0, 20.0])
    c = a * 2
    d = c * c
    with flambeau.no_grad():
        flambeau.ones(2).add_(1)  # (writes elsewhere change nothing)
    d.sum().backward(retain_graph=True)
    c.add_(1)
    with pytest.raises(AutogradError, match="written after it was saved"):
        d.sum().backward()


@pytest.mark.parametrize("write", ["slice", "detached", "unbind", "view", "reshape", "t",
                                   "permute", "flatten", "unsqueeze-expand"])
def test_writes_through_views_of_a_never_written_tensor_fail_the_backward(write):
    a = flambeau.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = a * 2  # not written or viewed yet: its version is the shared unwritten one
    c = b * b
    with flambeau.no_grad():  # (as PyTorch, each view shares its base's version)
        {"slice": lambda: b[0:1].add_(1), "detached": lambda: b.detach().mul_(2),
         "unbind": lambda: b.unbind()[1].zero_(), "view": lambda: b.view(4).add_(1),
         "reshape": lambda: b.reshape(1, 4).add_(1), "t": lambda: b.t().add_(1),
         "permute": lambda: b.permute(1, 0).mul_(3), "flatten": lambda: b.flatten().sub_(1),
         "unsqueeze-expand": lambda: b.unsqueeze(0).expand(1, 2, 2).add_(1)}[write]()
    assert b._version[0] == 1
    with pytest.raises(AutogradError, match=r"MulBackward0 was written after it was saved"):
        c.sum().backward()


def test_an_output_saved_by_an_inplace_op_is_checked_like_pytorchs():
    a = flambeau.tensor([-1.0, 2.0], requires_grad=True)
    d = a * 1
    d.relu_()  # relu's rule reads its output: now d, saved after the write
    d.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.0, 1.0])
    e = a * 1
    e.relu_()
    with flambeau.no_grad():
        e.add_(1)
    with pytest.raises(AutogradError, match="written after it was saved"):
        e.sum().backward()
    f = a * 1
    f.mul_(f)  # mul saved f itself, which the write then changed (PyTorch raises too)
    with pytest.raises(AutogradError, match="written after it was saved"):
        f.sum().backward()


def test_an_unwritten_version_cannot_be_bumped_by_hand():
    t = flambeau.ones(2)
    with pytest.raises(TypeError):  # (every write goes through autograd's bump_version)
        t._version[0] += 1


def test_inplace_on_leaf_requiring_grad_is_refused():
    w = flambeau.ones(2, requires_grad=True)
    with pytest.raises(AutogradError, match=r"leaf tensor that requires grad.*no_grad"):
        w.add_(1)
    with pytest.raises(AutogradError, match="leaf tensor that requires grad"):
        w[0] = 3.0
    with flambeau.no_grad():
        w -= 0.5
    np.testing.assert_allclose(w.numpy(force=True), [0.5, 0.5])


def test_inplace_on_non_leaf_is_recorded():
    x = flambeau.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.mul_(x)
    y[0] = 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 8.0, 12.0])


def test_no_grad_and_enable_grad():
    x = flambeau.ones(2, requires_grad=True)
    with flambeau.no_grad():
        y = x * 2
        with flambeau.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None
    assert flambeau.is_grad_enabled()

    @flambeau.no_grad()
    def infer(t):
        return t * 3

    assert not infer(x).requires_grad
    with flambeau.set_grad_enabled(False):
        assert not flambeau.is_grad_enabled()
    assert flambeau.is_grad_enabled()


def test_detach_and_data_share_storage():
    x = flambeau.tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None
    x.data[0] = 10.0  # D2L writes through .data
    assert d[0].item() == 10.0 and x[0].item() == 10.0
    x.data.mul_(2)
    np.testing.assert_allclose(x.detach().numpy(), [20.0, 4.0])


def test_data_setter_replaces_values():
    x = flambeau.ones(2, requires_grad=True)
    x.data = flambeau.zeros(3)
    assert x.shape == (3,) and x.requires_grad


def test_autograd_grad_leaves_dot_grad_alone():
    x = flambeau.tensor([1.0, 2.0], requires_grad=True)
    y = (x**3).sum()
    (g,) = flambeau.autograd.grad(y, x)
    np.testing.assert_allclose(g.numpy(), [3.0, 12.0])
    assert x.grad is None


def test_autograd_grad_second_order():
    x = flambeau.tensor(3.0, requires_grad=True)
    (g,) = flambeau.autograd.grad(x**3, x, create_graph=True)
    (gg,) = flambeau.autograd.grad(g, x)
    assert g.item() == 27.0 and gg.item() == 18.0


def test_autograd_grad_unused_input():
    x = flambeau.ones(2, requires_grad=True)
    unused = flambeau.ones(2, requires_grad=True)
    with pytest.raises(AutogradError, match="input 1 was not used"):
        flambeau.autograd.grad(x.sum(), [x, unused])
    assert flambeau.autograd.grad(x.sum(), [x, unused], allow_unused=True)[1] is None


def test_gradient_through_non_leaf_and_retain_grad():
    x = flambeau.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [6.0, 12.0])
    np.testing.assert_allclose(x.grad.numpy(), [18.0, 36.0])


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = flambeau.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(max(10_000, sys.getrecursionlimit() + 1)):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** max(10_000, sys.getrecursionlimit() + 1),
                                          rel=1e-3)


def test_diamond_graph_sums_both_paths():
    x = flambeau.tensor(2.0, requires_grad=True)
    a = x * 3
    b = x * x
    (a + b + a * b).backward()
    assert x.grad.item() == pytest.approx(3 + 2 * 2 + 9 * 2**2)  # d(3x + x² + 3x³)/dx


def test_gradcheck_passes_and_fails():
    x = flambeau.tensor([[0.5, -1.2], [2.0, 0.3]], dtype=flambeau.float64, requires_grad=True)
    assert flambeau.autograd.gradcheck(lambda t: (t.tanh() * t).sum(dim=0), [x])

    def wrong(t):
        return t.detach() * t

    with pytest.raises(AutogradError, match="gradcheck: gradient of output 0"):
        flambeau.autograd.gradcheck(wrong, [x])
    assert flambeau.autograd.gradcheck(wrong, [x], raise_exception=False) is False


def test_gradcheck_wants_float64():
    x = flambeau.ones(2, requires_grad=True)
    with pytest.raises(AutogradError, match="use float64"):
        flambeau.autograd.gradcheck(lambda t: t * 2, [x])


def test_requires_grad_only_for_floats():
    with pytest.raises(flambeau.errors.DTypeError, match="only floating-point tensors"):
        flambeau.ones(2, dtype=flambeau.int64, requires_grad=True)


def test_numpy_of_tensor_requiring_grad_is_refused():
    x = flambeau.ones(2, requires_grad=True)
    with pytest.raises(flambeau.FlambeauError, match=r"detach\(\).numpy\(\)"):
        x.numpy()


def test_cast_is_differentiable():
    x = flambeau.tensor([1.5, 2.5], requires_grad=True)
    (x.double() * 2).sum().backward()
    assert x.grad.dtype == flambeau.float32
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_deepcopy_of_leaf_with_grad():
    x = flambeau.tensor([1.0], requires_grad=True)
    (x * 2).sum().backward()
    y = copy.deepcopy(x)
    y.data.add_(1)
    assert x.item() == 1.0 and y.requires_grad and y.grad.item() == 2.0
    with pytest.raises(AutogradError, match="only leaf tensors"):
        copy.deepcopy(x * 2)


def test_grad_fn_names_follow_pytorch():
    x = flambeau.ones(2, requires_grad=True)
    assert (x + 1).grad_fn.name() == "AddBackward0"
    assert (x * 2).grad_fn.name() == "MulBackward0"
    assert x.sum().grad_fn.name() == "SumBackward0"  # torch: SumBackward1 is sum(dim)
    assert x.sum(0).grad_fn.name() == "SumBackward1"
    assert "grad_fn=<MulBackward0>" in repr(x * 2)


def test_backward_rule_returning_none_does_not_lose_other_paths():
    from flambeau.autograd._engine import record

    x = flambeau.tensor(2.0, requires_grad=True)
    hidden = x * 3  # its node must still run although one consumer gives it no gradient
    blocked = hidden * 1.0
    record(blocked, "NoGradBackward", (hidden,), lambda g: (None,))
    (blocked + hidden * 5).backward()
    assert x.grad.item() == 15.0


# --- gradients must match their tensor: device, shape, dtype ----------------------------


def _other_device():
    others = [d for d in flambeau.devices() if d.type not in ("cpu", "meta")]
    if not others:
        pytest.skip("needs a second device (the example plugin's boxed:0 or opencl:0)")
    return others[0]


def test_backward_refuses_a_gradient_on_another_device():
    other = _other_device()
    x = flambeau.ones(3, requires_grad=True)
    with pytest.raises(flambeau.errors.DeviceMismatchError,
                       match=r"gradient is on device .*, but the output is on cpu"):
        (x * 2).backward(flambeau.ones(3, device=other))
    assert x.grad is None


def test_backward_converts_a_gradient_of_another_dtype_as_pytorch_does():
    x = flambeau.ones(3, requires_grad=True)
    (x * 2).backward(flambeau.tensor([1, 2, 3]))
    assert x.grad.dtype == flambeau.float32
    np.testing.assert_allclose(x.grad.numpy(), [2, 4, 6])
    with pytest.raises(TypeError, match="gradients must be tensors, got ndarray"):
        (x * 2).backward(np.ones(3, np.float32))


def test_assigned_grad_must_match_device_shape_and_dtype():
    p = flambeau.nn.Parameter(flambeau.ones(2, 3))
    with pytest.raises(flambeau.errors.DeviceMismatchError,
                       match=r"assigned grad is on device .*, but the tensor is on cpu"):
        p.grad = flambeau.ones(2, 3, device=_other_device())
    with pytest.raises(flambeau.errors.ShapeError,
                       match=r"assigned grad has shape \[3\], but the tensor has shape \[2, 3\]"):
        p.grad = flambeau.ones(3)
    with pytest.raises(flambeau.errors.DTypeError,
                       match="assigned grad has dtype int64, but the tensor has dtype float32"):
        p.grad = flambeau.ones(2, 3, dtype=flambeau.int64)
    with pytest.raises(TypeError, match="Tensor or None, got ndarray"):
        p.grad = np.ones((2, 3), np.float32)
    assert p.grad is None
    p.grad = flambeau.full((2, 3), 0.5)
    flambeau.optim.SGD([p], lr=1.0).step()
    np.testing.assert_allclose(p.detach().numpy(), np.full((2, 3), 0.5))
    p.grad = None
    assert p.grad is None


def test_an_expanded_gradient_is_accumulated_without_writing_through():
    shared = flambeau.ones(1)
    x = flambeau.zeros(3, requires_grad=True)
    x.grad = shared.expand(3)
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3, 3, 3])
    np.testing.assert_allclose(shared.numpy(), [1])
    y = flambeau.zeros(2, 3, requires_grad=True)
    for _ in range(2):  # sum's gradient is an expand: the second backward adds into it
        y.sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), np.full((2, 3), 2.0))


def test_backward_from_several_roots_sums_their_gradients():
    x = flambeau.tensor([1.0, 2.0], requires_grad=True)
    w = flambeau.tensor([0.5, -1.0], requires_grad=True)
    y = x * 3
    z = (y * w).sum()  # reaches y, another root
    flambeau.autograd.backward([y, z, y, w], [flambeau.ones(2), flambeau.tensor(2.0),
                                              flambeau.tensor([1.0, 10.0]),
                                              flambeau.ones(2)])
    # y given twice: its gradients (1 + 1 and 1 + 10) add to z's (2 * w), then times 3.
    assert x.grad.tolist() == [3 * (2 + 2 * 0.5), 3 * (11 + 2 * -1.0)]
    assert w.grad.tolist() == [1 + 2 * 3.0, 1 + 2 * 6.0]
