"""Recurrent layers (RNN, GRU, LSTM and cells) against PyTorch on every device.

Each case builds the same layer in both libraries, copies torch's weights into flambeau's
by name (the parameter names match), runs one input, and compares outputs, final states,
and the gradients of every input, initial state and parameter.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import flambeau  # noqa: E402
from flambeau import nn, optim  # noqa: E402
from flambeau.errors import DTypeError  # noqa: E402

RTOL, ATOL = 2e-5, 2e-6
_rng = np.random.default_rng(1)


def rand(*shape):
    return _rng.uniform(-1, 1, shape).astype(np.float32)


def twins(name, device, *args, **kwargs):
    """The same layer in torch and flambeau (on ``device``), with torch's weights."""
    t_layer = getattr(torch.nn, name)(*args, **kwargs)
    f_layer = getattr(nn, name)(*args, **kwargs).to(device)
    f_layer.load_state_dict({k: flambeau.tensor(v.detach().numpy())
                             for k, v in t_layer.state_dict().items()})
    return f_layer, t_layer


def leaf(lib, array, device=None):
    if lib is torch:
        return torch.tensor(array, requires_grad=True)
    return flambeau.tensor(array, requires_grad=True, device=device)


def flat(result):
    """(output, h) or (output, (h, c)) as a flat list of tensors."""
    output, state = result
    return [output, *state] if isinstance(state, tuple) else [output, state]


def compare(f_layer, t_layer, x, states, device, layer_args=()):
    """Run both layers on ``x`` (and initial ``states``), compare values and gradients."""
    f_inputs = [leaf(flambeau, a, device) for a in [x, *states]]
    t_inputs = [leaf(torch, a) for a in [x, *states]]
    results = []
    for lib, layer, inputs in ((flambeau, f_layer, f_inputs), (torch, t_layer, t_inputs)):
        hx = None if not states else inputs[1] if len(states) == 1 else tuple(inputs[1:])
        out = layer(inputs[0], hx, *layer_args)
        outs = flat(out) if isinstance(out, tuple) and len(out) == 2 and not isinstance(
            layer, (torch.nn.LSTMCell, nn.LSTMCell)) else list(out) if isinstance(
            out, tuple) else [out]
        loss = sum((o * lib.tensor(np.cos(np.arange(o.numel(), dtype=np.float32)).reshape(
            tuple(o.shape)), **({} if lib is torch else {"device": device}))).sum()
            for o in outs)
        loss.backward()
        results.append(outs)
    for got, want in zip(*results):
        assert tuple(got.shape) == tuple(want.shape)
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), RTOL, ATOL)
    for got, want in zip(f_inputs, t_inputs):
        np.testing.assert_allclose(got.grad.numpy(), want.grad.numpy(), RTOL, ATOL)
    t_params = dict(t_layer.named_parameters())
    f_params = dict(f_layer.named_parameters())
    assert list(f_params) == list(t_params)
    for name, param in t_params.items():
        np.testing.assert_allclose(f_params[name].grad.numpy(), param.grad.numpy(), RTOL, ATOL,
                                   err_msg=name)


CASES = {
    "rnn_tanh_2layers": ("RNN", dict(num_layers=2), False),
    "rnn_relu_batch_first": ("RNN", dict(nonlinearity="relu", batch_first=True), True),
    "rnn_bidirectional_no_bias": ("RNN", dict(num_layers=2, bidirectional=True, bias=False),
                                  True),
    "gru_2layers_batch_first": ("GRU", dict(num_layers=2, batch_first=True), True),
    "gru_bidirectional": ("GRU", dict(bidirectional=True), False),
    "lstm_2layers": ("LSTM", dict(num_layers=2), True),
    "lstm_2layers_batch_first": ("LSTM", dict(num_layers=2, batch_first=True), False),
    "lstm_bidirectional_2layers": ("LSTM", dict(num_layers=2, bidirectional=True,
                                                batch_first=True), True),
    "lstm_proj": ("LSTM", dict(num_layers=2, proj_size=2), True),
}
STEPS, BATCH, FEATURES, HIDDEN = 4, 3, 5, 6


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("case", CASES)
def test_layer_matches_torch(case, device):
    name, options, with_state = CASES[case]
    f_layer, t_layer = twins(name, device, FEATURES, HIDDEN, **options)
    shape = (BATCH, STEPS, FEATURES) if options.get("batch_first") else (STEPS, BATCH, FEATURES)
    states = []
    if with_state:
        rows = options.get("num_layers", 1) * (2 if options.get("bidirectional") else 1)
        states = [rand(rows, BATCH, options.get("proj_size") or HIDDEN)]
        if name == "LSTM":
            states.append(rand(rows, BATCH, HIDDEN))
    compare(f_layer, t_layer, rand(*shape), states, device)


@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
def test_unbatched_input_matches_torch(name, device):
    f_layer, t_layer = twins(name, device, FEATURES, HIDDEN, num_layers=2, batch_first=True)
    states = [rand(2, HIDDEN)] + ([rand(2, HIDDEN)] if name == "LSTM" else [])
    compare(f_layer, t_layer, rand(STEPS, FEATURES), states, device)


@pytest.mark.parametrize("name", ["RNNCell", "GRUCell", "LSTMCell"])
def test_cells_match_torch(name, device):
    f_cell, t_cell = twins(name, device, FEATURES, HIDDEN)
    states = [rand(BATCH, HIDDEN)] + ([rand(BATCH, HIDDEN)] if name == "LSTMCell" else [])
    compare(f_cell, t_cell, rand(BATCH, FEATURES), states, device)
    f_cell, t_cell = twins(name, device, FEATURES, HIDDEN, bias=False)
    compare(f_cell, t_cell, rand(FEATURES), [], device)  # unbatched, zero state


def test_cell_unrolled_equals_the_layer():
    cell = nn.LSTMCell(FEATURES, HIDDEN)
    layer = nn.LSTM(FEATURES, HIDDEN)
    layer.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    x = flambeau.tensor(rand(STEPS, BATCH, FEATURES))
    output, (_, c_n) = layer(x)
    h = c = None
    for t in range(STEPS):
        h, c = cell(x[t], None if h is None else (h, c))
        np.testing.assert_allclose(output[t].detach().numpy(), h.detach().numpy(), 1e-6, 1e-7)
    np.testing.assert_allclose(c_n[0].detach().numpy(), c.detach().numpy(), 1e-6, 1e-7)


def test_parameter_names_shapes_and_init_follow_torch():
    for name, options in (("RNN", {}), ("GRU", dict(bidirectional=True)),
                          ("LSTM", dict(num_layers=3, proj_size=3, bidirectional=True))):
        ours = getattr(nn, name)(7, 16, **options)
        theirs = getattr(torch.nn, name)(7, 16, **options)
        assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == [
            (n, tuple(p.shape)) for n, p in theirs.named_parameters()]
        assert repr(ours) == repr(theirs)
        values = np.concatenate([p.detach().numpy().ravel() for p in ours.parameters()])
        bound = 1 / math.sqrt(16)
        assert np.abs(values).max() <= bound and np.abs(values).max() > 0.9 * bound
        assert abs(values.mean()) < 0.05 and values.std() == pytest.approx(bound / 3**0.5, 0.1)
    assert repr(nn.RNN(2, 3, nonlinearity="relu")) == repr(torch.nn.RNN(2, 3,
                                                                        nonlinearity="relu"))
    assert len(nn.LSTM(2, 3, num_layers=2, bidirectional=True).all_weights) == 4


def test_dropout_between_layers_only_while_training(device):
    f_layer, t_layer = twins("GRU", device, FEATURES, HIDDEN, num_layers=2, dropout=1.0)
    x = rand(STEPS, BATCH, FEATURES)
    # p=1 zeroes the second layer's input in training, deterministically in both libraries
    compare(f_layer, t_layer, x, [], device)
    f_layer.eval()
    t_layer.eval()
    compare(f_layer, t_layer, x, [], device)
    half = nn.GRU(FEATURES, HIDDEN, num_layers=2, dropout=0.5).to(device)
    xs = flambeau.tensor(x, device=device)
    first, second = half(xs)[0], half(xs)[0]
    assert not np.allclose(first.detach().numpy(), second.detach().numpy())
    half.eval()
    np.testing.assert_array_equal(half(xs)[0].detach().numpy(), half(xs)[0].detach().numpy())


def test_training_an_lstm_with_an_optimizer_matches_torch():
    f_layer, t_layer = twins("LSTM", "cpu", FEATURES, HIDDEN, num_layers=2, batch_first=True)
    x, target = rand(BATCH, STEPS, FEATURES), rand(BATCH, STEPS, HIDDEN)
    opt = optim.SGD(f_layer.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        ((f_layer(flambeau.tensor(x))[0] - flambeau.tensor(target)) ** 2).mean().backward()
        opt.step()
        # torch.optim's first use imports torch._dynamo (seconds): update by hand instead
        t_layer.zero_grad()
        ((t_layer(torch.tensor(x))[0] - torch.tensor(target)) ** 2).mean().backward()
        with torch.no_grad():
            for param in t_layer.parameters():
                param -= 0.5 * param.grad
    for name, param in t_layer.named_parameters():
        np.testing.assert_allclose(f_layer.get_parameter(name).detach().numpy(),
                                   param.detach().numpy(), 1e-5, 1e-6, err_msg=name)


# --- errors ---------------------------------------------------------------------------------

def test_wrong_inputs_are_reported_with_the_layer_name():
    model = nn.Sequential(nn.LSTM(5, 4, batch_first=True))
    with pytest.raises(nn.LayerInputError, match=r"layer '0' \(LSTM\): expected input with "
                                                 r"last dimension input_size=5, got shape "
                                                 r"\[2, 3, 7\]"):
        model(flambeau.zeros(3, 2, 7))
    lstm = nn.LSTM(5, 4, num_layers=2)
    with pytest.raises(nn.LayerInputError, match=r"expected a 3-D input \(sequence, batch, "
                                                 r"features\) or a 2-D unbatched one, got "
                                                 r"shape \[1, 2, 3, 5\]"):
        lstm(flambeau.zeros(1, 2, 3, 5))
    x = flambeau.zeros(3, 2, 5)
    with pytest.raises(nn.LayerInputError, match=r"expected h_0 of shape \[2, 2, 4\] "
                                                 r"\(\(num_layers \* num_directions, batch, "
                                                 r"hidden\)\), got \[1, 2, 4\]"):
        lstm(x, (flambeau.zeros(1, 2, 4), flambeau.zeros(2, 2, 4)))
    with pytest.raises(nn.LayerInputError, match=r"for batched 3-D input, hx should also be "
                                                 r"3-D, got shape \[2, 4\]"):
        nn.GRU(5, 4)(x, flambeau.zeros(2, 4))
    with pytest.raises(TypeError, match=r"LSTM expects hx as a pair \(h_0, c_0\)"):
        lstm(x, flambeau.zeros(2, 2, 4))
    with pytest.raises(DTypeError, match="input dtype float64 does not match weight dtype "
                                         "float32"):
        nn.RNN(5, 4)(x.double())
    with pytest.raises(nn.LayerInputError, match="sequence of length at least 1"):
        nn.RNN(5, 4)(flambeau.zeros(0, 2, 5))
    with pytest.raises(nn.LayerInputError, match=r"\(GRUCell\): expected input with last "
                                                 r"dimension input_size=5, got shape \[2, 3\]"):
        nn.GRUCell(5, 4)(flambeau.zeros(2, 3))
    with pytest.raises(nn.LayerInputError, match=r"expected hx of shape \[2, 4\], got \[4\]"):
        nn.RNNCell(5, 4)(flambeau.zeros(2, 5), flambeau.zeros(4))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
        nn.RNN(2, 3, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        nn.GRU(2, 0)
    with pytest.raises(TypeError, match="input_size should be of type int, got: float"):
        nn.LSTM(2.0, 3)
    with pytest.raises(ValueError, match=r"dropout should be a number in range \[0, 1\]"):
        nn.LSTM(2, 3, num_layers=2, dropout=1.5)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.GRU(2, 3, dropout=0.2)
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        nn.LSTM(2, 3, proj_size=3)


def test_backward_twice_and_autograd_grad():
    layer = nn.GRU(FEATURES, HIDDEN, num_layers=2)
    x = flambeau.tensor(rand(STEPS, BATCH, FEATURES), requires_grad=True)
    output, h_n = layer(x)
    loss = (output ** 2).sum() + h_n.sum()
    (first,) = flambeau.autograd.grad(loss, [x], retain_graph=True)
    loss.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), first.numpy(), 1e-6, 1e-7)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first.numpy(), 1e-6, 1e-7)
    # only the last step's output used: gradients reach the earlier steps through h
    x.grad = None
    layer(x)[0][-1].sum().backward()
    assert np.abs(x.grad.numpy()[0]).sum() > 0
