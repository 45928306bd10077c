"""The graph and its reverse walk.

Every differentiable operation that gets an input requiring grad gives its output a
:class:`Node`: the backward function of the operation, the tensors it saved (and a
stamp, to detect in-place changes since: see :func:`bump_version`), and one edge per
input — the input's own node, an :class:`AccumulateGrad` for a leaf, or ``None`` where no
gradient is needed. The walk is iterative (Kahn's algorithm over dependency counts), so
graph depth is unlimited.

Hooks live on the graph (PyTorch's tensor pre-hooks and post-accumulate-grad hooks): a
node's or accumulator's ``hooks`` is ``None`` until a tensor registers one, so a graph
without hooks costs the walk one ``is None`` check per node. Callbacks queued with
:func:`queue_callback` while a backward runs are called once its whole graph is done.
"""

from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import AutogradError
from ._mode import STATE

if TYPE_CHECKING:
    from .._tensor import Tensor


# The tensor module (which imports this one) hands over its constructor when it loads: an
# import inside a function costs about 1.5 us per call, a tenth of a tiny backward.
_wrap: Callable[..., Tensor] = None  # type: ignore[assignment]
_new = object.__new__


def implicit_grad(out: Tensor) -> Tensor:
    """The gradient a backward from a one-element ``out`` starts with: a one."""
    return _wrap(out._k.full(out._data.shape, 1, out._data.dtype), out._device, out._k)


class Hooks:
    """What a tensor registered on its node (or its leaf's accumulator): gradient hooks
    (``Tensor.register_hook``, in order), the ``retain_grad`` target, and a leaf's
    post-accumulate-grad hooks. The hook tables are what a ``RemovableHandle`` removes from."""

    __slots__ = ("post_accumulate", "retained", "tensor")

    def __init__(self) -> None:
        self.tensor: OrderedDict[int, Callable] = OrderedDict()  # hook(grad) -> grad | None
        self.retained: weakref.ref | None = None
        self.post_accumulate: OrderedDict[int, Callable] = OrderedDict()  # hook(tensor)


class AccumulateGrad:
    """Graph sink of a leaf tensor: adds the arriving gradient into ``tensor.grad``."""

    __slots__ = ("hooks", "variable")
    next_edges = ()  # (a sink: the graph walk needs no type check to stop here)

    def __init__(self, variable: Tensor) -> None:
        self.variable = variable
        self.hooks: Hooks | None = None

    def name(self) -> str:
        return "AccumulateGrad"


class Node:
    """The backward step of one operation; ``tensor.grad_fn`` points at it."""

    __slots__ = ("__weakref__", "_name", "backward_fn", "hooks", "next_edges", "saved", "stamp")

    def __init__(self, name: str, backward_fn: Callable, next_edges: tuple, saved: tuple) -> None:
        self._name = name
        self.backward_fn = backward_fn
        self.next_edges = next_edges
        self.saved = saved  # the tensors the rule reads
        self.stamp = next(_ticks)  # written after this: stale (see bump_version)
        self.hooks: Hooks | None = None

    def name(self) -> str:
        """PyTorch-style name, e.g. ``MulBackward0``."""
        return self._name

    def __repr__(self) -> str:
        return f"<{self._name}>"

    def save_now(self, tensor: Tensor) -> None:
        """Add ``tensor``, saved now (after this node was made), to what the rule reads:
        writes into it from here on fail the backward. One saved earlier and written since
        (``x.mul_(x)``) still fails it."""
        stale = any(t._version[1] > self.stamp for t in self.saved)
        self.saved = (*self.saved, tensor)
        if not stale:
            self.stamp = next(_ticks)

    def check_saved(self) -> None:
        for tensor in self.saved:
            if tensor._version[1] > self.stamp:
                raise AutogradError(
                    "one of the tensors needed for gradient computation has been modified "
                    f"by an in-place operation: a tensor of shape {list(tensor.shape)} saved "
                    f"by {self._name} was written after it was saved (it is now at version "
                    f"{tensor._version[0]}). Use an out-of-place operation (x = x + y instead "
                    "of x += y) or clone() the tensor before modifying it"
                )


# A tensor's version is [in-place writes (PyTorch's counter), stamp of the last], a list
# shared with its views. Every recorded node and every write takes the next tick, so a
# tensor a node saved has changed since exactly when its last write's tick is the later:
# one comparison per saved tensor, and a node keeps no versions of its own. (``next`` on
# a count is atomic under the GIL.)
_ticks = itertools.count(1)
# The version of every tensor not yet written or viewed: most never are, and a list each
# costs a tiny training step 2% (bench/bench_speed.py). A tuple, so that a write that
# forgets bump_version fails instead of counting for every tensor.
UNWRITTEN = (0, 0)


def bump_version(t: Tensor) -> None:
    """Record an in-place write into ``t``'s memory (shared with its views): its version
    (``t._version[0]``, PyTorch's counter) counts one more and its write stamp
    (``t._version[1]``) becomes the newest tick."""
    version = shared_version(t)
    version[0] += 1
    version[1] = next(_ticks)


def shared_version(t: Tensor) -> list[int]:
    """``t``'s version, for a view or alias of ``t`` to share."""
    version = t._version
    if version is UNWRITTEN:
        version = t._version = [0, 0]
    return version


def hooks_of(node: Node | AccumulateGrad) -> Hooks:
    """``node``'s hooks, created on first use."""
    hooks = node.hooks
    if hooks is None:
        hooks = node.hooks = Hooks()
    return hooks


def edge_of(tensor: Tensor) -> Node | AccumulateGrad:
    """Where a gradient for ``tensor`` goes: its node, or its leaf accumulator."""
    if tensor.grad_fn is not None:
        return tensor.grad_fn
    acc = tensor._acc
    if acc is None:
        acc = tensor._acc = AccumulateGrad(tensor)
    return acc


class SavedOutput:
    """An operation's output as its backward rule keeps it.

    A rule that kept the output tensor itself would close a reference cycle (output ->
    node -> rule -> output), which Python frees only when its cycle collector runs: a
    forward pass with gradients on and no backward would hold its activations until then.
    This keeps an alias sharing the storage and version counter instead; :meth:`get`
    gives it back, attached to the node again while a ``create_graph`` backward records,
    so that second derivatives flow through the output. Pass it in ``record``'s
    ``saved`` (in-place changes of the output are then detected too).
    """

    __slots__ = ("alias", "node")

    def __init__(self, out: Tensor) -> None:
        alias = out.detach()
        alias._base = None  # the alias must not keep ``out``, and with it the node, alive
        self.alias = alias
        self.node: weakref.ref | None = None

    def get(self) -> Tensor:
        """The output's values (on its node under ``create_graph``)."""
        if STATE.enabled and self.node is not None:
            node = self.node()
            if node is not None:
                attached = self.alias.detach()
                attached._base = None
                attached.grad_fn = node
                attached.requires_grad = True
                return attached
        return self.alias


def record(out: Tensor, name: str, inputs: Sequence[Any], backward_fn: Callable,
           saved: tuple[Tensor | SavedOutput, ...] = ()) -> Tensor:
    """Give ``out`` a node with ``backward_fn(grad) -> grads, one per input``.

    ``inputs`` may contain non-tensors and tensors that need no grad; they get no edge.
    ``saved``, a tuple, lists what the rule reads, for the in-place check; a rule reading
    ``out`` keeps it as a :class:`SavedOutput`.
    """
    edges = []
    for t in inputs:
        if getattr(t, "requires_grad", False):
            edges.append(t.grad_fn or t._acc or edge_of(t))  # (nodes are always true)
        else:
            edges.append(None)
    # Node.__init__'s work, inline: calling the class adds 0.1 us per recorded op
    # (bench/bench_speed.py, the tiny autograd step).
    node = out.grad_fn = _new(Node)
    node._name, node.backward_fn, node.hooks = name, backward_fn, None
    node.next_edges, node.saved, node.stamp = tuple(edges), saved, next(_ticks)
    for t in saved:
        if t.__class__ is SavedOutput:  # (the node keeps the aliases; each points back)
            node.saved = tuple(s.alias if s.__class__ is SavedOutput else s for s in saved)
            for kept in saved:
                if kept.__class__ is SavedOutput:
                    kept.node = weakref.ref(node)
            break
    out.requires_grad = True
    return out


def run_backward(
    roots: Sequence[Tensor],
    grads: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    capture: Sequence[Tensor] | None = None,
    grads_owned: bool = False,
) -> list[Tensor | None] | None:
    """Propagate ``grads`` from ``roots`` back through the graph.

    Without ``capture``: accumulate into the ``.grad`` of every leaf reached. With it:
    return the gradient of each tensor in ``capture`` and leave ``.grad`` alone.

    Each gradient is kept with a flag saying whether the engine owns it (made it itself
    and handed it nowhere else): an owned gradient may become a leaf's ``.grad`` as is, a
    shared one is copied first so that in-place updates of one ``.grad`` never change
    another. ``ready`` holds (node, gradient, owned) for nodes whose gradient is complete;
    ``pending`` the partial sums of nodes still waiting for another path.
    """
    pending: dict[Any, tuple[Tensor, bool]] = {}
    if len(roots) == 1:  # (one root, as loss.backward() has: never reached from itself)
        start = roots[0].grad_fn or edge_of(roots[0])
        stack, visited = [start], ()
    else:
        starts = dict.fromkeys(edge_of(r) for r in roots)  # (a root given twice: counted once)
        stack = list(starts)
        visited = set(stack)  # (only a root can be met again after being pushed)
    counts: dict[Any, int] = {}  # how many edges point at each node reachable from the roots
    while stack:  # (inline: a call costs a tenth of a tiny backward's engine time)
        for edge in stack.pop().next_edges:
            if edge is None:
                continue
            if edge in counts:
                counts[edge] += 1
            else:
                counts[edge] = 1
                if type(edge) is Node and edge not in visited:
                    stack.append(edge)
    if len(roots) == 1:
        ready = [(start, grads[0], grads_owned)]
    else:
        for start, grad in zip((edge_of(r) for r in roots), grads):
            _add_pending(pending, start, grad, grads_owned)
        ready = [(s, *pending.pop(s)) for s in starts if s not in counts]
    # Where a leaf may be queued without hooks (a root) or every node must be looked at
    # (autograd.grad); otherwise only a node's hooks take it off the common path.
    direct = capture is None  # (a leaf without hooks is accumulated as soon as complete)
    special = not direct or any(type(entry[0]) is AccumulateGrad for entry in ready)
    targets = {edge_of(t): i for i, t in enumerate(capture)} if capture is not None else None
    results: list[Tensor | None] | None = [None] * len(capture) if capture is not None else None
    state = STATE
    previous_mode, outer_callbacks = state.enabled, state.callbacks
    state.enabled, state.callbacks = create_graph, []
    try:
        while ready:
            node, grad, is_owned = ready.pop()
            if special or node.hooks is not None:
                grad, is_owned = _visit(node, grad, is_owned, create_graph, targets, results)
                if grad is None:  # (a leaf: nothing behind it)
                    continue
            stamp = node.stamp
            for tensor in node.saved:
                if tensor._version[1] > stamp:
                    node.check_saved()  # (raises)
            backward_fn = node.backward_fn
            if backward_fn is None:
                raise AutogradError(
                    f"trying to backward through the graph a second time ({node._name}'s saved "
                    "tensors were freed after the first backward); pass retain_graph=True to "
                    "the first backward() if you need to call it again"
                )
            input_grads = backward_fn(grad)
            if not retain_graph:
                node.backward_fn = None
                node.saved = ()
            # A gradient handed to two edges (or passed through) is owned by neither.
            count = len(input_grads)
            repeats = count > 1 and (input_grads[0] is input_grads[1] if count == 2 else
                                     len({id(g) for g in input_grads}) < count)
            for edge, g in zip(node.next_edges, input_grads):
                if edge is None:
                    continue
                owned = g is not grad and not (
                    repeats and sum(1 for other in input_grads if other is g) > 1)
                remaining = counts[edge] - 1
                if remaining:  # more paths to come: keep the sum so far
                    counts[edge] = remaining
                    if g is not None:
                        _add_pending(pending, edge, g, owned)
                    continue
                if pending:
                    current = pending.pop(edge, None)
                    if current is not None:
                        g, owned = current if g is None else (current[0] + g, True)
                if g is None:
                    ready.extend(_release(edge, counts, pending))
                    special = True  # (it may have queued a leaf without hooks)
                elif direct and type(edge) is AccumulateGrad and edge.hooks is None:
                    _accumulate(edge.variable, g, owned, create_graph)  # (now, unqueued)
                else:
                    ready.append((edge, g, owned))
        for callback in state.callbacks:  # (a callback may queue another: the loop reaches it)
            callback()
    finally:
        state.enabled, state.callbacks = previous_mode, outer_callbacks
    return results


def _visit(node: Node | AccumulateGrad, grad: Tensor, is_owned: bool, create_graph: bool,
           targets: dict | None, results: list | None) -> tuple[Tensor | None, bool]:
    """What the walk does off its common path: run a node's hooks, keep its gradient for
    ``retain_grad`` or ``autograd.grad``, or finish a leaf (then gives (None, False))."""
    hooks = node.hooks
    if type(node) is AccumulateGrad:
        # As in PyTorch, a leaf's hooks run where its accumulator runs: in backward(),
        # or in grad() for a leaf asked for (its post-accumulate hooks only in backward()).
        if targets is None:
            if hooks is not None:
                grad, is_owned = _call_tensor_hooks(hooks, grad, is_owned)
            _accumulate(node.variable, grad, is_owned, create_graph)
            if hooks is not None and hooks.post_accumulate:
                _call_post_accumulate_hooks(hooks, node.variable)
        elif node in targets:
            if hooks is not None:
                grad, is_owned = _call_tensor_hooks(hooks, grad, is_owned)
            results[targets[node]] = grad
        return None, False
    if hooks is not None:
        grad, is_owned = _call_tensor_hooks(hooks, grad, is_owned)
        if hooks.retained is not None:
            _retain(hooks.retained, grad, is_owned and not create_graph)
    if targets is not None and node in targets:
        results[targets[node]] = grad
    return grad, is_owned


def queue_callback(callback: Callable[[], Any]) -> None:
    """Call ``callback()`` once the backward now running has finished its whole graph.

    PyTorch's ``Variable._execution_engine.queue_callback``: valid only while a backward
    runs (from a hook), e.g. to wait for gradient communication started by
    post-accumulate-grad hooks. Callbacks run in the order queued, after the last node and
    in the backward's grad mode; a backward started inside a hook has its own. They are
    dropped if the backward fails.

    >>> import flambeau
    >>> x = flambeau.tensor([1.0, 2.0], requires_grad=True)
    >>> log = []
    >>> def hook(grad):
    ...     flambeau.autograd.queue_callback(lambda: log.append(x.grad.tolist()))
    >>> _ = x.register_hook(hook)
    >>> (x * x).sum().backward()
    >>> log
    [[2.0, 4.0]]
    """
    if STATE.callbacks is None:
        raise AutogradError(
            "queue_callback: final callbacks can only be installed during the backward pass "
            "(from a tensor or module hook while backward() or autograd.grad() runs); no "
            "backward is running")
    STATE.callbacks.append(callback)


def _call_tensor_hooks(hooks: Hooks, grad: Tensor, is_owned: bool) -> tuple[Tensor, bool]:
    """Pass ``grad`` through the tensor's gradient hooks, in order; each may replace it."""
    for hook in tuple(hooks.tensor.values()):
        result = hook(grad)
        if result is not None:
            _check_hook_gradient(hook, result, grad)
            grad = result
        # The hook may have kept the gradient: it is no longer the engine's alone.
        is_owned = False
    return grad, is_owned


def _check_hook_gradient(hook: Callable, result: Any, grad: Tensor) -> None:
    from .._tensor import Tensor  # (the tensor module imports this one)

    name = getattr(hook, "__name__", repr(hook))
    if not isinstance(result, Tensor):
        raise TypeError(f"hook {name!r} returned {type(result).__name__}; a gradient hook "
                        "must return None or a tensor to replace the gradient")
    for what, got, expected in (("size", list(result.shape), list(grad.shape)),
                                ("dtype", result.dtype, grad.dtype),
                                ("device", result.device, grad.device)):
        if got != expected:
            raise AutogradError(f"hook {name!r} has changed the {what} of the gradient: it "
                                f"returned {got}, the gradient has {expected}; return a "
                                f"tensor of the same {what} (or None)")


def _call_post_accumulate_hooks(hooks: Hooks, variable: Tensor) -> None:
    for hook in tuple(hooks.post_accumulate.values()):
        result = hook(variable)
        if result is not None:
            raise TypeError(f"post-accumulate-grad hook {getattr(hook, '__name__', hook)!r} "
                            f"returned {type(result).__name__}; it must return None (read "
                            "and change tensor.grad instead)")


def _release(node: Any, counts: dict, pending: dict) -> list:
    """``node`` got no gradient from any path (a backward rule returned None): pass that
    on, so nodes behind it still run once their other paths have delivered. Returns
    (node, gradient, owned) for the nodes that became ready."""
    ready, stack = [], [node]
    while stack:
        current = stack.pop()
        if type(current) is not Node:
            continue
        for edge in current.next_edges:
            if edge is None:
                continue
            counts[edge] -= 1
            if counts[edge] == 0:
                if edge in pending:
                    ready.append((edge, *pending.pop(edge)))
                else:
                    stack.append(edge)
    return ready


def _retain(retained: weakref.ref, grad: Tensor, owned: bool) -> None:
    tensor = retained()
    if tensor is not None:
        tensor._grad = grad if owned and not _shares_elements(grad) else grad.detach().clone()


def _add_pending(pending: dict, edge: Any, grad: Tensor, is_owned: bool) -> None:
    current = pending.get(edge)
    if current is None:
        pending[edge] = (grad, is_owned)
    else:
        pending[edge] = (current[0] + grad, True)


def _shares_elements(t: Tensor) -> bool:
    """An expanded gradient is not the engine's to hand out or add into in place: writes
    would go through its shared elements."""
    if t._strides is None:  # C order: the common case, decided without the import
        return False
    from .._tensor import shares_elements  # (the tensor module imports this one)

    return shares_elements(t)


def _accumulate(variable: Tensor, grad: Tensor, is_owned: bool, create_graph: bool) -> None:
    current, data, grad_data = variable._grad, variable._data, grad._data
    if grad_data.shape != data.shape:
        raise AutogradError(
            f"gradient of shape {list(grad.shape)} reached a leaf of shape "
            f"{list(variable.shape)}; this is a bug in a backward rule"
        )
    if grad_data.dtype != data.dtype:
        grad = grad.to(variable.dtype)
        grad_data, is_owned = grad._data, True
    if current is None:
        # An expanded gradient is not the engine's to hand out: later in-place
        # accumulation would write through its shared elements.
        owned = (is_owned and not _shares_elements(grad)) or create_graph
        variable._grad = grad if owned else grad.detach().clone()
    elif create_graph or (current._strides is not None and _shares_elements(current)):
        variable._grad = current + grad
    else:
        data = current._data
        current._k.binary("add", data, grad_data, out=data)
