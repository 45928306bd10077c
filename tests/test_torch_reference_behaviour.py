"""flambeau against PyTorch where behaviour used to differ silently, and the chapter code
that used to fail (issue 15): dtype mismatches in layers, ``view()`` of non-contiguous
tensors, memory shared with numpy and DLPack, bfloat16, PyTorch's legacy tensor types,
``UninitializedParameter`` and in-place initialisation through a lazy ``.data``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from torch_reference import LIBS, assert_same, rand

import flambeau
from flambeau import nn
from flambeau.errors import DTypeError, ShapeError

torch = pytest.importorskip("torch")
HAS_OPENCL = any(d.type == "opencl" for d in flambeau.devices())
needs_opencl = pytest.mark.skipif(not HAS_OPENCL, reason="no opencl device")

# --- dtype mismatches in layers ---------------------------------------------------------


@pytest.mark.parametrize("dtype", ["int64", "float64"])
def test_linear_refuses_another_input_dtype_like_torch(dtype):
    x = np.ones((2, 3), dtype)
    with pytest.raises(RuntimeError, match="mat1 and mat2 must have the same dtype"):
        torch.nn.Linear(3, 2)(torch.tensor(x))
    with pytest.raises(DTypeError, match=f"mat1 and mat2 must have the same dtype, but the "
                                         f"input is {dtype} and the weight float32"):
        nn.Linear(3, 2)(flambeau.tensor(x))


@pytest.mark.parametrize("dtype", ["int64", "float64"])
def test_conv_refuses_another_input_dtype_like_torch(dtype):
    x = np.ones((1, 1, 4, 4), dtype)
    with pytest.raises(RuntimeError):
        torch.nn.Conv2d(1, 1, 3)(torch.tensor(x))
    with pytest.raises(DTypeError, match=f"{dtype}, float32"):
        nn.Conv2d(1, 1, 3)(flambeau.tensor(x))


# --- view() of non-contiguous tensors -----------------------------------------------------

LAYOUTS = {
    "t": lambda x: x.t(),
    "column_slice": lambda x: x[:, :2],
    "row_slice": lambda x: x[1:],
    "step_slice": lambda x: x[::2],
    "one_column": lambda x: x[:, 1],
    "expand": lambda x: x[:1].expand(3, 4),
    "unsqueezed_expand": lambda x: x[:, None].expand(3, 2, 4),
    "permute": lambda x: x.reshape(3, 2, 2).permute(2, 0, 1),
    "transposed_unsqueeze": lambda x: x.t().unsqueeze(0),
    "size_one_moves": lambda x: x.unsqueeze(0).transpose(0, 1),
    "sliced_after_t": lambda x: x.t()[:, 1:],
    "contiguous": lambda x: x.t().contiguous(),
    "reshape_of_t": lambda x: x.t().reshape(12),
    "detached_t": lambda x: x.t().detach(),
}
SHAPES = [(-1,), (2, -1), (-1, 2), (1, -1), "same+1", "1+same"]


def _shape(shape, t):
    if shape == "same+1":
        return (*t.shape, 1)
    if shape == "1+same":
        return (1, *t.shape)
    return (t.shape[0], -1) if shape == (2, -1) else shape


@pytest.mark.parametrize("make", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_view_raises_exactly_where_torch_does(make):
    host = rand(3, 4)
    made = [make(lib.tensor(host)) for lib in LIBS]
    assert made[0].is_contiguous() == made[1].is_contiguous()
    for shape in SHAPES:
        outcomes = []
        for t in made:
            try:
                outcomes.append(t.view(*_shape(shape, t)))
            except (RuntimeError, ShapeError) as exc:
                outcomes.append(type(exc))
        if outcomes[1] is RuntimeError:
            assert outcomes[0] is ShapeError, f"view{shape}: torch raises, flambeau gives a view"
        else:
            assert_same(outcomes[0], outcomes[1], what=f"view{shape}")
        if outcomes[1] is not RuntimeError or made[1].numel() % 2 == 0:
            assert_same(made[0].reshape(*_shape(shape, made[0])),
                        made[1].reshape(*_shape(shape, made[1])))


def test_view_error_names_reshape_and_views_write_through():
    x = flambeau.arange(12.0).reshape(3, 4)
    with pytest.raises(ShapeError, match=r"view size is not compatible with input tensor's "
                                         r"size and stride .* Use \.reshape\(\.\.\.\) instead"):
        x.t().view(12)
    x.t().view(4, 3, 1)[0, 1, 0] = 100.0  # a real view: the write reaches x
    assert x[1, 0].item() == 100.0
    y = x[:, :2].view(3, 1, 2)
    y.mul_(0)
    assert x[:, :2].sum().item() == 0 and x[:, 2:].sum().item() != 0
    assert x.t().contiguous().view(12).tolist() == x.t().reshape(12).tolist()


# --- memory shared with numpy and DLPack --------------------------------------------------


def test_from_numpy_and_numpy_share_memory_on_cpu_like_torch():
    for lib in LIBS:
        a = np.zeros(3, np.float32)
        t = lib.from_numpy(a)
        a[0] = 5.0
        t.add_(1)
        t.numpy()[2] = 7.0
        assert a.tolist() == [6.0, 1.0, 7.0] and t.tolist() == [6.0, 1.0, 7.0], lib.__name__
        assert np.shares_memory(t.numpy(), a)


def test_from_numpy_keeps_layout_and_copies_what_it_cannot_share():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = flambeau.from_numpy(a.T)
    assert not t.is_contiguous() and t.tolist() == a.T.tolist()
    with pytest.raises(ShapeError, match="view size is not compatible"):
        t.view(12)
    frozen = np.ones(2, np.float32)
    frozen.flags.writeable = False
    copy = flambeau.from_numpy(frozen)  # (PyTorch warns and shares a read-only array)
    copy.add_(1)
    assert frozen.tolist() == [1.0, 1.0]


@needs_opencl
def test_numpy_of_a_device_tensor_is_a_copy():
    t = flambeau.zeros(2, device="opencl:0")
    host = t.numpy()
    host[0] = 3.0
    assert t.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("source", ["torch", "numpy"])
def test_from_dlpack_of_host_memory_shares_it(source):
    data = torch.zeros(3) if source == "torch" else np.zeros(3, np.float32)
    t = flambeau.from_dlpack(data)
    data[0] = 4.0
    assert t.device == flambeau.device("cpu") and t.tolist() == [4.0, 0.0, 0.0]
    t.add_(1)
    assert data.tolist() == [5.0, 1.0, 1.0]


# --- bfloat16 ------------------------------------------------------------------------------

pytest.importorskip("ml_dtypes")
BF16 = {
    "cast": lambda lib, x: x.to(lib.bfloat16),
    "add": lambda lib, x: x.to(lib.bfloat16) + x.to(lib.bfloat16) * 3,
    "div_exp": lambda lib, x: (x.to(lib.bfloat16) / 3).exp(),
    "scalar": lambda lib, x: x.to(lib.bfloat16) * 0.1 + 2.5,
    "matmul": lambda lib, x: x.to(lib.bfloat16) @ x.to(lib.bfloat16).t(),
    "sum": lambda lib, x: x.to(lib.bfloat16).sum(1),
    "mean": lambda lib, x: x.to(lib.bfloat16).mean(),
    "promote_float32": lambda lib, x: x.to(lib.bfloat16) + x,
    "promote_float16": lambda lib, x: x.to(lib.bfloat16) + x.half(),
    "back_to_float32": lambda lib, x: x.to(lib.bfloat16).float() * 1.001,
    "linear": lambda lib, x: lib.nn.functional.linear(x.to(lib.bfloat16),
                                                      x.to(lib.bfloat16)[:2]),
}


@pytest.mark.parametrize("fn", list(BF16.values()), ids=list(BF16))
def test_bfloat16_computes_like_torch_on_cpu(fn):
    host = rand(3, 40)
    got, want = (fn(lib, lib.tensor(host)) for lib in LIBS)
    assert str(got.dtype) == str(want.dtype).removeprefix("torch.")
    # One bfloat16 ulp (2**-8 relative): rounding of float32 sums may differ at the last bit.
    np.testing.assert_allclose(got.float().numpy(), want.float().numpy(), rtol=2**-7,
                               atol=1e-3)


def test_bfloat16_softmax_runs_in_float32_like_torch():
    """A composition would round each of its steps; PyTorch rounds once, and so does
    flambeau (softmax and log_softmax of bfloat16 run in float32)."""
    host = rand(3, 40)
    got, want = (lib.softmax(lib.tensor(host).to(lib.bfloat16), 1) for lib in LIBS)
    assert got.dtype == flambeau.bfloat16
    np.testing.assert_allclose(got.float().numpy(), want.float().numpy(), rtol=2**-7)


def test_bfloat16_gradients_like_torch():
    host = rand(3, 4)
    grads = []
    for lib in LIBS:
        w = lib.tensor(host).to(lib.bfloat16).requires_grad_()
        ((w * w).sum() + (w @ w.t()).sum()).backward()
        assert str(w.grad.dtype).endswith("bfloat16")
        grads.append(w.grad.float().numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=2**-7, atol=1e-2)


def test_bfloat16_names_repr_and_types():
    x = flambeau.tensor([1.5, -2.0]).to(flambeau.bfloat16)
    assert x.dtype == flambeau.bfloat16 and x.dtype.itemsize == 2
    assert repr(x) == repr(torch.tensor([1.5, -2.0]).bfloat16()).replace("torch", "flambeau")
    assert x.type() == "flambeau.BFloat16Tensor" and x.is_floating_point()
    assert isinstance(x, flambeau.BFloat16Tensor)
    assert flambeau.tensor([1.0], dtype=flambeau.bfloat16).dtype == flambeau.bfloat16


def test_bfloat16_safetensors_round_trip_with_torch(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    theirs = {"w": torch.randn(3, 5).bfloat16(), "b": torch.arange(4.0).bfloat16()}
    st.save_file(theirs, tmp_path / "torch.safetensors")
    ours = flambeau.load(tmp_path / "torch.safetensors")
    for name, t in theirs.items():
        assert ours[name].dtype == flambeau.bfloat16
        assert ours[name].float().tolist() == t.float().tolist()
    flambeau.save(ours, tmp_path / "ours.safetensors")
    back = st.load_file(tmp_path / "ours.safetensors")
    assert all(torch.equal(back[name], t) for name, t in theirs.items())


def test_bfloat16_dlpack_is_refused_clearly():
    with pytest.raises(DTypeError, match="DLPack export of bfloat16"):
        flambeau.tensor([1.0]).to(flambeau.bfloat16).__dlpack__()
    with pytest.raises(DTypeError, match="from_dlpack: numpy cannot import"):
        flambeau.from_dlpack(torch.ones(2, dtype=torch.bfloat16))


@needs_opencl
def test_bfloat16_is_refused_on_a_device_without_it(tmp_path):
    message = "opencl:0 does not support bfloat16"
    x = flambeau.ones(2, dtype=flambeau.bfloat16)
    for make in (lambda: x.to("opencl:0"), lambda: flambeau.ones(2, device="opencl:0").to(
            flambeau.bfloat16), lambda: flambeau.tensor([1.0], dtype="bfloat16",
                                                        device="opencl:0")):
        with pytest.raises(DTypeError, match=message):
            make()
    flambeau.save({"x": x}, tmp_path / "x.safetensors")
    with pytest.raises(DTypeError, match=message):
        flambeau.load(tmp_path / "x.safetensors", device="opencl:0")


# --- PyTorch's legacy tensor types ------------------------------------------------------------

TYPES = ["FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "LongTensor",
         "IntTensor", "ShortTensor", "CharTensor", "ByteTensor", "BoolTensor"]


@pytest.mark.parametrize("name", TYPES)
def test_tensor_types_construct_and_check_like_torch(name):
    made = [getattr(lib, name)([1, 0, 2]) for lib in LIBS]
    assert str(made[0].dtype) == str(made[1].dtype).removeprefix("torch.")
    assert made[0].tolist() == made[1].tolist()
    assert tuple(getattr(flambeau, name)(2, 3).shape) == (2, 3)
    assert tuple(getattr(flambeau, name)().shape) == (0,)
    for other in TYPES:
        checks = [isinstance(t, getattr(lib, other)) for t, lib in zip(made, LIBS)]
        assert checks[0] == checks[1], (name, other)
    assert made[0].type() == made[1].type().replace("torch", "flambeau")


def test_tensor_types_of_float_data_truncate_like_torch():
    assert flambeau.LongTensor([1.7, -2.5]).tolist() == torch.LongTensor([1.7, -2.5]).tolist()
    assert not isinstance(flambeau.zeros(2), flambeau.LongTensor)


# --- lazy parameters --------------------------------------------------------------------------


def test_uninitialized_parameter_and_buffer_are_classes_for_isinstance():
    for lib in LIBS:
        p = lib.nn.parameter
        m, bn = lib.nn.LazyLinear(2), lib.nn.LazyBatchNorm1d()
        assert isinstance(m.weight, p.UninitializedParameter), lib.__name__
        assert isinstance(bn.running_mean, p.UninitializedBuffer)
        assert not isinstance(bn.running_mean, p.UninitializedParameter)
        assert not isinstance(m.weight, p.UninitializedBuffer)
        m(lib.ones(1, 3))
        assert not isinstance(m.weight, p.UninitializedParameter)
        assert isinstance(m.weight, lib.nn.Parameter)
    assert type(nn.LazyLinear(2).weight) is nn.Parameter  # laziness is a state, not a class
    made = nn.parameter.UninitializedParameter()
    assert isinstance(made, nn.parameter.UninitializedParameter) and made.requires_grad


def test_inplace_init_through_lazy_data_waits_for_the_shapes():
    flambeau.manual_seed(0)
    net = nn.LazyLinear(1)
    assert net.weight.data.normal_(0, 0.01) is not None  # D2L's concise linear regression
    net.bias.data.fill_(0)
    nn.init.constant_(net.bias.data, 3.0)  # nn.init on the .data of a lazy parameter too
    net.bias.data.zero_().add_(0.5)
    out = net(flambeau.ones(100, 400))
    assert out.shape == (100, 1) and net.bias.tolist() == [0.5]
    std = net.weight.std().item()
    assert 0.007 < std < 0.013, std  # normal_(0, 0.01), not the default init (~0.029)
    with pytest.raises(flambeau.nn.UninitializedParameterError, match="uninitialized"):
        nn.LazyLinear(1).weight.data.shape  # noqa: B018


def test_torch_discards_inplace_init_of_lazy_data():
    """The difference documented in docs/differences-from-pytorch.md."""
    net = torch.nn.LazyLinear(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.bias.data.fill_(5.0)
    net(torch.ones(2, 3))
    assert net.bias.item() != 5.0
