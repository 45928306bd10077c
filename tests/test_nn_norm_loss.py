"""Normalisation layers, embedding and losses against PyTorch, on cpu and boxed:0.

Each case runs the same expression in both libraries on identical inputs and compares
the values and the gradients of ``sum(out * w)`` (random ``w``) for every float input.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import flambeau  # noqa: E402
from flambeau import nn  # noqa: E402
from flambeau.errors import DTypeError, FlambeauIndexError, ShapeError  # noqa: E402
from flambeau.nn import functional as F  # noqa: E402

TF = torch.nn.functional
DEVICES = ["cpu", "boxed:0"]
_rng = np.random.default_rng(7)


@pytest.fixture(params=DEVICES)
def dev(request):
    return request.param


def rand(*shape, low=-2.0, high=2.0, dtype="float64"):
    return _rng.uniform(low, high, size=shape).astype(dtype)


def ints(high, *shape):
    return _rng.integers(0, high, size=shape).astype(np.int64)


class const:
    """An input array that becomes a tensor without requires_grad."""

    def __init__(self, array):
        self.array = np.asarray(array)


def _to(lib, value, dev):
    if isinstance(value, const):
        return (flambeau.tensor(value.array, device=dev) if lib is flambeau
                else torch.tensor(value.array))
    if isinstance(value, np.ndarray):
        grad = value.dtype.kind == "f"
        if lib is flambeau:
            return flambeau.tensor(value, device=dev, requires_grad=grad)
        return torch.tensor(value, requires_grad=grad)
    return value


def host(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t.detach().numpy()


def same(got, want, rtol=1e-6, atol=1e-8, what="value"):
    assert tuple(got.shape) == tuple(want.shape), f"{what}: {got.shape} vs {want.shape}"
    np.testing.assert_allclose(host(got), host(want), rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=what)


def check(fn, *inputs, dev="cpu", rtol=1e-6, atol=1e-8):
    """``fn(lib, *inputs)`` in both libraries: same values and input gradients."""
    fl_args = [_to(flambeau, x, dev) for x in inputs]
    th_args = [_to(torch, x, dev) for x in inputs]
    got, want = fn(F, *fl_args), fn(TF, *th_args)
    assert got.device == flambeau.device(dev)
    same(got, want, rtol, atol)
    if not want.requires_grad:
        return
    w = rand(*want.shape)
    (got * flambeau.tensor(w, device=dev)).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    for i, (f, t) in enumerate(zip(fl_args, th_args)):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            assert f.grad is not None, f"input {i}: no gradient"
            same(f.grad, t.grad, rtol, atol, what=f"gradient of input {i}")


def copy_weights(fl_module, th_module, dev="cpu"):
    """Give a flambeau module the parameters and buffers of a torch module."""
    state = {k: flambeau.tensor(v.detach().numpy()) for k, v in th_module.state_dict().items()}
    if any(v.dtype == torch.float64 for v in th_module.state_dict().values()):
        fl_module.double()
    fl_module.load_state_dict(state)
    return fl_module.to(dev)


# --- functional normalisation -----------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (3, 2, 4, 5)])
def test_batch_norm_training_values_gradients_and_running_stats(dev, shape):
    c = shape[1]
    stats = {lib: (lib.tensor(rand(c)), lib.tensor(rand(c, low=0.5))) for lib in (torch,)}
    fl_mean = flambeau.tensor(stats[torch][0].numpy(), device=dev)
    fl_var = flambeau.tensor(stats[torch][1].numpy(), device=dev)

    def fn(lib, x, w, b):
        mean, var = (fl_mean, fl_var) if lib is F else stats[torch]
        return lib.batch_norm(x, mean, var, w, b, training=True, momentum=0.3, eps=1e-3)

    check(fn, rand(*shape), rand(c), rand(c), dev=dev)
    same(fl_mean, stats[torch][0], what="running_mean")
    same(fl_var, stats[torch][1], what="running_var")


def test_batch_norm_eval_and_without_running_stats(dev):
    mean, var = rand(3), rand(3, low=0.5)
    check(lambda lib, x, m, v, w, b: lib.batch_norm(x, m, v, w, b, training=False),
          rand(4, 3, 2), const(mean), const(var), rand(3), rand(3), dev=dev)
    check(lambda lib, x: lib.batch_norm(x, None, None, training=True), rand(4, 3, 2, 2),
          dev=dev)


@pytest.mark.parametrize("normalized", [(6,), (3, 6)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(dev, normalized, affine):
    if affine:
        check(lambda lib, x, w, b: lib.layer_norm(x, normalized, w, b, eps=1e-4),
              rand(2, 3, 6), rand(*normalized), rand(*normalized), dev=dev)
    else:
        check(lambda lib, x: lib.layer_norm(x, normalized), rand(2, 3, 6), dev=dev)


@pytest.mark.parametrize("shape", [(2, 6), (3, 6, 5), (2, 6, 2, 3)])
def test_group_norm(dev, shape):
    check(lambda lib, x, w, b: lib.group_norm(x, 3, w, b), rand(*shape), rand(6), rand(6),
          dev=dev)
    check(lambda lib, x: lib.group_norm(x, 6), rand(*shape), dev=dev)


def test_normalisation_second_derivatives(dev):
    # create_graph rebuilds the statistics from the input, so double backward is exact.
    x = rand(3, 4)
    for name, fn in [("layer_norm", lambda lib, t: lib.layer_norm(t, (4,))),
                     ("batch_norm", lambda lib, t: lib.batch_norm(t, None, None,
                                                                  training=True))]:
        grads = []
        for lib, mod in ((flambeau, F), (torch, TF)):
            t = (flambeau.tensor(x, device=dev, requires_grad=True) if lib is flambeau
                 else torch.tensor(x, requires_grad=True))
            w = lib.tensor(np.linspace(-1, 1, 12).reshape(3, 4) ** 2)
            w = w.to(dev) if lib is flambeau else w
            (g,) = lib.autograd.grad((fn(mod, t) * w).sum(), t, create_graph=True)
            (gg,) = lib.autograd.grad((g * g).sum(), t)
            grads.append((g, gg))
        same(grads[0][0], grads[1][0], what=f"{name} gradient")
        same(grads[0][1], grads[1][1], rtol=1e-5, what=f"{name} second derivative")


# --- optional fused kernels -------------------------------------------------------------


def _np_layer_norm(x, weight, bias, axes, eps):
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return _np_affine((x - mean) / np.sqrt(var + eps), weight, bias), mean, var


def _np_batch_norm(x, weight, bias, mean, var, eps):
    return _np_affine((x - mean) / np.sqrt(var + eps), weight, bias)


def _np_affine(y, weight, bias):
    y = y if weight is None else y * weight
    return y if bias is None else y + bias


def _np_cross_entropy(logits, target):
    shift = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - shift).sum(axis=1)) + shift[:, 0]
    return lse - np.take_along_axis(logits, target[:, None], axis=1)[:, 0]


def _np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _np_log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _np_cross_entropy_grad(logits, target, grad):
    probs = _np_softmax(logits, 1)
    probs[np.arange(len(target)), target] -= 1
    return probs * (grad[:, None] if grad.ndim else grad)


_NP_FUSED = {"layer_norm": _np_layer_norm, "batch_norm": _np_batch_norm,
             "cross_entropy": _np_cross_entropy, "cross_entropy_grad": _np_cross_entropy_grad,
             "softmax": _np_softmax, "log_softmax": _np_log_softmax}


@pytest.fixture
def fused(dev, monkeypatch):
    """Install numpy versions of the optional kernels on ``dev``'s kernel class; yields
    the number of calls per kernel."""
    from flambeau._device import kernels_for

    kernels = kernels_for(flambeau.device(dev))
    calls = dict.fromkeys(_NP_FUSED, 0)
    boxed = hasattr(kernels, "_unbox")
    for name, impl in _NP_FUSED.items():

        def kernel(self, *args, name=name, impl=impl):
            calls[name] += 1
            result = impl(*(self._unbox(args) if boxed else args))
            if not boxed:
                return result
            if isinstance(result, tuple):
                return tuple(self._box(r, (), {}) for r in result)
            return self._box(result, (), {})

        monkeypatch.setattr(type(kernels), name, kernel, raising=False)
    return calls


def test_fused_kernels_are_used_with_the_same_values_and_gradients(dev, fused):
    check(lambda lib, x, w, b: lib.layer_norm(x, (3, 4), w, b), rand(2, 3, 4), rand(3, 4),
          rand(3, 4), dev=dev)
    check(lambda lib, x, w, b: lib.group_norm(x, 2, w, b), rand(2, 4, 3), rand(4), rand(4),
          dev=dev)
    check(lambda lib, x, w, b: lib.batch_norm(x, None, None, w, b, training=True),
          rand(4, 3, 2), rand(3), rand(3), dev=dev)
    check(lambda lib, x, m, v, w, b: lib.batch_norm(x, m, v, w, b), rand(4, 3, 2),
          const(rand(3)), const(rand(3, low=0.5)), rand(3), rand(3), dev=dev)
    assert fused["layer_norm"] == 3 and fused["batch_norm"] == 1
    for shape, options in [((5, 4), {}), ((3, 4, 2), {"weight": True, "ignore_index": 1}),
                           ((4,), {})]:
        options = dict(options)
        weight = const(rand(4, low=0.1)) if options.pop("weight", False) else None
        target = const(ints(4, *((shape[0], *shape[2:]) if len(shape) > 1 else ())))
        for reduction in REDUCTIONS:
            check(lambda lib, x, t, w, r=reduction, o=options: lib.cross_entropy(
                x, t, w, reduction=r, **o), rand(*shape), target, weight, dev=dev)
    assert fused["cross_entropy"] == 9
    assert fused["cross_entropy_grad"] == 9


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_fused_softmax_is_used_with_the_same_values_and_gradients(dev, fused, name):
    cases = [((5, 4), 1), ((2, 3, 4), 0), ((2, 3, 4), -1), ((4,), 0), ((3, 1), 1)]
    for shape, dim in cases:
        check(lambda lib, x, d=dim: getattr(lib, name)(x, d), rand(*shape), dev=dev)
    assert fused[name] == len(cases)
    check(lambda lib, x: getattr(lib, name)(x, 1), rand(3, 4, dtype="float16"), dev=dev,
          rtol=2e-3, atol=2e-3)
    assert fused[name] == len(cases)  # float16: the composition


def test_fused_kernels_second_derivatives(dev, fused):
    x = rand(3, 4)
    for fn in [lambda lib, t: lib.layer_norm(t, (4,)),
               lambda lib, t: lib.softmax(t, 1) * lib.log_softmax(t, 0),
               lambda lib, t: lib.cross_entropy(t, torch.tensor([0, 3, 1]) if lib is TF else
                                                flambeau.tensor([0, 3, 1], device=dev))]:
        grads = []
        for lib, mod in ((flambeau, F), (torch, TF)):
            t = (flambeau.tensor(x, device=dev, requires_grad=True) if lib is flambeau
                 else torch.tensor(x, requires_grad=True))
            (g,) = lib.autograd.grad(fn(mod, t).sum(), t, create_graph=True)
            (gg,) = lib.autograd.grad((g * g).sum(), t)
            grads.append((g, gg))
        same(grads[0][0], grads[1][0], what="gradient")
        same(grads[0][1], grads[1][1], rtol=1e-5, atol=1e-7, what="second derivative")
    assert fused["layer_norm"] and fused["cross_entropy"]
    assert fused["softmax"] and fused["log_softmax"]


# --- embedding --------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"padding_idx": 2}, {"padding_idx": -1},
                                     {"scale_grad_by_freq": True, "padding_idx": 0}])
def test_embedding_values_and_gradients(dev, options):
    index = const(np.array([[0, 2, 4], [2, 2, 1]]))
    check(lambda lib, i, w: lib.embedding(i, w, **options), index, rand(5, 3), dev=dev)


def test_embedding_max_norm_renormalises_used_rows(dev):
    w = rand(5, 3, low=-3, high=3)
    index = np.array([0, 1, 1, 3])
    fw = flambeau.tensor(w, device=dev)
    tw = torch.tensor(w)
    for norm_type in (2.0, 1.0):
        got = F.embedding(flambeau.tensor(index, device=dev), fw, max_norm=1.5,
                          norm_type=norm_type)
        want = TF.embedding(torch.tensor(index), tw, max_norm=1.5, norm_type=norm_type)
        same(got, want)
        same(fw, tw, what="renormalised weight")


# --- losses -----------------------------------------------------------------------------

REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss"])
def test_regression_losses(dev, name, reduction):
    x, y = rand(4, 3), rand(4, 3)
    y[0, 0] = x[0, 0]  # a zero difference: l1's gradient there is 0 in both
    check(lambda lib, a, b: getattr(lib, name)(a, b, reduction=reduction), x, y, dev=dev)
    extra = {"huber_loss": {"delta": 0.7}, "smooth_l1_loss": {"beta": 0.5}}.get(name)
    if extra:
        check(lambda lib, a, b: getattr(lib, name)(a, b, reduction=reduction, **extra), x, y,
              dev=dev)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss"])
def test_regression_loss_size_warning_names_the_callers_line(name):
    with pytest.warns(UserWarning, match=f"^{name}: using a target size") as caught:
        getattr(F, name)(flambeau.ones(2, 3), flambeau.ones(3))
    assert [w.filename for w in caught] == [__file__]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2, 3), (4,)])
@pytest.mark.parametrize("options", [
    {}, {"weight": True}, {"ignore_index": 1}, {"label_smoothing": 0.2},
    {"weight": True, "ignore_index": 0, "label_smoothing": 0.1},
])
def test_cross_entropy_with_class_indices(dev, reduction, shape, options):
    options = dict(options)
    target_shape = (shape[0], *shape[2:]) if len(shape) > 1 else ()
    target = const(ints(4, *target_shape))
    extra = [const(rand(4, low=0.1))] if options.pop("weight", False) else [None]
    check(lambda lib, x, t, w: lib.cross_entropy(x, t, w, reduction=reduction, **options),
          rand(*shape), target, *extra, dev=dev)
    check(lambda lib, x, t, w: lib.nll_loss(lib.log_softmax(x, 1 if len(shape) > 1 else 0),
                                            t, w, reduction=reduction,
                                            ignore_index=options.get("ignore_index", -100)),
          rand(*shape), target, *extra, dev=dev)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", [{}, {"weight": True}, {"label_smoothing": 0.3}])
@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3), (4,)])
def test_cross_entropy_with_class_probabilities(dev, reduction, options, shape):
    options = dict(options)
    extra = [const(rand(4, low=0.1))] if options.pop("weight", False) else [None]
    probs = rand(*shape, low=0, high=1)
    probs /= probs.sum(axis=1 if len(shape) > 1 else 0, keepdims=True)
    check(lambda lib, x, t, w: lib.cross_entropy(x, t, w, reduction=reduction, **options),
          rand(*shape), probs, *extra, dev=dev)


def test_cross_entropy_all_ignored_mean_is_nan_like_pytorch(dev):
    check(lambda lib, x, t: lib.cross_entropy(x, t), rand(2, 3),
          const(np.array([-100, -100])), dev=dev)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy(dev, reduction, weighted):
    p = rand(3, 4, low=0.05, high=0.95)
    extra = [const(rand(3, 4, low=0.1))] if weighted else [None]
    check(lambda lib, x, t, w: lib.binary_cross_entropy(x, t, w, reduction=reduction),
          p, rand(3, 4, low=0, high=1), *extra, dev=dev)


def test_binary_cross_entropy_at_zero_and_one_is_finite_like_pytorch(dev):
    check(lambda lib, x, t: lib.binary_cross_entropy(x, t, reduction="none"),
          np.array([0.0, 1.0, 0.0, 1.0, 0.5]), const(np.array([0.0, 1.0, 1.0, 0.0, 1.0])),
          dev=dev, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", [(False, False), (True, False), (False, True),
                                     (True, True)])
def test_binary_cross_entropy_with_logits(dev, reduction, options):
    weighted, pos = options
    extra = [const(rand(3, 4, low=0.1)) if weighted else None,
             const(rand(4, low=0.1, high=3)) if pos else None]
    x = rand(3, 4, low=-5, high=5)
    x[0, :2] = [0.0, 80.0]
    x[1, :2] = [-80.0, 700.0]  # stable: exp never overflows
    check(lambda lib, a, t, w, pw: lib.binary_cross_entropy_with_logits(
        a, t, w, reduction=reduction, pos_weight=pw), x, rand(3, 4, low=0, high=1), *extra,
        dev=dev)


# --- layers -----------------------------------------------------------------------------


@pytest.mark.parametrize(("layer", "shape"), [("BatchNorm1d", (6, 3)),
                                              ("BatchNorm1d", (4, 3, 5)),
                                              ("BatchNorm2d", (4, 3, 2, 3))])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_layers_follow_pytorch_for_several_steps(dev, layer, shape, momentum):
    th = getattr(torch.nn, layer)(3, momentum=momentum, eps=1e-4).double()
    with torch.no_grad():
        th.weight.uniform_(0.5, 1.5)
        th.bias.uniform_(-1, 1)
    fl = copy_weights(getattr(nn, layer)(3, momentum=momentum, eps=1e-4), th, dev)
    for step in range(3):
        x = rand(*shape, low=-1 + step, high=2 + step)
        fx = flambeau.tensor(x, device=dev, requires_grad=True)
        tx = torch.tensor(x, requires_grad=True)
        got, want = fl(fx), th(tx)
        same(got, want, what=f"step {step}")
        w = rand(*shape)
        (got * flambeau.tensor(w, device=dev)).sum().backward()
        (want * torch.tensor(w)).sum().backward()
        same(fx.grad, tx.grad, what="input gradient")
    same(fl.weight.grad, th.weight.grad, what="weight gradient")
    same(fl.bias.grad, th.bias.grad, what="bias gradient")
    for key, value in th.state_dict().items():
        same(fl.state_dict()[key], value, what=key)
    assert fl.num_batches_tracked.item() == 3
    fl.eval()
    th.eval()
    x = rand(*shape)
    same(fl(flambeau.tensor(x, device=dev)), th(torch.tensor(x)), what="eval")
    assert fl.num_batches_tracked.item() == 3


@pytest.mark.parametrize("options", [{"affine": False}, {"track_running_stats": False},
                                     {"bias": False}])
def test_batch_norm_options(dev, options):
    th = torch.nn.BatchNorm2d(3, **options).double()
    fl = copy_weights(nn.BatchNorm2d(3, **options), th, dev)
    assert [n for n, _ in fl.named_parameters()] == [n for n, _ in th.named_parameters()]
    assert list(fl.state_dict()) == list(th.state_dict())
    for mode in ("train", "eval"):
        getattr(fl, mode)()
        getattr(th, mode)()
        x = rand(2, 3, 2, 2)
        same(fl(flambeau.tensor(x, device=dev)), th(torch.tensor(x)), what=mode)


def test_lazy_batch_norm_materialises_on_first_forward(dev):
    bn = nn.LazyBatchNorm2d(momentum=0.2)
    assert isinstance(bn, nn.LazyBatchNorm2d) and type(bn) is nn.BatchNorm2d
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                     "num_batches_tracked"]
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    nn.init.constant_(bn.weight, 2.0)  # remembered until the shape is known
    bn.to(dev)
    x = rand(4, 5, 2, 2)
    out = bn(flambeau.tensor(x, device=dev))
    assert not isinstance(bn, nn.LazyBatchNorm2d) and bn.num_features == 5
    assert bn.running_mean.device == flambeau.device(dev)
    assert not bn.running_mean.requires_grad
    assert bn.weight.tolist() == [2.0] * 5 and bn.bias.tolist() == [0.0] * 5
    th = torch.nn.BatchNorm2d(5, momentum=0.2).double()
    with torch.no_grad():
        th.weight.fill_(2.0)
    same(out, th(torch.tensor(x)))
    same(bn.running_var, th.running_var, what="running_var")
    assert repr(bn) == "BatchNorm2d(5, eps=1e-05, momentum=0.2, affine=True, " \
                       "track_running_stats=True)"


def test_lazy_batch_norm_state_dict_before_the_first_forward(dev):
    th = torch.nn.BatchNorm1d(4)
    with torch.no_grad():
        th.running_mean.uniform_(-1, 1)
        th.weight.uniform_(0, 1)
    th(torch.randn(3, 4))
    bn = nn.LazyBatchNorm1d().to(dev)
    copy_weights(bn, th, dev)
    assert not isinstance(bn, nn.LazyBatchNorm1d) and bn.num_features == 4
    assert bn.running_mean.device == flambeau.device(dev)
    bn.eval()
    th.eval()
    x = rand(2, 4, dtype="float32")
    same(bn(flambeau.tensor(x, device=dev)), th(torch.tensor(x)), rtol=1e-5, atol=1e-6)
    assert bn.num_features == 4
    with pytest.raises(nn.LayerInputError, match=r"num_features=4.*\(N, 4\).*\[2, 3\]"):
        bn(flambeau.zeros(2, 3, device=dev))
    # Only the buffers lazy: affine=False still counts as lazy and loads.
    plain = nn.LazyBatchNorm1d(affine=False)
    assert isinstance(plain, nn.LazyBatchNorm1d)
    clone = copy.deepcopy(plain)
    assert isinstance(clone, nn.LazyBatchNorm1d)
    plain(flambeau.randn(3, 2))
    assert plain.running_mean.shape == (2,) and isinstance(clone, nn.LazyBatchNorm1d)
    clone.load_state_dict(plain.state_dict())
    assert clone.num_features == 2 and repr(clone).startswith("BatchNorm1d(2,")


def test_lazy_batch_norm_in_a_summary_stays_lazy():
    net = nn.Sequential(nn.LazyLinear(6), nn.LazyBatchNorm1d(momentum=None))
    result = nn.summary(net, (4, 3), print_table=False)
    assert result.total_params == 3 * 6 + 6 + 6 + 6
    assert isinstance(net[1], nn.LazyBatchNorm1d)
    assert net[1].num_batches_tracked.item() == 0


def test_layer_norm_and_group_norm_layers(dev):
    for fl, th, shape in [(nn.LayerNorm((3, 4)), torch.nn.LayerNorm((3, 4)), (2, 3, 4)),
                          (nn.LayerNorm(4, bias=False), torch.nn.LayerNorm(4, bias=False),
                           (5, 4)),
                          (nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4), (3, 4, 5))]:
        th = th.double()
        with torch.no_grad():
            for p in th.parameters():
                p.uniform_(-1, 1)
        copy_weights(fl, th, dev)
        x = rand(*shape)
        fx, tx = flambeau.tensor(x, device=dev, requires_grad=True), torch.tensor(
            x, requires_grad=True)
        got, want = fl(fx), th(tx)
        same(got, want)
        (got * got).sum().backward()
        (want * want).sum().backward()
        same(fx.grad, tx.grad, rtol=1e-5)
        for (name, p), q in zip(fl.named_parameters(), th.parameters()):
            same(p.grad, q.grad, rtol=1e-5, what=name)


def test_default_initialisation_matches_pytorch():
    assert nn.BatchNorm2d(3).weight.tolist() == [1.0] * 3
    assert nn.BatchNorm2d(3).running_var.tolist() == [1.0] * 3
    assert nn.BatchNorm2d(3).num_batches_tracked.dtype == flambeau.int64
    assert nn.LayerNorm(2).bias.tolist() == [0.0, 0.0]
    flambeau.manual_seed(0)
    emb = nn.Embedding(400, 5, padding_idx=3)
    w = emb.weight.detach().numpy()
    assert w[3].tolist() == [0.0] * 5
    assert abs(w.mean()) < 0.1 and abs(w.std() - 1) < 0.1  # N(0, 1)


def test_embedding_layer(dev):
    th = torch.nn.Embedding(6, 3, padding_idx=1).double()
    fl = copy_weights(nn.Embedding(6, 3, padding_idx=1), th, dev)
    index = np.array([[1, 2], [5, 1]])
    got = fl(flambeau.tensor(index, device=dev))
    want = th(torch.tensor(index))
    same(got, want)
    got.sum().backward()
    want.sum().backward()
    same(fl.weight.grad, th.weight.grad)
    assert fl.weight.grad[1].tolist() == [0.0] * 3
    pre = nn.Embedding.from_pretrained(flambeau.tensor([[1.0, 2.0], [3.0, 4.0]],
                                                       device=dev))
    assert not pre.weight.requires_grad and pre.weight.device == flambeau.device(dev)
    assert pre(flambeau.tensor([1, 0], device=dev)).tolist() == [[3.0, 4.0], [1.0, 2.0]]
    assert nn.Embedding.from_pretrained(flambeau.ones(2, 2), freeze=False).weight.requires_grad


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_loss_layers_match_pytorch(dev, reduction):
    x, y = rand(4, 3), rand(4, 3, low=0, high=1)
    p = rand(4, 3, low=0.1, high=0.9)
    labels = ints(3, 4)
    w, pw = rand(3, low=0.1), rand(3, low=0.5)
    layers = [
        ("MSELoss", {}, x, y), ("L1Loss", {}, x, y), ("HuberLoss", {"delta": 0.5}, x, y),
        ("SmoothL1Loss", {"beta": 0.5}, x, y),
        ("CrossEntropyLoss", {"weight": w, "label_smoothing": 0.1, "ignore_index": 2}, x,
         labels),
        ("NLLLoss", {"weight": w}, np.log(p), labels), ("BCELoss", {}, p, y),
        ("BCEWithLogitsLoss", {"pos_weight": pw}, x, y),
    ]
    for name, options, a, b in layers:
        fl_options = {k: flambeau.tensor(v) if isinstance(v, np.ndarray) else v
                      for k, v in options.items()}
        th_options = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v
                      for k, v in options.items()}
        fl = getattr(nn, name)(reduction=reduction, **fl_options).to(dev)
        th = getattr(torch.nn, name)(reduction=reduction, **th_options)
        assert repr(fl) == repr(th) == f"{name}()"
        assert list(fl.state_dict()) == list(th.state_dict())
        fa = flambeau.tensor(a, device=dev, requires_grad=True)
        ta = torch.tensor(a, requires_grad=True)
        got = fl(fa, flambeau.tensor(b, device=dev))
        want = th(ta, torch.tensor(b))
        same(got, want, what=name)
        got.sum().backward()
        want.sum().backward()
        same(fa.grad, ta.grad, what=f"{name} gradient")


def test_reprs_match_pytorch():
    for fl, th in [(nn.BatchNorm1d(6, momentum=None, affine=False),
                    "BatchNorm1d(6, eps=1e-05, momentum=None, affine=False, "
                    "track_running_stats=True)"),
                   (nn.BatchNorm2d(6), "BatchNorm2d(6, eps=1e-05, momentum=0.1, affine=True, "
                                       "track_running_stats=True)"),
                   (nn.LazyBatchNorm1d(), "BatchNorm1d(0, eps=1e-05, momentum=0.1, "
                                          "affine=True, track_running_stats=True)"),
                   (nn.LayerNorm(10), "LayerNorm((10,), eps=1e-05, elementwise_affine=True)"),
                   (nn.LayerNorm([2, 3], eps=1e-3, elementwise_affine=False),
                    "LayerNorm((2, 3), eps=0.001, elementwise_affine=False)"),
                   (nn.GroupNorm(2, 6), "GroupNorm(2, 6, eps=1e-05, affine=True)"),
                   (nn.Embedding(10, 3), "Embedding(10, 3)"),
                   (nn.Embedding(10, 3, padding_idx=0, max_norm=1.0, norm_type=1.0,
                                 scale_grad_by_freq=True),
                    "Embedding(10, 3, padding_idx=0, max_norm=1.0, norm_type=1.0, "
                    "scale_grad_by_freq=True)")]:
        assert repr(fl) == th


# --- bad inputs -------------------------------------------------------------------------


def test_layers_name_both_shapes_on_wrong_feature_sizes(dev):
    x = flambeau.zeros(2, 5, 4, 4, device=dev)
    net = nn.Sequential(nn.BatchNorm2d(6))
    with pytest.raises(nn.LayerInputError,
                       match=r"layer '0' \(BatchNorm2d\): expected an input with "
                             r"num_features=6 .*\(N, 6, H, W\), got shape \[2, 5, 4, 4\]"):
        net(x)
    with pytest.raises(nn.LayerInputError, match=r"expected a 4-d input \(N, C, H, W\), got "
                                                 r"shape \[2, 6\]"):
        nn.BatchNorm2d(6)(flambeau.zeros(2, 6, device=dev))
    with pytest.raises(nn.LayerInputError, match=r"2-d or 3-d input .*got shape \[2\]"):
        nn.BatchNorm1d(6)(flambeau.zeros(2, device=dev))
    with pytest.raises(nn.LayerInputError, match=r"normalized_shape=\(4,\), i\.e\. of shape "
                                                 r"\(\*, 4\), got shape \[2, 5, 4, 3\]"):
        nn.LayerNorm(4)(flambeau.zeros(2, 5, 4, 3, device=dev))
    with pytest.raises(nn.LayerInputError, match=r"\(N, 6, \*\) .*got shape \[2, 5, 4, 4\]"):
        nn.GroupNorm(3, 6)(x)
    with pytest.raises(ValueError, match="divisible by num_groups=4"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ShapeError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(flambeau.zeros(1, 3, device=dev))


def test_functional_errors(dev):
    x = flambeau.zeros(3, 4, device=dev)
    with pytest.raises(ShapeError, match=r"running_mean must have shape \[4\].*got shape \[3\]"):
        F.batch_norm(x, flambeau.zeros(3, device=dev), flambeau.ones(4, device=dev))
    with pytest.raises(ShapeError, match=r"normalized_shape=\[3\].*\[\*, 3\], got shape"):
        F.layer_norm(x, 3)
    with pytest.raises(ValueError, match="running_mean and running_var are needed"):
        F.batch_norm(x, None, None)
    with pytest.raises(ShapeError, match="divisible by num_groups=3"):
        F.group_norm(x, 3)


def test_bad_indices_and_targets(dev):
    emb = nn.Embedding(10, 3).to(dev)
    with pytest.raises(FlambeauIndexError, match=r"index 10 is out of range for 10 "
                                                 r"embeddings.*\[0, 10\)"):
        emb(flambeau.tensor([1, 10], device=dev))
    with pytest.raises(FlambeauIndexError, match="index -1 is out of range"):
        emb(flambeau.tensor([-1], device=dev))
    with pytest.raises(DTypeError, match="indices must be an integer tensor, got float32"):
        emb(flambeau.zeros(2, device=dev))
    with pytest.raises(ValueError, match="padding_idx must be within"):
        nn.Embedding(3, 2, padding_idx=3)
    logits = flambeau.zeros(2, 3, device=dev)
    with pytest.raises(FlambeauIndexError, match=r"target 3 is out of bounds for 3 classes"):
        F.cross_entropy(logits, flambeau.tensor([0, 3], device=dev))
    with pytest.raises(FlambeauIndexError, match=r"target -2 is out of bounds"):
        F.nll_loss(logits, flambeau.tensor([0, -2], device=dev))
    with pytest.raises(ShapeError, match=r"expected a target of shape \[2\] for an input of "
                                         r"shape \[2, 3\], got \[3\]"):
        F.cross_entropy(logits, flambeau.tensor([0, 1, 2], device=dev))
    with pytest.raises(DTypeError, match="class probabilities need a float target"):
        F.cross_entropy(logits, flambeau.zeros(2, device=dev))
    with pytest.raises(DTypeError, match="must be float"):
        F.cross_entropy(logits, flambeau.zeros(2, 3, dtype="int64", device=dev))
    with pytest.raises(ShapeError, match=r"weight must have shape \[3\]"):
        F.cross_entropy(logits, flambeau.tensor([0, 1], device=dev),
                        weight=flambeau.ones(2, device=dev))
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none'"):
        F.mse_loss(logits, logits, reduction="avg")
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(flambeau.tensor([1.5], device=dev),
                               flambeau.tensor([1.0], device=dev))
    with pytest.raises(ShapeError, match=r"target size \[2\] must be the same as the input "
                                         r"size \[2, 3\]"):
        F.binary_cross_entropy_with_logits(logits, flambeau.zeros(2, device=dev))
    with pytest.raises(flambeau.errors.DeviceMismatchError, match="cross_entropy"):
        F.cross_entropy(logits, flambeau.tensor([0, 1], device="cpu" if dev != "cpu" else
                                                "boxed:0"))
    with pytest.warns(UserWarning, match="different from the input size"):
        F.mse_loss(logits, flambeau.zeros(3, device=dev))
