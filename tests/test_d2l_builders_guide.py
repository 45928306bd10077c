"""The PyTorch cells of D2L's Builders' Guide (model construction, parameters,
initialisation, lazy initialisation, custom layers) with ``torch`` -> ``flambeau``.

Each test is one section; statements are the book's, in order, with assertions on
what the book prints.
"""

from __future__ import annotations

import numpy as np
import pytest

import flambeau as torch  # the name swap the chapter is written for
from flambeau import nn
from flambeau.nn import functional as F


def test_model_construction():
    net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
    X = torch.rand(2, 20)
    assert net(X).shape == torch.Size([2, 10])

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.LazyLinear(256)
            self.out = nn.LazyLinear(10)

        def forward(self, X):
            return self.out(F.relu(self.hidden(X)))

    net = MLP()
    assert net(X).shape == (2, 10)

    class MySequential(nn.Module):
        def __init__(self, *args):
            super().__init__()
            for idx, module in enumerate(args):
                self.add_module(str(idx), module)

        def forward(self, X):
            for module in self.children():
                X = module(X)
            return X

    net = MySequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
    assert net(X).shape == (2, 10)

    class OlderMySequential(nn.Module):  # the book's earlier edition writes _modules
        def __init__(self, *args):
            super().__init__()
            for idx, module in enumerate(args):
                self._modules[str(idx)] = module

        def forward(self, X):
            for block in self._modules.values():
                X = block(X)
            return X

    net = OlderMySequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))
    assert net(X).shape == (2, 10) and len(list(net.parameters())) == 4

    class FixedHiddenMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.rand_weight = torch.rand((20, 20))
            self.linear = nn.LazyLinear(20)

        def forward(self, X):
            X = self.linear(X)
            X = F.relu(X @ self.rand_weight + 1)
            X = self.linear(X)
            while X.abs().sum() > 1:
                X /= 2
            return X.sum()

    net = FixedHiddenMLP()
    assert net(X).shape == () and abs(net(X).item()) <= 1
    assert [n for n, _ in net.named_parameters()] == ["linear.weight", "linear.bias"]

    class NestMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(),
                                     nn.LazyLinear(32), nn.ReLU())
            self.linear = nn.LazyLinear(16)

        def forward(self, X):
            return self.linear(self.net(X))

    chimera = nn.Sequential(NestMLP(), nn.LazyLinear(20), FixedHiddenMLP())
    assert chimera(X).shape == ()


def test_parameter_management():
    net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))
    X = torch.rand(size=(2, 4))
    assert net(X).shape == (2, 1)
    state = net[2].state_dict()
    assert list(state) == ["weight", "bias"] and state["weight"].shape == (1, 8)
    assert type(net[2].bias) is nn.Parameter
    assert net[2].bias.data.shape == (1,)
    assert net[2].weight.grad is None
    assert [(name, param.shape) for name, param in net.named_parameters()] == [
        ("0.weight", (8, 4)), ("0.bias", (8,)), ("2.weight", (1, 8)), ("2.bias", (1,))]

    shared = nn.LazyLinear(8)
    net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(),
                        nn.LazyLinear(1))
    net(X)
    assert bool((net[2].weight.data[0] == net[4].weight.data[0]).all())
    net[2].weight.data[0, 0] = 100
    assert bool((net[2].weight.data[0] == net[4].weight.data[0]).all())
    assert net[4].weight[0, 0].item() == 100
    assert len(list(net.parameters())) == 6  # the shared layer is counted once
    assert len(net.state_dict()) == 8  # ... but saved under both names


def test_parameter_initialization():
    net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))
    X = torch.rand(size=(2, 4))
    net(X)

    def init_normal(module):
        if type(module) == nn.Linear:  # noqa: E721 - the book's check
            nn.init.normal_(module.weight, mean=0, std=0.01)
            nn.init.zeros_(module.bias)

    net.apply(init_normal)
    assert net[0].bias.data[0].item() == 0
    assert abs(net[0].weight.data).max().item() < 0.06

    def init_constant(module):
        if type(module) == nn.Linear:  # noqa: E721
            nn.init.constant_(module.weight, 1)
            nn.init.zeros_(module.bias)

    net.apply(init_constant)
    assert net[0].weight.data[0].tolist() == [1, 1, 1, 1]

    def init_xavier(module):
        if type(module) == nn.Linear:  # noqa: E721
            nn.init.xavier_uniform_(module.weight)

    def init_42(module):
        if type(module) == nn.Linear:  # noqa: E721
            nn.init.constant_(module.weight, 42)

    net[0].apply(init_xavier)
    net[2].apply(init_42)
    bound = np.sqrt(6 / (4 + 8))
    assert abs(net[0].weight.data).max().item() <= bound
    assert net[2].weight.data.tolist() == [[42.0] * 8]

    printed = []

    def my_init(module):
        if type(module) == nn.Linear:  # noqa: E721
            printed.append([(name, param.shape) for name, param in  # noqa: RUF015
                            module.named_parameters()][0])
            nn.init.uniform_(module.weight, -10, 10)
            module.weight.data *= module.weight.data.abs() >= 5

    net.apply(my_init)
    assert printed == [("weight", (8, 4)), ("weight", (1, 8))]
    weights = net[0].weight[:2].detach().numpy()
    assert np.all((weights == 0) | (np.abs(weights) >= 5))
    net[0].weight.data[:] += 1
    net[0].weight.data[0, 0] = 42
    assert net[0].weight.data[0, 0].item() == 42


def test_lazy_initialization():
    net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
    assert repr(net[0].weight) == "<UninitializedParameter>"
    with pytest.raises(nn.UninitializedParameterError, match=r"uninitialized.*run the model "
                       r"once"):
        net[0].weight.shape  # noqa: B018
    X = torch.rand(2, 20)
    net(X)
    assert net[0].weight.shape == torch.Size([256, 20])

    def apply_init(module, inputs, init=None):
        module.forward(*inputs)
        if init is not None:
            module.apply(init)

    def init_cnn(module):
        if type(module) == nn.Linear:  # noqa: E721
            nn.init.xavier_uniform_(module.weight)

    fresh = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
    apply_init(fresh, [torch.rand(2, 20)], init_cnn)
    assert fresh[2].weight.shape == (10, 256)


def test_custom_layers():
    class CenteredLayer(nn.Module):
        def __init__(self):
            super().__init__()

        def forward(self, X):
            return X - X.mean()

    layer = CenteredLayer()
    np.testing.assert_allclose(layer(torch.tensor([1.0, 2, 3, 4, 5])).numpy(),
                               [-2, -1, 0, 1, 2])
    net = nn.Sequential(nn.LazyLinear(128), CenteredLayer())
    Y = net(torch.rand(4, 8))
    assert abs(Y.mean().item()) < 1e-6

    class MyLinear(nn.Module):
        def __init__(self, in_units, units):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(in_units, units))
            self.bias = nn.Parameter(torch.randn(units,))

        def forward(self, X):
            linear = torch.matmul(X, self.weight.data) + self.bias.data
            return F.relu(linear)

    linear = MyLinear(5, 3)
    assert linear.weight.shape == (5, 3) and repr(linear.weight).startswith(
        "Parameter containing:\ntensor(")
    assert linear(torch.rand(2, 5)).shape == (2, 3)
    net = nn.Sequential(MyLinear(64, 8), MyLinear(8, 1))
    assert net(torch.rand(2, 64)).shape == (2, 1)
