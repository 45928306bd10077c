"""flambeau against PyTorch where it used to differ: ``inplace=True`` on activations and
dropout (computed out of place before), ``one_hot`` of indices that are not int64 and a
class ``weight`` of another dtype than the logits in ``cross_entropy``/``nll_loss``
(both accepted before; PyTorch raises a ``RuntimeError``), ``one_hot`` of an empty tensor
without ``num_classes``, and a soft-target class weight of a wider dtype (promoted)."""

from __future__ import annotations

import numpy as np
import pytest
from torch_reference import LIBS, assert_same, host, rand

import flambeau
from flambeau.errors import DTypeError

torch = pytest.importorskip("torch")

LEAF_ERROR = "a leaf Variable that requires grad is being used in an in-place operation"
VERSION_ERROR = r"modified by an in-?place operation"  # (PyTorch writes "inplace")

# name -> (call with inplace, whether PyTorch's backward reads the output, so that a later
# in-place change of it fails the backward)
ACTIVATIONS = {
    "relu": (lambda F, x, ip: F.relu(x, inplace=ip), True),
    "relu_positional": (lambda F, x, ip: F.relu(x, ip), True),
    "leaky_relu": (lambda F, x, ip: F.leaky_relu(x, 0.2, inplace=ip), True),
    "elu": (lambda F, x, ip: F.elu(x, 0.7, inplace=ip), True),
    "selu": (lambda F, x, ip: F.selu(x, inplace=ip), True),
    "silu": (lambda F, x, ip: F.silu(x, inplace=ip), False),
    "mish": (lambda F, x, ip: F.mish(x, inplace=ip), False),
    "hardswish": (lambda F, x, ip: F.hardswish(x, inplace=ip), False),
    "hardsigmoid": (lambda F, x, ip: F.hardsigmoid(x, inplace=ip), False),
}
MODULES = {
    "ReLU": lambda nn: nn.ReLU(inplace=True),
    "LeakyReLU": lambda nn: nn.LeakyReLU(0.2, inplace=True),
    "ELU": lambda nn: nn.ELU(0.7, inplace=True),
    "SELU": lambda nn: nn.SELU(inplace=True),
    "SiLU": lambda nn: nn.SiLU(inplace=True),
    "Mish": lambda nn: nn.Mish(inplace=True),
    "Hardswish": lambda nn: nn.Hardswish(inplace=True),
    "Hardsigmoid": lambda nn: nn.Hardsigmoid(inplace=True),
}
X = np.array([[-4.0, -1.5, -0.25, 0.0], [0.5, 1.0, 2.5, 4.0]], np.float32)


def _version(t):
    return t._version if isinstance(t, torch.Tensor) else t._version[0]


def _tensor(lib, array, device):
    return lib.tensor(array) if lib is torch else flambeau.tensor(array, device=device)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_inplace_activation_writes_into_its_input(device, name):
    call = ACTIVATIONS[name][0]
    for lib in LIBS:
        x = _tensor(lib, X, device)
        want = call(lib.nn.functional, x.clone(), False)
        before = _version(x)
        y = call(lib.nn.functional, x, True)
        assert y is x, f"{lib.__name__}: inplace=True must return the input itself"
        assert _version(x) == before + 1
        np.testing.assert_allclose(host(x), host(want), rtol=1e-6)
    assert_same(call(flambeau.nn.functional, _tensor(flambeau, X, device), True),
                call(torch.nn.functional, torch.tensor(X), True))


@pytest.mark.parametrize("name", MODULES)
def test_inplace_activation_module(device, name):
    results = []
    for lib in LIBS:
        layer = MODULES[name](lib.nn)
        x = _tensor(lib, X, device)
        assert layer(x) is x
        results.append(x)
    assert_same(*results)
    assert repr(MODULES[name](flambeau.nn)) == repr(MODULES[name](torch.nn))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_inplace_activation_gradients_match_out_of_place(device, name):
    call = ACTIVATIONS[name][0]
    grads = {}
    for lib in LIBS:
        for inplace in (False, True):
            w = _tensor(lib, X, device).requires_grad_(True)
            h = w * 1.5
            out = call(lib.nn.functional, h, inplace)
            assert (out is h) == inplace and out.requires_grad
            (out * _tensor(lib, X + 1, device)).sum().backward()
            grads[lib, inplace] = w.grad
    for inplace in (False, True):
        assert_same(grads[flambeau, inplace], grads[torch, False], rtol=1e-5, atol=1e-6)
    assert_same(grads[flambeau, True], grads[torch, True], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_inplace_activation_errors_where_torch_does(device, name):
    call, reads_output = ACTIVATIONS[name]
    for lib in LIBS:
        leaf = _tensor(lib, X, device).requires_grad_(True)
        with pytest.raises(RuntimeError, match=LEAF_ERROR):
            call(lib.nn.functional, leaf, True)
        with lib.no_grad():  # outside the graph a leaf may change (as optimizers do)
            assert call(lib.nn.functional, leaf, True) is leaf
        saved = _tensor(lib, X, device).requires_grad_(True).exp()  # exp keeps its output
        call(lib.nn.functional, saved, True)
        with pytest.raises(RuntimeError, match=VERSION_ERROR):
            saved.sum().backward()
        h = _tensor(lib, X, device).requires_grad_(True) * 2
        call(lib.nn.functional, h, True).add_(1)  # changes the activation's output
        if reads_output:
            with pytest.raises(RuntimeError, match=VERSION_ERROR):
                h.sum().backward()
        else:
            h.sum().backward()


def test_sequential_with_inplace_relu_trains_like_torch():
    """Linear/Conv2d -> ReLU(inplace=True): outputs and every gradient agree with torch."""
    models = []
    for lib in LIBS:
        nn = lib.nn
        conv = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(inplace=True),
                             nn.Flatten(), nn.Linear(3 * 4 * 4, 5), nn.ReLU(inplace=True),
                             nn.Dropout(0.5, inplace=True), nn.Linear(5, 2))
        models.append(conv)
    f_model, t_model = models
    for f_param, t_param in zip(f_model.parameters(), t_model.parameters()):
        with flambeau.no_grad():
            f_param.copy_(flambeau.tensor(t_param.detach().numpy()))
    x, weights = rand(3, 2, 4, 4), rand(3, 2, low=-1, high=1)
    outs, in_place = [], []
    for lib, model in zip(LIBS, models):
        model.eval()  # dropout: the identity, in place or not
        for layer in model:
            if isinstance(layer, (lib.nn.ReLU, lib.nn.Dropout)):
                layer.register_forward_hook(lambda m, args, out: in_place.append(out is args[0]))
        out = model(lib.tensor(x))
        (out * lib.tensor(weights)).sum().backward()
        outs.append(out)
    assert_same(*outs)
    assert in_place == [True] * 6
    for f_param, t_param in zip(f_model.parameters(), t_model.parameters()):
        assert_same(f_param.grad, t_param.grad, rtol=1e-5, atol=1e-6)


# --- dropout ----------------------------------------------------------------------------

DROPOUTS = {
    "dropout": (lambda F, x, p, train: F.dropout(x, p, train, True), (2, 6)),
    "dropout1d": (lambda F, x, p, train: F.dropout1d(x, p, train, True), (2, 3, 4)),
    "dropout1d_unbatched": (lambda F, x, p, train: F.dropout1d(x, p, train, True), (3, 4)),
    "dropout2d": (lambda F, x, p, train: F.dropout2d(x, p, train, True), (2, 3, 2, 2)),
    "Dropout": (lambda F, x, p, train: _module("Dropout", F, p, train)(x), (2, 6)),
    "Dropout1d": (lambda F, x, p, train: _module("Dropout1d", F, p, train)(x), (2, 3, 4)),
    "Dropout2d": (lambda F, x, p, train: _module("Dropout2d", F, p, train)(x), (2, 3, 2, 2)),
}


def _module(name, F, p, train):
    nn = torch.nn if F is torch.nn.functional else flambeau.nn
    return getattr(nn, name)(p, inplace=True).train(train)


@pytest.mark.parametrize("name", DROPOUTS)
@pytest.mark.parametrize(("p", "train"), [(0.5, False), (0.0, True), (1.0, True)])
def test_inplace_dropout_like_torch(device, name, p, train):
    call, shape = DROPOUTS[name]
    x_np = rand(*shape)
    results = []
    for lib in LIBS:
        x = _tensor(lib, x_np, device)
        assert call(lib.nn.functional, x, p, train) is x
        results.append(x)
        if p == 1:
            assert not x.any().item()  # every element (every channel) dropped, in x
        else:
            assert (x.cpu() == lib.tensor(x_np)).all().item()
        leaf = _tensor(lib, x_np, device).requires_grad_(True)
        if p == 1 or name == "dropout1d_unbatched":  # (the latter: PyTorch's unsqueeze_)
            with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
                call(lib.nn.functional, leaf, p, train)
        else:  # untouched: a leaf is fine
            assert call(lib.nn.functional, leaf, p, train) is leaf
    assert_same(*results)


def test_inplace_feature_dropout_keeps_the_graph(device):
    """Channels dropped in place: x's gradient is the mask over 1 - p, as out of place."""
    flambeau.manual_seed(3)
    w = flambeau.ones(4, 8, 5, device=device, requires_grad=True)
    h = w * 1.0
    out = flambeau.nn.functional.dropout1d(h, 0.5, True, inplace=True)
    assert out is h
    out.sum().backward()
    kept = (h.detach() != 0).cpu()
    assert 0 < kept.sum().item() < kept.numel()
    assert (w.grad.cpu() == kept * 2.0).all().item()
    assert (kept.all(2) | ~kept.any(2)).all().item()  # whole channels


# --- one_hot ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["int32", "int16", "int8", "uint8", "bool", "float32",
                                   "float64"])
@pytest.mark.parametrize("num_classes", [3, -1])
def test_one_hot_takes_int64_indices_only(device, dtype, num_classes):
    indices = np.array([0, 1, 1])
    message = "one_hot is only applicable to index tensor of type LongTensor"
    with pytest.raises(RuntimeError, match=message):
        torch.nn.functional.one_hot(torch.tensor(indices.astype(dtype)), num_classes)
    x = flambeau.tensor(indices.astype(dtype), device=device)
    with pytest.raises(RuntimeError, match=message) as info:
        flambeau.nn.functional.one_hot(x, num_classes)
    assert isinstance(info.value, DTypeError) and dtype in str(info.value)
    empty = flambeau.tensor(np.zeros(0, dtype), device=device)
    with pytest.raises(RuntimeError, match=message):
        flambeau.nn.functional.one_hot(empty, 3)


def test_one_hot_of_int64_matches_torch(device):
    indices = np.array([[0, 2], [1, 0]])
    got = flambeau.nn.functional.one_hot(flambeau.tensor(indices, device=device), 4)
    assert_same(got, torch.nn.functional.one_hot(torch.tensor(indices), 4))


# --- class weights of another dtype -------------------------------------------------------

LOSSES = {
    "cross_entropy": lambda lib, x, t, w: lib.nn.functional.cross_entropy(x, t, weight=w),
    "cross_entropy_sum": lambda lib, x, t, w: lib.nn.functional.cross_entropy(
        x, t, weight=w, reduction="sum"),
    "cross_entropy_none": lambda lib, x, t, w: lib.nn.functional.cross_entropy(
        x, t, weight=w, reduction="none"),
    "cross_entropy_smoothing": lambda lib, x, t, w: lib.nn.functional.cross_entropy(
        x, t, weight=w, label_smoothing=0.1),
    "cross_entropy_ignore": lambda lib, x, t, w: lib.nn.functional.cross_entropy(
        x, t, weight=w, ignore_index=1),
    "cross_entropy_unbatched": lambda lib, x, t, w: lib.nn.functional.cross_entropy(
        x[0], t[0], weight=w),
    "nll_loss": lambda lib, x, t, w: lib.nn.functional.nll_loss(x.log_softmax(1), t, w),
    "nll_loss_unbatched": lambda lib, x, t, w: lib.nn.functional.nll_loss(x[0], t[0], w),
    "CrossEntropyLoss": lambda lib, x, t, w: lib.nn.CrossEntropyLoss(weight=w)(x, t),
    "NLLLoss": lambda lib, x, t, w: lib.nn.NLLLoss(weight=w)(x.log_softmax(1), t),
}


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize(("input_dtype", "weight_dtype"), [
    ("float32", "float64"), ("float64", "float32"), ("float32", "float16"),
    ("float32", "int64")])
def test_class_weight_of_another_dtype_is_refused_like_torch(name, input_dtype, weight_dtype):
    loss = LOSSES[name]
    x, t, w = rand(4, 3, dtype=input_dtype), np.array([0, 1, 2, 1]), np.array([1, 2, 3])
    with pytest.raises(RuntimeError, match="expected scalar type"):
        loss(torch, torch.tensor(x), torch.tensor(t), torch.tensor(w.astype(weight_dtype)))
    with pytest.raises(RuntimeError, match=f"expected scalar type {input_dtype} but found "
                                           f"{weight_dtype}") as info:
        loss(flambeau, flambeau.tensor(x), flambeau.tensor(t),
             flambeau.tensor(w.astype(weight_dtype)))
    assert isinstance(info.value, DTypeError)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_class_weight_of_the_input_dtype_matches_torch(device, name, dtype):
    loss = LOSSES[name]
    x, t, w = rand(4, 3, dtype=dtype), np.array([0, 1, 2, 1]), np.array([1.0, 2.0, 0.5])
    if dtype not in device.info.dtypes:
        pytest.skip(f"{device} has no {dtype}")
    got = loss(flambeau, flambeau.tensor(x, device=device), flambeau.tensor(t, device=device),
               flambeau.tensor(w.astype(dtype), device=device))
    assert_same(got, loss(torch, torch.tensor(x), torch.tensor(t),
                          torch.tensor(w.astype(dtype))))


def test_one_hot_of_an_empty_tensor(device):
    empty = np.zeros(0, np.int64)
    with pytest.raises(RuntimeError, match="Can not infer total number of classes"):
        torch.nn.functional.one_hot(torch.tensor(empty), -1)
    with pytest.raises(flambeau.errors.ShapeError, match=r"infer the number of classes.*"
                                                         r"pass num_classes"):
        flambeau.nn.functional.one_hot(flambeau.tensor(empty, device=device), -1)
    assert_same(flambeau.nn.functional.one_hot(flambeau.tensor(empty, device=device), 3),
                torch.nn.functional.one_hot(torch.tensor(empty), 3))


@pytest.mark.parametrize(("input_dtype", "weight_dtype", "smoothing"), [
    ("float32", "float64", 0.0), ("float64", "float32", 0.0), ("float32", "float64", 0.1)])
def test_soft_target_class_weight_promotes_like_torch(input_dtype, weight_dtype, smoothing):
    """With class probabilities as targets PyTorch takes a weight of another dtype and
    promotes: the loss has the wider dtype, the input's gradient the input's."""
    x, t = rand(4, 3, dtype=input_dtype), rand(4, 3, dtype=input_dtype)
    w = np.array([1.0, 2.0, 0.5], weight_dtype)
    results = []
    for lib in LIBS:
        xs = lib.tensor(x, requires_grad=True)
        loss = lib.nn.functional.cross_entropy(xs, lib.tensor(t), weight=lib.tensor(w),
                                               label_smoothing=smoothing)
        loss.backward()
        results.append((loss, xs.grad))
    (f_loss, f_grad), (t_loss, t_grad) = results
    assert str(f_loss.dtype).split(".")[-1] == str(t_loss.dtype).split(".")[-1] == "float64"
    assert_same(f_loss, t_loss, rtol=1e-6, atol=1e-7)  # (float32 log-softmax either way)
    assert_same(f_grad, t_grad, rtol=1e-6, atol=1e-7)
