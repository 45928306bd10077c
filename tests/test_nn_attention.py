"""Attention against PyTorch on cpu and opencl:0: ``F.scaled_dot_product_attention``,
``F.multi_head_attention_forward``, ``nn.MultiheadAttention``, the Transformer encoder
and decoder (layers and stacks), ``nn.Transformer``, and D2L's Transformer encoder built
from the book's cells.

Layers get PyTorch's weights through ``load_state_dict`` (PyTorch's state dict via
numpy), so the state dict keys must be PyTorch's; then the outputs, the gradients of
``sum(out * w)`` for every float input and every parameter must agree, in train mode
(dropout 0) and in eval mode.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import flambeau
from flambeau import nn
from flambeau.errors import DTypeError, LayerInputError, ShapeError
from flambeau.nn import functional as F

torch = pytest.importorskip("torch", reason="PyTorch (CPU) is the reference")

TF = torch.nn.functional
HAS_OPENCL = flambeau.device_count("opencl") > 0
DEVICES = ["cpu", pytest.param("opencl:0", marks=pytest.mark.skipif(
    not HAS_OPENCL, reason="no OpenCL device (install flambeau-opencl[pocl])"))]
TOL = {"rtol": 1e-4, "atol": 2e-5}  # float32, sums in another order

_rng = np.random.default_rng(5)


@pytest.fixture(params=DEVICES)
def dev(request):
    return request.param


def rand(*shape, low=-1.0, high=1.0):
    return _rng.uniform(low, high, size=shape).astype(np.float32)


class const:
    """An input array that becomes a tensor without requires_grad (masks, token ids)."""

    def __init__(self, array):
        self.array = np.asarray(array)


def _to(lib, value, dev):
    if isinstance(value, (const, np.ndarray)):
        array = value.array if isinstance(value, const) else value
        grad = isinstance(value, np.ndarray) and array.dtype.kind == "f"
        if lib is flambeau:
            return flambeau.tensor(array, device=dev, requires_grad=grad)
        return torch.tensor(array, requires_grad=grad)
    return value


def same(got, want, what="value", rtol=TOL["rtol"], atol=TOL["atol"]):
    assert isinstance(got, flambeau.Tensor), f"{what}: got {type(got).__name__}"
    assert tuple(got.shape) == tuple(want.shape), f"{what}: {got.shape} vs {want.shape}"
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1], what
    np.testing.assert_allclose(got.detach().cpu().numpy(), want.detach().numpy(), rtol=rtol,
                               atol=atol, equal_nan=True, err_msg=what)


def _outputs(result):
    if isinstance(result, (tuple, list)):
        return [t for item in result for t in _outputs(item)]
    return [] if result is None else [result]


def compare(dev, fn, *inputs, fl_module=None, th_module=None, **tol):
    """``fn(lib_or_module, *tensors)`` with flambeau (on ``dev``) and torch: the outputs
    (None where torch's is None) and the gradients of ``sum(out * w)`` for every float
    input and every parameter of the modules (matched by name)."""
    fl_args = [_to(flambeau, x, dev) for x in inputs]
    th_args = [_to(torch, x, dev) for x in inputs]
    got = fn(F if fl_module is None else fl_module, *fl_args)
    want = fn(TF if th_module is None else th_module, *th_args)
    if isinstance(want, tuple):
        assert [g is None for g in got] == [w is None for w in want]
    fl_outs, th_outs = _outputs(got), _outputs(want)
    for i, (g, w) in enumerate(zip(fl_outs, th_outs)):
        assert g.device == flambeau.device(dev)
        same(g, w, f"output {i}", **tol)
    weights = np.random.default_rng(1)
    fl_loss = th_loss = 0
    for g, w in zip(fl_outs, th_outs):
        if w.requires_grad:
            r = weights.uniform(-1, 1, tuple(w.shape)).astype(np.float32)
            fl_loss = fl_loss + (g * flambeau.tensor(r, device=dev)).sum()
            th_loss = th_loss + (w * torch.tensor(r)).sum()
    if isinstance(th_loss, int):
        return got
    th_loss.backward()
    fl_loss.backward()
    for i, (f, t) in enumerate(zip(fl_args, th_args)):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            same(f.grad, t.grad, f"gradient of input {i}", **tol)
    if th_module is not None:
        fl_params = dict(fl_module.named_parameters())
        for name, p in th_module.named_parameters():
            if p.grad is None:
                assert fl_params[name].grad is None, f"{name}: torch has no gradient"
            else:
                same(fl_params[name].grad, p.grad, f"gradient of {name}", **tol)
    return got


def copy_weights(fl_module, th_module, dev="cpu"):
    """PyTorch's parameters loaded into flambeau's module (keys must match exactly)."""
    state = th_module.state_dict()
    assert list(fl_module.state_dict()) == list(state)
    fl_module.load_state_dict({k: flambeau.tensor(v.detach().numpy()) for k, v in
                               state.items()})
    return fl_module.to(dev)


def pair(dev, build, train=False):
    """The same layer built by ``build(nn)`` in both libraries, torch's weights in both."""
    torch.manual_seed(0)
    th = build(torch.nn)
    fl = copy_weights(build(nn), th, dev)
    return fl.train(train), th.train(train)


def bool_mask(*shape, p=0.3):
    return _rng.random(shape) < p


# --- scaled_dot_product_attention -------------------------------------------------------


def _no_empty_rows(mask):
    mask = mask.copy()
    mask[..., 0] = True  # every query may attend key 0
    return mask


SDPA_CASES = {
    "plain": ((2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5), {}),
    "unbatched": ((4, 8), (6, 8), (6, 8), {}),
    "scale": ((2, 4, 8), (2, 6, 8), (2, 6, 8), {"scale": 0.3}),
    "causal": ((2, 3, 5, 8), (2, 3, 5, 8), (2, 3, 5, 4), {"is_causal": True}),
    "causal_rectangular": ((1, 4, 8), (1, 6, 8), (1, 6, 8), {"is_causal": True}),
}


@pytest.mark.parametrize("name", list(SDPA_CASES))
def test_sdpa_matches_torch(dev, name):
    q, k, v, options = SDPA_CASES[name]
    compare(dev, lambda lib, q, k, v: lib.scaled_dot_product_attention(q, k, v, **options),
            rand(*q), rand(*k), rand(*v))


@pytest.mark.parametrize("mask_shape", [(4, 6), (2, 1, 4, 6), (2, 3, 4, 6), (1, 6)])
def test_sdpa_bool_and_float_masks_broadcast(dev, mask_shape):
    keep = _no_empty_rows(bool_mask(*mask_shape, p=0.6))
    for mask in (const(keep), const(rand(*mask_shape))):
        compare(dev, lambda lib, q, k, v, m: lib.scaled_dot_product_attention(q, k, v, m),
                rand(2, 3, 4, 8), rand(2, 3, 6, 8), rand(2, 3, 6, 8), mask)


def test_sdpa_query_that_attends_nothing_gets_zeros(dev):
    keep = np.ones((3, 5), bool)
    keep[1] = False
    minus_inf = np.where(keep, 0.0, -np.inf).astype(np.float32)
    for mask in (const(keep), const(minus_inf)):
        out = compare(dev, lambda lib, q, k, v, m: lib.scaled_dot_product_attention(
            q, k, v, attn_mask=m), rand(2, 3, 4), rand(2, 5, 4), rand(2, 5, 6), mask)
        assert not out[:, 1].abs().sum().item()


def test_sdpa_grouped_query_attention(dev):
    compare(dev, lambda lib, q, k, v: lib.scaled_dot_product_attention(q, k, v,
                                                                        enable_gqa=True),
            rand(1, 4, 3, 8), rand(1, 2, 5, 8), rand(1, 2, 5, 8))


def test_sdpa_dropout_keeps_the_expectation():
    flambeau.manual_seed(0)
    q, k = flambeau.zeros(1, 400, 8), flambeau.zeros(1, 50, 8)
    out = F.scaled_dot_product_attention(q, k, flambeau.ones(1, 50, 1), dropout_p=0.5)
    # Uniform weights 1/50 dropped with p=0.5 and doubled: each row sums to ~1.
    assert abs(out.mean().item() - 1.0) < 0.05 and out.std().item() > 0.05
    assert F.scaled_dot_product_attention(q, k, flambeau.ones(1, 50, 1),
                                          dropout_p=1.0).abs().sum().item() == 0


def test_sdpa_errors():
    q, k, v = flambeau.zeros(2, 4, 8), flambeau.zeros(2, 6, 8), flambeau.zeros(2, 6, 8)
    with pytest.raises(ValueError, match="give attn_mask or is_causal=True, not both"):
        F.scaled_dot_product_attention(q, k, v, flambeau.ones(4, 6, dtype=flambeau.bool),
                                       is_causal=True)
    with pytest.raises(DTypeError, match="attn_mask must be a bool or floating-point tensor, "
                                         "got int64"):
        F.scaled_dot_product_attention(q, k, v, flambeau.ones(4, 6, dtype=flambeau.int64))
    with pytest.raises(ShapeError, match=r"expected query \(..., L, E\), key \(..., S, E\)"):
        F.scaled_dot_product_attention(q, flambeau.zeros(2, 6, 3), v)
    with pytest.raises(ShapeError, match="at least 2 dimensions"):
        F.scaled_dot_product_attention(flambeau.zeros(8), k, v)
    with pytest.raises(ShapeError, match=r"mask of shape \[5, 6\] does not broadcast to the "
                                         r"scores' shape \[2, 4, 6\]"):
        F.scaled_dot_product_attention(q, k, v, flambeau.ones(5, 6, dtype=flambeau.bool))
    with pytest.raises(ShapeError, match="multiple of the key's"):
        F.scaled_dot_product_attention(flambeau.zeros(1, 3, 4, 8), flambeau.zeros(1, 2, 6, 8),
                                       flambeau.zeros(1, 2, 6, 8), enable_gqa=True)
    with pytest.raises(ValueError, match=r"dropout probability must be in \[0, 1\]"):
        F.scaled_dot_product_attention(q, k, v, dropout_p=1.5)


# --- multi-head attention ---------------------------------------------------------------

MHA_CONFIGS = {
    "default": {},
    "batch_first": {"batch_first": True},
    "no_bias": {"bias": False},
    "kdim_vdim": {"kdim": 5, "vdim": 3},
    "bias_kv_zero_attn": {"add_bias_kv": True, "add_zero_attn": True},
}


def _mha_inputs(config, n=2, tgt=4, src=6, e=8):
    def seq(length, features):
        shape = (n, length, features) if config.get("batch_first") else (length, n, features)
        return rand(*shape)

    return seq(tgt, e), seq(src, config.get("kdim", e)), seq(src, config.get("vdim", e))


@pytest.mark.parametrize("name", list(MHA_CONFIGS))
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_multihead_attention_matches_torch(dev, name, train):
    config = MHA_CONFIGS[name]
    fl, th = pair(dev, lambda lib: lib.MultiheadAttention(8, 2, **config), train)
    q, k, v = _mha_inputs(config)
    kpm = np.zeros((2, 6), bool)
    kpm[0, 4:] = True
    attn = _no_empty_rows(~bool_mask(4, 6)) == 0
    for options in ({}, {"need_weights": False}, {"average_attn_weights": False}):
        compare(dev, lambda m, q, k, v, options=options: m(q, k, v, **options), q, k, v,
                fl_module=fl, th_module=th)
        fl.zero_grad(), th.zero_grad()
    compare(dev, lambda m, q, k, v, kpm, am: m(q, k, v, key_padding_mask=kpm, attn_mask=am),
            q, k, v, const(kpm), const(attn), fl_module=fl, th_module=th)


def test_multihead_attention_self_attention_masks(dev):
    fl, th = pair(dev, lambda lib: lib.MultiheadAttention(8, 4, batch_first=True))
    x = rand(2, 5, 8)
    float_mask = const(rand(2 * 4, 5, 5))
    kpm_float = const(np.where(bool_mask(2, 5), -1.5, 0.0).astype(np.float32))
    causal = const(torch.nn.Transformer.generate_square_subsequent_mask(5).numpy())
    for need_weights in (True, False):
        options = {"need_weights": need_weights}
        compare(dev, lambda m, x, am, o=options: m(x, x, x, attn_mask=am, **o), x,
                float_mask, fl_module=fl, th_module=th)
        compare(dev, lambda m, x, kpm, o=options: m(x, x, x, key_padding_mask=kpm, **o), x,
                kpm_float, fl_module=fl, th_module=th)
        compare(dev, lambda m, x, am, o=options: m(x, x, x, attn_mask=am, is_causal=True, **o),
                x, causal, fl_module=fl, th_module=th)


def test_multihead_attention_unbatched(dev):
    fl, th = pair(dev, lambda lib: lib.MultiheadAttention(8, 2))
    kpm = const(np.array([False, False, True, False, False, True]))
    mask3 = const(rand(2, 4, 6))
    for options in ({}, {"average_attn_weights": False}, {"need_weights": False}):
        compare(dev, lambda m, q, k, v, kpm, am, o=options: m(q, k, v, key_padding_mask=kpm,
                                                              attn_mask=am, **o),
                rand(4, 8), rand(6, 8), rand(6, 8), kpm, mask3, fl_module=fl, th_module=th)


def test_functional_multi_head_attention_forward(dev):
    w_in, b_in, w_out, b_out = rand(24, 8), rand(24), rand(8, 8), rand(8)
    compare(dev, lambda lib, q, w, b, wo, bo: lib.multi_head_attention_forward(
        q, q, q, 8, 2, w, b, None, None, False, 0.0, wo, bo, training=False),
        rand(5, 3, 8), w_in, b_in, w_out, b_out)


def test_multihead_attention_state_dict_keys_are_pytorchs():
    for config in MHA_CONFIGS.values():
        ours = nn.MultiheadAttention(8, 2, **config).state_dict()
        theirs = torch.nn.MultiheadAttention(8, 2, **config).state_dict()
        assert list(ours) == list(theirs)
        assert all(tuple(ours[k].shape) == tuple(theirs[k].shape) for k in theirs)
        back = torch.nn.MultiheadAttention(8, 2, **config)  # and flambeau's load into torch
        back.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.items()})
        assert all(np.array_equal(back.state_dict()[k].numpy(), ours[k].numpy()) for k in ours)


def test_multihead_attention_initialisation():
    mha = nn.MultiheadAttention(8, 2, add_bias_kv=True)
    bound = math.sqrt(6 / (8 + 24))  # Xavier-uniform over the packed (24, 8) weight
    assert mha.in_proj_weight.abs().max().item() <= bound
    assert mha.in_proj_bias.abs().sum().item() == 0 == mha.out_proj.bias.abs().sum().item()
    assert mha.bias_k.shape == (1, 1, 8) and mha.bias_k.abs().sum().item() > 0


def test_multihead_attention_dropout_in_train_mode_only():
    mha = nn.MultiheadAttention(8, 2, dropout=0.5)
    x = flambeau.randn(6, 2, 8)
    _, w_train = mha(x, x, x)
    mha.eval()
    _, w_eval = mha(x, x, x)
    assert not np.allclose(w_train.detach().numpy(), w_eval.detach().numpy())
    np.testing.assert_allclose(w_eval.sum(-1).detach().numpy(), 1.0, rtol=1e-5)


def test_multihead_attention_errors():
    with pytest.raises(ValueError, match="embed_dim=10 must be divisible by num_heads=3"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="must be positive, got embed_dim=0"):
        nn.MultiheadAttention(0, 1)
    mha = nn.MultiheadAttention(8, 2)
    q, kv = flambeau.zeros(4, 2, 8), flambeau.zeros(6, 2, 8)
    with pytest.raises(LayerInputError, match=r"expected a 2-d attn_mask of shape \[4, 6\] "
                                              r"\(L=4, S=6, N \* num_heads=4\), got \[4, 5\]"):
        mha(q, kv, kv, attn_mask=flambeau.zeros(4, 5))
    with pytest.raises(LayerInputError, match=r"expected a 3-d attn_mask of shape \[4, 4, 6\]"):
        mha(q, kv, kv, attn_mask=flambeau.zeros(2, 4, 6))
    with pytest.raises(LayerInputError, match=r"key_padding_mask of shape \[2, 6\] \(N, S\), "
                                              r"got \[2, 5\]"):
        mha(q, kv, kv, key_padding_mask=flambeau.zeros(2, 5, dtype=flambeau.bool))
    with pytest.raises(LayerInputError, match="expected a 2-d key_padding_mask"):
        mha(q, kv, kv, key_padding_mask=flambeau.zeros(6, dtype=flambeau.bool))
    with pytest.raises(LayerInputError, match="expected a query with embed_dim=8 features"):
        mha(flambeau.zeros(4, 2, 6), kv, kv)
    with pytest.raises(LayerInputError, match="all 3-d"):
        mha(q, flambeau.zeros(6, 8), kv)
    with pytest.raises(LayerInputError, match="different batch sizes"):
        mha(q, flambeau.zeros(6, 3, 8), flambeau.zeros(6, 3, 8))
    with pytest.raises(ValueError, match="needs that attn_mask"):
        mha(q, kv, kv, is_causal=True)
    with pytest.raises(DTypeError, match="key_padding_mask must be a bool or floating-point"):
        mha(q, kv, kv, key_padding_mask=flambeau.zeros(2, 6, dtype=flambeau.int64))


# --- Transformer ------------------------------------------------------------------------

LAYER_CONFIGS = {
    "post_norm": {},
    "norm_first": {"norm_first": True},
    "gelu_batch_first": {"activation": "gelu", "batch_first": True},
    "callable_no_bias": {"activation": "callable", "bias": False},
}


def _layer_options(lib, config):
    options = dict(config)
    if options.get("activation") == "callable":
        options["activation"] = lib.functional.silu
    return options


def _seq(config, n, length, e=8):
    return rand(n, length, e) if config.get("batch_first") else rand(length, n, e)


@pytest.mark.parametrize("name", list(LAYER_CONFIGS))
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_transformer_encoder_layer_matches_torch(dev, name, train):
    config = LAYER_CONFIGS[name]
    fl, th = pair(dev, lambda lib: lib.TransformerEncoderLayer(
        8, 2, 16, dropout=0.0, **_layer_options(lib, config)), train)
    src = _seq(config, 3, 5)
    kpm = np.zeros((3, 5), bool)
    kpm[1, 3:] = True
    compare(dev, lambda m, x: m(x), src, fl_module=fl, th_module=th)
    fl.zero_grad(), th.zero_grad()
    compare(dev, lambda m, x, kpm: m(x, src_key_padding_mask=kpm), src, const(kpm),
            fl_module=fl, th_module=th)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_transformer_encoder_of_two_layers_with_masks(dev, train):
    def build(lib):
        layer = lib.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        return lib.TransformerEncoder(layer, 2, norm=lib.LayerNorm(8),
                                      **({"enable_nested_tensor": False} if lib is torch.nn
                                         else {}))

    fl, th = pair(dev, build, train)
    assert [k for k in fl.state_dict() if k.startswith("layers.1.self_attn")] == [
        "layers.1.self_attn.in_proj_weight", "layers.1.self_attn.in_proj_bias",
        "layers.1.self_attn.out_proj.weight", "layers.1.self_attn.out_proj.bias"]
    causal = torch.nn.Transformer.generate_square_subsequent_mask(5).numpy()
    kpm = np.zeros((3, 5), bool)
    kpm[2, 4:] = True
    compare(dev, lambda m, x, am, kpm: m(x, mask=am, src_key_padding_mask=kpm),
            rand(3, 5, 8), const(causal), const(kpm), fl_module=fl, th_module=th)
    fl.zero_grad(), th.zero_grad()
    compare(dev, lambda m, x, am: m(x, mask=am, is_causal=True), rand(3, 5, 8), const(causal),
            fl_module=fl, th_module=th)


def test_transformer_encoder_sgd_step_matches_torch(dev):
    fl, th = pair(dev, lambda lib: lib.TransformerEncoder(
        lib.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2, enable_nested_tensor=False)
        if lib is torch.nn else lib.TransformerEncoder(
        lib.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2), train=True)
    x = rand(5, 2, 8)
    compare(dev, lambda m, x: m(x), x, fl_module=fl, th_module=th)
    flambeau.optim.SGD(fl.parameters(), lr=0.1).step()
    torch.optim.SGD(th.parameters(), lr=0.1).step()
    ours = fl.state_dict()
    for name, value in th.state_dict().items():
        same(ours[name], value, f"{name} after a step")


@pytest.mark.parametrize("name", list(LAYER_CONFIGS))
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_transformer_decoder_layer_matches_torch(dev, name, train):
    config = LAYER_CONFIGS[name]
    fl, th = pair(dev, lambda lib: lib.TransformerDecoderLayer(
        8, 2, 16, dropout=0.0, **_layer_options(lib, config)), train)
    tgt, memory = _seq(config, 2, 4), _seq(config, 2, 6)
    causal = const(torch.nn.Transformer.generate_square_subsequent_mask(4).numpy())
    mem_kpm = np.zeros((2, 6), bool)
    mem_kpm[0, 5:] = True
    compare(dev, lambda m, t, mem, am, kpm: m(t, mem, tgt_mask=am, tgt_is_causal=True,
                                              memory_key_padding_mask=kpm),
            tgt, memory, causal, const(mem_kpm), fl_module=fl, th_module=th)


def test_transformer_decoder_and_transformer(dev):
    def decoder(lib):
        return lib.TransformerDecoder(lib.TransformerDecoderLayer(8, 2, 16, dropout=0.0), 2,
                                      norm=lib.LayerNorm(8))

    fl, th = pair(dev, decoder, train=True)
    compare(dev, lambda m, t, mem: m(t, mem), rand(4, 2, 8), rand(6, 2, 8),
            fl_module=fl, th_module=th)

    def transformer(lib):
        return lib.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1,
                               dim_feedforward=16, dropout=0.0, batch_first=True)

    fl, th = pair(dev, transformer, train=True)
    causal = const(torch.nn.Transformer.generate_square_subsequent_mask(4).numpy())
    compare(dev, lambda m, s, t, am: m(s, t, tgt_mask=am), rand(2, 6, 8), rand(2, 4, 8),
            causal, fl_module=fl, th_module=th)


def test_transformer_pieces_keep_pytorchs_names_and_checks():
    ours = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                          dim_feedforward=16)
    theirs = torch.nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1,
                                  num_decoder_layers=1, dim_feedforward=16)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    # Xavier-uniform for every matrix, as PyTorch's _reset_parameters
    w = ours.encoder.layers[0].linear1.weight
    assert w.abs().max().item() <= math.sqrt(6 / (8 + 16))
    assert nn.Transformer.generate_square_subsequent_mask(4).tolist() == \
        torch.nn.Transformer.generate_square_subsequent_mask(4).tolist()
    with pytest.raises(ValueError, match="activation should be 'relu', 'gelu' or a callable, "
                                         "not 'tanh'"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
    with pytest.raises(LayerInputError, match=r"same batch size \(dimension 1\)"):
        ours(flambeau.zeros(5, 2, 8), flambeau.zeros(4, 3, 8))
    with pytest.raises(LayerInputError, match="d_model=8 features"):
        ours(flambeau.zeros(5, 2, 8), flambeau.zeros(4, 2, 6))
    with pytest.raises(LayerInputError, match=r"encoder\.layers\.0\.self_attn"):
        ours(flambeau.zeros(5, 2, 8), flambeau.zeros(4, 2, 8), src_mask=flambeau.zeros(4, 4))


def test_transformer_dropout_only_in_train_mode():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5)
    x = flambeau.randn(5, 2, 8)
    assert not np.allclose(layer(x).detach().numpy(), layer(x).detach().numpy())
    layer.eval()
    np.testing.assert_array_equal(layer(x).detach().numpy(), layer(x).detach().numpy())


# --- D2L: the Transformer encoder of "Attention Mechanisms and Transformers" -----------


def _repeat_interleave(lib):
    """``lib.repeat_interleave`` where it exists; else the same for the book's two uses
    (repeat each entry along dimension 0)."""
    if hasattr(lib, "repeat_interleave"):
        return lib.repeat_interleave

    def repeat(x, repeats, dim=0):
        return x.unsqueeze(1).expand(x.shape[0], repeats, *x.shape[1:]).reshape(
            x.shape[0] * repeats, *x.shape[1:])

    return repeat


def d2l_transformer_encoder(torch, nn):  # the book's cells, in order
    """The book's classes written against ``torch`` and ``nn`` (either library)."""
    repeat_interleave = _repeat_interleave(torch)

    def masked_softmax(X, valid_lens):
        """Perform softmax operation by masking elements on the last axis."""
        def _sequence_mask(X, valid_len, value=0):
            maxlen = X.size(1)
            mask = torch.arange((maxlen), dtype=torch.float32,
                                device=X.device)[None, :] < valid_len[:, None]
            X[~mask] = value
            return X

        if valid_lens is None:
            return nn.functional.softmax(X, dim=-1)
        else:
            shape = X.shape
            if valid_lens.dim() == 1:
                valid_lens = repeat_interleave(valid_lens, shape[1])
            else:
                valid_lens = valid_lens.reshape(-1)
            X = _sequence_mask(X.reshape(-1, shape[-1]), valid_lens, value=-1e6)
            return nn.functional.softmax(X.reshape(shape), dim=-1)

    class DotProductAttention(nn.Module):
        def __init__(self, dropout):
            super().__init__()
            self.dropout = nn.Dropout(dropout)

        def forward(self, queries, keys, values, valid_lens=None):
            d = queries.shape[-1]
            scores = torch.bmm(queries, keys.transpose(1, 2)) / math.sqrt(d)
            self.attention_weights = masked_softmax(scores, valid_lens)
            return torch.bmm(self.dropout(self.attention_weights), values)

    class MultiHeadAttention(nn.Module):
        def __init__(self, num_hiddens, num_heads, dropout, bias=False, **kwargs):
            super().__init__()
            self.num_heads = num_heads
            self.attention = DotProductAttention(dropout)
            self.W_q = nn.LazyLinear(num_hiddens, bias=bias)
            self.W_k = nn.LazyLinear(num_hiddens, bias=bias)
            self.W_v = nn.LazyLinear(num_hiddens, bias=bias)
            self.W_o = nn.LazyLinear(num_hiddens, bias=bias)

        def forward(self, queries, keys, values, valid_lens):
            queries = self.transpose_qkv(self.W_q(queries))
            keys = self.transpose_qkv(self.W_k(keys))
            values = self.transpose_qkv(self.W_v(values))
            if valid_lens is not None:
                valid_lens = repeat_interleave(valid_lens, repeats=self.num_heads, dim=0)
            output = self.attention(queries, keys, values, valid_lens)
            output_concat = self.transpose_output(output)
            return self.W_o(output_concat)

        def transpose_qkv(self, X):
            X = X.reshape(X.shape[0], X.shape[1], self.num_heads, -1)
            X = X.permute(0, 2, 1, 3)
            return X.reshape(-1, X.shape[2], X.shape[3])

        def transpose_output(self, X):
            X = X.reshape(-1, self.num_heads, X.shape[1], X.shape[2])
            X = X.permute(0, 2, 1, 3)
            return X.reshape(X.shape[0], X.shape[1], -1)

    class PositionWiseFFN(nn.Module):
        def __init__(self, ffn_num_hiddens, ffn_num_outputs):
            super().__init__()
            self.dense1 = nn.LazyLinear(ffn_num_hiddens)
            self.relu = nn.ReLU()
            self.dense2 = nn.LazyLinear(ffn_num_outputs)

        def forward(self, X):
            return self.dense2(self.relu(self.dense1(X)))

    class AddNorm(nn.Module):
        def __init__(self, norm_shape, dropout):
            super().__init__()
            self.dropout = nn.Dropout(dropout)
            self.ln = nn.LayerNorm(norm_shape)

        def forward(self, X, Y):
            return self.ln(self.dropout(Y) + X)

    class TransformerEncoderBlock(nn.Module):
        def __init__(self, num_hiddens, ffn_num_hiddens, num_heads, dropout, use_bias=False):
            super().__init__()
            self.attention = MultiHeadAttention(num_hiddens, num_heads, dropout, use_bias)
            self.addnorm1 = AddNorm(num_hiddens, dropout)
            self.ffn = PositionWiseFFN(ffn_num_hiddens, num_hiddens)
            self.addnorm2 = AddNorm(num_hiddens, dropout)

        def forward(self, X, valid_lens):
            Y = self.addnorm1(X, self.attention(X, X, X, valid_lens))
            return self.addnorm2(Y, self.ffn(Y))

    class PositionalEncoding(nn.Module):
        def __init__(self, num_hiddens, dropout, max_len=1000):
            super().__init__()
            self.dropout = nn.Dropout(dropout)
            self.P = torch.zeros((1, max_len, num_hiddens))
            X = torch.arange(max_len, dtype=torch.float32).reshape(
                -1, 1) / torch.pow(10000, torch.arange(
                    0, num_hiddens, 2, dtype=torch.float32) / num_hiddens)
            self.P[:, :, 0::2] = torch.sin(X)
            self.P[:, :, 1::2] = torch.cos(X)

        def forward(self, X):
            X = X + self.P[:, :X.shape[1], :].to(X.device)
            return self.dropout(X)

    class TransformerEncoder(nn.Module):  # d2l.Encoder is an nn.Module
        def __init__(self, vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_blks,
                     dropout, use_bias=False):
            super().__init__()
            self.num_hiddens = num_hiddens
            self.embedding = nn.Embedding(vocab_size, num_hiddens)
            self.pos_encoding = PositionalEncoding(num_hiddens, dropout)
            self.blks = nn.Sequential()
            for i in range(num_blks):
                self.blks.add_module("block" + str(i), TransformerEncoderBlock(
                    num_hiddens, ffn_num_hiddens, num_heads, dropout, use_bias))

        def forward(self, X, valid_lens):
            X = self.pos_encoding(self.embedding(X) * math.sqrt(self.num_hiddens))
            self.attention_weights = [None] * len(self.blks)
            for i, blk in enumerate(self.blks):
                X = blk(X, valid_lens)
                self.attention_weights[i] = blk.attention.attention.attention_weights
            return X

    return masked_softmax, TransformerEncoderBlock, TransformerEncoder


def _d2l_pair(dev, build, *example):
    """The book's model in both libraries; lazy layers sized by one forward, then torch's
    weights copied in."""
    torch.manual_seed(0)
    th = build(*d2l_transformer_encoder(torch, torch.nn)[1:])
    fl = build(*d2l_transformer_encoder(flambeau, nn)[1:])
    th(*[torch.tensor(x) for x in example])
    fl(*[flambeau.tensor(x) for x in example])
    return copy_weights(fl, th, dev), th


def test_d2l_masked_softmax_matches_torch(dev):
    fl_softmax = d2l_transformer_encoder(flambeau, nn)[0]
    th_softmax = d2l_transformer_encoder(torch, torch.nn)[0]
    x = rand(2, 2, 4)
    for lens in (np.array([2, 3]), np.array([[1, 3], [2, 4]])):
        got = fl_softmax(flambeau.tensor(x, device=dev), flambeau.tensor(lens, device=dev))
        same(got, th_softmax(torch.tensor(x), torch.tensor(lens)))


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_d2l_transformer_encoder_block(dev, train):
    valid_lens = np.array([3, 2])
    fl, th = _d2l_pair(dev, lambda Block, Encoder: Block(24, 48, 8, 0.0 if train else 0.5),
                       rand(2, 10, 24), valid_lens)
    fl.train(train), th.train(train)
    out = compare(dev, lambda m, x, lens: m(x, lens), rand(2, 10, 24), const(valid_lens),
                  fl_module=fl, th_module=th)
    assert out.shape == (2, 10, 24)
    flambeau.optim.SGD(fl.parameters(), lr=0.1).step()
    torch.optim.SGD(th.parameters(), lr=0.1).step()
    ours = fl.state_dict()
    for name, value in th.state_dict().items():
        same(ours[name], value, f"{name} after a step")


def test_d2l_transformer_encoder(dev):
    tokens, valid_lens = np.random.default_rng(3).integers(0, 200, (2, 12)), np.array([3, 2])
    fl, th = _d2l_pair(dev, lambda Block, Encoder: Encoder(200, 24, 48, 8, 2, 0.5), tokens,
                       valid_lens)
    fl.eval(), th.eval()
    out = compare(dev, lambda m, x, lens: m(x, lens), const(tokens), const(valid_lens),
                  fl_module=fl, th_module=th)
    assert out.shape == (2, 12, 24)
    for ours, theirs in zip(fl.attention_weights, th.attention_weights):
        same(ours, theirs, "attention weights")
