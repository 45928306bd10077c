"""Checks of the optional fused kernels a device has, against the core's compositions.

For each fused kernel of :data:`~flambeau.backends.OPTIONAL_KERNELS` covered here
(convolution, pooling, optimizer updates, softmax and cross-entropy, layer and batch
norm), a check calls the device's kernel directly and compares its result with the
reference composition the core runs when a backend lacks it, computed on the same device
from required kernels only: one :func:`~flambeau.testing.check_fused` call each, but for
the optimizer updates, which run several steps in place. A device without a kernel skips
its checks: the composition is then what runs, and ``op_checks`` covers it.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import flambeau
from flambeau._device import kernels_for
from flambeau._ops import conv as _conv
from flambeau._ops import loss as _loss
from flambeau._ops import normalization as _norm
from flambeau._ops import pooling as _pool
from flambeau._ops import softmax as _softmax

from ._compare import assert_close
from ._opcheck import check_fused
from .kernel_checks import _require

FLOATS = ("float32", "float64")

# (x shape, w shape, stride, padding, dilation, groups)
CONV_CASES = {
    "plain": ((2, 3, 7, 6), (4, 3, 3, 3), (1, 1), (0, 0), (1, 1), 1),
    "padded": ((2, 3, 7, 6), (4, 3, 3, 2), (1, 1), (2, 1), (1, 1), 1),
    "strided": ((2, 3, 9, 8), (4, 3, 3, 3), (2, 3), (1, 0), (1, 1), 1),
    "dilated": ((1, 2, 9, 9), (3, 2, 3, 2), (1, 1), (1, 2), (2, 3), 1),
    "groups": ((2, 4, 6, 7), (6, 2, 2, 3), (2, 1), (1, 1), (1, 2), 2),
    "depthwise": ((2, 3, 5, 5), (3, 1, 3, 3), (1, 1), (1, 1), (1, 1), 3),
    "1x1": ((3, 5, 4, 4), (2, 5, 1, 1), (1, 1), (0, 0), (1, 1), 1),
    "floor": ((2, 2, 8, 7), (3, 2, 3, 3), (3, 2), (0, 0), (1, 1), 1),
}

# (x shape, kernel, stride, padding, dilation, ceil_mode)
POOL_CASES = {
    "2x2": ((2, 3, 8, 6), (2, 2), (2, 2), (0, 0), (1, 1), False),
    "overlap": ((2, 3, 7, 7), (3, 3), (2, 2), (1, 1), (1, 1), False),
    "ceil": ((1, 2, 7, 8), (3, 2), (2, 3), (1, 0), (1, 1), True),
    "dilated": ((1, 2, 9, 9), (3, 2), (2, 1), (1, 1), (2, 2), True),
    "stride1": ((2, 2, 5, 6), (2, 3), (1, 1), (0, 1), (1, 1), False),
}


def _kernel(device, name: str):
    kernel = getattr(kernels_for(device), name, None)
    if kernel is None:
        pytest.skip(f"{device} has no fused {name} kernel; the core's composition runs "
                    "instead")
    return kernel


def _tensor(host: np.ndarray, device) -> flambeau.Tensor:
    return flambeau.tensor(host, dtype=host.dtype, device=device)


def _random(shape, dtype, seed: int) -> np.ndarray:
    # Distinct values (no ties), so that max pooling has one answer.
    rng = np.random.default_rng(seed)
    values = rng.permutation(int(np.prod(shape))).reshape(shape) / max(np.prod(shape), 1)
    return (values * 4 - 2 + rng.uniform(0, 1e-3, shape)).astype(dtype)


def _loose(dtype) -> dict:
    """Tolerances of a kernel that sums in another order than the composition."""
    return {"float32": {"rtol": 1e-4, "atol": 1e-5},
            "float64": {"rtol": 1e-10, "atol": 1e-12}}[np.dtype(dtype).name]


def _conv_inputs(case: str, dtype: str):
    x_shape, w_shape, stride, padding, dilation, groups = CONV_CASES[case]
    args = _conv.ConvArgs(stride, padding, dilation, groups)
    out = tuple(flambeau.backends.window_count(n, k, s, p, d) for n, k, s, p, d in zip(
        x_shape[2:], w_shape[2:], stride, padding, dilation))
    g_shape = (x_shape[0], w_shape[0], *out)
    return (_random(x_shape, dtype, 1), _random(w_shape, dtype, 2), _random(g_shape, dtype, 3),
            args)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_fused_conv2d(device, supported_dtypes, case, dtype):
    _require(supported_dtypes, dtype)
    x, w, _, args = _conv_inputs(case, dtype)
    check_fused("conv2d", lambda x, w, *_: _conv.conv2d_op(x, w, args, fused=False),
                [x, w, *args], device, what=f"conv2d {case}", **_loose(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_fused_conv2d_grad_input(device, supported_dtypes, case, dtype):
    _require(supported_dtypes, dtype)
    x, w, g, args = _conv_inputs(case, dtype)
    check_fused("conv2d_grad_input", _conv_grad_input_reference(args), [g, w, x.shape, *args],
                device, what=f"conv2d_grad_input {case}", **_loose(dtype))


def _conv_grad_input_reference(args):
    return lambda g, w, shape, *_: _conv.conv2d_grad_input_op(g, w, shape, args, fused=False)


@pytest.mark.parametrize("extra", [(1, 0), (0, 2), (1, 1)])
def test_fused_conv2d_grad_input_larger_input(device, supported_dtypes, extra):
    """An x_shape with rows or columns no window reads (conv_transpose2d's output_padding)
    gets zeros there."""
    _require(supported_dtypes, "float32")
    x, w, g, args = _conv_inputs("strided", "float32")
    x_shape = (*x.shape[:2], x.shape[2] + extra[0], x.shape[3] + extra[1])
    check_fused("conv2d_grad_input", _conv_grad_input_reference(args), [g, w, x_shape, *args],
                device, **_loose("float32"))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_fused_conv2d_grad_weight(device, supported_dtypes, case, dtype):
    _require(supported_dtypes, dtype)
    x, w, g, args = _conv_inputs(case, dtype)
    check_fused("conv2d_grad_weight",
                lambda g, x, shape, *_: _conv.conv2d_grad_weight_op(g, x, shape, args,
                                                                    fused=False),
                [g, x, w.shape, *args], device, what=f"conv2d_grad_weight {case}",
                **_loose(dtype))


def _pool_inputs(case: str, dtype: str, device):
    x_shape, kernel, stride, padding, dilation, ceil_mode = POOL_CASES[case]
    x = _random(x_shape, dtype, 4)
    args = _pool.pool_args("pool", _tensor(x, device), kernel, stride, padding, dilation,
                            ceil_mode, x_shape)
    return x, _random((*x_shape[:2], *args.out), dtype, 5), args


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_fused_max_pool2d(device, supported_dtypes, case, dtype):
    _require(supported_dtypes, dtype)
    x, _, args = _pool_inputs(case, dtype, device)
    check_fused("max_pool2d", lambda x, *_: _pool.max_pool2d_op(x, args, fused=False),
                [x, *args[:5]], device, what=f"max_pool2d {case}")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_fused_max_pool2d_grad(device, supported_dtypes, case, dtype):
    _kernel(device, "max_pool2d_grad")  # skip before computing the indices
    _require(supported_dtypes, dtype)
    x, g, args = _pool_inputs(case, dtype, device)
    _, indices = _pool.max_pool2d_op(_tensor(x, device), args, fused=False)
    check_fused("max_pool2d_grad",
                lambda g, i, shape, *_: _pool.max_pool2d_grad_op(g, i, shape, args, fused=False),
                [g, indices.numpy(), x.shape, *args[:5]], device,
                what=f"max_pool2d_grad {case}", **_loose(dtype))


_AVG_OPTIONS = [(True, None), (False, None), (True, 3)]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("options", _AVG_OPTIONS, ids=["include_pad", "exclude_pad", "divisor"])
@pytest.mark.parametrize("case", [c for c in sorted(POOL_CASES) if c != "dilated"])
def test_fused_avg_pool2d(device, supported_dtypes, case, options, dtype):
    _require(supported_dtypes, dtype)
    x, _, args = _pool_inputs(case, dtype, device)
    check_fused("avg_pool2d", lambda x, *_: _pool.avg_pool2d_op(x, args, *options, fused=False),
                [x, *_pool.avg_pool_kernel_args(args, *options)], device, what=f"avg_pool2d {case}",
                **_loose(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("options", _AVG_OPTIONS, ids=["include_pad", "exclude_pad", "divisor"])
@pytest.mark.parametrize("case", [c for c in sorted(POOL_CASES) if c != "dilated"])
def test_fused_avg_pool2d_grad(device, supported_dtypes, case, options, dtype):
    _require(supported_dtypes, dtype)
    x, g, args = _pool_inputs(case, dtype, device)
    check_fused("avg_pool2d_grad",
                lambda g, shape, *_: _pool.avg_pool2d_grad_op(g, shape, args, *options,
                                                              fused=False),
                [g, x.shape, *_pool.avg_pool_kernel_args(args, *options)], device,
                what=f"avg_pool2d_grad {case}", **_loose(dtype))


# --- optimizer updates ------------------------------------------------------------------

_SGD_CASES = {
    "plain": {"momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
    "momentum": {"momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01, "nesterov": False},
    "nesterov": {"momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": True},
}
_ADAM_CASES = {
    "adam": {"weight_decay": 0.0, "decoupled": False, "amsgrad": False},
    "l2": {"weight_decay": 0.1, "decoupled": False, "amsgrad": False},
    "adamw_amsgrad": {"weight_decay": 0.1, "decoupled": True, "amsgrad": True},
}


def _state_tensors(device, dtype, count: int, seed: int) -> list[flambeau.Tensor]:
    rng = np.random.default_rng(seed)
    shapes = [(3, 4), (5,), ()][:count] + [(2, 2)] * max(count - 3, 0)
    return [_tensor(rng.standard_normal(s).astype(dtype), device) for s in shapes]


def _fused_and_reference(device, dtype, names: int, seed: int):
    twins = []
    for _ in range(2):
        twins.append([_state_tensors(device, dtype, 3, seed + i) for i in range(names)])
    return twins


@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("case", sorted(_SGD_CASES))
@pytest.mark.parametrize("dtype", FLOATS)
def test_sgd_step_matches_the_composition(device, supported_dtypes, dtype, case, maximize):
    from flambeau._ops.optim_steps import sgd_step

    _require(supported_dtypes, dtype)
    kernel = _kernel(device, "sgd_step")
    options = dict(_SGD_CASES[case], lr=0.1, maximize=maximize)
    fused, reference = _fused_and_reference(device, dtype, 3, seed=7)
    with flambeau.no_grad():
        for _ in range(3):  # momentum buffers carry over between steps
            params, grads, bufs = fused
            kernel([p._data for p in params], [g._data for g in grads],
                   [b._data for b in bufs] if options["momentum"] else None, **options)
            params, grads, bufs = reference
            sgd_step(params, grads, bufs if options["momentum"] else None, **options)
    for got, want in zip(itertools.chain(*fused), itertools.chain(*reference)):
        assert_close(got.numpy(), want.numpy(), rtol=1e-6 if dtype == "float32" else 1e-12,
                     atol=1e-7 if dtype == "float32" else 1e-14, what=f"sgd_step {case}")


@pytest.mark.parametrize("case", sorted(_ADAM_CASES))
@pytest.mark.parametrize("dtype", FLOATS)
def test_adam_step_matches_the_composition(device, supported_dtypes, dtype, case):
    from flambeau._ops.optim_steps import adam_step

    _require(supported_dtypes, dtype)
    kernel = _kernel(device, "adam_step")
    amsgrad = _ADAM_CASES[case]["amsgrad"]
    options = {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "maximize": False,
               "weight_decay": _ADAM_CASES[case]["weight_decay"],
               "decoupled": _ADAM_CASES[case]["decoupled"]}
    fused, reference = _fused_and_reference(device, dtype, 5, seed=11)
    with flambeau.no_grad():
        for step in (1, 2, 3):
            params, grads, means, squares, maxima = fused
            for s in squares + maxima:
                s.abs_()
            kernel([p._data for p in params], [g._data for g in grads],
                   [m._data for m in means], [s._data for s in squares],
                   [m._data for m in maxima] if amsgrad else None, step=step, **options)
            params, grads, means, squares, maxima = reference
            for s in squares + maxima:
                s.abs_()
            adam_step(params, grads, means, squares, maxima if amsgrad else None, step=step,
                      **options)
    for got, want in zip(itertools.chain(*fused), itertools.chain(*reference)):
        assert_close(got.numpy(), want.numpy(), rtol=1e-5 if dtype == "float32" else 1e-11,
                     atol=1e-6 if dtype == "float32" else 1e-13, what=f"adam_step {case}")


# --- softmax and cross-entropy ----------------------------------------------------------

# (shape, axis)
_SOFTMAX_CASES = {
    "rows": ((5, 7), 1),
    "columns": ((5, 7), 0),
    "middle": ((2, 6, 3), 1),
    "vector": ((9,), 0),
    "wide": ((3, 1000), 1),
    "one class": ((4, 1), 1),
    "no rows": ((0, 4), 1),
}


_SOFTMAX_REFERENCES = {"softmax": _softmax.softmax_reference,
                       "log_softmax": _softmax.log_softmax_reference}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(_SOFTMAX_CASES))
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_fused_softmax(device, supported_dtypes, name, case, dtype):
    _require(supported_dtypes, dtype)
    shape, axis = _SOFTMAX_CASES[case]
    x = _random(shape, dtype, 6) * 10
    check_fused(name, _SOFTMAX_REFERENCES[name], [x, axis], device, what=f"{name} {case}",
                **_loose(dtype))


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "cross_entropy",
                                  "cross_entropy_grad"])
def test_fused_softmax_special_values(device, name):
    """Large logits, -inf, a row of -inf only and NaN, as the composition treats them."""
    inf, nan = np.inf, np.nan
    x = np.array([[1000.0, 1001.0, 999.0], [-inf, 0.0, 1.0], [-inf, -inf, -inf],
                  [nan, 1.0, 2.0], [-1e4, 0.0, 1e4]], np.float32)
    target = np.array([1, 2, 0, 2, 0], np.int64)
    if name == "cross_entropy":
        reference, inputs = _loss.cross_entropy_reference, [x, target]
    elif name == "cross_entropy_grad":
        reference, inputs = _loss.cross_entropy_grad_reference, [x, target, np.float32(0.5)]
    else:
        reference, inputs = _SOFTMAX_REFERENCES[name], [x, 1]
    check_fused(name, reference, inputs, device, **_loose("float32"))


# (rows, classes)
_CROSS_ENTROPY_CASES = {"batch": (8, 10), "one class": (3, 1), "wide": (4, 1000),
                        "one row": (1, 5), "no rows": (0, 5)}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(_CROSS_ENTROPY_CASES))
def test_fused_cross_entropy(device, supported_dtypes, case, dtype):
    _require(supported_dtypes, dtype)
    n, c = _CROSS_ENTROPY_CASES[case]
    logits = _random((n, c), dtype, 7) * 5
    target = np.random.default_rng(8).integers(0, c, n).astype(np.int64)
    check_fused("cross_entropy", _loss.cross_entropy_reference, [logits, target], device,
                what=f"cross_entropy {case}", **_loose(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("grad_shape", ["rows", "scalar"])
@pytest.mark.parametrize("case", sorted(_CROSS_ENTROPY_CASES))
def test_fused_cross_entropy_grad(device, supported_dtypes, case, grad_shape, dtype):
    _require(supported_dtypes, dtype)
    n, c = _CROSS_ENTROPY_CASES[case]
    logits = _random((n, c), dtype, 9) * 5
    target = np.random.default_rng(10).integers(0, c, n).astype(np.int64)
    grad = _random((n,) if grad_shape == "rows" else (), dtype, 11)
    check_fused("cross_entropy_grad", _loss.cross_entropy_grad_reference,
                [logits, target, grad], device, what=f"cross_entropy_grad {case}",
                **_loose(dtype))


# --- normalisation ------------------------------------------------------------------------

# (x shape, axes, weight and bias shape: None for none)
_NORM_CASES = {
    "layer": ((6, 5, 8), (2,), (8,)),
    "layer over 2 dims": ((4, 3, 5), (1, 2), (3, 5)),
    "batch": ((4, 3, 5, 6), (0, 2, 3), (1, 3, 1, 1)),
    "batch 2-d": ((16, 7), (0,), (1, 7)),
    "group": ((3, 2, 12), (2,), None),
    "many rows": ((300, 3), (1,), (3,)),
    "long rows": ((2, 9000), (1,), None),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("case", sorted(_NORM_CASES))
def test_fused_layer_norm(device, supported_dtypes, case, affine, dtype):
    _require(supported_dtypes, dtype)
    shape, axes, param_shape = _NORM_CASES[case]
    x = _random(shape, dtype, 9) * 3 + 1
    w = _random(param_shape, dtype, 10) if affine and param_shape else None
    b = _random(param_shape, dtype, 11) if affine and param_shape else None
    check_fused("layer_norm", _norm.layer_norm_reference, [x, w, b, axes, 1e-5], device,
                what=f"layer_norm {case} (y, mean, var)", **_loose(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (16, 7)], ids=["4-d", "2-d"])
def test_fused_batch_norm(device, supported_dtypes, shape, affine, dtype):
    _require(supported_dtypes, dtype)
    stat_shape = (1, shape[1]) + (1,) * (len(shape) - 2)
    x = _random(shape, dtype, 12) * 2
    mean = _random(stat_shape, dtype, 13)
    var = (np.abs(_random(stat_shape, dtype, 14)) + 0.5).astype(dtype)
    w = _random(stat_shape, dtype, 15) if affine else None
    b = _random(stat_shape, dtype, 16) if affine else None
    check_fused("batch_norm", _norm.batch_norm_reference, [x, w, b, mean, var, 1e-5], device,
                **_loose(dtype))
