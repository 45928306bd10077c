"""nn.Module, containers, lazy parameters, state dicts and summary."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import flambeau
from flambeau import nn


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(4, 3)
        self.second = nn.Linear(3, 2)
        self.register_buffer("steps", flambeau.zeros(()))
        self.plain = flambeau.ones(2)  # a plain tensor attribute is not a parameter
        self.listed = [nn.Linear(2, 2)]  # a module in a plain list is not registered

    def forward(self, x):
        return self.second(self.first(x).relu())


def test_registration_rules():
    net = TwoLayer()
    assert [n for n, _ in net.named_parameters()] == [
        "first.weight", "first.bias", "second.weight", "second.bias"]
    assert [n for n, _ in net.named_buffers()] == ["steps"]
    assert [n for n, _ in net.named_children()] == ["first", "second"]
    assert [n for n, _ in net.named_modules()] == ["", "first", "second"]
    # PyTorch's order: a module's own entries, then its children's.
    assert list(net.state_dict()) == ["steps", "first.weight", "first.bias", "second.weight",
                                      "second.bias"]
    assert net.get_submodule("second") is net.second
    assert net.get_parameter("first.bias") is net.first.bias
    with pytest.raises(AttributeError, match="has no sub-module 'third'"):
        net.get_submodule("third")
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        net.nothing  # noqa: B018


def test_init_must_run_first():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)

    with pytest.raises(flambeau.FlambeauError, match=r"call super\(\).__init__\(\) first"):
        Broken()


def test_repr_matches_pytorch():
    net = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Sequential(nn.Linear(256, 10)))
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Linear(in_features=20, out_features=256, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Linear(in_features=256, out_features=10, bias=True)\n"
        "  )\n"
        ")"
    )
    assert repr(nn.LazyLinear(3)) == "Linear(in_features=0, out_features=3, bias=True)"


def test_sequential_container_behaviour():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    net.append(nn.Linear(3, 1))
    assert len(net) == 3 and isinstance(net[-1], nn.Linear)
    assert isinstance(net[1:], nn.Sequential) and len(net[1:]) == 2
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", "Linear"]
    named = nn.Sequential()
    named.add_module("first layer", nn.Linear(2, 2))
    assert list(named.state_dict()) == ["first layer.weight", "first layer.bias"]
    with pytest.raises(IndexError, match="out of range"):
        net[5]


def test_module_list_dict_and_parameter_containers():
    blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    blocks.append(nn.ReLU())
    assert len(blocks) == 4 and len(list(blocks.parameters())) == 6
    table = nn.ModuleDict({"a": nn.Linear(1, 1)})
    table["b"] = nn.Linear(1, 2)
    assert list(table.keys()) == ["a", "b"] and "b" in table
    params = nn.ParameterList([flambeau.ones(2), nn.Parameter(flambeau.zeros(1))])
    assert [p.shape for p in params] == [(2,), (1,)]
    pdict = nn.ParameterDict({"scale": flambeau.ones(3)})
    assert isinstance(pdict["scale"], nn.Parameter)
    holder = nn.Module()
    holder.items = pdict
    assert [n for n, _ in holder.named_parameters()] == ["items.scale"]


def test_load_state_dict_reports_and_is_atomic():
    source, target = TwoLayer(), TwoLayer()
    before = {k: v.numpy().copy() for k, v in target.state_dict().items()}
    state = source.state_dict()
    state["second.weight"] = flambeau.zeros(5, 5)
    state["extra"] = flambeau.zeros(1)
    del state["first.bias"]
    with pytest.raises(nn.StateDictError) as err:
        target.load_state_dict(state)
    message = str(err.value)
    assert "missing keys: first.bias" in message and "unexpected keys: extra" in message
    assert "second.weight: the checkpoint has shape [5, 5], the model has shape [2, 3]" in \
        message and "nothing was changed" in message
    for key, value in target.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key])
    del state["second.weight"]
    report = target.load_state_dict(state, strict=False)
    assert report.missing_keys == ["first.bias", "second.weight"]
    assert report.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(target.first.weight.detach().numpy(),
                                  source.first.weight.detach().numpy())


def test_load_state_dict_key_remapping():
    source, target = TwoLayer(), TwoLayer()
    wrapped = {f"module.{k}": v for k, v in source.state_dict().items()}
    target.load_state_dict(wrapped, strip_prefix="module.")
    np.testing.assert_array_equal(target.second.bias.detach().numpy(),
                                  source.second.bias.detach().numpy())
    renamed = {k.replace("first", "encoder"): v for k, v in source.state_dict().items()}
    target.load_state_dict(renamed, key_map=lambda k: k.replace("encoder", "first"))


def test_load_state_dict_into_a_lazy_model():
    trained = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.LazyLinear(2))
    trained(flambeau.rand(3, 5))
    fresh = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.LazyLinear(2))
    nn.init.constant_(fresh[0].weight, 7.0)  # pending; loaded values must win
    fresh.load_state_dict(trained.state_dict())
    assert fresh[0].weight.shape == (4, 5)
    np.testing.assert_array_equal(fresh[0].weight.detach().numpy(),
                                  trained[0].weight.detach().numpy())
    x = flambeau.rand(2, 5)
    np.testing.assert_allclose(fresh(x).detach().numpy(), trained(x).detach().numpy())


def test_pending_initializers_run_at_materialization():
    net = nn.Sequential(nn.LazyLinear(3), nn.LazyLinear(2))
    net.apply(lambda m: nn.init.constant_(m.weight, 0.5) if type(m) is nn.Linear else None)
    nn.init.zeros_(net[1].bias)
    clone = copy.deepcopy(net)  # keeps the pending initialisers
    for model in (net, clone):
        model(flambeau.ones(1, 4))
        assert model[0].weight.detach().numpy().tolist() == [[0.5] * 4] * 3
        assert model[1].bias.detach().numpy().tolist() == [0.0, 0.0]


def test_lazy_parameter_answers_attribute_probes():
    """hasattr(), inspect.unwrap and doctest's finder probe dunder and private names: those
    are plain missing attributes, while public names keep the helpful lazy error."""
    import doctest
    import inspect

    from flambeau.nn import parameter

    pending = nn.Parameter()._data
    assert not hasattr(pending, "__wrapped__")
    assert not hasattr(pending, "_private")
    assert inspect.unwrap(pending) is pending
    assert doctest.DocTestFinder().find(parameter)  # walks the module's globals, PENDING too
    with pytest.raises(nn.UninitializedParameterError, match=r"uninitialized.*run the model"):
        pending.shape  # noqa: B018


def test_lazy_model_moves_before_materialization():
    net = nn.Sequential(nn.LazyLinear(3))
    net.to("boxed:1")
    out = net(flambeau.ones(2, 4, device="boxed:1"))
    assert net[0].weight.device == flambeau.device("boxed:1")
    assert out.device == flambeau.device("boxed:1")


def test_module_to_keeps_ties_and_gradients():
    shared = nn.Linear(2, 2)
    net = nn.Sequential(shared, nn.ReLU(), shared)
    net(flambeau.ones(1, 2)).sum().backward()
    net.to("boxed:0")
    assert net[0].weight is net[2].weight
    assert net[0].weight.device == flambeau.device("boxed:0")
    assert net[0].weight.grad.device == flambeau.device("boxed:0")
    net.double()
    assert net[0].weight.dtype == flambeau.float64


def test_modes_grads_and_apply_order():
    net = TwoLayer()
    net.eval()
    assert not net.training and not net.first.training
    net.train()
    assert net.second.training
    net(flambeau.ones(1, 4)).sum().backward()
    assert net.first.weight.grad is not None
    net.zero_grad()
    assert net.first.weight.grad is None
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    order = []
    net.apply(lambda m: order.append(type(m).__name__))
    assert order == ["Linear", "Linear", "TwoLayer"]


def test_wrong_input_names_the_layer_and_both_shapes():
    net = nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.ReLU(), nn.Linear(5, 1)))
    with pytest.raises(nn.LayerInputError, match=r"layer '1.1' \(Linear\): expected an input "
                       r"whose last dimension is in_features=5, got shape \[2, 3\]"):
        net(flambeau.ones(2, 4))
    lazy = nn.Sequential(nn.LazyLinear(3))
    lazy(flambeau.ones(2, 4))
    with pytest.raises(ValueError, match=r"layer '0'.*in_features=4, got shape \[2, 6\]"):
        lazy(flambeau.ones(2, 6))


def test_summary_allocates_nothing_and_leaves_the_model_alone():
    net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
    state = flambeau.default_generator.get_state()
    result = nn.summary(net, (2, 784), print_table=False)
    assert result.total_params == 784 * 256 + 256 + 256 * 10 + 10
    assert [r.output_shape for r in result.rows] == [(2, 10), (2, 256), (2, 256), (2, 10)]
    assert net[0].weight.is_uninitialized() and net[0].in_features is None
    assert flambeau.default_generator.get_state().tolist() == state.tolist()
    text = str(result)
    assert "0 (Linear)" in text and "Total params: 203,530" in text
    net(flambeau.rand(1, 784))
    weights = net[0].weight.detach().numpy().copy()
    nn.summary(net, (3, 784), print_table=False)
    np.testing.assert_array_equal(net[0].weight.detach().numpy(), weights)
    assert net[0].weight.device == flambeau.device("cpu")


def test_meta_tensors_refuse_reading_values():
    x = flambeau.ones(2, 3, device="meta")
    assert repr(x) == "tensor(..., device='meta', size=(2, 3))"
    with pytest.raises(RuntimeError, match="meta tensor of shape \\[2, 3\\] has no values"):
        x.numpy()


def test_parameter_basics():
    p = nn.Parameter(flambeau.ones(2))
    assert p.requires_grad and p.is_leaf and isinstance(p, flambeau.Tensor)
    assert repr(p) == "Parameter containing:\ntensor([1., 1.], requires_grad=True)"
    frozen = nn.Parameter(flambeau.ones(2), requires_grad=False)
    assert not frozen.requires_grad
    with pytest.raises(TypeError, match="must be a Tensor"):
        nn.Parameter([1.0, 2.0])


def test_non_strict_load_skips_and_reports_mismatched_shapes():
    source, target = TwoLayer(), TwoLayer()
    state = source.state_dict()
    state["second.weight"] = flambeau.zeros(5, 5)
    before = target.second.weight.detach().numpy().copy()
    report = target.load_state_dict(state, strict=False)
    missing, unexpected = report  # unpacks like PyTorch's pair
    assert (missing, unexpected, report.mismatched_keys) == ([], [], ["second.weight"])
    np.testing.assert_array_equal(target.second.weight.detach().numpy(), before)
    np.testing.assert_array_equal(target.first.weight.detach().numpy(),
                                  source.first.weight.detach().numpy())


def test_tied_parameter_takes_the_last_value_like_pytorch():
    shared = nn.Linear(2, 2)
    net = nn.Sequential(shared, shared)
    state = net.state_dict()
    state["1.bias"] = flambeau.full((2,), 3.0)
    net.load_state_dict(state)
    assert net[0].bias is net[1].bias and net[0].bias.tolist() == [3.0, 3.0]
