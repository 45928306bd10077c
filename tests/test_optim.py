"""flambeau.optim against PyTorch: optimizers, state dicts, lazy and tied parameters,
fused kernels, learning-rate schedulers.

An optimizer case is a function ``make(lib, params)`` building the optimizer in either
library; :func:`train` runs a few steps of the same loss from identical weights and the
resulting parameters must agree to float32 precision.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import flambeau  # noqa: E402
from flambeau import nn, optim  # noqa: E402
from flambeau._device import kernels_for  # noqa: E402

_rng = np.random.default_rng(0)
INIT = [_rng.uniform(-1, 1, (4, 3)).astype(np.float32),
        _rng.uniform(-1, 1, (4,)).astype(np.float32),
        _rng.uniform(-1, 1, (1, 4)).astype(np.float32)]
X = _rng.uniform(-1, 1, (5, 3)).astype(np.float32)
RTOL, ATOL = 1e-5, 1e-6


def make_params(lib, device=None):
    if lib is torch:
        return [torch.tensor(a, requires_grad=True) for a in INIT]
    return [flambeau.tensor(a, requires_grad=True, device=device) for a in INIT]


def loss_of(lib, params, x):
    w, b, v = params
    hidden = (x @ w.T + b).tanh()
    return ((hidden @ v.T) ** 2).mean() + (w ** 3).sum() * 0.05


def train(lib, make, steps=4, device=None, params=None, opt=None):
    params = make_params(lib, device) if params is None else params
    x = lib.tensor(X) if lib is torch else flambeau.tensor(X, device=device)
    opt = make(lib, params) if opt is None else opt
    for _ in range(steps):
        opt.zero_grad()
        loss_of(lib, params, x).backward()
        opt.step()
    return [p.detach().numpy() for p in params], opt, params


def assert_same_params(got, want):
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)


def check(make, steps=4, device=None):
    got, _, _ = train(flambeau, make, steps, device)
    want, _, _ = train(torch, make, steps)
    assert_same_params(got, want)
    assert not np.allclose(got[0], INIT[0])  # the optimizer did move the weights


# --- optimizers vs PyTorch -------------------------------------------------------------

SGD_OPTIONS = [
    dict(momentum=m, dampening=d, nesterov=n, weight_decay=wd, maximize=mx)
    for m, d, n, wd, mx in itertools.product((0.0, 0.9), (0.0, 0.3), (False, True),
                                             (0.0, 0.05), (False, True))
    if not (n and (m == 0 or d != 0))
]


@pytest.mark.parametrize("options", SGD_OPTIONS, ids=lambda o: ",".join(
    f"{k}={v}" for k, v in o.items() if v))
def test_sgd_matches_torch(options):
    check(lambda lib, ps: lib.optim.SGD(ps, lr=0.1, **options))


ADAM_OPTIONS = [
    dict(), dict(amsgrad=True), dict(weight_decay=0.1), dict(maximize=True),
    dict(betas=(0.5, 0.9), eps=1e-3, weight_decay=0.05, amsgrad=True),
]


@pytest.mark.parametrize("options", ADAM_OPTIONS, ids=str)
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_matches_torch(name, options):
    check(lambda lib, ps: getattr(lib.optim, name)(ps, lr=0.05, **options), steps=5)


RMSPROP_OPTIONS = [
    dict(), dict(centered=True), dict(momentum=0.8), dict(weight_decay=0.1, alpha=0.9),
    dict(centered=True, momentum=0.5, maximize=True, eps=1e-4),
]


@pytest.mark.parametrize("options", RMSPROP_OPTIONS, ids=str)
def test_rmsprop_matches_torch(options):
    check(lambda lib, ps: lib.optim.RMSprop(ps, lr=0.01, **options), steps=5)


def test_param_groups_with_their_own_options():
    def make(lib, ps):
        return lib.optim.SGD([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.3,
                                                    "momentum": 0.5}], lr=0.1, momentum=0.9)

    check(make)
    check(lambda lib, ps: lib.optim.Adam([{"params": ps[:1], "weight_decay": 0.1},
                                          {"params": ps[1:]}], lr=0.02))


OPTIMIZERS = {
    "sgd": lambda lib, ps: lib.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda lib, ps: lib.optim.Adam(ps, lr=0.05, amsgrad=True, weight_decay=0.01),
    "adamw": lambda lib, ps: lib.optim.AdamW(ps, lr=0.05),
    "rmsprop": lambda lib, ps: lib.optim.RMSprop(ps, lr=0.01, centered=True, momentum=0.5),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_device_matches_torch(name, device):
    check(OPTIMIZERS[name], device=device)


def test_added_group_and_frozen_parameters():
    got, opt, params = train(flambeau, lambda lib, ps: lib.optim.SGD(ps[:2], lr=0.1), 2)
    np.testing.assert_array_equal(got[2], INIT[2])
    want, t_opt, t_params = train(torch, lambda lib, ps: lib.optim.SGD(ps[:2], lr=0.1), 2)
    opt.add_param_group({"params": [params[2]], "lr": 0.2})
    t_opt.add_param_group({"params": [t_params[2]], "lr": 0.2})
    assert opt.param_groups[1]["momentum"] == 0.0
    got, _, _ = train(flambeau, None, 2, params=params, opt=opt)
    want, _, _ = train(torch, None, 2, params=t_params, opt=t_opt)
    assert_same_params(got, want)


def test_parameters_without_requires_grad_are_left_alone():
    frozen = flambeau.tensor(INIT[2])
    w = flambeau.tensor(INIT[0], requires_grad=True)
    opt = optim.SGD([w, frozen], lr=0.1)
    (w ** 2).sum().backward()
    opt.step()
    np.testing.assert_array_equal(frozen.numpy(), INIT[2])
    np.testing.assert_allclose(w.detach().numpy(), INIT[0] * 0.8, rtol=1e-6)


def test_step_with_closure_and_zero_grad_to_zeros():
    w = flambeau.tensor(INIT[0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)

    def closure():
        opt.zero_grad(set_to_none=False)
        loss = (w ** 2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(float((INIT[0].astype(np.float64) ** 2).sum()), 1e-5)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros_like(INIT[0]))
    opt.zero_grad()
    assert w.grad is None


# --- lazy and tied parameters ------------------------------------------------------------

def test_optimizer_built_before_the_first_forward_of_a_lazy_model():
    net = nn.Sequential(nn.LazyLinear(4), nn.Tanh(), nn.LazyLinear(1))
    opt = optim.Adam(net.parameters(), lr=0.05)
    x = flambeau.tensor(X)
    net(x)  # materialises the parameters in place: the optimizer holds the same objects
    t_net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    t_net.load_state_dict({k: torch.tensor(v.numpy()) for k, v in net.state_dict().items()})
    t_opt = torch.optim.Adam(t_net.parameters(), lr=0.05)
    for model, o, lib in ((net, opt, flambeau), (t_net, t_opt, torch)):
        inputs = lib.tensor(X)
        for _ in range(3):
            o.zero_grad()
            (model(inputs) ** 2).mean().backward()
            o.step()
    for key, value in t_net.state_dict().items():
        np.testing.assert_allclose(net.state_dict()[key].numpy(), value.numpy(), RTOL, ATOL)


def test_lazy_parameter_without_gradient_is_skipped():
    net = nn.LazyLinear(2)
    opt = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    opt.step()  # nothing materialised, nothing to do
    assert opt.state_dict()["state"] == {}


def tied_pair(lib):
    first, second = lib.nn.Linear(3, 3, bias=False), lib.nn.Linear(3, 3)
    with lib.no_grad():
        first.weight.copy_(lib.tensor(np.eye(3, dtype=np.float32) * 0.5 + 0.1))
        second.bias.copy_(lib.tensor(np.array([0.1, -0.2, 0.3], np.float32)))
    second.weight = first.weight
    return first, second


def test_tied_parameter_passed_twice_is_updated_once():
    first, second = tied_pair(flambeau)
    with pytest.warns(UserWarning, match="duplicate parameter"):
        opt = optim.SGD(list(first.parameters()) + list(second.parameters()), lr=0.1,
                        momentum=0.9)
    assert len(opt.param_groups[0]["params"]) == 2
    t_first, t_second = tied_pair(torch)
    t_opt = torch.optim.SGD(list(t_first.parameters()) + [t_second.bias], lr=0.1,
                            momentum=0.9)
    for a, b, o, lib in ((first, second, opt, flambeau), (t_first, t_second, t_opt, torch)):
        for _ in range(3):
            o.zero_grad()
            (b(a(lib.tensor(X))) ** 2).sum().backward()
            o.step()
    np.testing.assert_allclose(first.weight.detach().numpy(), t_first.weight.detach().numpy(),
                               RTOL, ATOL)
    assert second.weight is first.weight


def test_tied_parameter_through_module_parameters_is_listed_once():
    first, second = tied_pair(flambeau)
    model = nn.Sequential(first, second)
    opt = optim.SGD(model.parameters(), lr=0.1)
    assert len(opt.param_groups[0]["params"]) == 2


# --- state dicts ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_roundtrip_continues_identically(name):
    make = OPTIMIZERS[name]
    _, opt, params = train(flambeau, make, 3)
    saved = opt.state_dict()
    copies = [flambeau.tensor(p.detach().numpy(), requires_grad=True) for p in params]
    resumed = make(flambeau, copies)
    resumed.load_state_dict(saved)
    got, _, _ = train(flambeau, None, 3, params=copies, opt=resumed)
    want, _, _ = train(flambeau, None, 3, params=params, opt=opt)
    np.testing.assert_array_equal(got[0], want[0])
    reference, _, _ = train(torch, make, 6)
    assert_same_params(got, reference)


def test_state_dict_format_is_pytorchs():
    _, opt, _ = train(flambeau, OPTIMIZERS["adam"], 2)
    _, t_opt, _ = train(torch, OPTIMIZERS["adam"], 2)
    ours, theirs = opt.state_dict(), t_opt.state_dict()
    assert sorted(ours["state"]) == sorted(theirs["state"]) == [0, 1, 2]
    assert set(ours["state"][0]) == set(theirs["state"][0])
    assert ours["state"][0]["step"] == 2
    assert [g["params"] for g in ours["param_groups"]] == [[0, 1, 2]]
    shared = set(ours["param_groups"][0]) & set(theirs["param_groups"][0])
    assert {"lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"} <= shared
    for key in shared:
        assert ours["param_groups"][0][key] == theirs["param_groups"][0][key], key


def test_loads_a_pytorch_optimizer_state_dict():
    make = OPTIMIZERS["rmsprop"]
    _, t_opt, t_params = train(torch, make, 3)
    params = [flambeau.tensor(p.detach().numpy(), requires_grad=True) for p in t_params]
    opt = make(flambeau, params)
    opt.load_state_dict(t_opt.state_dict())
    got, _, _ = train(flambeau, None, 2, params=params, opt=opt)
    want, _, _ = train(torch, None, 2, params=t_params, opt=t_opt)
    assert_same_params(got, want)


def test_state_dict_is_a_snapshot():
    _, opt, _ = train(flambeau, OPTIMIZERS["sgd"], 1)
    saved = opt.state_dict()
    before = saved["state"][0]["momentum_buffer"].numpy().copy()
    train(flambeau, None, 1, params=opt.param_groups[0]["params"], opt=opt)
    np.testing.assert_array_equal(saved["state"][0]["momentum_buffer"].numpy(), before)


def test_load_state_dict_errors_leave_the_optimizer_unchanged():
    _, opt, params = train(flambeau, OPTIMIZERS["adam"], 1)
    saved = opt.state_dict()
    other = optim.Adam(params[:2], lr=0.05)
    with pytest.raises(ValueError, match=r"group 0 has 3 parameter\(s\), this optimizer's has 2"):
        other.load_state_dict(saved)
    with pytest.raises(ValueError, match=r"1 parameter group\(s\), this optimizer has 2"):
        optim.Adam([{"params": params[:1]}, {"params": params[1:]}]).load_state_dict(saved)
    swapped = optim.Adam([params[1], params[0], params[2]])
    with pytest.raises(ValueError, match=r"'exp_avg' for parameter 0 has shape \[4, 3\], "
                                         r"the parameter has shape \[4\]"):
        swapped.load_state_dict(saved)
    assert len(swapped.state) == 0
    with pytest.raises(ValueError, match="expected an optimizer state dict"):
        opt.load_state_dict({"params": []})


# --- fused kernels ---------------------------------------------------------------------------

def _numpy_sgd_step(calls):
    def sgd_step(params, grads, bufs, *, lr, momentum, dampening, weight_decay, nesterov,
                 maximize):
        calls.append("sgd_step")
        for i, (p, g) in enumerate(zip(params, grads)):
            g = -g if maximize else g
            g = g + weight_decay * p
            if bufs is not None:
                bufs[i][...] = momentum * bufs[i] + (1 - dampening) * g
                g = g + momentum * bufs[i] if nesterov else bufs[i]
            p -= np.float32(lr) * g
    return sgd_step


def _numpy_adam_step(calls):
    def adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step, lr, beta1,
                  beta2, eps, weight_decay, decoupled, maximize):
        calls.append(("adam_step", step))
        for i, (p, g) in enumerate(zip(params, grads)):
            g = -g if maximize else g
            if decoupled:
                p *= np.float32(1 - lr * weight_decay)
            else:
                g = g + np.float32(weight_decay) * p
            exp_avgs[i][...] = beta1 * exp_avgs[i] + (1 - beta1) * g
            exp_avg_sqs[i][...] = beta2 * exp_avg_sqs[i] + (1 - beta2) * g * g
            second = exp_avg_sqs[i]
            if max_exp_avg_sqs is not None:
                np.maximum(max_exp_avg_sqs[i], second, out=max_exp_avg_sqs[i])
                second = max_exp_avg_sqs[i]
            denom = np.sqrt(second) / np.sqrt(1 - beta2 ** step) + eps
            p -= np.float32(lr / (1 - beta1 ** step)) * exp_avgs[i] / denom
    return adam_step


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_fused_kernels_are_used_and_match_the_composition(name, monkeypatch):
    calls: list = []
    kernels = kernels_for(flambeau.device("cpu"))
    monkeypatch.setattr(kernels, "sgd_step", _numpy_sgd_step(calls), raising=False)
    monkeypatch.setattr(kernels, "adam_step", _numpy_adam_step(calls), raising=False)
    check(OPTIMIZERS[name])
    assert len(calls) == 4  # one call per step: every parameter is on one device
    if name != "sgd":
        assert calls == [("adam_step", step) for step in range(1, 5)]


@pytest.mark.parametrize("maximize", [False, True])
def test_cpu_sgd_kernel_on_large_parameters_is_the_composition_bit_for_bit(maximize):
    """The cpu kernel updates large parameters in cache-sized pieces (and strided ones
    whole): the same rounding as the reference composition."""
    from flambeau._ops.optim_steps import sgd_step

    rng = np.random.default_rng(3)
    shapes = [(300, 301), (70000,), (5,)]  # uneven pieces, a last short piece, one small
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    strided = rng.standard_normal((400, 200)).astype(np.float32).T  # not C-contiguous
    arrays.append(strided)
    grads.append(rng.standard_normal((200, 400)).astype(np.float32))
    options = dict(lr=0.03, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                   maximize=maximize)
    fused = [a.copy() if a.flags.c_contiguous else a.T.copy().T for a in arrays]
    kernels_for(flambeau.device("cpu")).sgd_step(fused, grads, None, **options)
    reference = [flambeau.tensor(a) for a in arrays]
    with flambeau.no_grad():
        sgd_step(reference, [flambeau.tensor(g) for g in grads], None, **options)
    for got, want in zip(fused, reference):
        assert np.array_equal(got, want.numpy())


def test_fused_kernel_contract_is_documented():
    from flambeau.backends import OPTIONAL_KERNELS

    assert "dampening" in OPTIONAL_KERNELS["sgd_step"]
    assert "max_exp_avg_sqs" in OPTIONAL_KERNELS["adam_step"]


# --- errors ----------------------------------------------------------------------------------

def test_refuses_what_torch_refuses():
    w = flambeau.tensor(INIT[0], requires_grad=True)
    with pytest.raises(TypeError, match="iterable of Tensors or dicts, but got a single"):
        optim.SGD(w, lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD({w}, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors, but parameter 1 of group "
                                        "0 is a ndarray"):
        optim.SGD([w, INIT[1]], lr=0.1)
    with pytest.raises(ValueError, match=r"non-leaf Tensor \(parameter 0 of group 0 was "
                                         r"computed by MulBackward0\)"):
        optim.SGD([w * 2], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero "
                                         "dampening"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        optim.Adam([w], lr=-1)
    with pytest.raises(ValueError, match=r"Invalid beta parameter at index 1: 1\.0"):
        optim.Adam([w], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match=r"Invalid alpha value: -0\.5"):
        optim.RMSprop([w], alpha=-0.5)
    with pytest.raises(ValueError, match=r"Invalid momentum value: -1"):
        optim.SGD([{"params": [w], "momentum": -1}], lr=0.1)


def test_gradient_of_the_wrong_shape_is_reported():
    w = flambeau.tensor(INIT[0], requires_grad=True)
    with pytest.raises(ValueError, match=r"assigned grad has shape \[3\]"):
        w.grad = flambeau.ones(3)
    w.grad = flambeau.ones(4, 3)
    w.data = flambeau.ones(3, 4)  # the gradient no longer fits
    with pytest.raises(ValueError, match=r"shape \[3, 4\] has a gradient of shape \[4, 3\]"):
        optim.SGD([w], lr=0.1).step()


def test_gradient_left_on_another_device_is_reported():
    others = [d for d in flambeau.devices() if d.type not in ("cpu", "meta")]
    if not others:
        pytest.skip("needs a second device (the example plugin's boxed:0 or opencl:0)")
    w = flambeau.tensor(INIT[0], requires_grad=True)
    w.grad = flambeau.ones(4, 3)
    w.data = w.data.to(others[0])
    with pytest.raises(flambeau.errors.DeviceMismatchError,
                       match=r"SGD: a parameter on .* has a gradient on cpu"):
        optim.SGD([w], lr=0.1).step()


def test_named_parameters_are_accepted():
    net = nn.Linear(3, 2)
    opt = optim.SGD(net.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]


# --- learning-rate schedulers ------------------------------------------------------------------

SCHEDULERS = {
    "step": lambda lib, o: lib.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
    "cosine": lambda lib, o: lib.optim.lr_scheduler.CosineAnnealingLR(o, T_max=5,
                                                                      eta_min=0.01),
    "cosine_long": lambda lib, o: lib.optim.lr_scheduler.CosineAnnealingLR(o, T_max=3),
    "multistep": lambda lib, o: lib.optim.lr_scheduler.MultiStepLR(o, [2, 5, 5], 0.5),
    "exponential": lambda lib, o: lib.optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
    "lambda": lambda lib, o: lib.optim.lr_scheduler.LambdaLR(o, lambda e: 1 / (1 + e)),
}


def lr_sequence(lib, make, epochs=14, sched=None, opt=None):
    if opt is None:
        params = make_params(lib)
        opt = lib.optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.3}],
                            lr=0.1)
        sched = make(lib, opt)
    seen = []
    for _ in range(epochs):
        opt.step()
        seen.append(sched.get_last_lr() + [g["lr"] for g in opt.param_groups])
        sched.step()
    return seen, opt, sched


@pytest.mark.parametrize("name", SCHEDULERS)
def test_scheduler_lr_sequence_matches_torch(name):
    got, _, _ = lr_sequence(flambeau, SCHEDULERS[name])
    want, _, _ = lr_sequence(torch, SCHEDULERS[name])
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("name", ["step", "cosine"])
def test_scheduler_state_dict_resumes(name):
    make = SCHEDULERS[name]
    _, opt, sched = lr_sequence(flambeau, make, 4)
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    assert saved_sched["last_epoch"] == 4 and "optimizer" not in saved_sched
    params = make_params(flambeau)
    fresh = optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.3}], lr=0.1)
    resumed = make(flambeau, fresh)
    fresh.load_state_dict(saved_opt)
    resumed.load_state_dict(saved_sched)
    got, _, _ = lr_sequence(flambeau, None, 6, sched=resumed, opt=fresh)
    want, _, _ = lr_sequence(flambeau, None, 6, sched=sched, opt=opt)
    assert got == want
    reference, _, _ = lr_sequence(torch, make, 10)
    np.testing.assert_allclose(got, reference[4:], rtol=1e-12)


def test_scheduler_before_optimizer_step_warns():
    opt = optim.SGD(make_params(flambeau), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, 2)
    with pytest.warns(UserWarning, match=r"lr_scheduler.step\(\) was called before "
                                         r"optimizer.step\(\)"):
        sched.step()
    opt = optim.SGD(make_params(flambeau), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, 2)
    opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.step()


def test_resuming_a_scheduler_needs_initial_lr():
    opt = optim.SGD(make_params(flambeau), lr=0.1)
    with pytest.raises(KeyError, match="initial_lr"):
        optim.lr_scheduler.StepLR(opt, 2, last_epoch=3)


def test_a_pytorch_style_subclass_works():
    class PlainSGD(optim.Optimizer):
        def __init__(self, params, lr=optim.required):
            super().__init__(params, {"lr": lr})

        @flambeau.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-group["lr"])

    with pytest.raises(ValueError, match="didn't specify a value of required optimization "
                                         "parameter lr"):
        PlainSGD(make_params(flambeau))
    check(lambda lib, ps: PlainSGD(ps, lr=0.1) if lib is flambeau else lib.optim.SGD(ps, 0.1))
    opt = PlainSGD(make_params(flambeau), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no step-order warning for an overridden step()
        sched.step()
    assert sched.get_last_lr() == [0.05]
