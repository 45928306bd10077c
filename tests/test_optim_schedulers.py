"""The learning-rate schedulers added for PyTorch scripts, against PyTorch: the values
over many steps (learning rates and the momentum OneCycleLR cycles), a state-dict round
trip in mid-schedule (flambeau's, and PyTorch's loaded into flambeau), the closed forms
behind ``step(epoch)``, and the errors PyTorch raises, with its messages.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import flambeau  # noqa: E402
from flambeau import optim  # noqa: E402

_rng = np.random.default_rng(1)
INIT = [_rng.uniform(-1, 1, (3, 2)).astype(np.float32),
        _rng.uniform(-1, 1, (3,)).astype(np.float32)]
EPOCHS = 30


def make_optimizer(lib, kind="sgd"):
    params = [lib.tensor(a, requires_grad=True) for a in INIT]
    groups = [{"params": params[:1]}, {"params": params[1:], "lr": 0.3}]
    if kind == "adam":
        return lib.optim.Adam(groups, lr=0.1)
    return lib.optim.SGD(groups, lr=0.1, momentum=0.5)


def S(lib):
    return lib.optim.lr_scheduler


SCHEDULERS = {
    "multiplicative": lambda lib, o: S(lib).MultiplicativeLR(o, lambda e: 0.95),
    "multiplicative_per_group": lambda lib, o: S(lib).MultiplicativeLR(
        o, [lambda e: 0.9, lambda e: 0.5 if e % 3 == 0 else 1.0]),
    "constant": lambda lib, o: S(lib).ConstantLR(o, factor=0.5, total_iters=4),
    "linear_warmup": lambda lib, o: S(lib).LinearLR(o, start_factor=0.1, total_iters=5),
    "linear_decay": lambda lib, o: S(lib).LinearLR(o, start_factor=1.0, end_factor=0.2,
                                                   total_iters=7),
    "polynomial": lambda lib, o: S(lib).PolynomialLR(o, total_iters=12, power=2.0),
    "polynomial_sqrt": lambda lib, o: S(lib).PolynomialLR(o, total_iters=9, power=0.5),
    "warm_restarts": lambda lib, o: S(lib).CosineAnnealingWarmRestarts(o, T_0=4),
    "warm_restarts_mult": lambda lib, o: S(lib).CosineAnnealingWarmRestarts(
        o, T_0=3, T_mult=2, eta_min=0.001),
    "one_cycle": lambda lib, o: S(lib).OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=EPOCHS),
    "one_cycle_linear_three_phase": lambda lib, o: S(lib).OneCycleLR(
        o, max_lr=0.8, epochs=6, steps_per_epoch=5, pct_start=0.25, anneal_strategy="linear",
        three_phase=True, div_factor=10.0, final_div_factor=100.0),
    "one_cycle_no_momentum": lambda lib, o: S(lib).OneCycleLR(
        o, max_lr=0.5, total_steps=EPOCHS + 5, cycle_momentum=False),
    "sequential": lambda lib, o: S(lib).SequentialLR(
        o, [S(lib).LinearLR(o, start_factor=0.1, total_iters=3),
            S(lib).CosineAnnealingLR(o, T_max=8, eta_min=0.01)], milestones=[3]),
    "sequential_three": lambda lib, o: S(lib).SequentialLR(
        o, [S(lib).ConstantLR(o, factor=0.2, total_iters=2), S(lib).ExponentialLR(o, 0.8),
            S(lib).StepLR(o, step_size=3, gamma=0.5)], milestones=[4, 10]),
    "chained": lambda lib, o: S(lib).ChainedScheduler(
        [S(lib).ConstantLR(o, factor=0.5, total_iters=3), S(lib).ExponentialLR(o, 0.9)]),
    "chained_warmup_cosine": lambda lib, o: S(lib).ChainedScheduler(
        [S(lib).LinearLR(o, start_factor=0.2, total_iters=4),
         S(lib).CosineAnnealingWarmRestarts(o, T_0=5)], optimizer=o),
}
CYCLIC = {
    "cyclic_triangular": lambda lib, o: S(lib).CyclicLR(o, 0.01, [0.1, 0.5], step_size_up=4),
    "cyclic_triangular2": lambda lib, o: S(lib).CyclicLR(
        o, [0.01, 0.02], 0.3, step_size_up=3, step_size_down=5, mode="triangular2"),
    "cyclic_exp_range": lambda lib, o: S(lib).CyclicLR(
        o, 0.05, 0.4, step_size_up=5, mode="exp_range", gamma=0.97,
        base_momentum=[0.7, 0.8], max_momentum=0.95),
    "cyclic_scale_fn_cycle": lambda lib, o: S(lib).CyclicLR(
        o, 0.01, 0.2, step_size_up=2, step_size_down=3, mode="ignored",
        scale_fn=lambda x: 0.5 * (1 + math.sin(x * math.pi / 2))),
    "cyclic_scale_fn_iterations": lambda lib, o: S(lib).CyclicLR(
        o, 0.01, 0.2, step_size_up=6, scale_fn=lambda x: 1 / (1 + 0.1 * x),
        scale_mode="iterations"),
    "cyclic_no_momentum": lambda lib, o: S(lib).CyclicLR(
        o, 0.02, 0.1, step_size_up=3, mode="triangular2", cycle_momentum=False),
}
SCHEDULERS.update(CYCLIC)
ADAM_SCHEDULERS = {
    "one_cycle_adam": lambda lib, o: S(lib).OneCycleLR(
        o, max_lr=0.01, total_steps=EPOCHS, base_momentum=0.8, max_momentum=0.9),
    "cyclic_adam": lambda lib, o: S(lib).CyclicLR(
        o, 0.001, [0.01, 0.02], step_size_up=3, mode="exp_range", gamma=0.9,
        base_momentum=0.85, max_momentum=0.95),
}


def record(opt, sched):
    momenta = [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]
    return sched.get_last_lr() + [g["lr"] for g in opt.param_groups] + momenta


def run(opt, sched, epochs):
    seen = []
    for _ in range(epochs):
        opt.step()
        seen.append(record(opt, sched))
        sched.step()
    return seen


def sequence(lib, make, epochs=EPOCHS, kind="sgd"):
    opt = make_optimizer(lib, kind)
    sched = make(lib, opt)
    return run(opt, sched, epochs), opt, sched


ALL = {**{k: (v, "sgd") for k, v in SCHEDULERS.items()},
       **{k: (v, "adam") for k, v in ADAM_SCHEDULERS.items()}}


@pytest.mark.parametrize("name", ALL)
def test_lr_sequence_matches_torch(name):
    make, kind = ALL[name]
    got, _, _ = sequence(flambeau, make, kind=kind)
    want, _, _ = sequence(torch, make, kind=kind)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ALL)
def test_state_dict_round_trip_in_mid_schedule(name):
    make, kind = ALL[name]
    _, opt, sched = sequence(flambeau, make, 11, kind)
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    assert "optimizer" not in saved_sched
    fresh = make_optimizer(flambeau, kind)
    resumed = make(flambeau, fresh)
    fresh.load_state_dict(saved_opt)
    resumed.load_state_dict(saved_sched)
    assert resumed.get_last_lr() == sched.get_last_lr()
    got = run(fresh, resumed, EPOCHS - 11)
    want, _, _ = sequence(torch, make, kind=kind)
    np.testing.assert_allclose(got, want[11:], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["linear_warmup", "polynomial", "warm_restarts_mult",
                                  "one_cycle", "sequential", "chained", "cyclic_triangular2",
                                  "cyclic_exp_range"])
def test_a_pytorch_checkpoint_resumes_in_flambeau(name):
    make = SCHEDULERS[name]
    _, t_opt, t_sched = sequence(torch, make, 9)
    fresh = make_optimizer(flambeau)
    resumed = make(flambeau, fresh)
    fresh.load_state_dict(t_opt.state_dict())
    resumed.load_state_dict(t_sched.state_dict())
    got = run(fresh, resumed, EPOCHS - 9)
    want = run(t_opt, t_sched, EPOCHS - 9)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", [*CYCLIC, "cyclic_adam"])
def test_cyclic_lr_over_fifty_steps(name):
    make, kind = ALL[name]
    got, _, _ = sequence(flambeau, make, 50, kind)
    want, _, _ = sequence(torch, make, 50, kind)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


class Decay:
    """A callable scale_fn: the state dict keeps its attributes (a lambda is not kept)."""

    def __init__(self):
        self.rate = 0.5

    def __call__(self, x):
        return self.rate ** x


def test_cyclic_lr_saves_a_callable_scale_fn():
    def build(lib):
        opt = make_optimizer(lib)
        return opt, S(lib).CyclicLR(opt, 0.01, 0.3, step_size_up=2, scale_fn=Decay())

    saved = {}
    for lib in (flambeau, torch):
        opt, sched = build(lib)
        sched._scale_fn_custom.rate = 0.8
        run(opt, sched, 5)
        saved[lib.__name__] = (opt.state_dict(), sched.state_dict())
        assert saved[lib.__name__][1]["_scale_fn_custom"] == {"rate": 0.8}
    seen = []
    for source in ("flambeau", "torch"):
        opt, sched = build(flambeau)
        opt.load_state_dict(saved[source][0])
        sched.load_state_dict(saved[source][1])
        assert sched._scale_fn_custom.rate == 0.8
        seen.append(run(opt, sched, 8))
    opt, sched = build(torch)
    opt.load_state_dict(saved["torch"][0])
    sched.load_state_dict(dict(saved["torch"][1]))
    want = run(opt, sched, 8)
    np.testing.assert_allclose(seen[0], want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(seen[1], want, rtol=1e-12, atol=1e-15)


CLOSED_FORMS = {
    "constant": lambda lib, o: S(lib).ConstantLR(o, factor=0.25, total_iters=5),
    "linear": lambda lib, o: S(lib).LinearLR(o, start_factor=0.2, end_factor=0.9,
                                             total_iters=6),
    "polynomial": lambda lib, o: S(lib).PolynomialLR(o, total_iters=8, power=1.5),
    "exponential": lambda lib, o: S(lib).ExponentialLR(o, gamma=0.7),
    "warm_restarts": lambda lib, o: S(lib).CosineAnnealingWarmRestarts(o, T_0=2, T_mult=3),
}


@pytest.mark.parametrize("name", CLOSED_FORMS)
def test_step_with_an_epoch_uses_the_closed_form(name):
    def jumps(lib):
        opt = make_optimizer(lib)
        sched = CLOSED_FORMS[name](lib, opt)
        seen = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in [3, 1, 7, 12, 0, 5, 30, 2]:
                opt.step()
                sched.step(epoch)
                seen.append(record(opt, sched) + [sched.last_epoch])
        return seen

    np.testing.assert_allclose(jumps(flambeau), jumps(torch), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("t_mult", [1, 2])
def test_warm_restarts_take_fractional_epochs(t_mult):
    def per_batch(lib):
        opt = make_optimizer(lib)
        sched = S(lib).CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=t_mult, eta_min=0.01)
        seen = []
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no deprecation warning, as in PyTorch
            for epoch in range(7):
                for batch in range(4):
                    opt.step()
                    sched.step(epoch + batch / 4)
                    seen.append(record(opt, sched) + [sched.T_cur, sched.T_i, sched.last_epoch])
        return seen

    np.testing.assert_allclose(per_batch(flambeau), per_batch(torch), rtol=1e-12)


LOSSES = [1.0, 0.9, 0.9, 0.9, 0.95, 0.85, 0.85, 0.8499, 0.85, 0.86, 0.87, 0.5, 0.5, 0.5,
          0.5, 0.5, 0.5, 0.49999, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
PLATEAU = {
    "default": dict(patience=2),
    "max_mode": dict(mode="max", patience=1, factor=0.5),
    "abs_threshold": dict(threshold=0.05, threshold_mode="abs", patience=1),
    "cooldown": dict(patience=0, cooldown=2, factor=0.5),
    "min_lr_per_group": dict(patience=0, factor=0.3, min_lr=[0.01, 0.05]),
    "large_eps": dict(patience=0, factor=0.9, eps=0.02),
    "max_abs": dict(mode="max", threshold_mode="abs", threshold=0.01, patience=2),
}


def plateau_run(lib, options, losses, sched=None, opt=None):
    if opt is None:
        opt = make_optimizer(lib)
        sched = S(lib).ReduceLROnPlateau(opt, **options)
    seen = []
    for loss in losses:
        opt.step()
        sched.step(lib.tensor(loss) if lib is flambeau else loss)
        seen.append(record(opt, sched) + [sched.num_bad_epochs, sched.cooldown_counter,
                                          sched.best, sched.last_epoch])
    return seen, opt, sched


@pytest.mark.parametrize("name", PLATEAU)
def test_reduce_on_plateau_matches_torch(name):
    got, _, _ = plateau_run(flambeau, PLATEAU[name], LOSSES)
    want, _, _ = plateau_run(torch, PLATEAU[name], LOSSES)
    np.testing.assert_allclose(got, want, rtol=1e-6)  # best: a float32 tensor's value


def test_reduce_on_plateau_state_dict_round_trip():
    options = PLATEAU["cooldown"]
    _, opt, sched = plateau_run(flambeau, options, LOSSES[:9])
    fresh = make_optimizer(flambeau)
    resumed = optim.lr_scheduler.ReduceLROnPlateau(fresh, mode="max")  # mode is restored
    fresh.load_state_dict(opt.state_dict())
    resumed.load_state_dict(sched.state_dict())
    got, _, _ = plateau_run(flambeau, None, LOSSES[9:], resumed, fresh)
    want, _, _ = plateau_run(torch, options, LOSSES)
    np.testing.assert_allclose(got, want[9:], rtol=1e-6)
    t_opt = make_optimizer(torch)
    t_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, **options)
    for loss in LOSSES[:9]:
        t_sched.step(loss)
    fresh = make_optimizer(flambeau)
    from_torch = optim.lr_scheduler.ReduceLROnPlateau(fresh)
    fresh.load_state_dict(t_opt.state_dict())
    from_torch.load_state_dict(t_sched.state_dict())
    got, _, _ = plateau_run(flambeau, None, LOSSES[9:], from_torch, fresh)
    np.testing.assert_allclose(got, want[9:], rtol=1e-6)


def test_reduce_on_plateau_with_a_group_added_later():
    for lib in (flambeau, torch):
        opt = make_optimizer(lib)
        sched = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, min_lr=[0.0, 0.0])
        extra = lib.tensor(INIT[0] * 2, requires_grad=True)
        opt.add_param_group({"params": [extra]})
        sched.step(1.0)
        with pytest.raises(RuntimeError, match=r"The number of param groups in the "
                                               r"`optimizer` \(3\) differs"):
            sched.step(2.0)


def test_one_cycle_refuses_to_step_past_total_steps():
    for lib in (flambeau, torch):
        opt = make_optimizer(lib)
        sched = lib.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=3)
        for _ in range(3):
            opt.step()
            sched.step()
        with pytest.raises(ValueError, match=r"Tried to step 4 times\. The specified number "
                                             r"of total steps is 3"):
            sched.step()


def test_sequential_lr_switches_with_a_fresh_start():
    opt = make_optimizer(flambeau)
    warm = optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
    decay = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    sched = optim.lr_scheduler.SequentialLR(opt, [warm, decay], milestones=[3])
    assert sched.get_last_lr() == [0.05, 0.15]
    assert warm.last_epoch == 0 and decay.last_epoch == -1
    for _ in range(3):
        opt.step()
        sched.step()
    assert decay.last_epoch == 0 and sched.last_epoch == 3
    assert sched.get_last_lr() == pytest.approx([0.1, 0.3])


def _error(lib, build):
    with pytest.raises(Exception) as info:
        build(lib, make_optimizer(lib))
    return info.value


# Each must fail in both libraries, with the same type and PyTorch's message.
ERRORS = {
    "constant_factor": lambda lib, o: S(lib).ConstantLR(o, factor=1.5),
    "linear_start": lambda lib, o: S(lib).LinearLR(o, start_factor=0.0),
    "linear_end": lambda lib, o: S(lib).LinearLR(o, end_factor=1.5),
    "multiplicative_not_callable": lambda lib, o: S(lib).MultiplicativeLR(o, [0.9, 0.9]),
    "lambda_count": lambda lib, o: S(lib).LambdaLR(o, [lambda e: 1.0]),
    "restarts_t0": lambda lib, o: S(lib).CosineAnnealingWarmRestarts(o, T_0=0),
    "restarts_t0_float": lambda lib, o: S(lib).CosineAnnealingWarmRestarts(o, T_0=2.5),
    "restarts_tmult": lambda lib, o: S(lib).CosineAnnealingWarmRestarts(o, 2, T_mult=0),
    "restarts_eta_min": lambda lib, o: S(lib).CosineAnnealingWarmRestarts(o, 2, eta_min="0"),
    "restarts_negative_epoch": lambda lib, o: S(lib).CosineAnnealingWarmRestarts(o, 2).step(-1),
    "one_cycle_no_length": lambda lib, o: S(lib).OneCycleLR(o, max_lr=1.0),
    "one_cycle_total": lambda lib, o: S(lib).OneCycleLR(o, max_lr=1.0, total_steps=0),
    "one_cycle_epochs": lambda lib, o: S(lib).OneCycleLR(o, 1.0, epochs=0, steps_per_epoch=3),
    "one_cycle_steps": lambda lib, o: S(lib).OneCycleLR(o, 1.0, epochs=2, steps_per_epoch=-1),
    "one_cycle_pct": lambda lib, o: S(lib).OneCycleLR(o, 1.0, total_steps=9, pct_start=1.5),
    "one_cycle_pct_int": lambda lib, o: S(lib).OneCycleLR(o, 1.0, total_steps=9, pct_start=1),
    "one_cycle_anneal": lambda lib, o: S(lib).OneCycleLR(o, 1.0, 9, anneal_strategy="exp"),
    "one_cycle_max_lr_count": lambda lib, o: S(lib).OneCycleLR(o, [1.0], total_steps=9),
    "one_cycle_momentum": lambda lib, o: S(lib).OneCycleLR(
        lib.optim.Adagrad(o.param_groups[0]["params"]), 1.0, total_steps=9),
    "plateau_factor": lambda lib, o: S(lib).ReduceLROnPlateau(o, factor=1.0),
    "plateau_mode": lambda lib, o: S(lib).ReduceLROnPlateau(o, mode="avg"),
    "plateau_threshold_mode": lambda lib, o: S(lib).ReduceLROnPlateau(o, threshold_mode="x"),
    "plateau_min_lrs": lambda lib, o: S(lib).ReduceLROnPlateau(o, min_lr=[0.1]),
    "plateau_not_an_optimizer": lambda lib, o: S(lib).ReduceLROnPlateau("sgd"),
    "sequential_empty": lambda lib, o: S(lib).SequentialLR(o, [], []),
    "sequential_milestones": lambda lib, o: S(lib).SequentialLR(
        o, [S(lib).ConstantLR(o), S(lib).ExponentialLR(o, 0.9)], milestones=[]),
    "sequential_plateau": lambda lib, o: S(lib).SequentialLR(
        o, [S(lib).ConstantLR(o), S(lib).ReduceLROnPlateau(o)], milestones=[2]),
    "sequential_not_a_scheduler": lambda lib, o: S(lib).SequentialLR(o, [object()], []),
    "one_cycle_momenta_count": lambda lib, o: S(lib).OneCycleLR(
        o, 1.0, 9, base_momentum=[0.8], max_momentum=[0.9]),
    "cyclic_mode": lambda lib, o: S(lib).CyclicLR(o, 0.1, 1.0, mode="sine"),
    "cyclic_momentum": lambda lib, o: S(lib).CyclicLR(
        lib.optim.Adagrad(o.param_groups[0]["params"]), 0.1, 1.0),
    "cyclic_base_lr_count": lambda lib, o: S(lib).CyclicLR(o, [0.1], 1.0),
    "cyclic_max_lr_count": lambda lib, o: S(lib).CyclicLR(o, 0.1, [1.0, 2.0, 3.0]),
    "cyclic_momenta_count": lambda lib, o: S(lib).CyclicLR(
        o, 0.1, 1.0, base_momentum=[0.8], max_momentum=[0.9]),
    "cyclic_not_an_optimizer": lambda lib, o: S(lib).CyclicLR("sgd", 0.1, 1.0),
    "chained_empty": lambda lib, o: S(lib).ChainedScheduler([]),
    "chained_plateau": lambda lib, o: S(lib).ChainedScheduler([S(lib).ReduceLROnPlateau(o)]),
}


@pytest.mark.parametrize("name", ERRORS)
def test_errors_match_torch(name):
    got, want = _error(flambeau, ERRORS[name]), _error(torch, ERRORS[name])
    assert type(got) is type(want)
    assert str(got).startswith(str(want)), (str(got), str(want))


def test_schedulers_of_another_optimizer_are_refused():
    for name in ("SequentialLR", "ChainedScheduler"):
        opt, other = make_optimizer(flambeau), make_optimizer(flambeau)
        schedulers = [optim.lr_scheduler.ConstantLR(opt), optim.lr_scheduler.ConstantLR(other)]
        args = (opt, schedulers, [2]) if name == "SequentialLR" else (schedulers, opt)
        with pytest.raises(ValueError, match=f"{name} expects all schedulers to belong to the "
                                             "same optimizer, but got scheduler ConstantLR at "
                                             "index 1"):
            getattr(optim.lr_scheduler, name)(*args)


def test_every_pytorch_scheduler_asked_for_is_there():
    names = ["LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
             "ExponentialLR", "SequentialLR", "CosineAnnealingLR", "ChainedScheduler",
             "ReduceLROnPlateau", "CosineAnnealingWarmRestarts", "OneCycleLR", "PolynomialLR",
             "CyclicLR", "LRScheduler"]
    for name in names:
        ours = getattr(optim.lr_scheduler, name)
        assert name in optim.lr_scheduler.__all__
        assert issubclass(ours, optim.lr_scheduler.LRScheduler)
