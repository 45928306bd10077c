"""Reverse-mode automatic differentiation: ``backward``, ``grad``, grad modes, gradcheck,
and ``queue_callback`` (run a function once the current backward is done)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..errors import DeviceMismatchError
from . import _engine
from ._engine import AccumulateGrad, AutogradError, Node, queue_callback, run_backward
from ._gradcheck import gradcheck
from ._mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled


def _as_list(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _initial_grads(outputs: list, grads: list | None, op: str) -> tuple[list, bool]:
    if grads is None:
        grads = [None] * len(outputs)
    if len(grads) != len(outputs):
        raise AutogradError(f"{op}: got {len(grads)} gradients for {len(outputs)} outputs")
    result, owned = [], True
    for out, grad in zip(outputs, grads):
        if not out.requires_grad:
            raise AutogradError(
                f"{op}: element 0 of tensors does not require grad and does not have a "
                "grad_fn; did you set requires_grad=True on the inputs?"
            )
        if grad is None:
            if math.prod(out._data.shape) != 1:
                raise AutogradError(
                    f"{op}: grad can be implicitly created only for scalar outputs, got an "
                    f"output of shape {list(out.shape)}; pass a gradient of that shape, e.g. "
                    "y.backward(flambeau.ones_like(y)), or reduce it first with y.sum()"
                )
            grad = _engine.implicit_grad(out)
        else:
            grad = _checked_gradient(op, out, grad)
            owned = False
        result.append(grad)
    return result, owned


def _checked_gradient(op: str, out: Any, grad: Any) -> Any:
    """``grad`` for ``out`` as PyTorch accepts it: a tensor of the output's device and
    shape; another dtype is converted to the output's, as PyTorch does."""
    from .._tensor import Tensor  # (the tensor module imports this package)

    if not isinstance(grad, Tensor):
        raise TypeError(f"{op}: gradients must be tensors, got {type(grad).__name__}")
    if grad._device != out._device:
        raise DeviceMismatchError(
            f"{op}: the gradient is on device {grad._device}, but the output is on "
            f"{out._device}; move it first with .to({str(out._device)!r})")
    if tuple(grad.shape) != tuple(out.shape):
        raise AutogradError(f"{op}: gradient of shape {list(grad.shape)} does not "
                            f"match the output shape {list(out.shape)}")
    return grad.to(out.dtype) if grad.dtype != out.dtype else grad


def backward(tensors: Any, grad_tensors: Any = None, retain_graph: bool | None = None,
             create_graph: bool = False) -> None:
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves they depend on.

    Scalar outputs need no gradient argument; others need one of their shape. The graph
    is freed afterwards unless ``retain_graph`` (or ``create_graph``) is true.
    """
    if retain_graph is None:
        retain_graph = create_graph
    outputs = _as_list(tensors)
    grads, owned = _initial_grads(outputs, None if grad_tensors is None
                                  else _as_list(grad_tensors), "backward")
    run_backward(outputs, grads, retain_graph, create_graph, grads_owned=owned)


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False) -> tuple:
    """The gradients of ``outputs`` with respect to ``inputs``, without touching ``.grad``.

    >>> import flambeau
    >>> x = flambeau.tensor(3.0, requires_grad=True)
    >>> flambeau.autograd.grad(x * x, x)
    (tensor(6.),)
    """
    outs = _as_list(outputs)
    ins: Sequence = _as_list(inputs)
    for i, t in enumerate(ins):
        if not t.requires_grad:
            raise AutogradError(f"grad: input {i} does not require grad")
    grads, owned = _initial_grads(outs, None if grad_outputs is None
                                  else _as_list(grad_outputs), "grad")
    if retain_graph is None:
        retain_graph = create_graph
    results = run_backward(outs, grads, retain_graph, create_graph, capture=ins,
                           grads_owned=owned)
    assert results is not None
    for i, r in enumerate(results):
        if r is None and not allow_unused:
            raise AutogradError(
                f"grad: input {i} was not used to compute the outputs; pass allow_unused=True "
                "to get None for it"
            )
    return tuple(results)


class _ExecutionEngine:
    """PyTorch's ``Variable._execution_engine``, for its ``queue_callback`` only."""

    @staticmethod
    def queue_callback(callback: Any) -> None:
        """See :func:`flambeau.autograd.queue_callback`."""
        queue_callback(callback)


class _VariableMeta(type):
    def __instancecheck__(cls, other: Any) -> bool:
        from .._tensor import Tensor

        return isinstance(other, Tensor)


class Variable(metaclass=_VariableMeta):
    """PyTorch's deprecated ``Variable``: every tensor is one, ``Variable(t)`` is an alias of
    ``t``. Kept for code that reaches ``Variable._execution_engine.queue_callback``."""

    _execution_engine = _ExecutionEngine()

    def __new__(cls, data: Any, requires_grad: bool = False) -> Any:  # type: ignore[misc]
        alias = data.detach()
        alias._base = None  # (a new leaf, not a view to be refused in-place changes)
        return alias.requires_grad_(requires_grad) if requires_grad else alias


__all__ = [
    "AccumulateGrad",
    "AutogradError",
    "Node",
    "Variable",
    "backward",
    "enable_grad",
    "grad",
    "gradcheck",
    "inference_mode",
    "is_grad_enabled",
    "no_grad",
    "queue_callback",
    "set_grad_enabled",
]
