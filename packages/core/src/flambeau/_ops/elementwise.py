"""Elementwise operations: arithmetic, math functions, comparisons, ``where``, ``clamp``.

Each primitive keeps its gradient rule beside it. Functions that are compositions
(sigmoid, relu, gelu, clamp, ...) get their gradients from the primitives they use.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np

from .. import _dtypes
from .._tensor import Tensor, _wrap
from ..autograd._engine import SavedOutput, record
from ..autograd._mode import STATE
from ..backends import broadcast_shape
from ..errors import DTypeError
from ._common import SCALAR_TYPES, cast, full_like_device, same_device, scalar_for, unbroadcast

# --- binary -----------------------------------------------------------------------------

_COMPARISONS = frozenset({"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
                          "logical_xor"})
_FLOAT_RESULT = frozenset({"div"})


def _operands(op: str, a: Any, b: Any) -> tuple[Tensor, Any, np.dtype]:
    """Promote ``a`` (a tensor or scalar) and ``b`` to one dtype; returns (a, b, dtype).

    ``a`` comes back as a tensor; ``b`` as a tensor or a Python scalar.
    """
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            raise TypeError(f"{op}: expected a Tensor operand, got {type(a).__name__} and "
                            f"{type(b).__name__}")
        dtype = _result_dtype(op, b, a)
        a = full_like_device(scalar_for(a, dtype), (), dtype, b)
    if isinstance(b, Tensor):
        if a._device is not b._device:
            same_device(op, a, b)
        if a._data.shape != b._data.shape:
            broadcast_shape(a._data.shape, b._data.shape)
        dtype = a._data.dtype
        if dtype != b._data.dtype:
            dtype = _result_dtype(op, a, b)
        elif op not in _FLOAT_RESULT or _dtypes.is_floating(dtype):
            return a, b, dtype
        if op in _FLOAT_RESULT and not _dtypes.is_floating(dtype):
            dtype = _dtypes.DEFAULT_FLOAT
        return cast(a, dtype), cast(b, dtype), dtype
    if not isinstance(b, SCALAR_TYPES):
        raise TypeError(f"{op}: unsupported operand type {type(b).__name__}; expected a Tensor "
                        "or a Python number")
    kind = a.dtype.kind
    if _dtypes.is_floating(a.dtype) or (kind in "iu" and not isinstance(b, (float, np.floating))
                       and not isinstance(b, (bool, np.bool_))):
        dtype = a.dtype
    else:
        dtype = _dtypes.result_type(a, b)
    if op in _FLOAT_RESULT and not _dtypes.is_floating(dtype):
        dtype = _dtypes.DEFAULT_FLOAT
    return cast(a, dtype), scalar_for(b, dtype), dtype


def _result_dtype(op: str, a: Any, b: Any) -> np.dtype:
    return _dtypes.result_type(a, b)


def _binary(op: str, a: Any, b: Any) -> tuple[Tensor, Tensor, Any]:
    """Run kernel ``op``; returns (output, a, b) after promotion, for gradient rules."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        ad, bd = a._data, b._data
        # The common case, kept lean: same device, dtype and shape, no promotion.
        if (a._device is b._device and ad.dtype == bd.dtype and ad.shape == bd.shape
                and (op not in _FLOAT_RESULT or _dtypes.is_floating(ad.dtype))):
            return _wrap(a._k.binary(op, ad, bd), a._device, a._k), a, b
    a, b, _ = _operands(op, a, b)
    data = a._k.binary(op, a._data, b._data if isinstance(b, Tensor) else b)
    return _wrap(data, a._device, a._k), a, b


def _grad_enabled_for(a: Tensor, b: Any) -> bool:
    if a.requires_grad or getattr(b, "requires_grad", False):
        return STATE.enabled
    return False


def _shape(x: Any) -> tuple[int, ...]:
    return x._data.shape if isinstance(x, Tensor) else ()


def scaled(other: Any, alpha: Any) -> Any:
    """``alpha * other`` for the ``alpha=`` argument of add/sub (tensor or number)."""
    return mul(other, alpha) if isinstance(other, Tensor) else other * alpha


def add(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    """``input + alpha * other`` with broadcasting."""
    if (alpha == 1 and isinstance(other, Tensor) and isinstance(input, Tensor)
            and not (input.requires_grad or other.requires_grad)):
        a, b = input._data, other._data
        # The commonest op, kept to one check and one kernel call when nothing is recorded.
        if input._device is other._device and a.dtype == b.dtype and a.shape == b.shape:
            return _wrap(input._k.binary("add", a, b), input._device, input._k)
    if alpha != 1:
        other = scaled(other, alpha)
    out, a, b = _binary("add", input, other)
    if _grad_enabled_for(a, b):
        sa, sb = _shape(a), _shape(b)
        record(out, "AddBackward0", (a, b), lambda g: (unbroadcast(g, sa), unbroadcast(g, sb)))
    return out


def sub(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    """``input - alpha * other`` with broadcasting."""
    if _is_bool(input) or _is_bool(other):
        raise TypeError("subtraction with a bool operand is not supported (as in PyTorch); "
                        "invert a mask with ~ or logical_not(), compare two with ^")
    if alpha != 1:
        other = scaled(other, alpha)
    out, a, b = _binary("sub", input, other)
    if _grad_enabled_for(a, b):
        sa, sb = _shape(a), _shape(b)
        record(out, "SubBackward0", (a, b),
               lambda g: (unbroadcast(g, sa), unbroadcast(neg(g), sb)))
    return out


def _is_bool(x: Any) -> bool:
    if isinstance(x, Tensor):
        return x._data.dtype == np.bool_
    return isinstance(x, (bool, np.bool_))


def mul(input: Any, other: Any) -> Tensor:
    """``input * other`` with broadcasting."""
    out, a, b = _binary("mul", input, other)
    rb = getattr(b, "requires_grad", False)
    if (a.requires_grad or rb) and STATE.enabled:
        # A partial of a module function: quicker to make and to call than a closure, and
        # the checks inline (mul runs for every gate of every RNN step; bench_speed.py's
        # autograd step).
        operands, is_tensor = (a, b), isinstance(b, Tensor)
        rule = partial(_mul_backward, a, b, a.requires_grad, rb, a._data.shape,
                       b._data.shape if is_tensor else ())
        record(out, "MulBackward0", operands, rule, operands if is_tensor else (a,))
    return out


def _mul_backward(a: Tensor, b: Any, ra: bool, rb: bool, sa: tuple[int, ...],
                  sb: tuple[int, ...], g: Tensor) -> tuple:
    """``(g * b, g * a)`` summed back to the operands' shapes (``None`` where ``ra``/``rb``
    say no gradient is needed). Without create_graph, broadcasting or promotion: one kernel
    call each."""
    gd = g._data
    # (Tensor operands of one shape: _binary gave them one dtype too.)
    if not STATE.enabled and gd.shape == sa == sb and gd.dtype == a._data.dtype and isinstance(
            b, Tensor):
        k, device = g._k, g._device
        return (_wrap(k.binary("mul", gd, b._data), device, k) if ra else None,
                _wrap(k.binary("mul", gd, a._data), device, k) if rb else None)
    return (unbroadcast(mul(g, b), sa) if ra else None, unbroadcast(mul(g, a), sb) if rb else None)


def div(input: Any, other: Any, *, rounding_mode: str | None = None) -> Tensor:
    """``input / other`` (true division; integers give float32). ``rounding_mode`` may be
    ``"floor"`` or ``"trunc"`` as in PyTorch."""
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode == "trunc":
        quotient = div(input, other)
        result = where(lt(quotient, 0), ceil(quotient), floor(quotient))
        kind_a = input.dtype if isinstance(input, Tensor) else None
        keep = kind_a is not None and not _dtypes.is_floating(kind_a)
        return cast(result, kind_a) if keep else result
    if rounding_mode is not None:
        raise ValueError(f"rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}")
    out, a, b = _binary("div", input, other)
    if _grad_enabled_for(a, b):
        ra, rb = a.requires_grad, getattr(b, "requires_grad", False)
        sa, sb = _shape(a), _shape(b)

        kept = SavedOutput(out) if rb else None  # (only the divisor's rule reads it)

        def backward(g: Tensor) -> tuple:
            return (unbroadcast(div(g, b), sa) if ra else None,
                    unbroadcast(neg(div(mul(g, kept.get()), b)), sb) if rb else None)

        record(out, "DivBackward0", (a, b), backward,
               (*_saved(a, b), kept) if rb else _saved(a, b))
    return out


def floor_divide(input: Any, other: Any) -> Tensor:
    """``input // other``: floor of the quotient (Python semantics). Not differentiable."""
    out, _, _ = _binary("floordiv", input, other)
    return out


def remainder(input: Any, other: Any) -> Tensor:
    """``input % other`` with the sign of ``other`` (Python semantics)."""
    out, a, b = _binary("mod", input, other)
    if _grad_enabled_for(a, b):
        sa, sb = _shape(a), _shape(b)
        rb = getattr(b, "requires_grad", False)
        record(out, "RemainderBackward0", (a, b), lambda g: (
            unbroadcast(g, sa), unbroadcast(neg(mul(g, floor_divide(a, b))), sb) if rb else None
        ), _saved(a, b))
    return out


def pow(input: Any, exponent: Any) -> Tensor:
    """``input ** exponent`` with broadcasting."""
    if isinstance(input, Tensor) and isinstance(exponent, SCALAR_TYPES):
        if input.dtype.kind in "iu" and isinstance(exponent, (int, np.integer)) and exponent < 0:
            raise ValueError("integers to negative integer powers are not allowed; convert the "
                             "base to float first")
    out, a, b = _binary("pow", input, exponent)
    if _grad_enabled_for(a, b):
        ra, rb = a.requires_grad, getattr(b, "requires_grad", False)
        sa, sb = _shape(a), _shape(b)
        kept = SavedOutput(out)

        def backward(g: Tensor) -> tuple:
            grad_a = grad_b = None
            if ra and not isinstance(b, Tensor):
                grad_a = mul(g, 0.0) if b == 0 else mul(mul(g, b), pow(a, b - 1))
            elif ra:
                # d/da a**b = b * a**(b-1); written so b == 0 gives 0, not 0 * inf.
                grad_a = unbroadcast(where(eq(b, 0), 0.0, mul(mul(g, b), pow(a, sub(b, 1)))),
                                     sa)
            if rb:
                safe_log = where(eq(a, 0), 0.0, log(where(eq(a, 0), 1.0, a)))
                grad_b = unbroadcast(mul(mul(g, kept.get()), safe_log), sb)
            return grad_a, grad_b

        record(out, "PowBackward0", (a, b), backward, (*_saved(a, b), kept))
    return out


def _rpow(input: Tensor, base: Any) -> Tensor:
    return pow(base, input)


def maximum(input: Tensor, other: Any) -> Tensor:
    """Elementwise maximum (NaN propagates); ties share the gradient equally."""
    return _extremum("maximum", input, other, gt)


def minimum(input: Tensor, other: Any) -> Tensor:
    """Elementwise minimum (NaN propagates); ties share the gradient equally."""
    return _extremum("minimum", input, other, lt)


def _extremum(op: str, input: Any, other: Any, wins: Any) -> Tensor:
    out, a, b = _binary(op, input, other)
    if _grad_enabled_for(a, b):
        sa, sb = _shape(a), _shape(b)

        def backward(g: Tensor) -> tuple:
            a_wins = cast(wins(a, b), g.dtype)
            tie = mul(cast(eq(a, b), g.dtype), 0.5)
            share_a = add(a_wins, tie)
            return unbroadcast(mul(g, share_a), sa), unbroadcast(mul(g, rsub(share_a, 1.0)), sb)

        name = "MaximumBackward0" if op == "maximum" else "MinimumBackward0"
        record(out, name, (a, b), backward, _saved(a, b))
    return out


def _saved(*items: Any) -> tuple[Tensor, ...]:
    for item in items:
        if not isinstance(item, Tensor):
            return tuple([t for t in items if isinstance(t, Tensor)])
    return items  # (every operand a tensor, the common case: no new tuple)


def rsub(input: Any, other: Any) -> Tensor:
    """``other - input`` (for ``scalar - tensor``)."""
    return sub(other, input)


def _rdiv(input: Tensor, other: Any) -> Tensor:
    return div(other, input)


def _rfloordiv(input: Tensor, other: Any) -> Tensor:
    return floor_divide(other, input)


def _rmod(input: Tensor, other: Any) -> Tensor:
    return remainder(other, input)


def _compare(op: str, input: Any, other: Any) -> Tensor:
    out, _, _ = _binary(op, input, other)
    return out


def eq(input: Any, other: Any) -> Tensor:
    """Elementwise ``==``; a bool tensor."""
    return _compare("eq", input, other)


def ne(input: Any, other: Any) -> Tensor:
    """Elementwise ``!=``; a bool tensor."""
    return _compare("ne", input, other)


def lt(input: Any, other: Any) -> Tensor:
    """Elementwise ``<``; a bool tensor."""
    return _compare("lt", input, other)


def le(input: Any, other: Any) -> Tensor:
    """Elementwise ``<=``; a bool tensor."""
    return _compare("le", input, other)


def gt(input: Any, other: Any) -> Tensor:
    """Elementwise ``>``; a bool tensor."""
    return _compare("gt", input, other)


def ge(input: Any, other: Any) -> Tensor:
    """Elementwise ``>=``; a bool tensor."""
    return _compare("ge", input, other)


def _logical(op: str, input: Any, other: Any) -> Tensor:
    a = cast(input, _dtypes.bool_) if isinstance(input, Tensor) else bool(input)
    b = cast(other, _dtypes.bool_) if isinstance(other, Tensor) else bool(other)
    return _compare(op, a, b)


def logical_and(input: Any, other: Any) -> Tensor:
    """Elementwise logical and (non-zero is true); a bool tensor."""
    return _logical("logical_and", input, other)


def logical_or(input: Any, other: Any) -> Tensor:
    """Elementwise logical or; a bool tensor."""
    return _logical("logical_or", input, other)


def logical_xor(input: Any, other: Any) -> Tensor:
    """Elementwise logical xor; a bool tensor."""
    return _logical("logical_xor", input, other)


def _bitwise(op: str, name: str, input: Any, other: Any) -> Tensor:
    for operand in (input, other):
        if isinstance(operand, Tensor) and operand.dtype != _dtypes.bool_:
            raise TypeError(f"{name} is only supported on bool tensors here, got "
                            f"{operand.dtype}; use logical_{op.split('_')[1]}")
    return _compare(op, input, other)


def _and(input: Any, other: Any) -> Tensor:
    return _bitwise("logical_and", "&", input, other)


def _or(input: Any, other: Any) -> Tensor:
    return _bitwise("logical_or", "|", input, other)


def _xor(input: Any, other: Any) -> Tensor:
    return _bitwise("logical_xor", "^", input, other)


# --- unary ------------------------------------------------------------------------------


def _unary(op: str, x: Tensor, name: str, rule: Any = None, float_only: bool = True) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if float_only and not _dtypes.is_floating(x.dtype):
        x = cast(x, _dtypes.DEFAULT_FLOAT)
    out = _wrap(x._k.unary(op, x._data), x._device, x._k)
    if rule is not None and STATE.enabled and x.requires_grad:
        kept = SavedOutput(out)
        record(out, name, (x,), lambda g: (rule(g, x, kept.get()),), (x, kept))
    return out


def neg(input: Tensor) -> Tensor:
    """``-input``."""
    if input.dtype == _dtypes.bool_:
        raise TypeError("negation of a bool tensor is not supported; use logical_not() or ~")
    return _unary("neg", input, "NegBackward0", lambda g, x, o: neg(g), float_only=False)


def abs(input: Tensor) -> Tensor:
    """Absolute value."""
    return _unary("abs", input, "AbsBackward0", lambda g, x, o: mul(g, sign(x)),
                  float_only=False)


def sign(input: Tensor) -> Tensor:
    """-1, 0 or 1 by the sign of each element (gradient zero)."""
    if input.dtype == _dtypes.bool_:
        return cast(input, input.dtype)
    return _unary("sign", input, "SignBackward0", lambda g, x, o: mul(g, 0.0), float_only=False)


def exp(input: Tensor) -> Tensor:
    """``e ** input``."""
    return _unary("exp", input, "ExpBackward0", lambda g, x, o: mul(g, o))


def expm1(input: Tensor) -> Tensor:
    """``exp(input) - 1``, accurate near 0."""
    return _unary("expm1", input, "Expm1Backward0", lambda g, x, o: mul(g, add(o, 1.0)))


def log(input: Tensor) -> Tensor:
    """Natural logarithm."""
    return _unary("log", input, "LogBackward0", lambda g, x, o: div(g, x))


def log1p(input: Tensor) -> Tensor:
    """``log(1 + input)``, accurate near 0."""
    return _unary("log1p", input, "Log1PBackward0", lambda g, x, o: div(g, add(x, 1.0)))


def sqrt(input: Tensor) -> Tensor:
    """Square root."""
    return _unary("sqrt", input, "SqrtBackward0", lambda g, x, o: div(g, mul(o, 2.0)))


def rsqrt(input: Tensor) -> Tensor:
    """``1 / sqrt(input)``."""
    return div(1.0, sqrt(input))


def reciprocal(input: Tensor) -> Tensor:
    """``1 / input``."""
    return div(1.0, input)


def sin(input: Tensor) -> Tensor:
    """Sine."""
    return _unary("sin", input, "SinBackward0", lambda g, x, o: mul(g, cos(x)))


def cos(input: Tensor) -> Tensor:
    """Cosine."""
    return _unary("cos", input, "CosBackward0", lambda g, x, o: neg(mul(g, sin(x))))


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return _unary("tanh", input, "TanhBackward0", lambda g, x, o: _output_grad("tanh", g, o))


def _output_grad(op: str, g: Tensor, y: Tensor) -> Tensor:
    """The gradient of sigmoid, ``g * (y * (1 - y))``, or of tanh, ``g * (1 - y * y)``, from
    the output ``y``. Without ``create_graph``, straight on the kernels in one new buffer
    (bit for bit the composition: three allocations and calls less, per activation of a
    LeNet or GRU step); with it, the differentiable composition."""
    yd, gd = y._data, g._data
    if STATE.enabled or gd.shape != yd.shape or gd.dtype != yd.dtype:
        if op == "tanh":
            return mul(g, rsub(mul(y, y), 1.0))
        return mul(g, mul(y, rsub(y, 1.0)))
    k = y._k
    one = k.full((), 1, yd.dtype)
    if op == "tanh":
        buffer = k.binary("mul", yd, yd)
        k.binary("sub", one, buffer, out=buffer)
    else:
        buffer = k.binary("sub", one, yd)
        k.binary("mul", yd, buffer, out=buffer)
    return _wrap(k.binary("mul", gd, buffer, out=buffer), g._device, k)


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def erf(input: Tensor) -> Tensor:
    """The error function."""
    return _unary("erf", input, "ErfBackward0",
                  lambda g, x, o: mul(g, mul(exp(neg(mul(x, x))), _TWO_OVER_SQRT_PI)))


def _rounding(op: str, input: Tensor) -> Tensor:
    name = op.capitalize() + "Backward0"
    return _unary(op, input, name, lambda g, x, o: mul(g, 0.0), float_only=False)


def floor(input: Tensor) -> Tensor:
    """Round down (gradient zero)."""
    return _rounding("floor", input)


def ceil(input: Tensor) -> Tensor:
    """Round up (gradient zero)."""
    return _rounding("ceil", input)


def round(input: Tensor, *, decimals: int = 0) -> Tensor:
    """Round half to even, optionally to ``decimals`` places (gradient zero)."""
    if decimals:
        scale = 10.0**decimals
        return div(_rounding("round", mul(input, scale)), scale)
    return _rounding("round", input)


def trunc(input: Tensor) -> Tensor:
    """Round toward zero (gradient zero)."""
    return where(lt(input, 0), ceil(input), floor(input))


def logical_not(input: Tensor) -> Tensor:
    """Elementwise not (zero is false); a bool tensor."""
    return _unary("logical_not", input, "", float_only=False)


def _invert(input: Tensor) -> Tensor:
    if input.dtype != _dtypes.bool_:
        raise TypeError(f"~ is only supported on bool tensors here, got {input.dtype}")
    return logical_not(input)


# --- compositions -----------------------------------------------------------------------


def sigmoid(input: Tensor) -> Tensor:
    """``1 / (1 + exp(-input))``.

    Computed in one buffer and given the gradient ``y * (1 - y)`` of its output: the
    composition's four steps each way made it a third of a LeNet training step
    (bench/bench_lenet.py).
    """
    if not isinstance(input, Tensor) or input.dtype.kind != "f":
        return div(1.0, add(exp(neg(input)), 1.0))
    k, dtype = input._k, input.dtype
    buffer = k.unary("neg", input._data)
    k.unary("exp", buffer, out=buffer)
    k.binary("add", buffer, scalar_for(1, dtype), out=buffer)
    k.binary("div", k.full((), 1, dtype), buffer, out=buffer)
    out = _wrap(buffer, input._device, k)
    if STATE.enabled and input.requires_grad:
        kept = SavedOutput(out)

        record(out, "SigmoidBackward0", (input,),
               lambda g: (_output_grad("sigmoid", g, kept.get()),), (kept,))
    return out


def relu(input: Tensor) -> Tensor:
    """``max(input, 0)``.

    A primitive rather than ``maximum(input, 0)``, whose tie rule would give a gradient
    of 0.5 at 0 where PyTorch gives 0; masks multiply because a select is slower.
    """
    out = _wrap(input._k.binary("maximum", input._data, scalar_for(0, input.dtype)),
                input._device, input._k)
    if STATE.enabled and input.requires_grad:
        kept = SavedOutput(out)
        record(out, "ReluBackward0", (input,), lambda g: (_relu_grad(g, kept.get()),), (kept,))
    return out


def _relu_grad(g: Tensor, out: Tensor) -> Tensor:
    """``g`` where ``out > 0``, else 0."""
    if STATE.enabled:  # create_graph: a differentiable composition
        return mul(g, cast(gt(out, 0), g.dtype))
    k = g._k
    mask = k.cast(k.binary("gt", out._data, scalar_for(0, out.dtype)), g.dtype)
    return _wrap(k.binary("mul", g._data, mask, out=mask), g._device, k)


_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit: exact (erf) or ``approximate="tanh"``."""
    if approximate == "tanh":
        inner = mul(add(input, mul(pow(input, 3), 0.044715)), _SQRT_2_OVER_PI)
        return mul(mul(input, 0.5), add(tanh(inner), 1.0))
    if approximate != "none":
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return mul(mul(input, 0.5), add(erf(mul(input, _INV_SQRT2)), 1.0))


def silu(input: Tensor) -> Tensor:
    """``input * sigmoid(input)``."""
    return mul(input, sigmoid(input))


def square(input: Tensor) -> Tensor:
    """``input * input``."""
    return mul(input, input)


def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """Limit values to ``[min, max]`` (either may be ``None`` or a tensor); the gradient
    passes where ``min <= input <= max``, as in PyTorch."""
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    # Like PyTorch, the bounds take part in type promotion (int tensor, float bound: float).
    out = cast(input, _dtypes.result_type(input, *(b for b in (min, max) if b is not None)))
    if min is not None:
        out = where(lt(out, min), _like(min, out), out)
    if max is not None:
        out = where(gt(out, max), _like(max, out), out)
    return out


def _like(bound: Any, x: Tensor) -> Any:
    if isinstance(bound, Tensor):
        return cast(bound, x.dtype)
    return scalar_for(bound, x.dtype)


def where(condition: Tensor, input: Any, other: Any) -> Tensor:
    """Pick ``input`` where ``condition`` holds, else ``other``; broadcasts all three."""
    if not isinstance(condition, Tensor):
        raise TypeError(f"where: condition must be a bool Tensor, got {type(condition).__name__}")
    if condition.dtype != _dtypes.bool_:
        condition = cast(condition, _dtypes.bool_)
    anchor = condition
    dtype = _dtypes.result_type(*(v for v in (input, other)))
    a = _operand_tensor(input, dtype, anchor)
    b = _operand_tensor(other, dtype, anchor)
    same_device("where", condition, a)
    same_device("where", condition, b)
    out = _wrap(a._k.where(condition._data, a._data, b._data), a._device, a._k)
    if STATE.enabled and (a.requires_grad or b.requires_grad):
        sa, sb = a._data.shape, b._data.shape

        def backward(g: Tensor) -> tuple:
            zero = full_like_device(0, (), g.dtype, g)
            return (unbroadcast(where(condition, g, zero), sa) if a.requires_grad else None,
                    unbroadcast(where(condition, zero, g), sb) if b.requires_grad else None)

        record(out, "WhereBackward0", (a, b), backward)
    return out


def _operand_tensor(value: Any, dtype: np.dtype, anchor: Tensor) -> Tensor:
    if isinstance(value, Tensor):
        return cast(value, dtype)
    return full_like_device(scalar_for(value, dtype), (), dtype, anchor)


def isnan(input: Tensor) -> Tensor:
    """True where the value is NaN."""
    return ne(input, input)


def isinf(input: Tensor) -> Tensor:
    """True where the value is +inf or -inf."""
    if not _dtypes.is_floating(input.dtype):
        return ne(input, input)
    return eq(abs(input), math.inf)


def isfinite(input: Tensor) -> Tensor:
    """True where the value is neither NaN nor infinite."""
    return logical_not(logical_or(isnan(input), isinf(input)))


# --- comparisons of whole tensors, blends -----------------------------------------------


def isclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    """True where ``|input - other| <= atol + rtol * |other|`` (infinities: where equal).

    >>> import flambeau
    >>> flambeau.isclose(flambeau.tensor([1.0, 2.0]), flambeau.tensor([1.0 + 1e-9, 2.1]))
    tensor([ True, False])
    """
    if input.dtype != other.dtype:
        raise DTypeError(f"isclose: input has dtype {input.dtype} but other has dtype "
                         f"{other.dtype}; convert one first (PyTorch refuses mixed dtypes too)")
    close = eq(input, other)
    if input.dtype != _dtypes.bool_:
        within = le(abs(sub(input, other)), add(mul(abs(other), rtol), atol))
        close = logical_or(close, logical_and(isfinite(other), within))
    return logical_or(close, logical_and(isnan(input), isnan(other))) if equal_nan else close


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """True when :func:`isclose` holds everywhere."""
    return _everywhere(isclose(input, other, rtol, atol, equal_nan))


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both have the same shape and the same values."""
    if input._data.shape != other._data.shape:
        return False
    return _everywhere(eq(input, other))


def _everywhere(condition: Tensor) -> bool:
    k = condition._k
    return bool(k.to_numpy(k.reduce("all", condition._data, None, False)))


def is_floating_point(input: Tensor) -> bool:
    """True for float16, bfloat16, float32 and float64 tensors."""
    return _dtypes.is_floating(input.dtype)


def lerp(input: Tensor, end: Tensor, weight: Any) -> Tensor:
    """``input + weight * (end - input)``."""
    return add(input, mul(weight, sub(end, input)))


def nan_to_num(input: Tensor, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Tensor:
    """NaN, +inf and -inf replaced by ``nan``, ``posinf`` and ``neginf`` (by default the
    dtype's largest and most negative values); the gradient passes where finite."""
    if not _dtypes.is_floating(input.dtype):
        return _wrap(input._k.copy(input._data), input._device, input._k)  # no NaN here
    info = np.finfo(input.dtype)
    out = where(isnan(input), nan, input)
    out = where(eq(input, math.inf), float(info.max) if posinf is None else posinf, out)
    return where(eq(input, -math.inf), float(info.min) if neginf is None else neginf, out)
