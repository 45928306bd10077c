"""Convolution and pooling against PyTorch, on cpu (fused kernels) and boxed:0 (the core's
compositions): values, every gradient, layers with copied weights, reprs, initialisation,
laziness and the errors for bad inputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import flambeau  # noqa: E402
from flambeau import nn  # noqa: E402
from flambeau._device import kernels_for  # noqa: E402
from flambeau.errors import DTypeError, ShapeError  # noqa: E402
from flambeau.nn import functional as F  # noqa: E402

TF = torch.nn.functional
DEVICES = ["cpu", "boxed:0"]
FUSED = ("conv2d", "conv2d_grad_input", "conv2d_grad_weight", "max_pool2d",
         "max_pool2d_grad", "avg_pool2d", "avg_pool2d_grad")
_rng = np.random.default_rng(11)
# PyTorch warns that it copies the input for padding="same" with even kernels.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


@pytest.fixture(params=DEVICES)
def dev(request):
    return request.param


def rand(*shape, dtype="float64"):
    return _rng.uniform(-2, 2, size=shape).astype(dtype)


def host(t):
    return t.detach().numpy()


def same(got, want, what, rtol=1e-7, atol=1e-9):
    assert tuple(got.shape) == tuple(want.shape), f"{what}: {got.shape} vs {want.shape}"
    np.testing.assert_allclose(host(got), host(want), rtol=rtol, atol=atol, err_msg=what)


def check(fl_fn, th_fn, *arrays, dev="cpu"):
    """``fl_fn`` on ``dev`` and ``th_fn`` agree in value and in the gradients of every
    input (of ``sum(out * w)`` for a random ``w``)."""
    fl = [flambeau.tensor(a, device=dev, requires_grad=True) for a in arrays]
    th = [torch.tensor(a, requires_grad=True) for a in arrays]
    got, want = fl_fn(*fl), th_fn(*th)
    assert got.device == flambeau.device(dev)
    same(got, want, "value")
    w = rand(*want.shape)
    (got * flambeau.tensor(w, device=dev)).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    for i, (f, t) in enumerate(zip(fl, th)):
        same(f.grad, t.grad, f"gradient of input {i}")


def test_cpu_has_the_fused_kernels_and_boxed_composes():
    cpu, boxed = kernels_for(flambeau.device("cpu")), kernels_for(flambeau.device("boxed:0"))
    assert all(callable(getattr(cpu, name, None)) for name in FUSED)
    assert not any(hasattr(boxed, name) for name in FUSED)
    x = flambeau.ones(1, 1, 4, 4, requires_grad=True)
    w = flambeau.ones(1, 1, 2, 2, requires_grad=True)
    assert F.conv2d(x, w).grad_fn.name() == "ConvolutionBackward0"
    assert F.avg_pool2d(x, 2).grad_fn.name() == "AvgPool2DBackward0"


# --- functional ------------------------------------------------------------------------

CONV2D = {
    "plain": dict(),
    "stride": dict(stride=2),
    "padding": dict(padding=(2, 1)),
    "dilation": dict(padding=1, dilation=(2, 3)),
    "groups": dict(groups=2, stride=(2, 1), padding=1),
    "depthwise": dict(groups=4, padding=1),
    "same": dict(padding="same"),
    "same_even_dilated": dict(padding="same", dilation=(1, 3)),
    "valid": dict(padding="valid", stride=(1, 2)),
}


@pytest.mark.parametrize("config", sorted(CONV2D))
def test_conv2d(dev, config):
    kw = CONV2D[config]
    groups = kw.get("groups", 1)
    check(lambda x, w, b: F.conv2d(x, w, b, **kw), lambda x, w, b: TF.conv2d(x, w, b, **kw),
          rand(2, 4, 7, 6), rand(8, 4 // groups, 3, 2), rand(8), dev=dev)


def test_conv2d_unbatched_and_without_bias(dev):
    check(lambda x, w: F.conv2d(x, w, stride=2), lambda x, w: TF.conv2d(x, w, stride=2),
          rand(3, 6, 5), rand(2, 3, 3, 3), dev=dev)


CONV1D = {"plain": dict(), "stride": dict(stride=2, padding=1), "same": dict(padding="same"),
          "dilation_groups": dict(dilation=2, groups=2, padding=2)}


@pytest.mark.parametrize("config", sorted(CONV1D))
def test_conv1d(dev, config):
    kw = CONV1D[config]
    groups = kw.get("groups", 1)
    check(lambda x, w, b: F.conv1d(x, w, b, **kw), lambda x, w, b: TF.conv1d(x, w, b, **kw),
          rand(2, 4, 9), rand(6, 4 // groups, 4), rand(6), dev=dev)


CONV_T = {
    "plain": dict(),
    "stride": dict(stride=2),
    "output_padding": dict(stride=2, padding=1, output_padding=1),
    "groups_dilation": dict(groups=2, stride=(2, 3), dilation=(1, 2), padding=(1, 0),
                            output_padding=(0, 2)),
    "output_padding_from_dilation": dict(dilation=3, output_padding=2),
}


@pytest.mark.parametrize("config", sorted(CONV_T))
def test_conv_transpose2d(dev, config):
    kw = CONV_T[config]
    groups = kw.get("groups", 1)
    check(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw),
          lambda x, w, b: TF.conv_transpose2d(x, w, b, **kw),
          rand(2, 4, 5, 4), rand(4, 6 // groups, 3, 2), rand(6), dev=dev)


MAX_POOL = {
    "2x2": dict(kernel_size=2),
    "overlap_padding": dict(kernel_size=3, stride=2, padding=1),
    "ceil": dict(kernel_size=(3, 2), stride=2, ceil_mode=True),
    "dilation_ceil": dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True),
    "stride1": dict(kernel_size=2, stride=1),
}


@pytest.mark.parametrize("config", sorted(MAX_POOL))
def test_max_pool2d_values_indices_and_gradient(dev, config):
    kw = MAX_POOL[config]
    x = rand(2, 3, 9, 8)
    check(lambda t: F.max_pool2d(t, **kw), lambda t: TF.max_pool2d(t, **kw), x, dev=dev)
    _, got = F.max_pool2d(flambeau.tensor(x, device=dev), return_indices=True, **kw)
    _, want = TF.max_pool2d(torch.tensor(x), return_indices=True, **kw)
    assert got.dtype == flambeau.int64
    np.testing.assert_array_equal(got.numpy(), want.numpy())


AVG_POOL = {
    "2x2": dict(kernel_size=2),
    "overlap_padding": dict(kernel_size=3, stride=2, padding=1),
    "exclude_pad_ceil": dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                             count_include_pad=False),
    "ceil_include_pad": dict(kernel_size=(2, 3), stride=(2, 2), padding=(1, 1),
                             ceil_mode=True),
    "divisor": dict(kernel_size=(3, 2), stride=1, divisor_override=5),
}


@pytest.mark.parametrize("config", sorted(AVG_POOL))
def test_avg_pool2d(dev, config):
    kw = AVG_POOL[config]
    check(lambda t: F.avg_pool2d(t, **kw), lambda t: TF.avg_pool2d(t, **kw), rand(2, 3, 9, 8),
          dev=dev)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=(3, 2)),
                                dict(kernel_size=2, padding=1), dict(kernel_size=(1, 2))],
                         ids=["2x2", "3x2", "padded", "1x2"])
def test_avg_pool2d_grad_of_float32_tiles_of_width_2(kw):
    """The float32 fast path for tiled windows two wide (values repeated in pairs by an
    integer product) gives torch's gradient, infinities and NaN included."""
    x = rand(2, 3, 6, 8, dtype="float32")
    w = rand(*TF.avg_pool2d(torch.tensor(x), **kw).shape, dtype="float32")
    w[0, 0, 0, :2] = [np.inf, np.nan]
    fx, tx = flambeau.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (F.avg_pool2d(fx, **kw) * flambeau.tensor(w)).sum().backward()
    (TF.avg_pool2d(tx, **kw) * torch.tensor(w)).sum().backward()
    assert fx.grad.dtype == flambeau.float32
    np.testing.assert_allclose(host(fx.grad), host(tx.grad), rtol=1e-6, atol=0)


@pytest.mark.parametrize("size", [1, (3, 4), (4, None), (5, 3), (9, 8)])
def test_adaptive_avg_pool2d(dev, size):
    check(lambda t: F.adaptive_avg_pool2d(t, size), lambda t: TF.adaptive_avg_pool2d(t, size),
          rand(2, 3, 9, 8), dev=dev)


def test_pooling_unbatched(dev):
    check(lambda t: F.max_pool2d(t, 2), lambda t: TF.max_pool2d(t, 2), rand(3, 6, 4), dev=dev)
    check(lambda t: F.avg_pool2d(t, 3, 1, 1), lambda t: TF.avg_pool2d(t, 3, 1, 1),
          rand(3, 6, 4), dev=dev)


def test_double_backward_matches_pytorch(dev):
    """The fused path's backward rules are differentiable too (create_graph)."""
    x, w = rand(2, 3, 6, 5), rand(4, 3, 3, 2)

    def grads(lib, tensor, device=None):
        xs = tensor(x, requires_grad=True, **device)
        ws = tensor(w, requires_grad=True, **device)
        y = lib.conv2d(xs, ws, stride=(2, 1), padding=1)
        pooled = lib.avg_pool2d(y * y, 2, ceil_mode=True)
        gx, gw = (flambeau if lib is F else torch).autograd.grad(
            pooled.sum(), [xs, ws], create_graph=True)
        ((gx * gx).sum() + (gw ** 3).sum()).backward()
        return xs.grad, ws.grad

    got = grads(F, flambeau.tensor, {"device": dev})
    want = grads(TF, torch.tensor, {})
    for g, t, what in zip(got, want, ("x", "w")):
        same(g, t, f"second-order gradient of {what}", rtol=1e-6)


def test_float32_on_both_paths(dev):
    x, w = rand(2, 3, 8, 8, dtype="float32"), rand(5, 3, 3, 3, dtype="float32")
    got = F.max_pool2d(F.conv2d(flambeau.tensor(x, device=dev), flambeau.tensor(w, device=dev),
                                padding=1), 2)
    want = TF.max_pool2d(TF.conv2d(torch.tensor(x), torch.tensor(w), padding=1), 2)
    assert got.dtype == flambeau.float32
    same(got, want, "float32 value", rtol=1e-5, atol=1e-5)


# --- functional errors ------------------------------------------------------------------


def test_functional_errors_name_what_was_expected_and_got():
    x = flambeau.ones(2, 3, 8, 8)
    with pytest.raises(ShapeError, match=r"weight of shape \[6, 2, 3, 3\].*expected an input "
                                         r"with 2 channels, got 3.*\[2, 3, 8, 8\]"):
        F.conv2d(x, flambeau.ones(6, 2, 3, 3))
    with pytest.raises(ShapeError, match=r"4-d \(batched\) input, got shape \[8, 8\]"):
        F.conv2d(flambeau.ones(8, 8), flambeau.ones(6, 3, 3, 3))
    with pytest.raises(ShapeError, match="divisible by 2"):
        F.conv2d(x, flambeau.ones(5, 1, 3, 3), groups=2)
    with pytest.raises(ShapeError, match=r"padded input \(8 x 8\) is smaller than the dilated "
                                         r"kernel \(9 x 9\)"):
        F.conv2d(x, flambeau.ones(6, 3, 5, 5), dilation=2)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        F.conv2d(x, flambeau.ones(6, 3, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match="padding must be 'valid', 'same'"):
        F.conv2d(x, flambeau.ones(6, 3, 3, 3), padding="full")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        F.conv2d(x, flambeau.ones(6, 3, 3, 3), stride=0)
    with pytest.raises(DTypeError, match="float32, float64"):
        F.conv2d(x, flambeau.ones(6, 3, 3, 3, dtype=flambeau.float64))
    with pytest.raises(ValueError, match="output_padding must be smaller than stride"):
        F.conv_transpose2d(x, flambeau.ones(3, 2, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="padding should be at most half"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ShapeError, match=r"too small.*output would be 0 x 0"):
        F.avg_pool2d(flambeau.ones(1, 1, 2, 2), 3)
    with pytest.raises(DTypeError, match="floating-point"):
        F.max_pool2d(flambeau.ones(1, 4, 4, dtype=flambeau.int64), 2)
    with pytest.raises(RuntimeError, match="cpu and boxed:0"):
        F.conv2d(x, flambeau.ones(6, 3, 3, 3, device="boxed:0"))


# --- layers -----------------------------------------------------------------------------


def _twin(make, dev):
    """The same layer in flambeau (on ``dev``) and torch, with torch's weights."""
    th = make(torch.nn).double()
    fl = make(nn).double()
    fl.load_state_dict({k: flambeau.tensor(v.detach().numpy()) for k, v in
                        th.state_dict().items()})
    return fl.to(dev), th


def check_layer(make, x, dev, **call):
    fl, th = _twin(make, dev)
    xf = flambeau.tensor(x, device=dev, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    got, want = fl(xf, **call), th(xt, **call)
    same(got, want, "value")
    w = rand(*want.shape)
    (got * flambeau.tensor(w, device=dev)).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    same(xf.grad, xt.grad, "input gradient")
    params = dict(th.named_parameters())
    for name, p in fl.named_parameters():
        same(p.grad, params[name].grad, f"gradient of {name}")


LAYERS = {
    "conv2d": (lambda lib: lib.Conv2d(3, 6, 3, stride=2, padding=1), (2, 3, 9, 8)),
    "conv2d_same_groups": (lambda lib: lib.Conv2d(4, 6, (3, 2), padding="same", groups=2,
                                                  bias=False), (2, 4, 7, 6)),
    "conv1d": (lambda lib: lib.Conv1d(3, 4, 3, dilation=2, padding=2), (2, 3, 10)),
    "conv_transpose2d": (lambda lib: lib.ConvTranspose2d(4, 6, 3, stride=2, padding=1,
                                                         output_padding=1, groups=2),
                         (2, 4, 5, 4)),
    "max_pool": (lambda lib: lib.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 3, 8, 7)),
    "avg_pool": (lambda lib: lib.AvgPool2d(2), (2, 3, 8, 7)),
    "adaptive_avg_pool": (lambda lib: lib.AdaptiveAvgPool2d((3, None)), (2, 3, 8, 7)),
    "lenet": (lambda lib: lib.Sequential(
        lib.Conv2d(1, 6, kernel_size=5, padding=2), lib.Sigmoid(), lib.AvgPool2d(2, 2),
        lib.Conv2d(6, 16, kernel_size=5), lib.Sigmoid(), lib.AvgPool2d(2, 2), lib.Flatten(),
        lib.Linear(400, 120), lib.Sigmoid(), lib.Linear(120, 10)), (2, 1, 28, 28)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_matches_pytorch_with_the_same_weights(dev, name):
    make, shape = LAYERS[name]
    check_layer(make, rand(*shape), dev)


def test_conv_transpose2d_output_size(dev):
    check_layer(lambda lib: lib.ConvTranspose2d(2, 3, 3, stride=3), rand(1, 2, 4, 4), dev,
                output_size=[12, 13])
    layer = nn.ConvTranspose2d(2, 3, 3, stride=3)
    with pytest.raises(nn.LayerInputError, match="between 12 and 14"):
        layer(flambeau.ones(1, 2, 4, 4), output_size=(15, 12))


REPRS = [
    lambda lib: lib.Conv2d(1, 6, kernel_size=5, padding=2),
    lambda lib: lib.Conv2d(1, 6, 3, padding="same", bias=False, dilation=2, groups=1),
    lambda lib: lib.Conv2d(2, 4, 3, padding="valid", groups=2),
    lambda lib: lib.Conv1d(4, 8, 3, stride=2),
    lambda lib: lib.ConvTranspose2d(4, 6, 3, stride=2, output_padding=1, groups=2),
    lambda lib: lib.MaxPool2d(2),
    lambda lib: lib.MaxPool2d((3, 2), stride=1, padding=1, ceil_mode=True),
    lambda lib: lib.AvgPool2d(2),
    lambda lib: lib.AvgPool2d(3, 2, 1, ceil_mode=True),
    lambda lib: lib.AdaptiveAvgPool2d((1, 1)),
    lambda lib: lib.AdaptiveAvgPool2d((None, 3)),
]


@pytest.mark.parametrize("make", REPRS)
def test_repr_matches_pytorch(make):
    assert repr(make(nn)) == repr(make(torch.nn))


def test_default_init_is_pytorchs():
    layer = nn.Conv2d(6, 16, 5, groups=2)
    fan_in = 3 * 5 * 5
    assert layer.weight.shape == (16, 3, 5, 5) and layer.bias.shape == (16,)
    weight, bias = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)) and the bias share it
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.9 * bound
    assert np.abs(bias).max() <= bound
    assert abs(weight.std() - bound / math.sqrt(3)) < 0.1 * bound
    transposed = nn.ConvTranspose2d(4, 6, 3)
    assert transposed.weight.shape == (4, 6, 3, 3)
    assert np.abs(transposed.bias.detach().numpy()).max() <= 1 / math.sqrt(6 * 9)


def test_layer_input_errors_name_the_layer_and_both_shapes():
    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2))
    with pytest.raises(nn.LayerInputError, match=r"layer '0' \(Conv2d\): expected an input "
                                                 r"with in_channels=1.*weight of shape "
                                                 r"\[6, 1, 5, 5\], got shape \[2, 3, 28, 28\]"):
        net(flambeau.ones(2, 3, 28, 28))
    with pytest.raises(nn.LayerInputError, match=r"3-d \(unbatched\) or 4-d \(batched\) "
                                                 r"input, got \[28, 28\]"):
        net(flambeau.ones(28, 28))
    with pytest.raises(nn.LayerInputError, match=r"layer '2' \(AvgPool2d\).*too small"):
        nn.Sequential(nn.Conv2d(1, 1, 3), nn.ReLU(), nn.AvgPool2d(2))(flambeau.ones(1, 1, 3, 3))
    with pytest.raises(nn.LayerInputError, match=r"\(MaxPool2d\): expected a 3-d \(C, H, W\) "
                                                 r"or 4-d"):
        nn.MaxPool2d(2)(flambeau.ones(4, 4))
    with pytest.raises(nn.LayerInputError, match=r"Conv1d.*2-d \(unbatched\) or 3-d"):
        nn.Conv1d(2, 2, 3)(flambeau.ones(1, 2, 5, 5))


def test_layer_argument_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 6, 3, groups=2)
    with pytest.raises(ValueError, match="padding_mode='reflect' is not supported"):
        nn.Conv2d(3, 6, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        nn.Conv2d(3, 6, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="kernel_size must be an int or 2 ints"):
        nn.Conv2d(3, 6, (3, 3, 3))


@pytest.mark.parametrize("lazy, shape, weight", [
    (lambda: nn.LazyConv2d(6, 5, padding=2), (2, 3, 8, 8), (6, 3, 5, 5)),
    (lambda: nn.LazyConv1d(4, 3, groups=2), (2, 6, 9), (4, 3, 3)),
    (lambda: nn.LazyConvTranspose2d(4, 3, stride=2), (1, 2, 5, 5), (2, 4, 3, 3)),
])
def test_lazy_conv_materialises_on_first_input(lazy, shape, weight):
    layer = lazy()
    kind = type(layer)
    assert isinstance(layer, {nn.Conv2d: nn.LazyConv2d, nn.Conv1d: nn.LazyConv1d,
                              nn.ConvTranspose2d: nn.LazyConvTranspose2d}[kind])
    assert layer.weight.is_uninitialized() and layer.in_channels is None
    nn.init.constant_(layer.bias, 0.5)  # remembered until the shapes are known
    out = layer(flambeau.ones(*shape))
    assert type(layer) is kind and layer.in_channels == shape[1]
    assert tuple(layer.weight.shape) == weight
    assert not layer.weight.is_uninitialized()
    np.testing.assert_array_equal(layer.bias.detach().numpy(), 0.5)
    assert out.shape[1] == layer.out_channels


def test_lazy_lenet_repr_and_errors():
    net = nn.Sequential(nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
                        nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(), nn.LazyLinear(10))
    assert repr(net[0]) == "Conv2d(0, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))"
    assert net(flambeau.ones(4, 1, 28, 28)).shape == (4, 10)
    assert repr(net[0]) == "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))"
    with pytest.raises(nn.LayerInputError, match="groups=2"):
        nn.LazyConv2d(4, 3, groups=2)(flambeau.ones(1, 3, 5, 5))


def test_summary_of_a_lazy_cnn_on_meta():
    net = nn.Sequential(nn.LazyConv2d(6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.LazyConv2d(16, 5), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.LazyLinear(10))
    result = nn.summary(net, (2, 1, 28, 28), print_table=False)
    assert result.total_params == 6 * 25 + 6 + 16 * 6 * 25 + 16 + 16 * 10 + 10
    assert net[0].weight.is_uninitialized()


@pytest.mark.parametrize("op", ["conv1d", "conv2d"])
@pytest.mark.parametrize("frozen", [None, "input", "bias"])
def test_conv_bias_added_in_place_is_the_broadcast_add_bit_for_bit(op, frozen):
    """A fused kernel's output takes the bias in place, its gradient summed in the conv's
    node: the same bits as adding it after, for values and every gradient."""
    spatial = (9,) if op == "conv1d" else (7, 9)
    x = rand(2, 3, *spatial, dtype="float32")
    w = rand(4, 3, *(3,) * len(spatial), dtype="float32")
    b = rand(4, dtype="float32")
    g = rand(2, 4, *(s - 2 for s in spatial), dtype="float32")
    conv = getattr(F, op)

    def run(fused_bias: bool):
        xs, ws, bs = (flambeau.tensor(a, requires_grad=name != frozen)
                      for a, name in ((x, "input"), (w, "weight"), (b, "bias")))
        out = conv(xs, ws, bs) if fused_bias else \
            conv(xs, ws) + bs.reshape(-1, *(1,) * len(spatial))
        out.backward(flambeau.tensor(g))
        return [host(out)] + [host(t.grad) for t in (xs, ws, bs) if t.requires_grad]

    for got, want in zip(run(True), run(False), strict=True):
        assert np.array_equal(got, want)
