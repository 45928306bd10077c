"""In-place operations (``add_``, ``mul_``, ``zero_``, ``copy_``, ``+=``, ...).

Without autograd involvement an in-place op writes straight into the tensor's storage
(kernels with ``out=``). When the graph must record it, the op runs out of place and
the result is written back, the tensor taking over the result's graph node; the
version counter is bumped either way, so stale saved tensors are detected.
"""

from __future__ import annotations

from typing import Any

from .. import _dtypes
from .._tensor import Tensor, _wrap, shares_elements
from ..autograd._engine import AutogradError, bump_version, shared_version
from ..autograd._mode import STATE
from ..backends import broadcast_shape
from ..errors import DTypeError, MemoryOverlapError, ShapeError
from . import elementwise as ew
from ._common import SCALAR_TYPES, cast, full_like_device, same_device, scalar_for


def check_inplace(target: Tensor, *others: Any) -> bool:
    """Whether the graph must record an in-place change of ``target``; raises where
    PyTorch would (a leaf that requires grad, a view of a tensor in the graph, elements
    that share memory)."""
    if target._strides is not None and shares_elements(target):
        raise MemoryOverlapError(
            f"in-place operation on a tensor of shape {list(target.shape)} whose elements share "
            "memory (an expand() or broadcast_to() result, or a view of one): a write to one "
            "element would change others; call .clone() or .contiguous() first")
    if not STATE.enabled:
        return False
    involved = target.requires_grad or any(getattr(o, "requires_grad", False) for o in others)
    if not involved:
        return False
    if target.requires_grad and target.grad_fn is None:
        raise AutogradError(
            "a leaf Variable that requires grad is being used in an in-place operation: a "
            "leaf tensor that requires grad (a parameter, say) can't change while gradients "
            "are recorded; wrap the update in `with flambeau.no_grad():` (as optimizers do) or "
            "clone() it first"
        )
    if target._base is not None:
        raise AutogradError(
            "in-place operation on a view of a tensor while recording gradients is not "
            "supported; clone() the view first"
        )
    return True


def snapshot(target: Tensor) -> Tensor:
    """A copy of ``target``'s values standing at ``target``'s place in the graph.

    Recorded in-place ops compute from it, so the nodes they create save the values
    from before the write (PyTorch's "original self") instead of the overwritten ones.
    """
    out = _wrap(target._k.copy(target._data), target._device, target._k)
    out.grad_fn = target.grad_fn
    out.requires_grad = target.requires_grad
    return out


def commit_inplace(target: Tensor, result: Tensor, keeps_output: bool = False) -> Tensor:
    """Write ``result`` into ``target``'s storage and hand it ``result``'s graph node.

    Where that node's rule reads the output (``relu_``, ``exp_``; ``keeps_output`` for a
    composite whose PyTorch rule does), it now reads ``target``, whose later in-place
    changes must then fail its backward as PyTorch's do: the node checks ``target``'s
    version too."""
    if tuple(result.shape) != tuple(target.shape):
        raise ShapeError(f"output with shape {list(target.shape)} doesn't match the broadcast "
                         f"shape {list(result.shape)}")
    target._k.assign(target._data, cast(result, target.dtype)._data)
    bump_version(target)
    node = result.grad_fn
    if node is not None:
        target.grad_fn = node
        target.requires_grad = True
        version = shared_version(result)  # (else every unwritten tensor's would match)
        if keeps_output or any(t._version is version for t in node.saved):
            alias = target.detach()
            alias._base = None  # (as SavedOutput's: no reference cycle through the node)
            node.save_now(alias)
    return target


def _check_result_dtype(op: str, target: Tensor, other: Any) -> None:
    dtype = target._data.dtype
    if dtype.kind == "f" and (type(other) in (float, int) or (
            isinstance(other, Tensor) and other._data.dtype == dtype)):
        return  # the common case (p -= lr * p.grad): nothing is promoted
    result = _dtypes.result_type(target, other)
    if op == "div" and not _dtypes.is_floating(result):
        result = _dtypes.DEFAULT_FLOAT
    if _dtypes.category(result) > _dtypes.category(target.dtype):
        raise DTypeError(f"{op}_: result type {result} can't be cast to the desired output "
                         f"type {target.dtype}")


_FUNCTIONS = {"add": ew.add, "sub": ew.sub, "mul": ew.mul, "div": ew.div, "pow": ew.pow,
              "maximum": ew.maximum, "minimum": ew.minimum, "mod": ew.remainder,
              "floordiv": ew.floor_divide}


def binary_(op: str, target: Tensor, other: Any) -> Tensor:
    """``target = target <op> other`` in place."""
    _check_result_dtype(op, target, other)
    if not check_inplace(target, other):
        if isinstance(other, Tensor):
            data, operand = target._data, other._data
            if (other._device is not target._device or operand.shape != data.shape
                    or operand.dtype != data.dtype):  # else (p -= lr * p.grad): as it is
                same_device(op + "_", target, other)
                shape = broadcast_shape(data.shape, operand.shape)
                if shape != data.shape:
                    raise ShapeError(f"{op}_: output with shape {list(target.shape)} doesn't "
                                     f"match the broadcast shape {list(shape)}")
                operand = cast(other, target.dtype)._data
        elif isinstance(other, SCALAR_TYPES):
            operand = scalar_for(other, target.dtype)
        else:
            raise TypeError(f"{op}_: unsupported operand type {type(other).__name__}")
        target._k.binary(op, target._data, operand, out=target._data)
        bump_version(target)
        return target
    return commit_inplace(target, _FUNCTIONS[op](snapshot(target), other))


def apply_(target: Tensor, fn: Any, *args: Any, keeps_output: bool = False) -> Tensor:
    """``target = fn(target, ...)`` in place (for unary and composite ops)."""
    track = check_inplace(target, *args)
    result = fn(snapshot(target) if track else target, *args)
    if not track and result.grad_fn is not None:
        result = result.detach()
    return commit_inplace(target, result, keeps_output)


def add_(self: Tensor, other: Any, *, alpha: Any = 1) -> Tensor:
    """In-place ``self += alpha * other``."""
    return binary_("add", self, other if alpha == 1 else ew.scaled(other, alpha))


def sub_(self: Tensor, other: Any, *, alpha: Any = 1) -> Tensor:
    """In-place ``self -= alpha * other``."""
    return binary_("sub", self, other if alpha == 1 else ew.scaled(other, alpha))


def mul_(self: Tensor, other: Any) -> Tensor:
    """In-place ``self *= other``."""
    return binary_("mul", self, other)


def div_(self: Tensor, other: Any) -> Tensor:
    """In-place ``self /= other`` (float tensors)."""
    return binary_("div", self, other)


def pow_(self: Tensor, exponent: Any) -> Tensor:
    """In-place ``self **= exponent``."""
    return binary_("pow", self, exponent)


def fill_(self: Tensor, value: Any) -> Tensor:
    """Set every element to ``value``."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ShapeError(f"fill_ takes a scalar or a 1-element tensor, got shape "
                             f"{list(value.shape)}")
        if check_inplace(self, value):  # a value tensor in the graph gets its gradient
            from .shape import reshape

            return commit_inplace(self, _overwrite(self, cast(reshape(value, ()), self.dtype)))
        value = value.item()
    if check_inplace(self):
        return commit_inplace(self, _overwrite(self, scalar_for(value, self.dtype)))
    self._k.assign(self._data, scalar_for(value, self.dtype))
    bump_version(self)
    return self


def _overwrite(self: Tensor, value: Any) -> Tensor:
    """``value`` broadcast to ``self``'s shape, as a graph node that sends ``self`` a zero
    gradient (PyTorch's fill_/copy_ keep the edge) and saves no tensor to go stale."""
    never = full_like_device(False, (), _dtypes.bool_, self)
    return ew.where(never, self, value)


def zero_(self: Tensor) -> Tensor:
    """Set every element to zero."""
    return fill_(self, 0)


def copy_(self: Tensor, src: Any) -> Tensor:
    """Copy ``src`` (broadcast, converted to this dtype and device) into this tensor."""
    if not isinstance(src, Tensor):
        raise TypeError(f"copy_: expected a Tensor, got {type(src).__name__}")
    if src._device != self._device:
        src = src.to(self._device)
    shape = broadcast_shape(self._data.shape, src._data.shape)
    if shape != self._data.shape:
        raise ShapeError(f"copy_: cannot broadcast a source of shape {list(src.shape)} to "
                         f"{list(self.shape)}")
    if check_inplace(self, src):
        return commit_inplace(self, _overwrite(self, cast(src, self.dtype)))
    self._k.assign(self._data, cast(src, self.dtype)._data)
    bump_version(self)
    return self


def clamp_(self: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """In-place :func:`flambeau.clamp`."""
    for bound in (min, max):  # an int tensor can't hold a float bound, as in PyTorch
        if bound is not None:
            _check_result_dtype("clamp", self, bound)
    return apply_(self, ew.clamp, min, max)


def _unary_inplace(fn: Any) -> Any:
    def method(self: Tensor) -> Tensor:
        return apply_(self, fn)

    method.__name__ = fn.__name__ + "_"
    method.__doc__ = f"In-place :func:`flambeau.{fn.__name__}`."
    return method


UNARY_INPLACE = {f.__name__ + "_": _unary_inplace(f) for f in (
    ew.neg, ew.abs, ew.exp, ew.log, ew.sqrt, ew.sin, ew.cos, ew.tanh, ew.sigmoid, ew.relu,
    ew.floor, ew.ceil, ew.round, ew.sign, ew.reciprocal, ew.rsqrt, ew.erf, ew.expm1, ew.log1p,
)}


def masked_fill_(self: Tensor, mask: Tensor, value: Any) -> Tensor:
    """In-place :func:`flambeau.masked_fill`."""
    from .indexing import masked_fill

    return apply_(self, masked_fill, mask, value)


def scatter_add_(self: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """In-place :func:`flambeau.scatter_add`."""
    from .indexing import scatter_add

    return apply_(self, scatter_add, dim, index, src)
