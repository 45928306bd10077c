"""nn.init against PyTorch's formulas: bounds, moments, gains, structure."""

from __future__ import annotations

import math

import numpy as np
import pytest

import flambeau
from flambeau import nn

torch = pytest.importorskip("torch", reason="PyTorch (CPU) is the reference")

GAINS = [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
         ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)]


@pytest.mark.parametrize(("nonlinearity", "param"), GAINS)
def test_calculate_gain_matches_pytorch(nonlinearity, param):
    assert nn.init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param))


def test_calculate_gain_refuses_unknown_names():
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        nn.init.calculate_gain("swish")


def _sample(init, shape=(400, 300), **kwargs):
    flambeau.manual_seed(0)
    t = flambeau.empty(*shape)
    assert init(t, **kwargs) is t
    return t.numpy()


def test_uniform_family_stays_within_pytorch_bounds():
    fan_in, fan_out = 300, 400
    xavier = math.sqrt(6 / (fan_in + fan_out))
    kaiming = math.sqrt(3) * nn.init.calculate_gain("leaky_relu", math.sqrt(5)) / math.sqrt(
        fan_in)
    for init, bound, kwargs in ((nn.init.xavier_uniform_, xavier, {}),
                                (nn.init.kaiming_uniform_, kaiming, {"a": math.sqrt(5)}),
                                (nn.init.uniform_, 2.0, {"a": -2.0, "b": 2.0})):
        values = _sample(init, **kwargs)
        assert np.abs(values).max() <= bound
        assert np.abs(values).max() > 0.98 * bound  # fills the range
        assert abs(values.std() - bound / math.sqrt(3)) < 0.02 * bound


@pytest.mark.parametrize(("init", "std", "kwargs"), [
    (nn.init.normal_, 0.5, {"std": 0.5}),
    (nn.init.xavier_normal_, math.sqrt(2 / 700), {}),
    (nn.init.kaiming_normal_, math.sqrt(2) / math.sqrt(300), {"nonlinearity": "relu"}),
    (nn.init.kaiming_normal_, math.sqrt(2) / math.sqrt(400),
     {"nonlinearity": "relu", "mode": "fan_out"}),
])
def test_normal_family_has_pytorch_standard_deviations(init, std, kwargs):
    values = _sample(init, **kwargs)
    assert abs(values.mean()) < 0.02 * std * 10
    assert values.std() == pytest.approx(std, rel=0.02)


def test_trunc_normal_stays_in_its_interval():
    values = _sample(nn.init.trunc_normal_, std=1.0, a=-0.5, b=1.5)
    assert values.min() >= -0.5 and values.max() <= 1.5
    assert values.min() < -0.49 and values.max() > 1.49


def test_constant_ones_zeros_and_eye():
    assert np.all(_sample(nn.init.constant_, (3, 4), val=2.5) == 2.5)
    assert np.all(_sample(nn.init.ones_, (3, 4)) == 1)
    assert np.all(_sample(nn.init.zeros_, (3, 4)) == 0)
    np.testing.assert_array_equal(_sample(nn.init.eye_, (3, 4)), np.eye(3, 4))
    with pytest.raises(flambeau.errors.ShapeError, match="eye_ needs a 2-d tensor"):
        nn.init.eye_(flambeau.empty(2, 2, 2))


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 2, 3)])
def test_orthogonal_gives_orthonormal_rows_or_columns(shape):
    values = _sample(nn.init.orthogonal_, shape, gain=2.0).reshape(shape[0], -1)
    small = min(values.shape)
    gram = values @ values.T if values.shape[0] == small else values.T @ values
    np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-5)


def test_fans_need_two_dimensions():
    with pytest.raises(flambeau.errors.ShapeError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(flambeau.empty(5))


def test_initializers_are_not_recorded_by_autograd():
    w = nn.Parameter(flambeau.empty(3, 3))
    nn.init.kaiming_normal_(w)
    assert w.is_leaf and w.grad_fn is None and w.requires_grad


def test_unflatten_element_size_and_random_helpers():
    x = flambeau.arange(24.0).reshape(2, 12)
    assert nn.Unflatten(1, (3, 4))(x).shape == (2, 3, 4)
    assert repr(nn.Unflatten(1, (3, 4))) == repr(torch.nn.Unflatten(1, (3, 4)))
    assert x.element_size() == 4 and x.double().element_size() == 8
    flambeau.manual_seed(3)
    n = flambeau.normal(2.0, 0.5, (20000,))
    assert abs(n.mean().item() - 2.0) < 0.02 and abs(n.std().item() - 0.5) < 0.02
    coins = flambeau.bernoulli(flambeau.full((20000,), 0.3))
    assert set(np.unique(coins.numpy())) <= {0.0, 1.0}
    assert abs(coins.mean().item() - 0.3) < 0.02


def test_dlpack_exchange_with_torch():
    x = flambeau.arange(6.0).reshape(2, 3)
    t = torch.from_dlpack(x)
    np.testing.assert_array_equal(t.numpy(), x.numpy())
    back = flambeau.from_dlpack(torch.arange(4, dtype=torch.int32))
    assert back.dtype == flambeau.int32 and back.tolist() == [0, 1, 2, 3]
