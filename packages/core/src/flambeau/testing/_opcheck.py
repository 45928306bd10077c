"""``check_op`` and ``check_fused``: one call checks an operation against its reference.

In the style of Chainer's ``FunctionTestCase`` and tinygrad's ``helper_test_op``: give the
flambeau function, a numpy reference and numpy inputs; the helper does the rest.

>>> import numpy as np, flambeau
>>> x = np.array([[0.5, -1.0, 2.0]], np.float32)
>>> check_op(lambda a: a * a + 1, lambda a: a * a + 1, [x], flambeau.device("cpu"))

``check_fused`` does the same for a device's optional fused kernel, against the core's
composition of required kernels on the same device:

>>> softmax = lambda t, dim: t.exp() / t.exp().sum(dim, keepdim=True)
>>> check_fused("softmax", softmax, [x, 1], flambeau.device("cpu"))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._compare import assert_close

#: (rtol, atol) of gradients against finite differences, by the dtype the check ran in.
GRAD_TOLERANCES = {np.dtype("float64"): (1e-5, 1e-6), np.dtype("float32"): (2e-3, 2e-3)}
_EPS = 1e-6


def check_op(fn: Callable[..., Any], reference: Callable[..., Any], inputs: Sequence[Any],
             device: Any, *, grad: bool | Sequence[int] = True, rtol: float | None = None,
             atol: float | None = None, dtype: Any = None) -> None:
    """Assert that ``fn`` on ``device`` agrees with the numpy ``reference``.

    Args:
        fn: takes flambeau tensors (one per numpy array in ``inputs``; other inputs, such
            as Python scalars, are passed as they are) and returns a tensor or a
            tuple/list of tensors.
        reference: the same operation written with numpy.
        inputs: numpy arrays (and other arguments), given to both functions.
        device: the device to run ``fn`` on.
        grad: check gradients of float outputs with respect to every float input (True),
            the inputs at these positions, or none (False). Gradients are those of
            ``sum(out * w)`` for fixed random ``w``, compared with central finite
            differences of ``reference`` in float64; the check runs in float64 where the
            device supports it, else in float32 with a looser tolerance.
        rtol, atol: tolerances of the values (default: by dtype, see :func:`tolerance`).
        dtype: the expected dtype of every output, where numpy's promotion differs from
            flambeau's (PyTorch's); by default that of ``reference(*inputs)``.

    The reference runs twice: on ``inputs`` to get the expected dtypes, and on inputs
    widened to float64 to get accurate values (rounded to the expected dtype).
    """
    outs = _as_list(fn(*_tensors(inputs, device)))
    wanted = _as_list(reference(*inputs))
    precise = _as_list(reference(*(_widen(x, np.float64) for x in inputs)))
    assert len(outs) == len(wanted), f"{len(outs)} outputs, the reference has {len(wanted)}"
    for k, (out, want, value) in enumerate(zip(outs, wanted, precise)):
        dt = np.dtype(dtype) if dtype is not None else np.asarray(want).dtype
        what = f"output {k}" if len(outs) > 1 else "output"
        assert out.device == device, f"{what} is on {out.device}, expected {device}"
        with np.errstate(all="ignore"):
            expected = np.asarray(value).astype(dt)
        assert_close(out.numpy(force=True), expected, rtol=rtol, atol=atol, what=what)
    positions = _grad_positions(inputs, grad)
    if positions:
        _check_grads(fn, reference, inputs, device, positions)


def check_fused(name: str, reference: Callable[..., Any], inputs: Sequence[Any], device: Any,
                *, rtol: float | None = None, atol: float | None = None, what: str = "") -> None:
    """Assert that ``device``'s fused kernel ``name`` agrees with ``reference``; skip the
    check (pytest) when the device has no such kernel, since the reference then runs.

    Args:
        name: an optional kernel (:data:`~flambeau.backends.OPTIONAL_KERNELS`).
        reference: the core's composition, called with tensors on ``device``.
        inputs: numpy arrays and scalars (given to the kernel as the device's arrays and
            to ``reference`` as tensors) and other arguments (shapes, axes, ``None``) given
            to both as they are.
        device: the device whose kernel is checked.
        rtol, atol: tolerances of float outputs (default: by dtype, see :func:`tolerance`);
            a kernel that sums in another order than the composition needs looser ones.
        what: names the case in failure messages (default: ``name``).

    The kernel returns an array or a tuple of them, the reference a tensor or a tuple of
    them; each output must match in shape, dtype and value.
    """
    import flambeau
    from flambeau._device import kernels_for

    k = kernels_for(device)
    kernel = getattr(k, name, None)
    if kernel is None:
        import pytest

        pytest.skip(f"{device} has no fused {name} kernel; the core's composition runs "
                    "instead")
    arrays = [isinstance(x, (np.ndarray, np.generic)) for x in inputs]  # 0-d ones too
    got = _as_list(kernel(*(k.from_numpy(np.asarray(x)) if a else x
                            for x, a in zip(inputs, arrays))))
    wanted = _as_list(reference(*(flambeau.tensor(x, dtype=x.dtype, device=device) if a
                                  else x for x, a in zip(inputs, arrays))))
    label = what or name
    assert len(got) == len(wanted), (
        f"{label}: {len(got)} outputs, the reference has {len(wanted)}")
    for i, (out, want) in enumerate(zip(got, wanted)):
        expected = want.numpy(force=True)
        exact = expected.dtype.kind != "f"  # indices, counts: no tolerance
        assert_close(k.to_numpy(out), expected, rtol=0 if exact else rtol,
                     atol=0 if exact else atol,
                     what=label if len(got) == 1 else f"{label} output {i}")


def _check_grads(fn: Callable, reference: Callable, inputs: Sequence[Any], device: Any,
                 positions: list[int]) -> None:
    import flambeau

    dt = np.dtype("float64") if np.dtype("float64") in device.info.dtypes else np.float32
    args = [_widen(x, dt) if i in positions else x for i, x in enumerate(inputs)]
    tensors = _tensors(args, device)
    for i in positions:
        tensors[i].requires_grad_(True)
    outs = _as_list(fn(*tensors))
    if all(o.dtype.kind != "f" for o in outs):
        return  # integer and bool results have no gradient
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(tuple(o.shape)) if o.requires_grad else None for o in outs]
    terms = [(o * flambeau.tensor(w, dtype=o.dtype, device=device)).sum()
             for o, w in zip(outs, weights) if w is not None]
    assert terms, "no float output requires grad; pass grad=False if the op has no gradient"
    sum(terms).backward()

    def loss(values: list) -> float:
        results = _as_list(reference(*values))
        return sum(float(np.sum(np.asarray(r, np.float64) * w))
                   for r, w in zip(results, weights) if w is not None)

    wide = [_widen(x, np.float64) if i in positions else x for i, x in enumerate(inputs)]
    rtol, atol = GRAD_TOLERANCES[np.dtype(dt)]
    for i in positions:
        got = tensors[i].grad
        got = np.zeros(args[i].shape, dt) if got is None else got.numpy()
        assert_close(got, _numeric_grad(loss, wide, i), dtype=dt, rtol=rtol, atol=atol,
                     what=f"gradient of input {i}")


def _numeric_grad(loss: Callable[[list], float], inputs: list, i: int) -> np.ndarray:
    """Central differences of ``loss`` in input ``i``; zero where the input is not finite."""
    base = inputs[i]
    grad = np.zeros(base.shape)
    for p in np.ndindex(base.shape):
        if not np.isfinite(base[p]):
            continue
        values = []
        for step in (_EPS, -_EPS):
            shifted = base.copy()
            shifted[p] += step
            values.append(loss([*inputs[:i], shifted, *inputs[i + 1 :]]))
        grad[p] = (values[0] - values[1]) / (2 * _EPS)
    return grad


def _grad_positions(inputs: Sequence[Any], grad: bool | Sequence[int]) -> list[int]:
    if grad is False:
        return []
    if grad is True:
        return [i for i, x in enumerate(inputs)
                if isinstance(x, np.ndarray) and x.dtype.kind == "f"]
    return list(grad)


def _tensors(inputs: Sequence[Any], device: Any) -> list[Any]:
    import flambeau

    return [flambeau.tensor(x, dtype=x.dtype, device=device) if isinstance(x, np.ndarray)
            else x for x in inputs]


def _widen(x: Any, dtype: Any) -> Any:
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return x.astype(dtype)
    return x


def _as_list(x: Any) -> list:
    return list(x) if isinstance(x, (tuple, list)) else [x]
