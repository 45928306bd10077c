"""Adagrad and Adadelta (D2L's optimization chapter) against PyTorch: trajectories over
several steps from identical weights and gradients with every option, state dicts in
PyTorch's format both ways, lazy parameters, and PyTorch's errors; SGD with Nesterov
momentum over a longer run.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_optim import INIT, X, assert_same_params, check, loss_of, make_params, train  # noqa: E402

import flambeau  # noqa: E402
from flambeau import nn, optim  # noqa: E402

ADAGRAD_OPTIONS = [
    dict(), dict(lr_decay=0.1), dict(weight_decay=0.05), dict(initial_accumulator_value=0.3),
    dict(eps=1e-3), dict(maximize=True),
    dict(lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.1, eps=1e-6,
         maximize=True),
]


@pytest.mark.parametrize("options", ADAGRAD_OPTIONS, ids=str)
def test_adagrad_matches_torch(options):
    check(lambda lib, ps: lib.optim.Adagrad(ps, lr=0.1, **options), steps=6)


ADADELTA_OPTIONS = [
    dict(), dict(rho=0.5), dict(weight_decay=0.1), dict(eps=1e-4), dict(maximize=True),
    dict(lr=0.5, rho=0.95, eps=1e-3, weight_decay=0.02, maximize=True),
]


@pytest.mark.parametrize("options", ADADELTA_OPTIONS, ids=str)
def test_adadelta_matches_torch(options):
    check(lambda lib, ps: lib.optim.Adadelta(ps, **options), steps=6)


OPTIMIZERS = {
    "adagrad": lambda lib, ps: lib.optim.Adagrad(ps, lr=0.1, lr_decay=0.01, weight_decay=0.01),
    "adadelta": lambda lib, ps: lib.optim.Adadelta(ps, lr=1.0, weight_decay=0.01),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_device_matches_torch(name, device):
    check(OPTIMIZERS[name], steps=5, device=device)


def test_param_groups_with_their_own_options():
    check(lambda lib, ps: lib.optim.Adagrad(
        [{"params": ps[:2], "lr_decay": 0.2}, {"params": ps[2:], "lr": 0.5}], lr=0.1))
    check(lambda lib, ps: lib.optim.Adadelta(
        [{"params": ps[:1], "rho": 0.6}, {"params": ps[1:], "weight_decay": 0.1}]))


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_sgd_with_nesterov_momentum_over_a_longer_run(weight_decay):
    check(lambda lib, ps: lib.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True,
                                        weight_decay=weight_decay), steps=12)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_is_pytorchs(name):
    _, opt, _ = train(flambeau, OPTIMIZERS[name], 3)
    _, t_opt, _ = train(torch, OPTIMIZERS[name], 3)
    ours, theirs = opt.state_dict(), t_opt.state_dict()
    assert sorted(ours["state"]) == sorted(theirs["state"]) == [0, 1, 2]
    for index, state in theirs["state"].items():
        assert set(ours["state"][index]) == set(state)
        assert ours["state"][index]["step"] == int(state["step"]) == 3
        for key, value in state.items():
            if key != "step":
                np.testing.assert_allclose(ours["state"][index][key].numpy(), value.numpy(),
                                           rtol=1e-5, atol=1e-7)
    group, t_group = ours["param_groups"][0], theirs["param_groups"][0]
    assert set(group) <= set(t_group)
    assert {k: group[k] for k in group} == {k: t_group[k] for k in group}


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("source", ["flambeau", "torch"])
def test_state_dict_round_trip_continues_identically(name, source):
    """Three steps, save (here or in PyTorch), load into a fresh optimizer, three more."""
    make = OPTIMIZERS[name]
    lib = flambeau if source == "flambeau" else torch
    _, saved_opt, saved_params = train(lib, make, 3)
    params = [flambeau.tensor(p.detach().numpy(), requires_grad=True) for p in saved_params]
    opt = make(flambeau, params)
    opt.load_state_dict(saved_opt.state_dict())
    got, _, _ = train(flambeau, None, 3, params=params, opt=opt)
    want, _, _ = train(torch, make, 6)
    assert_same_params(got, want)


def test_adagrad_fills_its_state_at_construction_like_torch():
    opt = optim.Adagrad(make_params(flambeau), initial_accumulator_value=0.25)
    t_opt = torch.optim.Adagrad(make_params(torch), initial_accumulator_value=0.25)
    ours, theirs = opt.state_dict()["state"], t_opt.state_dict()["state"]
    assert sorted(ours) == sorted(theirs)
    for index in theirs:
        assert ours[index]["step"] == 0
        np.testing.assert_array_equal(ours[index]["sum"].numpy(), theirs[index]["sum"].numpy())


def test_adagrad_group_accumulator_value_is_ignored_like_torch():
    # PyTorch starts every sum at the constructor's value, even for an added group.
    check(lambda lib, ps: lib.optim.Adagrad(
        [{"params": ps[:1]}, {"params": ps[1:], "initial_accumulator_value": 5.0}], lr=0.1,
        initial_accumulator_value=0.5))

    def added_later(lib, ps):
        opt = lib.optim.Adagrad(ps[:1], lr=0.1, initial_accumulator_value=0.5)
        opt.add_param_group({"params": ps[1:], "initial_accumulator_value": 5.0})
        return opt

    check(added_later)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_built_before_the_first_forward_of_a_lazy_model(name):
    make = OPTIMIZERS[name]
    net = nn.Sequential(nn.LazyLinear(4), nn.Tanh(), nn.LazyLinear(1))
    opt = make(flambeau, list(net.parameters()))
    net(flambeau.tensor(X))  # materialise
    t_net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    with torch.no_grad():
        for p, t in zip(net.parameters(), t_net.parameters()):
            t.copy_(torch.tensor(p.detach().numpy()))
    t_opt = make(torch, list(t_net.parameters()))
    for model, optimizer, lib in ((net, opt, flambeau), (t_net, t_opt, torch)):
        for _ in range(3):
            optimizer.zero_grad()
            (model(lib.tensor(X)) ** 2).mean().backward()
            optimizer.step()
    assert_same_params([p.detach().numpy() for p in net.parameters()],
                       [p.detach().numpy() for p in t_net.parameters()])


ERRORS = {
    "adagrad_lr": lambda lib, w: lib.optim.Adagrad([w], lr=-1.0),
    "adagrad_lr_decay": lambda lib, w: lib.optim.Adagrad([w], lr_decay=-0.5),
    "adagrad_weight_decay": lambda lib, w: lib.optim.Adagrad([w], weight_decay=-0.1),
    "adagrad_initial_accumulator": lambda lib, w: lib.optim.Adagrad(
        [w], initial_accumulator_value=-1.0),
    "adagrad_eps": lambda lib, w: lib.optim.Adagrad([w], eps=-1e-3),
    "adadelta_lr": lambda lib, w: lib.optim.Adadelta([w], lr=-1.0),
    "adadelta_rho": lambda lib, w: lib.optim.Adadelta([w], rho=1.5),
    "adadelta_negative_rho": lambda lib, w: lib.optim.Adadelta([w], rho=-0.1),
    "adadelta_eps": lambda lib, w: lib.optim.Adadelta([w], eps=-1.0),
    "adadelta_weight_decay": lambda lib, w: lib.optim.Adadelta([w], weight_decay=-2.0),
    "sgd_nesterov_without_momentum": lambda lib, w: lib.optim.SGD([w], lr=0.1, nesterov=True),
    "sgd_nesterov_with_dampening": lambda lib, w: lib.optim.SGD(
        [w], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
    "adamw_lr": lambda lib, w: lib.optim.AdamW([w], lr=-0.1),
}


@pytest.mark.parametrize("name", ERRORS)
def test_bad_options_fail_with_torchs_message(name):
    errors = []
    for lib in (flambeau, torch):
        with pytest.raises(ValueError) as info:
            ERRORS[name](lib, lib.tensor(INIT[0], requires_grad=True))
        errors.append(str(info.value))
    assert errors[0].startswith(errors[1]), errors


def test_bad_group_options_are_refused_too():
    w = flambeau.tensor(INIT[0], requires_grad=True)
    with pytest.raises(ValueError, match=r"Invalid lr_decay value: -1 \(must be >= 0\)"):
        optim.Adagrad([{"params": [w], "lr_decay": -1}])
    with pytest.raises(ValueError, match=r"Invalid rho value: 2"):
        optim.Adadelta([{"params": [w], "rho": 2}])


def test_exported_like_torch():
    for name in ("Adagrad", "Adadelta", "AdamW", "SGD"):
        assert name in optim.__all__ and hasattr(torch.optim, name)
    x = flambeau.tensor(X)
    params = make_params(flambeau)
    loss_of(flambeau, params, x).backward()
    optim.Adadelta(params).step()  # a step with the defaults runs
