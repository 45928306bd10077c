"""Activations (ELU, SELU, Softplus, Mish, Hardswish, Hardsigmoid), channel dropout
(Dropout1d/2d), 1-d and adaptive max pooling, ``interpolate``/``Upsample`` and the
padding modes of ``F.pad``, against PyTorch on cpu and opencl:0.

Each case runs the same expression in both libraries on identical inputs and compares
values and the gradients of ``sum(out * w)`` for every float input; layers also compare
their reprs with PyTorch's.
"""

from __future__ import annotations

import numpy as np
import pytest

import flambeau
from flambeau import nn
from flambeau.errors import ShapeError
from flambeau.nn import functional as F

torch = pytest.importorskip("torch", reason="PyTorch (CPU) is the reference")

TF = torch.nn.functional
HAS_OPENCL = flambeau.device_count("opencl") > 0
DEVICES = ["cpu", pytest.param("opencl:0", marks=pytest.mark.skipif(
    not HAS_OPENCL, reason="no OpenCL device (install flambeau-opencl[pocl])"))]
TOL = {"rtol": 1e-5, "atol": 1e-6}

_rng = np.random.default_rng(11)


@pytest.fixture(params=DEVICES)
def dev(request):
    return request.param


def rand(*shape, low=-2.0, high=2.0, dtype="float32"):
    return _rng.uniform(low, high, size=shape).astype(dtype)


def same(got, want, what="value", rtol=TOL["rtol"], atol=TOL["atol"]):
    assert tuple(got.shape) == tuple(want.shape), f"{what}: {got.shape} vs {want.shape}"
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1], what
    np.testing.assert_allclose(got.detach().cpu().numpy(), want.detach().numpy(), rtol=rtol,
                               atol=atol, err_msg=what)


def check(dev, fn, *arrays, **tol):
    """``fn(lib, *tensors)`` with ``lib`` flambeau's or torch's ``nn.functional`` (or
    ``nn``, where ``fn`` asks for it): outputs (a tensor or a tuple) and the gradients of
    ``sum(out * w)`` for every float input."""
    ours = [flambeau.tensor(a, device=dev, requires_grad=a.dtype.kind == "f") for a in arrays]
    theirs = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    got, want = fn(F, *ours), fn(TF, *theirs)
    got_all = got if isinstance(got, tuple) else (got,)
    want_all = want if isinstance(want, tuple) else (want,)
    for i, (g, w) in enumerate(zip(got_all, want_all)):
        assert g.device == flambeau.device(dev)
        same(g, w, f"output {i}", **tol)
    if not want_all[0].requires_grad:
        return got
    w = _rng.uniform(-1, 1, tuple(want_all[0].shape)).astype(np.float32)
    (got_all[0] * flambeau.tensor(w, device=dev)).sum().backward()
    (want_all[0] * torch.tensor(w)).sum().backward()
    for i, (o, t) in enumerate(zip(ours, theirs)):
        if t.requires_grad:
            same(o.grad, t.grad, f"gradient of input {i}", **tol)
    return got


def nn_of(lib):
    return nn if lib is F else torch.nn


# --- activations ------------------------------------------------------------------------

ACTIVATIONS = {
    "elu": (lambda lib, x: lib.elu(x), lambda m: m.ELU()),
    "elu_alpha": (lambda lib, x: lib.elu(x, alpha=0.7), lambda m: m.ELU(0.7)),
    "selu": (lambda lib, x: lib.selu(x), lambda m: m.SELU()),
    "softplus": (lambda lib, x: lib.softplus(x), lambda m: m.Softplus()),
    "softplus_threshold": (lambda lib, x: lib.softplus(x, beta=2.0, threshold=3.0),
                           lambda m: m.Softplus(beta=2.0, threshold=3.0)),
    "mish": (lambda lib, x: lib.mish(x), lambda m: m.Mish()),
    "hardswish": (lambda lib, x: lib.hardswish(x), lambda m: m.Hardswish()),
    "hardsigmoid": (lambda lib, x: lib.hardsigmoid(x), lambda m: m.Hardsigmoid()),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_function_and_layer(dev, name):
    fn, layer = ACTIVATIONS[name]
    x = rand(4, 25, low=-6.0, high=6.0)
    x[0, :5] = [-3.0, 0.0, 3.0, 1.5, -1.5]  # the ends of hardswish/hardsigmoid's ramp
    check(dev, fn, x)
    check(dev, lambda lib, x: layer(nn_of(lib))(x), x)
    assert repr(layer(nn)) == repr(layer(torch.nn))


def test_activations_stay_finite_for_large_inputs(dev):
    x = np.array([-200.0, -30.0, 30.0, 200.0], np.float32)
    for fn in ("elu", "selu", "softplus", "mish"):
        check(dev, lambda lib, x, fn=fn: getattr(lib, fn)(x), x, rtol=1e-4)  # device exp


def test_activation_float64():
    check("cpu", lambda lib, x: lib.mish(lib.elu(x)), rand(6, dtype="float64"), rtol=1e-12)


# --- channel dropout --------------------------------------------------------------------


@pytest.mark.parametrize("layer, shape", [("Dropout1d", (8, 16, 5)), ("Dropout1d", (16, 5)),
                                          ("Dropout2d", (8, 16, 3, 3)),
                                          ("Dropout2d", (8, 16, 5))])
def test_channel_dropout_zeroes_whole_channels(dev, layer, shape):
    flambeau.manual_seed(0)
    drop = getattr(nn, layer)(p=0.4)
    assert repr(drop) == repr(getattr(torch.nn, layer)(p=0.4))
    x = flambeau.tensor(rand(*shape, low=0.5, high=1.5), device=dev, requires_grad=True)
    out = drop(x)
    batched = len(shape) == 3 if layer == "Dropout1d" else len(shape) in (3, 4)
    channels = 2 if batched else 1
    kept = (out.detach().cpu().numpy() != 0).reshape(*shape[:channels], -1)
    assert (kept.all(-1) | ~kept.any(-1)).all(), "a channel is partly dropped"
    assert 0.2 < 1 - kept.all(-1).mean() < 0.6
    np.testing.assert_allclose(out.detach().cpu().numpy()[out.detach().cpu().numpy() != 0],
                               x.detach().cpu().numpy()[out.detach().cpu().numpy() != 0] / 0.6,
                               rtol=1e-6)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), (out.detach().cpu().numpy() != 0) / 0.6,
                               rtol=1e-6)
    drop.eval()
    assert drop(x) is x


def test_channel_dropout_identity_cases_and_errors(dev):
    x = flambeau.ones(2, 3, 4, device=dev)
    assert F.dropout1d(x, 0.0) is x and F.dropout2d(x, 0.5, training=False) is x
    assert F.dropout1d(x, 1.0).abs().sum().item() == 0
    with pytest.raises(ShapeError, match=r"dropout1d: expected a 2-d \(unbatched\) or 3-d "
                                         r"\(batched\) input, got shape \[2\]"):
        F.dropout1d(flambeau.ones(2), 0.5)
    with pytest.raises(ShapeError, match=r"dropout2d: expected a 3-d \(unbatched\) or 4-d"):
        F.dropout2d(flambeau.ones(1, 2, 3, 4, 5), 0.5)
    with pytest.raises(ValueError, match=r"probability must be in \[0, 1\], got 1.5"):
        nn.Dropout2d(1.5)
    with pytest.raises(ValueError, match=r"probability must be in \[0, 1\]"):
        F.dropout1d(x, -0.1)


# --- pooling ----------------------------------------------------------------------------

POOL1D = {
    "max": lambda lib, x: lib.max_pool1d(x, 3),
    "max_stride_pad": lambda lib, x: lib.max_pool1d(x, 3, stride=2, padding=1),
    "max_dilation_ceil": lambda lib, x: lib.max_pool1d(x, 2, stride=2, dilation=2,
                                                       ceil_mode=True),
    "max_indices": lambda lib, x: lib.max_pool1d(x, 3, 2, return_indices=True),
    "avg": lambda lib, x: lib.avg_pool1d(x, 3),
    "avg_pad_ceil": lambda lib, x: lib.avg_pool1d(x, 3, 2, padding=1, ceil_mode=True),
    "avg_exclude_pad": lambda lib, x: lib.avg_pool1d(x, 4, 2, padding=2,
                                                     count_include_pad=False),
}


@pytest.mark.parametrize("name", list(POOL1D))
@pytest.mark.parametrize("shape", [(2, 3, 11), (3, 10)], ids=["batched", "unbatched"])
def test_pool1d_matches_torch(dev, name, shape):
    check(dev, POOL1D[name], rand(*shape))


@pytest.mark.parametrize("size", [2, (3, 2), (None, 3), (5, 7), 1, (4, 6)])
def test_adaptive_max_pool2d_matches_torch(dev, size):
    check(dev, lambda lib, x: lib.adaptive_max_pool2d(x, size, return_indices=True),
          rand(2, 3, 8, 6))
    check(dev, lambda lib, x: lib.adaptive_max_pool2d(x, size), rand(3, 7, 5))


@pytest.mark.parametrize("size", [1, 2, (3, 2)])
def test_adaptive_max_pool2d_breaks_ties_like_torch(dev, size):
    """Of equal maxima (zeros after a ReLU, rounded bfloat16) the first in row-major
    order wins, which routes the gradient and names the index."""
    x = np.array([[[0, 1, 1, 0], [1, 0, 1, 1], [1, 1, 0, 0]]], np.float32)
    check(dev, lambda lib, x: lib.adaptive_max_pool2d(x, size, return_indices=True), x)


def test_pooling_layers_match_torch(dev):
    layers = [lambda m: m.MaxPool1d(3, stride=2), lambda m: m.MaxPool1d(2, return_indices=True),
              lambda m: m.AvgPool1d(3, stride=2, padding=1),
              lambda m: m.AdaptiveMaxPool2d((2, 3)),
              lambda m: m.AdaptiveMaxPool2d(2, return_indices=True)]
    for layer in layers:
        x = rand(2, 3, 9) if "1d" in repr(layer(nn)) else rand(2, 3, 7, 5)
        check(dev, lambda lib, x, layer=layer: layer(nn_of(lib))(x), x)
        assert repr(layer(nn)) == repr(layer(torch.nn))


def test_pooling_errors():
    with pytest.raises(nn.LayerInputError, match=r"expected a 2-d \(C, L\) or 3-d \(N, C, L\) "
                                                 r"input, got \[1, 2, 3, 4\]"):
        nn.MaxPool1d(2)(flambeau.ones(1, 2, 3, 4))
    with pytest.raises(ShapeError, match="avg_pool1d: expected a 2-d"):
        F.avg_pool1d(flambeau.ones(4), 2)
    with pytest.raises(ShapeError, match=r"too small for kernel_size=\(1, 5\)"):
        F.max_pool1d(flambeau.ones(1, 1, 3), 5)
    with pytest.raises(ValueError, match="kernel_size must be an int or 1 ints"):
        F.max_pool1d(flambeau.ones(1, 1, 3), (2, 2))
    with pytest.raises(ValueError, match="output_size must be >= 1"):
        F.adaptive_max_pool2d(flambeau.ones(1, 4, 4), 0)


# --- interpolate ------------------------------------------------------------------------

INTERPOLATE = {
    "nearest_1d_size": ((2, 3, 5), {"size": 8}),
    "nearest_1d_down": ((2, 3, 9), {"size": 4}),
    "nearest_2d_scale": ((2, 3, 4, 5), {"scale_factor": 2}),
    "nearest_2d_fraction": ((1, 2, 5, 7), {"scale_factor": (1.7, 0.6)}),
    "nearest_2d_recompute": ((1, 2, 5, 7), {"scale_factor": 1.7,
                                            "recompute_scale_factor": True}),
    "nearest_3d": ((1, 2, 3, 4, 2), {"size": (5, 3, 4)}),
    "nearest_exact": ((1, 2, 5, 7), {"size": (8, 4), "mode": "nearest-exact"}),
    "linear": ((2, 3, 5), {"size": 9, "mode": "linear"}),
    "linear_corners": ((2, 3, 5), {"size": 9, "mode": "linear", "align_corners": True}),
    "bilinear": ((2, 3, 4, 5), {"size": (7, 3), "mode": "bilinear"}),
    "bilinear_scale": ((2, 3, 4, 5), {"scale_factor": 2.5, "mode": "bilinear"}),
    "bilinear_corners": ((2, 3, 4, 5), {"scale_factor": 2, "mode": "bilinear",
                                        "align_corners": True}),
    "bilinear_down": ((1, 2, 9, 8), {"size": (4, 3), "mode": "bilinear"}),
    "bilinear_to_one": ((1, 2, 4, 4), {"size": (1, 3), "mode": "bilinear",
                                       "align_corners": True}),
    "trilinear": ((1, 2, 3, 4, 2), {"size": (4, 3, 5), "mode": "trilinear"}),
    "area": ((1, 2, 9, 8), {"size": (4, 3), "mode": "area"}),
}


@pytest.mark.parametrize("name", list(INTERPOLATE))
def test_interpolate_matches_torch(dev, name):
    shape, options = INTERPOLATE[name]
    check(dev, lambda lib, x: lib.interpolate(x, **options), rand(*shape))


def test_upsample_layers_match_torch(dev):
    layers = [lambda m: m.Upsample(scale_factor=2), lambda m: m.Upsample(size=(3, 7)),
              lambda m: m.Upsample(scale_factor=(2, 3), mode="bilinear"),
              lambda m: m.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True),
              lambda m: m.UpsamplingNearest2d(scale_factor=2),
              lambda m: m.UpsamplingBilinear2d(size=(5, 6))]
    for layer in layers:
        check(dev, lambda lib, x, layer=layer: layer(nn_of(lib))(x), rand(2, 3, 4, 5))
        assert repr(layer(nn)) == repr(layer(torch.nn))


def test_interpolate_errors():
    x = flambeau.ones(1, 1, 4, 4)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="align_corners can only be set with the interpolating"):
        F.interpolate(x, size=3, align_corners=True)
    with pytest.raises(ShapeError, match="got a 3-d input, but mode='bilinear' needs a 4-d"):
        F.interpolate(flambeau.ones(1, 1, 4), size=3, mode="bilinear")
    with pytest.raises(NotImplementedError, match="mode='bicubic' is not supported"):
        F.interpolate(x, size=3, mode="bicubic")
    with pytest.raises(ValueError, match=r"size must be an int or 2 ints .* got \(3, 3, 3\)"):
        F.interpolate(x, size=(3, 3, 3))
    with pytest.raises(ShapeError, match="expected a 3-d, 4-d or 5-d input"):
        F.interpolate(flambeau.ones(4, 4), size=3)
    with pytest.raises(ValueError, match="recompute_scale_factor is not meaningful"):
        F.interpolate(x, size=3, recompute_scale_factor=True)


# --- padding modes ----------------------------------------------------------------------

PADS = [((2, 5), (2, 3)), ((2, 3, 6), (1, 4)), ((3, 4, 5), (2, 1, 0, 3)),
        ((2, 3, 4, 5), (1, 2, 3, 1)), ((2, 3, 4, 5), (0, 0, 2, 2)),
        ((1, 3, 3, 4, 5), (1, 2, 2, 0, 1, 1)), ((3, 3, 4, 5), (1, 1, 1, 1, 1, 1))]


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape, pad", PADS, ids=[f"{len(s)}d_{len(p)}" for s, p in PADS])
def test_pad_modes_match_torch(dev, mode, shape, pad):
    check(dev, lambda lib, x: lib.pad(x, pad, mode=mode), rand(*shape))


def test_pad_constant_still_matches_torch(dev):
    check(dev, lambda lib, x: lib.pad(x, (1, -1, 2, 0), value=2.5), rand(2, 3, 4))
    check(dev, lambda lib, x: lib.pad(x, (1, 2), mode="constant"), rand(2, 3))


def test_pad_mode_errors():
    x = flambeau.ones(1, 2, 3)
    with pytest.raises(ShapeError, match=r"mode='reflect' pads at most 2 on a side of "
                                         r"dimension 2 of size 3, got \(3, 3\)"):
        F.pad(x, (3, 3), mode="reflect")
    with pytest.raises(ShapeError, match="mode='circular' pads at most 3"):
        F.pad(x, (4, 3), mode="circular")
    with pytest.raises(NotImplementedError, match="padding of 2 values is not supported for a "
                                                  "1-d input"):
        F.pad(flambeau.ones(5), (1, 1), mode="reflect")
    with pytest.raises(NotImplementedError, match="padding of 4 values is not supported for a "
                                                  "2-d input"):
        F.pad(flambeau.ones(2, 3), (1, 1, 1, 1), mode="replicate")
    with pytest.raises(ValueError, match="mode='reflect' takes no value"):
        F.pad(x, (1, 1), mode="reflect", value=1.0)
    with pytest.raises(NotImplementedError, match="unknown padding mode 'bogus'"):
        F.pad(x, (1, 1), mode="bogus")
    with pytest.raises(ValueError, match="negative padding"):
        F.pad(x, (-1, 1), mode="replicate")
    with pytest.raises(ShapeError, match="cannot pad dimension 2 of size 0"):
        F.pad(flambeau.ones(2, 3, 0), (1, 1), mode="replicate")
    with pytest.raises(ShapeError, match="an even number of at most"):
        F.pad(x, (1, 2, 3), mode="reflect")
