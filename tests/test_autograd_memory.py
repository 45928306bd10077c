"""A forward pass with gradients on frees its graph as soon as the output is dropped.

Rules that read their op's output keep it as a ``SavedOutput`` (storage, not the tensor),
so no reference cycle output -> node -> rule -> output holds activations until Python's
cycle collector happens to run. The checks turn that collector off.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import flambeau
from flambeau import nn
from flambeau.nn import functional as F


@pytest.fixture
def no_cycle_collector():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _x(*shape):
    return flambeau.tensor(np.random.default_rng(0).uniform(0.5, 2.0, shape).astype(np.float32),
                           requires_grad=True)


OPS = {
    "relu": lambda x: flambeau.relu(x),
    "sigmoid": lambda x: flambeau.sigmoid(x),
    "tanh": lambda x: flambeau.tanh(x),
    "exp": lambda x: flambeau.exp(x),
    "sqrt": lambda x: flambeau.sqrt(x),
    "div": lambda x: x / (x + 1),
    "pow": lambda x: x ** x,
    "softmax": lambda x: F.softmax(x, 1),
    "log_softmax": lambda x: F.log_softmax(x, 1),
    "logsumexp": lambda x: flambeau.logsumexp(x, 1),
    "max": lambda x: x.max(),
    "max dim": lambda x: x.max(1).values,
    "amax": lambda x: flambeau.amax(x, 1),
    "cross_entropy": lambda x: F.cross_entropy(x, flambeau.tensor([0, 2, 1])),
    "layer_norm": lambda x: F.layer_norm(x, (4,)),
    "matmul": lambda x: x @ x.T,
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_dropping_an_output_frees_it_without_the_cycle_collector(no_cycle_collector, name):
    out = OPS[name](_x(3, 4))
    ref = weakref.ref(out)
    del out
    assert ref() is None, f"{name}: its graph holds its output in a reference cycle"


def test_a_model_forward_without_backward_frees_its_activations(no_cycle_collector):
    flambeau.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 16), nn.Sigmoid(),
                        nn.Dropout(0.1), nn.Linear(16, 3), nn.Softmax(1))
    out = net(flambeau.randn(2, 1, 8, 8))
    ref = weakref.ref(out)
    del out
    assert ref() is None


def test_second_derivatives_still_flow_through_saved_outputs():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).uniform(0.5, 2.0, (3, 4))
    results = []
    for lib in (flambeau, torch):
        t = lib.tensor(x, requires_grad=True)
        y = (lib.sigmoid(t) * lib.exp(t) + t ** t + lib.logsumexp(t, 1, keepdim=True)).sum()
        (g,) = lib.autograd.grad(y, t, create_graph=True)
        (gg,) = lib.autograd.grad((g * g).sum(), t)
        results.append((g.detach().numpy(), gg.detach().numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-10)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10)


def test_modifying_an_output_in_place_is_still_detected():
    x = _x(3, 4)
    y = flambeau.exp(x)
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()
