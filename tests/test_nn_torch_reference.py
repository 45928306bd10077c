"""Linear, activations and a whole training loop against PyTorch with identical weights."""

from __future__ import annotations

import numpy as np
import pytest

import flambeau
from flambeau import nn

torch = pytest.importorskip("torch", reason="PyTorch (CPU) is the reference")


def _copy_weights(ours: nn.Module, theirs) -> None:
    for (name, param), (their_name, their_param) in zip(ours.named_parameters(),
                                                        theirs.named_parameters()):
        assert name == their_name
        param.data.copy_(flambeau.tensor(their_param.detach().numpy()))


@pytest.mark.parametrize("name", ["ReLU", "Sigmoid", "Tanh", "GELU", "SiLU", "LeakyReLU",
                                  "Softmax", "LogSoftmax", "Identity", "Flatten"])
def test_activation_layers(name):
    kwargs = {"dim": 1} if "Softmax" in name else {}
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    ours_in = flambeau.tensor(x, requires_grad=True)
    theirs_in = torch.tensor(x, requires_grad=True)
    ours = getattr(nn, name)(**kwargs)(ours_in)
    theirs = getattr(torch.nn, name)(**kwargs)(theirs_in)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    weights = np.random.default_rng(1).standard_normal(theirs.shape).astype(np.float32)
    (ours * flambeau.tensor(weights)).sum().backward()
    (theirs * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(ours_in.grad.numpy(), theirs_in.grad.numpy(), rtol=1e-5,
                               atol=1e-6)
    assert repr(getattr(nn, name)(**kwargs)) == repr(getattr(torch.nn, name)(**kwargs))


def test_linear_matches_and_default_init_has_pytorch_bounds():
    ours, theirs = nn.Linear(5, 3), torch.nn.Linear(5, 3)
    bound = 1 / np.sqrt(5)
    assert np.abs(ours.weight.detach().numpy()).max() <= bound
    assert np.abs(ours.bias.detach().numpy()).max() <= bound
    assert repr(ours) == repr(theirs)
    _copy_weights(ours, theirs)
    x = np.random.default_rng(2).standard_normal((4, 5)).astype(np.float32)
    out, ref = ours(flambeau.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-5)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(),
                               rtol=1e-5)
    np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-5)


def test_dropout_scales_in_training_and_is_identity_in_eval():
    layer = nn.Dropout(0.25)
    x = flambeau.ones(10000)
    y = layer(x)
    kept = (y != 0).float().mean().item()
    assert abs(kept - 0.75) < 0.03
    np.testing.assert_allclose(np.unique(y.numpy()), [0.0, 1 / 0.75], rtol=1e-6)
    layer.eval()
    assert layer(x) is x
    assert repr(layer) == repr(torch.nn.Dropout(0.25))


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_a_few_training_steps_match_pytorch(optimizer):
    def build(lib):
        return lib.nn.Sequential(lib.nn.Linear(6, 8), lib.nn.ReLU(), lib.nn.Linear(8, 3))

    ours, theirs = build(flambeau), build(torch)
    _copy_weights(ours, theirs)
    options = {"lr": 0.1, "momentum": 0.9} if optimizer == "SGD" else {"lr": 0.01}
    opt_ours = getattr(flambeau.optim, optimizer)(ours.parameters(), **options)
    opt_theirs = getattr(torch.optim, optimizer)(theirs.parameters(), **options)
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.standard_normal((4, 6)).astype(np.float32)
        y = rng.integers(0, 3, 4)
        for model, opt, lib in ((ours, opt_ours, flambeau), (theirs, opt_theirs, torch)):
            loss = lib.nn.functional.cross_entropy(model(lib.tensor(x)), lib.tensor(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
    for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-4,
                                   atol=1e-6, err_msg=name)


# --- the functional face: functions no layer test reaches by name -------------------------


def _both(fn_ours, fn_theirs, x, **kwargs):
    ours_in = flambeau.tensor(x, requires_grad=x.dtype.kind == "f")
    theirs_in = torch.tensor(x, requires_grad=x.dtype.kind == "f")
    ours, theirs = fn_ours(ours_in, **kwargs), fn_theirs(theirs_in, **kwargs)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    if ours_in.requires_grad:
        ours.sum().backward()
        theirs.sum().backward()
        np.testing.assert_allclose(ours_in.grad.numpy(), theirs_in.grad.numpy(), rtol=1e-5,
                                   atol=1e-6)


def test_functional_linear_leaky_relu_one_hot_and_dropout_match_pytorch():
    F, TF = nn.functional, torch.nn.functional
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    w = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    _both(lambda t: F.linear(t, flambeau.tensor(w), flambeau.tensor(b)),
          lambda t: TF.linear(t, torch.tensor(w), torch.tensor(b)), x)
    _both(lambda t: F.linear(t, flambeau.tensor(w)), lambda t: TF.linear(t, torch.tensor(w)), x)
    _both(F.leaky_relu, TF.leaky_relu, x)
    _both(lambda t: t.softmax(1), lambda t: t.softmax(1), x)
    _both(lambda t: t.log_softmax(dim=0), lambda t: t.log_softmax(dim=0), x)
    _both(F.leaky_relu, TF.leaky_relu, x, negative_slope=0.2)
    labels = np.array([0, 3, 1, 3])
    _both(F.one_hot, TF.one_hot, labels)
    _both(F.one_hot, TF.one_hot, labels, num_classes=6)
    _both(F.dropout, TF.dropout, x, p=0.0)
    _both(F.dropout, TF.dropout, x, p=0.5, training=False)
    kept = F.dropout(flambeau.ones(10000), p=0.25).numpy()
    assert set(np.unique(kept)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((kept == 0).mean() - 0.25) < 0.03
