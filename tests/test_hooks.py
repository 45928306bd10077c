"""Hooks as in PyTorch: module forward/backward hooks, tensor gradient hooks,
post-accumulate-grad hooks and the end-of-backward callback, checked against PyTorch for
firing order and values, plus their handles, errors and memory behaviour."""

from __future__ import annotations

import copy
import gc
import warnings
import weakref

import numpy as np
import pytest

import flambeau
from flambeau import nn
from flambeau.autograd import queue_callback
from flambeau.nn import module as module_mod
from flambeau.utils.hooks import RemovableHandle

X = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)


def _np(t):
    return None if t is None else t.detach().numpy().copy()  # (torch's shares memory)


def _mlp(lib, activation="ReLU"):
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (3,), (2, 3), (2,))]
    net = lib.nn.Sequential(lib.nn.Linear(4, 3), getattr(lib.nn, activation)(),
                            lib.nn.Linear(3, 2))
    with lib.no_grad():
        for p, v in zip(net.parameters(), values):
            p.copy_(lib.tensor(v))
    return net


def _both(fn):
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (PyTorch's warning is checked on its own below)
        return fn(flambeau), fn(torch)


def _assert_same(got, expected):
    """Logs of (label, array-or-None, ...) entries: same labels, close arrays."""
    assert [e[0] for e in got] == [e[0] for e in expected]
    for g, e in zip(got, expected):
        for a, b in zip(g[1:], e[1:]):
            if isinstance(b, (list, tuple)):
                _assert_same([("", *a)], [("", *b)])
            elif b is None or isinstance(b, (str, int)):
                assert a == b, (g, e)
            else:
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=str(g[0]))


# --- firing order and values against PyTorch ---------------------------------------------


def _trace(lib, x_requires_grad):
    net = _mlp(lib)
    log = []
    names = {id(m): n or "net" for n, m in net.named_modules()}
    for module in net.modules():
        name = names[id(module)]
        module.register_forward_pre_hook(lambda m, a, name=name: log.append(("pre", name)))
        module.register_forward_hook(lambda m, a, o, name=name: log.append(("fwd", name)))
        module.register_full_backward_pre_hook(
            lambda m, go, name=name: log.append(("bwd_pre", name)))
        module.register_full_backward_hook(
            lambda m, gi, go, name=name: log.append(("bwd", name)))
    for pname, p in net.named_parameters():
        p.register_hook(lambda g, pname=pname: log.append(("grad", pname)))
        p.register_post_accumulate_grad_hook(
            lambda t, pname=pname: log.append(("post_acc", pname)))
    x = lib.tensor(X, requires_grad=x_requires_grad)
    if x_requires_grad:
        x.register_hook(lambda g: log.append(("grad", "x")))
    out = net(x)

    def on_output_grad(grad):
        log.append(("grad", "out"))
        lib.autograd.Variable._execution_engine.queue_callback(
            lambda: log.append(("callback", "end")))

    out.register_hook(on_output_grad)
    out.sum().backward()
    return log


@pytest.mark.parametrize("x_requires_grad", [True, False])
def test_hooks_fire_in_pytorchs_order(x_requires_grad):
    got, expected = _both(lambda lib: _trace(lib, x_requires_grad))
    assert got == expected
    assert got[-1] == ("callback", "end")


def _backward_values(lib):
    net = _mlp(lib)
    log = []
    for name, module in net.named_children():
        module.register_full_backward_pre_hook(
            lambda m, go, name=name: log.append(("pre " + name, [_np(g) for g in go])))
        module.register_full_backward_hook(lambda m, gi, go, name=name: log.append(
            ("full " + name, [_np(g) for g in gi], [_np(g) for g in go])))
    x = lib.tensor(X, requires_grad=True)
    (net(x) ** 2).sum().backward()
    log.append(("x.grad", _np(x.grad)))
    log.extend((n, _np(p.grad)) for n, p in net.named_parameters())
    return log


def test_backward_hooks_see_pytorchs_grad_input_and_grad_output():
    got, expected = _both(_backward_values)
    _assert_same(got, expected)
    assert [g.shape for g in got[1][1]] == [(5, 3)]  # layer 2's grad_input: its input's


def _two_in_two_out(lib):
    class Two(lib.nn.Module):
        def forward(self, a, b, c=None):
            return a * 2, a * b * 3

    m = Two()
    log = []
    m.register_full_backward_pre_hook(
        lambda mod, go: log.append(("pre", [_np(g) for g in go])))
    m.register_full_backward_hook(
        lambda mod, gi, go: log.append(("full", [_np(g) for g in gi], [_np(g) for g in go])))
    a = lib.ones(2, requires_grad=True)
    b = lib.full((2,), 2.0, requires_grad=True)
    o1, o2 = m(a, b, 5)
    o1.sum().backward()  # o2 unused: None in grad_output; b's gradient: zeros (PyTorch's)
    log.append(("grads", _np(a.grad), _np(b.grad)))
    o1, o2 = m(a, lib.ones(2), "text")  # a tensor input without grad: zeros
    (o1.sum() + 2 * o2.sum()).backward()
    log.append(("grads", _np(a.grad), _np(b.grad)))
    return log


def test_several_inputs_and_outputs_as_pytorch():
    got, expected = _both(_two_in_two_out)
    _assert_same(got, expected)
    assert got[0][1][1] is None and got[1][1][2] is None


def _loss_and_double_backward(lib):
    log = []
    loss = lib.nn.CrossEntropyLoss()  # an integer target: zeros of its dtype in grad_input
    loss.register_full_backward_hook(lambda m, gi, go: log.append(
        ("loss", [_np(g) for g in gi], [str(g.dtype).replace("torch.", "") for g in gi])))
    x = lib.tensor(X[:2, :3], requires_grad=True)
    loss(x, lib.tensor([0, 2])).backward()
    # (Tanh: its gradient depends on its output, so the second backward passes the modules'
    # forward graph again, and their hooks fire again; ReLU's mask is constant in flambeau.)
    net = _mlp(lib, "Tanh")
    for name, module in net.named_children():
        module.register_full_backward_pre_hook(lambda m, go, name=name: log.append(("pre", name)))
        module.register_full_backward_hook(
            lambda m, gi, go, name=name: log.append(("full", name, _np(gi[0]))))
    x = lib.tensor(X, requires_grad=True)
    (g,) = lib.autograd.grad(net(x).sum(), x, create_graph=True)  # a gradient penalty
    log.append(("second", None))
    (g ** 2).sum().backward()
    log.extend((n, _np(p.grad)) for n, p in net.named_parameters())
    return log


def test_loss_modules_and_double_backward_as_pytorch():
    got, expected = _both(_loss_and_double_backward)
    _assert_same(got, expected)
    assert got[0][2] == ["float32", "int64"]
    assert [e[0] for e in got].count("full") == 4  # three layers, then layer 0 again


def _replacements(lib):
    net = _mlp(lib)
    log = []
    # forward: a pre-hook scales the input (a single value, wrapped into a tuple), a
    # forward hook shifts the output
    net[0].register_forward_pre_hook(lambda m, args: args[0] * 2)
    net[2].register_forward_hook(lambda m, args, out: out + 1)
    # backward: the pre-hook halves grad_output, the hook replaces grad_input
    net[2].register_full_backward_pre_hook(lambda m, go: (go[0] / 2,))
    net[0].register_full_backward_hook(lambda m, gi, go: (gi[0] * 3,))
    x = lib.tensor(X, requires_grad=True)
    out = net(x)
    (out ** 2).sum().backward()
    log.append(("out", _np(out)))
    log.append(("x.grad", _np(x.grad)))
    log.extend((n, _np(p.grad)) for n, p in net.named_parameters())
    return log


def test_hooks_replace_inputs_outputs_and_gradients_as_pytorch():
    got, expected = _both(_replacements)
    _assert_same(got, expected)


def _tensor_hooks(lib):
    log = []
    x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
    y = x * w
    y.retain_grad()  # keeps the gradient after the hooks changed it
    y.register_hook(lambda g: log.append(("y hook 1", _np(g))) or g * 10)
    y.register_hook(lambda g: log.append(("y hook 2", _np(g))))  # sees hook 1's result
    x.register_hook(lambda g: log.append(("x hook", _np(g))) or g + 1)
    x.register_post_accumulate_grad_hook(lambda t: log.append(("x post", _np(t.grad))))
    z = y * y + x  # x reaches the loss twice: its hooks see the sum, once
    z.sum().backward()
    log.append(("grads", _np(x.grad), _np(w.grad), _np(y.grad)))
    return log


def test_tensor_hooks_on_leaves_and_non_leaves_as_pytorch():
    got, expected = _both(_tensor_hooks)
    _assert_same(got, expected)
    assert [e[0] for e in got] == ["y hook 1", "y hook 2", "x hook", "x post", "grads"]


def _hooks_in_grad(lib):
    log = []
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    z = lib.tensor([3.0, 4.0], requires_grad=True)
    x.register_hook(lambda g: log.append(("x", _np(g))) or g * 3)
    z.register_hook(lambda g: log.append(("z", _np(g))))
    x.register_post_accumulate_grad_hook(lambda t: log.append(("x post", None)))
    (gx,) = lib.autograd.grad((x * z).sum(), [x])
    log.append(("result", _np(gx), x.grad))
    return log


def test_autograd_grad_runs_the_hooks_of_the_leaves_asked_for_only():
    got, expected = _both(_hooks_in_grad)
    _assert_same(got, expected)
    assert [e[0] for e in got] == ["x", "result"]


# --- module hooks: options, handles, errors ------------------------------------------------


def test_prepend_with_kwargs_and_handles():
    layer = nn.Linear(2, 2)
    log = []
    first = layer.register_forward_hook(lambda m, a, o: log.append("first"))
    layer.register_forward_hook(lambda m, a, o: log.append("prepended"), prepend=True)
    layer.register_forward_pre_hook(lambda m, a: log.append("pre"))

    def with_kwargs(m, args, kwargs):
        log.append(sorted(kwargs))
        return (args[0] * 0,), kwargs

    layer.register_forward_pre_hook(with_kwargs, with_kwargs=True)
    layer.register_forward_hook(lambda m, a, kw, o: log.append(("kw", type(o).__name__)),
                                with_kwargs=True)
    out = layer(flambeau.ones(1, 2))
    assert log == ["pre", [], "prepended", "first", ("kw", "Tensor")]
    np.testing.assert_allclose(out.detach().numpy(), layer.bias.detach().numpy()[None])
    assert isinstance(first.id, int) and first.id < layer.register_forward_hook(print).id
    assert isinstance(first, RemovableHandle)  # (imported where PyTorch code imports it)
    log.clear()
    first.remove()
    first.remove()  # twice: nothing happens
    layer(flambeau.ones(1, 2))
    assert "first" not in log


def test_handles_as_context_managers_restore_the_plain_call():
    layer = nn.Linear(2, 2)
    count = module_mod._HOOK_COUNT
    seen = []
    with layer.register_forward_hook(lambda m, a, o: seen.append(o.shape)):
        assert module_mod._HOOK_COUNT == count + 1
        layer(flambeau.ones(3, 2))
    layer(flambeau.ones(3, 2))
    assert seen == [flambeau.Size([3, 2])]
    assert module_mod._HOOK_COUNT == count
    copied = copy.deepcopy(nn.Sequential(layer))  # hooks are copied, and counted
    copied[0].register_forward_hook(lambda m, a, o: None)
    assert module_mod._HOOK_COUNT == count + 1
    del copied
    gc.collect()
    assert module_mod._HOOK_COUNT == count


def test_pre_hook_with_kwargs_must_return_args_and_kwargs():
    layer = nn.Linear(2, 2)
    layer.register_forward_pre_hook(lambda m, a, kw: 5, with_kwargs=True)
    with pytest.raises(TypeError, match=r"must return None or a tuple \(new_args, "
                       r"new_kwargs\), but got 5"):
        layer(flambeau.ones(1, 2))


def test_always_call_forward_hooks_run_when_forward_raises():
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(5, 1))
    log = []
    net[1].register_forward_hook(lambda m, a, o: log.append(("always", o)), always_call=True)
    net[1].register_forward_hook(lambda m, a, o: log.append("not"))
    with pytest.raises(nn.LayerInputError, match=r"layer '1' \(Linear\)"):
        net(flambeau.ones(2, 4))  # the layer path is still named through the hook path
    assert log == [("always", None)]


def test_backward_hook_errors_name_the_counts():
    layer = nn.Linear(2, 2)
    layer.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match=r"returned 2 grad_input entries, but the call of "
                       r"Linear had 1 positional inputs"):
        layer(flambeau.ones(1, 2, requires_grad=True)).sum().backward()
    layer = nn.Linear(2, 2)
    layer.register_full_backward_pre_hook(lambda m, go: (go[0], go[0]))
    with pytest.raises(RuntimeError, match=r"returned 2 grad_output entries, but Linear has "
                       r"1 outputs"):
        layer(flambeau.ones(1, 2, requires_grad=True)).sum().backward()


def test_backward_hook_without_input_gradients_gets_none_and_warns():
    layer = nn.Linear(2, 2)
    seen = []
    layer.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go[0].shape)))
    with pytest.warns(UserWarning, match="no inputs require gradients"):
        layer(flambeau.ones(1, 2)).sum().backward()
    assert seen == [((None,), flambeau.Size([1, 2]))]
    layer.register_full_backward_hook(lambda m, gi, go: (flambeau.ones(1, 2),))
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="no input of the call "
                                                  "requires grad; return None"):
        layer(flambeau.ones(1, 2)).sum().backward()


def test_backward_hooks_are_inactive_without_grad_mode():
    layer = nn.Linear(2, 2)
    layer.register_full_backward_hook(lambda m, gi, go: None)
    x = flambeau.ones(1, 2, requires_grad=True)
    with flambeau.no_grad():
        out = layer(x)
    assert out.grad_fn is None
    assert layer(x).grad_fn.name() == "BackwardHookFunctionBackward"


def test_summary_traces_a_model_with_hooks():
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    shapes = []
    net[0].register_forward_hook(lambda m, a, o: shapes.append(tuple(o.shape)))
    result = nn.summary(net, (2, 4), print_table=False)
    assert shapes == [(2, 3)] and result.total_params == 15


# --- tensor hooks: errors and ownership ---------------------------------------------------


def test_tensor_hook_registration_errors_as_pytorch():
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't "
                       "require gradient"):
        flambeau.ones(2).register_hook(lambda g: g)
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't "
                       "require gradient"):
        flambeau.ones(2).register_post_accumulate_grad_hook(lambda t: None)
    y = flambeau.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="post accumulate grad hooks cannot be registered "
                       "on non-leaf tensors"):
        y.register_post_accumulate_grad_hook(lambda t: None)


@pytest.mark.parametrize("result, error, message", [
    (lambda g: flambeau.ones(3), RuntimeError, r"hook '<lambda>' has changed the size of the "
     r"gradient: it returned \[3\], the gradient has \[2\]"),
    (lambda g: g.double(), RuntimeError, "has changed the dtype of the gradient"),
    (lambda g: 3, TypeError, "returned int; a gradient hook must return None or a tensor"),
])
def test_a_hook_must_return_a_gradient_like_the_one_it_got(result, error, message):
    x = flambeau.ones(2, requires_grad=True)
    x.register_hook(result)
    with pytest.raises(error, match=message):
        (x * 2).sum().backward()


def test_post_accumulate_hook_must_return_none():
    x = flambeau.ones(2, requires_grad=True)
    x.register_post_accumulate_grad_hook(lambda t: 3)
    with pytest.raises(TypeError, match="returned int; it must return None"):
        (x * 2).sum().backward()


def test_post_accumulate_hook_once_per_backward_after_grad_holds_the_sum():
    w = flambeau.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    for _ in range(2):
        (w * 3 + w * w).sum().backward()  # two paths into w: one call, after both
    assert seen == [[5.0, 7.0], [10.0, 14.0]]
    flambeau.autograd.grad((w * w).sum(), w)  # grad() leaves .grad alone: no call
    assert len(seen) == 2


def test_a_replaced_or_kept_gradient_is_not_the_leafs_grad():
    x = flambeau.ones(2, requires_grad=True)
    mine = flambeau.full((2,), 5.0)
    kept = []
    x.register_hook(lambda g: kept.append(g) or mine)
    (x * 2).sum().backward()
    (x * 2).sum().backward()  # accumulates into x.grad in place
    assert x.grad.tolist() == [10.0, 10.0]
    assert mine.tolist() == [5.0, 5.0] and kept[0].tolist() == [2.0, 2.0]
    layer = nn.Identity()  # a module handing a hook's tensor to a leaf input
    layer.register_full_backward_hook(lambda m, gi, go: (mine,))
    a = flambeau.ones(2, requires_grad=True)
    for _ in range(2):
        layer(a).sum().backward()
    assert a.grad.tolist() == [10.0, 10.0] and mine.tolist() == [5.0, 5.0]


def test_hooks_see_grad_mode_of_create_graph():
    x = flambeau.tensor([1.0, 2.0], requires_grad=True)
    modes = []
    x.register_hook(lambda g: modes.append((flambeau.is_grad_enabled(), g.requires_grad)))
    (x * x).sum().backward()
    (gx,) = flambeau.autograd.grad((x * x).sum(), x, create_graph=True)
    assert modes == [(False, False), (True, True)]
    assert gx.requires_grad


# --- the end-of-backward callback ---------------------------------------------------------


def test_queue_callback_runs_after_the_whole_graph_in_order():
    w = flambeau.tensor([1.0, 2.0], requires_grad=True)
    v = flambeau.tensor([3.0], requires_grad=True)
    log = []

    def first_grad(grad):
        queue_callback(lambda: log.append(("cb1", w.grad.tolist(), v.grad.tolist())))
        queue_callback(lambda: (log.append("cb2"), queue_callback(lambda: log.append("cb3"))))

    (w * v).register_hook(first_grad)  # (a node dropped after registering: still runs)
    y = w * v
    y.register_hook(first_grad)
    w.register_post_accumulate_grad_hook(lambda t: log.append("w post"))
    v.register_post_accumulate_grad_hook(lambda t: log.append("v post"))
    y.sum().backward()
    assert log == ["w post", "v post", ("cb1", [3.0, 3.0], [3.0]), "cb2", "cb3"] or \
        log == ["v post", "w post", ("cb1", [3.0, 3.0], [3.0]), "cb2", "cb3"]
    log.clear()
    y = w * v
    y.register_hook(first_grad)
    y.sum().backward()  # callbacks were cleared: the three run again, once each
    assert [e for e in log if not str(e).endswith("post")][1:] == ["cb2", "cb3"]


def test_queue_callback_outside_backward_is_an_error_like_pytorch():
    with pytest.raises(RuntimeError, match="final callbacks can only be installed during the "
                       "backward pass"):
        queue_callback(lambda: None)
    with pytest.raises(RuntimeError, match="during the backward pass"):
        flambeau.autograd.Variable._execution_engine.queue_callback(lambda: None)
    x = flambeau.ones(2, requires_grad=True)

    def fails(grad):
        queue_callback(lambda: pytest.fail("a callback of a failed backward ran"))
        raise ValueError("boom")

    x.register_hook(fails)
    with pytest.raises(ValueError, match="boom"):
        (x * 2).sum().backward()
    with pytest.raises(RuntimeError):  # the failed backward left nothing behind
        queue_callback(lambda: None)


def test_a_backward_inside_a_hook_has_its_own_callbacks():
    x = flambeau.ones(2, requires_grad=True)
    inner = flambeau.ones(1, requires_grad=True)
    log = []

    def hook(grad):
        queue_callback(lambda: log.append("outer"))
        with flambeau.enable_grad():  # (hooks run without grad mode, as in PyTorch)
            z = inner * 2
            z.register_hook(lambda g: queue_callback(lambda: log.append("inner")))
            z.sum().backward()
        log.append("inner done")

    x.register_hook(hook)
    (x * 2).sum().backward()
    assert log == ["inner", "inner done", "outer"]


# --- memory: hooks keep no graph alive ----------------------------------------------------


@pytest.fixture
def no_cycle_collector():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_tensor_hooks_and_handles_keep_no_graph_alive(no_cycle_collector):
    x = flambeau.ones(3, requires_grad=True)
    y = x * 2
    handle = y.register_hook(lambda g: g * 2)
    out = y.exp()
    refs = weakref.ref(y), weakref.ref(out)
    del y, out
    assert refs[0]() is None and refs[1]() is None
    handle.remove()  # (its table is gone: nothing happens)


def test_a_model_with_every_hook_frees_its_activations(no_cycle_collector):
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    for module in net.modules():
        module.register_forward_pre_hook(lambda m, a: None)
        module.register_forward_hook(lambda m, a, o: None)
        module.register_full_backward_pre_hook(lambda m, go: None)
        module.register_full_backward_hook(lambda m, gi, go: None)
    x = flambeau.ones(5, 4, requires_grad=True)
    for backward in (False, True):
        out = net(x)
        hidden = weakref.ref(out.grad_fn)
        if backward:
            out.sum().backward()
        ref = weakref.ref(out)
        del out
        assert ref() is None and hidden() is None


def test_backward_hooks_keep_no_module_input_alive(no_cycle_collector):
    class Double(nn.Module):
        def forward(self, x, y):
            return x + 2, y + 3  # (their backward rules keep no tensor)

    double = Double()
    double.register_full_backward_hook(lambda m, gi, go: None)
    a = flambeau.ones(3, requires_grad=True)
    h, k = a.exp(), a.sin()
    refs = weakref.ref(h), weakref.ref(k)
    out = double(h, k)
    del h, k
    assert refs[0]() is None and refs[1]() is None
    sum(o.sum() for o in out).backward()
    np.testing.assert_allclose(a.grad.numpy(), np.e + np.cos(1.0), rtol=1e-6)
