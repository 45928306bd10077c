"""Norms (``flambeau.linalg``, ``flambeau.norm``, ``Tensor.norm``) and ``flambeau.nn.utils``
(gradient clipping, parameters as one vector) against PyTorch on identical inputs.

Norm cases run on ``cpu`` and ``opencl:0``: values and the gradients of ``sum(out * w)``
must equal PyTorch's, including at zero (where PyTorch's p-norm gradients are 0).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from torch_reference import assert_same, dtype_name, host

import flambeau
from flambeau import nn
from flambeau.errors import DeviceMismatchError, DTypeError, ShapeError

torch = pytest.importorskip("torch", reason="PyTorch (CPU) is the reference")

INF = math.inf
HAS_OPENCL = flambeau.device_count("opencl") > 0
DEVICES = ["cpu", pytest.param("opencl:0", marks=pytest.mark.skipif(
    not HAS_OPENCL, reason="no OpenCL device (install flambeau-opencl[pocl])"))]
TOL = {"rtol": 1e-4, "atol": 1e-5}  # p-norms raise to fractional powers: float32 rounding

_rng = np.random.default_rng(0)


def _data(*shape: int, zeros: bool = True, dtype: str = "float32") -> np.ndarray:
    """Random values in [-2, 2), with some exact zeros (where gradients need care)."""
    x = _rng.uniform(-2.0, 2.0, size=shape)
    if zeros and x.size > 2:
        x.reshape(-1)[:: 3] = 0.0
    return x.astype(dtype)


def compare(device: str, fn, *arrays: np.ndarray, grad: bool = True) -> None:
    """``fn(lib, *tensors)`` in flambeau on ``device`` and in torch: values, dtypes and the
    gradients of ``sum(out * w)`` (``None`` where torch's is ``None``) must agree."""
    ours = [flambeau.tensor(a, device=device, requires_grad=grad) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=grad) for a in arrays]
    got, want = fn(flambeau, *ours), fn(torch, *theirs)
    assert got.device == flambeau.device(device)
    assert_same(got, want, **TOL)
    if not grad:
        return
    assert got.requires_grad == want.requires_grad
    w = np.random.default_rng(1).uniform(-2, 2, tuple(want.shape)).astype(dtype_name(want.dtype))
    (want * torch.tensor(w)).sum().backward()
    (got * flambeau.tensor(w, device=device)).sum().backward()
    for i, (o, t) in enumerate(zip(ours, theirs)):
        if t.grad is None:
            assert o.grad is None, f"input {i}: got a gradient, torch gives none"
        else:
            assert o.grad is not None, f"input {i}: no gradient, torch gives one"
            assert_same(o.grad, t.grad, what=f"gradient of input {i}", **TOL)


# --- vector_norm ------------------------------------------------------------------------

ORDS = [2, 1, INF, -INF, 0, 3, 1.5, 0.5, -1]
SHAPES_DIMS = [((), None), ((), 0), ((7,), None), ((7,), 0), ((3, 4), None), ((3, 4), 1),
               ((3, 4), (0, 1)), ((2, 3, 4), (0, 2)), ((2, 3, 4), -1), ((2, 3, 4), [])]


@pytest.mark.parametrize("where", DEVICES)
@pytest.mark.parametrize("ord", ORDS, ids=str)
@pytest.mark.parametrize("shape,dim", SHAPES_DIMS, ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
def test_vector_norm(where, ord, shape, dim, keepdim):
    compare(where, lambda lib, x: lib.linalg.vector_norm(x, ord, dim, keepdim), _data(*shape))


@pytest.mark.parametrize("where", DEVICES)
@pytest.mark.parametrize("ord", ORDS, ids=str)
def test_vector_norm_of_zeros_has_pytorch_gradient(where, ord):
    # The 2-norm and p-norms have an infinite slope at 0 (sqrt, fractional powers): a
    # naive composition gives NaN there; PyTorch's gradient (and ours) is 0.
    compare(where, lambda lib, x: lib.linalg.vector_norm(x, ord), np.zeros(5, np.float32))
    compare(where, lambda lib, x: lib.linalg.vector_norm(x, ord, dim=1),
            np.array([[0, 0, 0], [1, 0, -2]], np.float32))
    compare(where, lambda lib, x: lib.linalg.vector_norm(x, ord), np.zeros((), np.float32))


@pytest.mark.parametrize("where", DEVICES)
def test_vector_norm_ties_share_the_inf_norm_gradient(where):
    x = np.array([1.0, -2.0, 2.0, 0.5], np.float32)
    compare(where, lambda lib, x: lib.linalg.vector_norm(x, INF), x)
    compare(where, lambda lib, x: lib.linalg.vector_norm(x, -INF), np.abs(x))


def test_vector_norm_dtype_and_grad_fn_name():
    x = _data(3, 4)
    compare("cpu", lambda lib, x: lib.linalg.vector_norm(x, 3, dtype=lib.float64), x)
    compare("cpu", lambda lib, x: lib.linalg.vector_norm(x, 2), x.astype(np.float64))
    compare("cpu", lambda lib, x: lib.linalg.vector_norm(x, INF, dtype=lib.float64), x)
    for ord in ORDS:
        out = flambeau.linalg.vector_norm(flambeau.tensor(x, requires_grad=True), ord)
        assert "grad_fn=<LinalgVectorNormBackward0>" in repr(out)  # PyTorch's name


def test_vector_norm_of_an_empty_tensor():
    empty = np.zeros((0, 3), np.float32)
    for ord in (2, 1, 0, 3):
        compare("cpu", lambda lib, x, ord=ord: lib.linalg.vector_norm(x, ord), empty)
    compare("cpu", lambda lib, x: lib.linalg.vector_norm(x, INF, dim=1), empty)
    with pytest.raises(ShapeError, match="cannot compute the inf norm on an empty tensor"):
        flambeau.linalg.vector_norm(flambeau.tensor(empty), INF)
    with pytest.raises(ShapeError, match="cannot compute the -1 norm on dimension 0 of shape"):
        flambeau.linalg.vector_norm(flambeau.tensor(empty), -1, dim=0)


def test_vector_norm_errors():
    with pytest.raises(DTypeError, match=r"Expected a floating point tensor as input\. Got int64"):
        flambeau.linalg.vector_norm(flambeau.tensor([1, 2]))
    with pytest.raises(DTypeError, match="dtype should be floating point, but got int64"):
        flambeau.linalg.vector_norm(flambeau.ones(2), dtype=flambeau.int64)
    with pytest.raises(DTypeError, match=r"the dtype of the input \(float64\) should be "
                       r"convertible without narrowing to the specified dtype \(float32\)"):
        flambeau.linalg.vector_norm(flambeau.ones(2, dtype=flambeau.float64),
                                    dtype=flambeau.float32)
    with pytest.raises(TypeError, match="ord must be a number, got 'fro'"):
        flambeau.linalg.vector_norm(flambeau.ones(2), "fro")
    with pytest.raises(ValueError, match="dimension listed twice"):
        flambeau.linalg.vector_norm(flambeau.ones(2, 3), 2, dim=(0, 0))


# --- matrix_norm and linalg.norm --------------------------------------------------------

MATRIX_CASES = [((3, 4), (-2, -1)), ((4, 3), (1, 0)), ((2, 3, 4), (0, 2)), ((2, 3, 4), (2, 0)),
                ((2, 3, 4), (-2, -1)), ((3, 2, 2, 3), (1, 3))]


@pytest.mark.parametrize("where", DEVICES)
@pytest.mark.parametrize("ord", ["fro", 1, -1, INF, -INF], ids=str)
@pytest.mark.parametrize("shape,dim", MATRIX_CASES, ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
def test_matrix_norm(where, ord, shape, dim, keepdim):
    compare(where, lambda lib, A: lib.linalg.matrix_norm(A, ord, dim, keepdim),
            _data(*shape, zeros=False))


def test_matrix_norm_errors():
    A = flambeau.ones(2, 3)
    with pytest.raises(ShapeError, match="must have at least 2 dimensions, got shape \\[3\\]"):
        flambeau.linalg.matrix_norm(flambeau.ones(3))
    with pytest.raises(ShapeError, match="dim must be a 2-tuple, got \\(0,\\)"):
        flambeau.linalg.matrix_norm(A, dim=(0,))
    with pytest.raises(ShapeError, match=r"dims must be different, got \(0, -2\)"):
        flambeau.linalg.matrix_norm(A, dim=(0, -2))
    with pytest.raises(ValueError, match="Order 3 not supported; expected 'fro', 'nuc'"):
        flambeau.linalg.matrix_norm(A, 3)
    with pytest.raises(ValueError, match="Order abc not supported"):
        flambeau.linalg.matrix_norm(A, "abc")
    for ord in ("nuc", 2, -2):
        with pytest.raises(NotImplementedError, match="needs singular values"):
            flambeau.linalg.matrix_norm(A, ord)
    with pytest.raises(DTypeError, match="Expected a floating point tensor"):
        flambeau.linalg.matrix_norm(flambeau.ones(2, 2, dtype=flambeau.int64))


LINALG_NORM_CASES = {
    "default-2d": ((3, 4), {}), "default-3d": ((2, 3, 4), {}),
    "ord1-matrix": ((3, 4), {"ord": 1}), "ordinf-vector": ((5,), {"ord": INF}),
    "fro": ((3, 4), {"ord": "fro"}), "ord1-dim1": ((3, 4), {"ord": 1, "dim": 1}),
    "ord3-dim-tuple1": ((3, 4), {"ord": 3, "dim": (0,)}),
    "ord-inf-dims": ((2, 3, 4), {"ord": -INF, "dim": (2, 1), "keepdim": True}),
    "none-dims": ((2, 3, 4), {"dim": (0, 1)}), "zero-d": ((), {}),
    "dtype": ((3, 4), {"ord": 1, "dtype": "float64"}),
}


@pytest.mark.parametrize("where", DEVICES)
@pytest.mark.parametrize("shape,kwargs", LINALG_NORM_CASES.values(), ids=LINALG_NORM_CASES)
def test_linalg_norm_dispatches_like_pytorch(where, shape, kwargs):
    def fn(lib, A):
        options = dict(kwargs)
        if "dtype" in options:
            options["dtype"] = getattr(lib, options["dtype"])
        return lib.linalg.norm(A, **options)

    compare(where, fn, _data(*shape))


def test_linalg_norm_errors():
    with pytest.raises(ShapeError, match=r"If dim is not specified but ord is, the input must "
                       r"be 1D or 2D\. Got 3D"):
        flambeau.linalg.norm(flambeau.ones(2, 3, 4), 2)
    with pytest.raises(ShapeError, match=r"it must be of length 1 or 2. Got \[0, 1, 2\]"):
        flambeau.linalg.norm(flambeau.ones(2, 3, 4), dim=(0, 1, 2))
    with pytest.raises(ShapeError, match="dim must be a 2-tuple"):
        flambeau.linalg.norm(flambeau.ones(2, 3), "fro", dim=1)


# --- flambeau.norm and Tensor.norm ------------------------------------------------------

TORCH_NORM_CASES = {
    "default": ((3, 4), {}), "p1": ((3, 4), {"p": 1}), "pinf-dim": ((3, 4), {"p": INF, "dim": 1}),
    "p0": ((3, 4), {"p": 0}), "p3-keepdim": ((2, 3, 4), {"p": 3, "dim": (0, 2), "keepdim": True}),
    "none": ((2, 3, 4), {"p": None}), "fro-dim": ((2, 3, 4), {"p": "fro", "dim": (1, 2)}),
    "fro-int-dim": ((2, 3, 4), {"p": "fro", "dim": -1}), "zero-d": ((), {"p": 2}),
    "dtype": ((3, 4), {"dtype": "float64"}),
}


@pytest.mark.parametrize("where", DEVICES)
@pytest.mark.parametrize("shape,kwargs", TORCH_NORM_CASES.values(), ids=TORCH_NORM_CASES)
@pytest.mark.parametrize("as_method", [False, True], ids=["flambeau.norm", "Tensor.norm"])
def test_norm_and_tensor_norm(where, shape, kwargs, as_method):
    def fn(lib, x):
        options = dict(kwargs)
        if "dtype" in options:
            options["dtype"] = getattr(lib, options["dtype"])
        return x.norm(**options) if as_method else lib.norm(x, **options)

    compare(where, fn, _data(*shape))


def test_norm_with_matrix_orders_goes_to_matrix_norm():
    with pytest.raises(NotImplementedError, match="needs singular values"):
        flambeau.ones(2, 3).norm("nuc")
    with pytest.raises(ShapeError, match="dim must be a 2-tuple"):
        flambeau.norm(flambeau.ones(2, 3, 4), "fro", dim=(0, 1, 2))
    with pytest.raises(DTypeError, match="Expected a floating point tensor"):
        flambeau.tensor([3, 4]).norm()


# --- clip_grad_norm_, clip_grad_value_ --------------------------------------------------

SHAPES = [(4, 3), (3,), (), (2, 2, 2)]


def _params(lib, grads: list, device: str = "cpu") -> list:
    """One parameter per gradient (``None``: a parameter without a gradient)."""
    params = []
    for i, g in enumerate(grads):
        shape = SHAPES[i % len(SHAPES)] if g is None else g.shape
        data = np.ones(shape, np.float32) if g is None else np.ones_like(g)
        if lib is torch:
            p = torch.nn.Parameter(torch.tensor(data))
            if g is not None:
                p.grad = torch.tensor(g)
        else:
            p = nn.Parameter(flambeau.tensor(data, device=device))
            if g is not None:
                p.grad = flambeau.tensor(g, device=device)
        params.append(p)
    return params


def _grads(scale: float = 1.0, dtype: str = "float32") -> list:
    rng = np.random.default_rng(3)
    return [(rng.standard_normal(s) * scale).astype(dtype) for s in SHAPES]


def _assert_same_grads(ours: list, theirs: list) -> None:
    for i, (o, t) in enumerate(zip(ours, theirs)):
        if t.grad is None:
            assert o.grad is None
        else:
            assert_same(o.grad, t.grad, what=f"grad {i}", **TOL)


@pytest.mark.parametrize("where", DEVICES)
@pytest.mark.parametrize("norm_type", [2.0, 1, INF, -INF, 3, 0.5, "inf"], ids=str)
@pytest.mark.parametrize("max_norm", [0.5, 1e6], ids=["clips", "leaves"])
def test_clip_grad_norm_matches_pytorch(where, norm_type, max_norm):
    grads = _grads(scale=2.0)
    ours, theirs = _params(flambeau, grads, where), _params(torch, grads)
    got = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    want = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert got.device == flambeau.device(where)
    assert_same(got, want, **TOL)
    _assert_same_grads(ours, theirs)
    if max_norm > 1e3:  # the coefficient is clamped to 1: the gradients are unchanged
        for p, g in zip(ours, grads):
            np.testing.assert_array_equal(host(p.grad), g)


def test_clip_grad_norm_skips_missing_grads_and_takes_one_tensor():
    grads = _grads(scale=3.0)
    grads[1] = None
    ours, theirs = _params(flambeau, grads), _params(torch, grads)
    assert_same(nn.utils.clip_grad_norm_(iter(ours), 1.0),
                torch.nn.utils.clip_grad_norm_(iter(theirs), 1.0))
    _assert_same_grads(ours, theirs)
    assert ours[1].grad is None
    one, their_one = ours[0], theirs[0]
    assert_same(nn.utils.clip_grad_norm_(one, 0.1, norm_type=1),
                torch.nn.utils.clip_grad_norm_(their_one, 0.1, norm_type=1))
    _assert_same_grads([one], [their_one])


def test_clip_grad_norm_with_no_gradients():
    assert_same(nn.utils.clip_grad_norm_([], 1.0), torch.nn.utils.clip_grad_norm_([], 1.0))
    lazy = nn.UninitializedParameter()
    assert_same(nn.utils.clip_grad_norm_([nn.Parameter(flambeau.ones(2)), lazy], 1.0),
                torch.tensor(0.0))
    with pytest.warns(UserWarning, match="`parameters` is an empty generator"):
        nn.utils.clip_grad_norm_((p for p in []), 1.0)


@pytest.mark.parametrize("bad", [INF, math.nan])
def test_clip_grad_norm_nonfinite(bad):
    grads = _grads()
    grads[0][1, 1] = bad
    ours, theirs = _params(flambeau, grads), _params(torch, grads)
    with pytest.raises(RuntimeError) as want:
        torch.nn.utils.clip_grad_norm_(theirs, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError) as got:
        nn.utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    assert str(got.value) == str(want.value)
    _assert_same_grads(ours, theirs)  # untouched by the refused clip
    # Without the check the gradients are scaled by the non-finite norm, as in PyTorch.
    assert_same(nn.utils.clip_grad_norm_(ours, 1.0), torch.nn.utils.clip_grad_norm_(theirs, 1.0))
    _assert_same_grads(ours, theirs)


@pytest.mark.parametrize("foreach", [None, True, False])
def test_clip_grad_norm_accepts_foreach_and_the_new_split_api(foreach):
    grads = _grads(scale=2.0)
    ours, theirs = _params(flambeau, grads), _params(torch, grads)
    total = nn.utils.get_total_norm([p.grad for p in ours], 3.0, foreach=foreach)
    their_total = torch.nn.utils.get_total_norm([p.grad for p in theirs], 3.0, foreach=foreach)
    assert_same(total, their_total, **TOL)
    nn.utils.clip_grads_with_norm_(ours, 1.5, total, foreach=foreach)
    torch.nn.utils.clip_grads_with_norm_(theirs, 1.5, their_total, foreach=foreach)
    _assert_same_grads(ours, theirs)
    assert_same(nn.utils.clip_grad_norm_(ours, 1.0, foreach=foreach),
                torch.nn.utils.clip_grad_norm_(theirs, 1.0, foreach=foreach), **TOL)
    with pytest.warns(FutureWarning, match="deprecated in favor of"):
        nn.utils.clip_grad_norm(ours, 1.0)


def test_clip_grad_norm_mixed_dtypes_promotes_like_pytorch():
    grads = _grads(scale=2.0)
    grads[1] = grads[1].astype(np.float64)
    ours, theirs = _params(flambeau, grads), _params(torch, grads)
    assert_same(nn.utils.clip_grad_norm_(ours, 1.0), torch.nn.utils.clip_grad_norm_(theirs, 1.0))
    _assert_same_grads(ours, theirs)


@pytest.mark.skipif(not HAS_OPENCL, reason="needs a second device (opencl:0)")
@pytest.mark.parametrize("first", ["cpu", "opencl:0"])
def test_clip_grad_norm_over_two_devices(first):
    # Per-device norms, gathered on the first gradient's device, each gradient scaled on
    # its own device.
    other = "opencl:0" if first == "cpu" else "cpu"
    grads = _grads(scale=2.0)
    ours = _params(flambeau, grads[:2], first) + _params(flambeau, grads[2:], other)
    theirs = _params(torch, grads)
    got = nn.utils.clip_grad_norm_(ours, 1.0, norm_type=2)
    assert got.device == flambeau.device(first)
    assert_same(got, torch.nn.utils.clip_grad_norm_(theirs, 1.0), **TOL)
    _assert_same_grads(ours, theirs)
    assert [p.grad.device for p in ours] == [p.device for p in ours]


@pytest.mark.parametrize("where", DEVICES)
def test_clip_grad_value_matches_pytorch(where):
    grads = _grads(scale=2.0) + [None]
    ours, theirs = _params(flambeau, grads, where), _params(torch, grads)
    assert nn.utils.clip_grad_value_(ours, 0.7) is None
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    _assert_same_grads(ours, theirs)
    assert nn.utils.clip_grad_value_(ours[0], 0.1, foreach=True) is None
    torch.nn.utils.clip_grad_value_(theirs[0], 0.1, foreach=True)
    _assert_same_grads(ours, theirs)


def test_clipping_records_nothing():
    w = flambeau.ones(3, requires_grad=True)
    (w * flambeau.tensor([10.0, 20.0, 30.0])).sum().backward()
    total = nn.utils.clip_grad_norm_([w], 1.0)
    assert not total.requires_grad and not w.grad.requires_grad


# --- parameters_to_vector, vector_to_parameters -----------------------------------------


def test_parameters_to_vector_and_back_match_pytorch():
    ours, theirs = nn.Linear(4, 3), torch.nn.Linear(4, 3)
    for p, t in zip(ours.parameters(), theirs.parameters()):
        p.data.copy_(flambeau.tensor(t.detach().numpy()))
    vec = nn.utils.parameters_to_vector(ours.parameters())
    their_vec = torch.nn.utils.parameters_to_vector(theirs.parameters())
    assert_same(vec, their_vec)
    vec.sum().backward()  # in the graph, like PyTorch's
    assert all(np.array_equal(p.grad.numpy(), np.ones(p.shape)) for p in ours.parameters())

    new = _rng.standard_normal(15).astype(np.float32)
    nn.utils.vector_to_parameters(flambeau.tensor(new), ours.parameters())
    torch.nn.utils.vector_to_parameters(torch.tensor(new), theirs.parameters())
    for p, t in zip(ours.parameters(), theirs.parameters()):
        assert_same(p, t)
        assert isinstance(p, nn.Parameter) and p.requires_grad
    # Elements past the last parameter are ignored, as in PyTorch.
    nn.utils.vector_to_parameters(flambeau.zeros(20), ours.parameters())
    assert not ours.weight.detach().numpy().any()


@pytest.mark.skipif(not HAS_OPENCL, reason="needs a second device (opencl:0)")
def test_parameters_to_vector_on_opencl():
    layer = nn.Linear(3, 2).to("opencl:0")
    vec = nn.utils.parameters_to_vector(layer.parameters())
    assert vec.device == flambeau.device("opencl:0") and vec.shape == (8,)
    nn.utils.vector_to_parameters(vec * 2, layer.parameters())
    assert layer.weight.device == flambeau.device("opencl:0")
    np.testing.assert_allclose(host(nn.utils.parameters_to_vector(layer.parameters())),
                               host(vec) * 2)


def test_vector_to_parameters_errors():
    params = list(nn.Linear(3, 2).parameters())
    with pytest.raises(TypeError) as want:
        torch.nn.utils.vector_to_parameters([1.0], [])
    with pytest.raises(TypeError) as got:
        nn.utils.vector_to_parameters([1.0], params)
    assert str(got.value) == str(want.value).replace("torch", "flambeau")
    with pytest.raises(TypeError, match=r"expected flambeau\.Tensor, but got: numpy\.ndarray"):
        nn.utils.vector_to_parameters(np.zeros(8), params)
    before = [host(p) for p in params]
    with pytest.raises(ShapeError, match="vec has 7 elements, the parameters need 8"):
        nn.utils.vector_to_parameters(flambeau.zeros(7), params)
    assert all(np.array_equal(host(p), b) for p, b in zip(params, before))  # none changed
    with pytest.raises(ShapeError, match=r"vec must be 1-d .* got shape \[2, 4\]"):
        nn.utils.vector_to_parameters(flambeau.zeros(2, 4), params)


@pytest.mark.skipif(not HAS_OPENCL, reason="needs a second device (opencl:0)")
def test_parameters_on_two_devices_are_refused():
    params = [nn.Parameter(flambeau.ones(2)), nn.Parameter(flambeau.ones(2, device="opencl:0"))]
    message = "Found two parameters on different devices, this is currently not supported"
    with pytest.raises(TypeError, match=message + ": cpu and opencl:0"):
        nn.utils.parameters_to_vector(params)
    with pytest.raises(TypeError, match=message):
        nn.utils.vector_to_parameters(flambeau.zeros(4), params)
    with pytest.raises(DeviceMismatchError, match="vec is on opencl:0, the parameters on cpu"):
        nn.utils.vector_to_parameters(flambeau.zeros(4, device="opencl:0"), params[:1])


def test_parameters_to_vector_of_nothing():
    with pytest.raises(ValueError, match="got no parameters"):
        nn.utils.parameters_to_vector([])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.utils.vector_to_parameters(flambeau.zeros(0), [])
