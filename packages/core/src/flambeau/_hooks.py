"""Hook plumbing: the handle every ``register_*hook`` returns, and the autograd nodes
behind a module's full backward hooks (PyTorch's ``torch.utils.hooks``).

Where hooks live: a tensor's gradient and post-accumulate hooks on its graph node or leaf
accumulator (``autograd._engine.Hooks``); a module's in one ordered table,
``Module._module_hooks`` (``None`` until the first registration, so a call without hooks
pays one falsy check).
"""

from __future__ import annotations

import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from .autograd import _engine
from .autograd._mode import STATE
from .errors import AutogradError

if TYPE_CHECKING:
    from ._tensor import Tensor


class RemovableHandle:
    """Removes the hook it was returned for: ``handle.remove()``, or leaving a ``with``
    block. ``id`` is unique among all hooks of the process.

    >>> import flambeau
    >>> x = flambeau.tensor(1.0, requires_grad=True)
    >>> with x.register_hook(lambda grad: grad * 2):
    ...     (3 * x).backward()
    >>> (3 * x).backward()  # the hook is gone: 6 + 3
    >>> x.grad
    tensor(9.)
    """

    id: int
    next_id: int = 0

    def __init__(self, hooks_dict: OrderedDict) -> None:
        # A weak reference: a handle kept by the user does not keep a graph or module alive.
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1

    def remove(self) -> None:
        """Unregister the hook (again: nothing happens)."""
        hooks_dict = self.hooks_dict_ref()
        if hooks_dict is not None and self.id in hooks_dict:
            del hooks_dict[self.id]

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<RemovableHandle id={self.id}>"


class ModuleHook(NamedTuple):
    """One entry of ``Module._module_hooks``: what kind of hook, the function, its options."""

    kind: str  # "forward_pre", "forward", "backward_pre" or "backward"
    fn: Callable
    with_kwargs: bool = False
    always_call: bool = False


class BackwardHook:
    """The full backward hooks of one module call (PyTorch's ``BackwardHook``).

    Identity nodes (``BackwardHookFunctionBackward``) wrap the tensors among the call's
    positional inputs and among its outputs. When the gradients of all outputs have
    arrived, the backward pre-hooks see them (``hook(module, grad_output)``, may replace
    them); when those of all inputs are complete, the backward hooks see both
    (``hook(module, grad_input, grad_output)``, may replace ``grad_input``). Non-tensor
    positions hold ``None``; a tensor input without a gradient gets zeros, as in PyTorch.
    """

    def __init__(self, module: Any, user_hooks: list[Callable],
                 user_pre_hooks: list[Callable]) -> None:
        self.module = module
        self.user_hooks = user_hooks
        self.user_pre_hooks = user_pre_hooks
        self.grad_outputs: tuple | None = None
        self.n_inputs = self.n_outputs = -1
        self.input_index: list[int] | None = None
        self.output_index: list[int] | None = None
        # (shape, dtype, device) of the tensor inputs, for zeros where no gradient arrives
        # (their values are not kept: the hook must not hold activations alive).
        self.input_meta: list[tuple] = []

    def setup_input_hook(self, args: tuple) -> tuple:
        """``args`` with their tensors wrapped; call before ``forward``."""
        result, index, tensors = _wrap_tensors(args, self._input_grads)
        self.n_inputs, self.input_index = len(args), index
        if index is not None:
            self.input_meta = [(t.shape, t.dtype, t.device) for t in tensors]
        return result

    def setup_output_hook(self, result: Any) -> Any:
        """``result`` (a tensor or a tuple) with its tensors wrapped; call after ``forward``."""
        is_tuple = isinstance(result, tuple)
        outputs = result if is_tuple else (result,)
        wrapped, index, _ = _wrap_tensors(outputs, self._output_grads)
        self.n_outputs, self.output_index = len(outputs), index
        return wrapped if is_tuple else wrapped[0]

    def _output_grads(self, grads: tuple) -> tuple:
        assert self.output_index is not None
        grad_outputs = _pack(self.output_index, grads, self.n_outputs)
        for hook in self.user_pre_hooks:
            replaced = hook(self.module, grad_outputs)
            if replaced is None:
                continue
            if len(replaced) != len(grad_outputs):
                raise AutogradError(
                    f"backward pre-hook {_name(hook)} returned {len(replaced)} grad_output "
                    f"entries, but {self._module_name()} has {len(grad_outputs)} outputs; "
                    "return one per output, or None")
            grad_outputs = tuple(replaced)
        if self.input_index is not None:
            self.grad_outputs = grad_outputs  # for the hooks, once the inputs' are complete
        elif self.user_hooks:
            # No input needs a gradient: the hooks run now, with grad_input all None.
            warnings.warn(
                f"full backward hook of {self._module_name()} is firing when gradients are "
                "computed with respect to module outputs since no inputs require gradients "
                "(as in PyTorch); grad_input is all None", stacklevel=2)
            grad_inputs = (None,) * self.n_inputs
            for hook in self.user_hooks:
                replaced = hook(self.module, grad_inputs, grad_outputs)
                if replaced is not None and not all(g is None for g in replaced):
                    raise AutogradError(
                        f"backward hook {_name(hook)} of {self._module_name()} returned "
                        "gradients, but no input of the call requires grad; return None")
        return tuple(grad_outputs[i] for i in self.output_index)

    def _input_grads(self, grads: tuple) -> tuple:
        assert self.input_index is not None
        grads = tuple(g if g is not None else _zeros(meta)
                      for g, meta in zip(grads, self.input_meta))
        if self.grad_outputs is None:
            # The gradient reached the inputs without passing the outputs (a double
            # backward through the module's internals): nothing to report.
            return grads
        grad_inputs = _pack(self.input_index, grads, self.n_inputs)
        for hook in self.user_hooks:
            replaced = hook(self.module, grad_inputs, self.grad_outputs)
            if replaced is None:
                continue
            if len(replaced) != len(grad_inputs):
                raise AutogradError(
                    f"backward hook {_name(hook)} returned {len(replaced)} grad_input "
                    f"entries, but the call of {self._module_name()} had {len(grad_inputs)} "
                    "positional inputs; return one per input, or None")
            grad_inputs = tuple(replaced)
        self.grad_outputs = None
        return tuple(grad_inputs[i] for i in self.input_index)

    def _module_name(self) -> str:
        return type(self.module).__name__


def _wrap_tensors(values: tuple, on_grads: Callable[[tuple], tuple]
                  ) -> tuple[tuple, list[int] | None, list]:
    """``values`` with each tensor replaced by an alias whose gradients reach
    ``on_grads`` together; also the positions and the tensors. Unchanged (and ``None``
    positions) when no tensor requires grad or grad mode is off."""
    from ._tensor import Tensor  # (the tensor module imports this one)

    index = [i for i, v in enumerate(values) if isinstance(v, Tensor)]
    tensors = [values[i] for i in index]
    if not (STATE.enabled and any(t.requires_grad for t in tensors)):
        return values, None, tensors
    aliases = _hooked_aliases(tensors, on_grads)
    out = list(values)
    for i, alias in zip(index, aliases):
        out[i] = alias
    return tuple(out), index, tensors


class _Arrived:
    """What the per-tensor nodes of a call with several tensors send their common node:
    their gradients wait in a list, the engine only learns that one arrived (sums of it
    are itself)."""

    __slots__ = ()

    def __add__(self, other: _Arrived) -> _Arrived:
        return self


_ARRIVED = _Arrived()


def _hooked_aliases(tensors: list[Tensor], on_grads: Callable[[tuple], tuple]) -> list[Tensor]:
    """Aliases of ``tensors`` (the same storage); the gradients of those requiring grad go,
    once all have arrived, through ``on_grads(grads) -> grads`` (one per tensor, ``None``
    where none arrived or none is needed) on to the tensors.

    One tensor: its alias gets one identity node. Several: each alias gets a node that
    parks its gradient, and one common node behind them all (it runs once every one of
    them has, like PyTorch's single node with several inputs) calls ``on_grads``.
    """
    count = len(tensors)  # (the closures keep no tensor: they would keep activations alive)
    slots = [k for k, t in enumerate(tensors) if t.requires_grad]
    edges = tuple(_engine.edge_of(tensors[k]) for k in slots)
    metas = [(tensors[k].shape, tensors[k].dtype, tensors[k].device) for k in slots]
    # Through one node the engine sees a gradient passed on unchanged (and treats it as
    # shared); through the common node it cannot tell.
    tracked = len(slots) == 1

    def passed_on(arrived: list) -> list:
        grads: list = [None] * count
        for k, g in zip(slots, arrived):
            grads[k] = g
        result = on_grads(tuple(grads))
        out = []
        for k, edge, meta, before in zip(slots, edges, metas, arrived):
            g = result[k]
            if g is None:
                g = _zeros(meta)  # PyTorch materialises a missing gradient
            elif _keeps_grad(edge) and not (tracked and g is before):
                # Not the engine's own tensor: a leaf's .grad must not be it (later
                # accumulation writes into .grad in place).
                g = g.clone()
            out.append(g)
        return out

    aliases = list(tensors)
    if tracked:
        k = slots[0]
        aliases[k] = tensors[k].detach()
        _engine.record(aliases[k], "BackwardHookFunctionBackward", [tensors[k]],
                       lambda grad: passed_on([grad]))
        return aliases
    parked: list = [None] * len(slots)

    def release(_arrived: _Arrived) -> list:
        arrived = list(parked)
        parked[:] = [None] * len(slots)
        return passed_on(arrived)

    common = _engine.Node("BackwardHookFunctionBackward", release, edges, ())
    for slot, k in enumerate(slots):
        alias = aliases[k] = tensors[k].detach()
        alias.grad_fn = _engine.Node("BackwardHookFunctionBackward", _parker(parked, slot),
                                     (common,), ())
        alias.requires_grad = True
    return aliases


def _parker(parked: list, slot: int) -> Callable:
    def park(grad: Tensor) -> tuple:
        parked[slot] = grad
        return (_ARRIVED,)

    return park


def _keeps_grad(edge: Any) -> bool:
    """Whether ``edge`` may keep the gradient it receives (a leaf's ``.grad``, a retained
    gradient): a tensor a hook handed in must be copied first."""
    if type(edge) is _engine.AccumulateGrad:
        return True
    return edge.hooks is not None and edge.hooks.retained is not None


def _zeros(meta: tuple) -> Tensor:
    from ._creation import zeros

    shape, dtype, device = meta
    return zeros(tuple(shape), dtype=dtype, device=device)


def _pack(index: list[int], values: tuple, size: int) -> tuple:
    out: list = [None] * size
    for i, v in zip(index, values):
        out[i] = v
    return tuple(out)


def _name(hook: Callable) -> str:
    return repr(getattr(hook, "__name__", hook))
