"""The collectives, with ``torch.distributed``'s signatures: results go into the tensors
given, in place; ``async_op=True`` returns a :class:`Work` to wait for.

Tensors may live on any device. A device whose backend has its own collective engine
(NCCL for cuda) gets it; every other device goes through the host engine, MPI: reading and
writing the tensor's own memory where the backend shares host memory (cpu), else a host
copy written back when the collective completes (``Work.wait()``).

Every rank must call the same collectives in the same order, with tensors of the same
shapes and dtypes. That is not checked by default, as it costs an exchange per call: a
mismatch usually ends the job with MPI's "Message truncated", or leaves ranks waiting.
``FLAMBEAU_DISTRIBUTED_DEBUG=1`` checks each call and raises on every rank, naming each
rank's call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from .. import _config
from .._ops import host
from .._tensor import Tensor
from ..autograd import no_grad
from ..errors import DeviceMismatchError, DistributedError, DTypeError, ShapeError
from ._group import ProcessGroup, current
from ._work import ReduceOp, Work

__all__ = ["all_gather", "all_gather_into_tensor", "all_reduce", "barrier", "broadcast",
           "reduce_scatter", "reduce_scatter_tensor"]


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group: Any = None,
               async_op: bool = False) -> Work | None:
    """Reduce ``tensor`` over all ranks, in place; the result is bitwise identical on
    every rank.

    Args:
        tensor: The values of this rank; the result replaces them.
        op: A :class:`ReduceOp` (or its name).
        group: ``None`` (the default group).
        async_op: Return a :class:`Work` instead of waiting.
    """
    pg = current(group)
    op = _reduce_op(op, tensor)
    engine = _engine(pg, "all_reduce", (tensor,), op=op.value)
    if engine is pg.host:
        buf, finish = _writable(tensor, keep=True)
        return _done(pg, engine.all_reduce(buf, op.value, blocking=not async_op), [finish],
                     async_op)
    work = engine.all_reduce(host.device_array(tensor, write=True), op.value)
    return _done(pg, work, [partial(host.mark_written, tensor)], async_op)


def broadcast(tensor: Tensor, src: int, group: Any = None,
              async_op: bool = False) -> Work | None:
    """Copy rank ``src``'s ``tensor`` into ``tensor`` on every rank."""
    pg = current(group)
    if not 0 <= src < pg.size:
        raise DistributedError(f"broadcast: src={src} is not a rank of this group of "
                               f"{pg.size} (0 to {pg.size - 1})")
    engine = _engine(pg, "broadcast", (tensor,), src=src)
    if engine is not pg.host:
        written = pg.rank != src
        work = engine.broadcast(host.device_array(tensor, write=written), src)
        return _done(pg, work, [partial(host.mark_written, tensor)] if written else [],
                     async_op)
    if pg.rank == src:
        return _done(pg, engine.broadcast(host.host_values(tensor), src, not async_op), [],
                     async_op)
    buf, finish = _writable(tensor, keep=False)
    return _done(pg, engine.broadcast(buf, src, not async_op), [finish], async_op)


def all_gather(tensor_list: list[Tensor], tensor: Tensor, group: Any = None,
               async_op: bool = False) -> Work | None:
    """Write rank ``r``'s ``tensor`` into ``tensor_list[r]`` on every rank (one tensor per
    rank, each like ``tensor``)."""
    pg = current(group)
    _check_list("all_gather", tensor_list, tensor, pg.size)
    engine = _engine(pg, "all_gather", (tensor,))
    if engine is pg.host:
        out = np.empty((pg.size, *tensor.shape), tensor.dtype)
        work = engine.all_gather(out, host.host_values(tensor), not async_op)
        finish = [partial(_store, t, out[r]) for r, t in enumerate(tensor_list)]
        return _done(pg, work, finish, async_op)
    from .._creation import empty

    out = empty((pg.size, *tensor.shape), dtype=tensor.dtype, device=tensor.device)
    work = engine.all_gather(host.device_array(out), host.device_array(tensor))
    return _done(pg, work, [partial(_copy_rows, tensor_list, out)], async_op)


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group: Any = None,
                           async_op: bool = False) -> Work | None:
    """Write every rank's ``input_tensor`` into ``output_tensor``, in rank order (its
    shape ``(world_size * n, ...)`` or ``(world_size, n, ...)``)."""
    pg = current(group)
    _check_sizes("all_gather_into_tensor", output_tensor, input_tensor, pg.size)
    engine = _engine(pg, "all_gather_into_tensor", (output_tensor, input_tensor))
    if engine is pg.host:
        buf, finish = _writable(output_tensor, keep=False)
        work = engine.all_gather(buf, host.host_values(input_tensor), not async_op)
        return _done(pg, work, [finish], async_op)
    work = engine.all_gather(host.device_array(output_tensor, write=True),
                             host.device_array(input_tensor))
    return _done(pg, work, [partial(host.mark_written, output_tensor)], async_op)


def reduce_scatter(output: Tensor, input_list: list[Tensor], op: ReduceOp = ReduceOp.SUM,
                   group: Any = None, async_op: bool = False) -> Work | None:
    """Reduce ``input_list[r]`` over all ranks into ``output`` on rank ``r``."""
    pg = current(group)
    _check_list("reduce_scatter", input_list, output, pg.size)
    op = _reduce_op(op, output)
    engine = _engine(pg, "reduce_scatter", (output,), op=op.value)
    if engine is not pg.host:
        from .._ops.shape import stack

        with no_grad():
            stacked = stack(list(input_list))
        work = engine.reduce_scatter(host.device_array(output, write=True),
                                     host.device_array(stacked), op.value)
        return _done(pg, work, [partial(host.mark_written, output)], async_op)
    stacked = np.stack([host.host_values(t) for t in input_list])
    buf, finish = _writable(output, keep=False)
    work = engine.reduce_scatter(buf, stacked, op.value, not async_op)
    return _done(pg, work, [finish], async_op)


def reduce_scatter_tensor(output: Tensor, input: Tensor, op: ReduceOp = ReduceOp.SUM,
                          group: Any = None, async_op: bool = False) -> Work | None:
    """Reduce ``input`` (``world_size`` chunks, each the size of ``output``, in C order)
    over all ranks; chunk ``r`` of the result goes into ``output`` on rank ``r``."""
    pg = current(group)
    _check_sizes("reduce_scatter_tensor", input, output, pg.size)
    op = _reduce_op(op, output)
    engine = _engine(pg, "reduce_scatter_tensor", (output, input), op=op.value)
    if engine is pg.host:
        buf, finish = _writable(output, keep=False)
        work = engine.reduce_scatter(buf, host.host_values(input), op.value, not async_op)
        return _done(pg, work, [finish], async_op)
    work = engine.reduce_scatter(host.device_array(output, write=True),
                                 host.device_array(input), op.value)
    return _done(pg, work, [partial(host.mark_written, output)], async_op)


def barrier(group: Any = None, async_op: bool = False,
            device_ids: Any = None) -> Work | None:
    """Wait until every rank has called ``barrier`` (``device_ids``: PyTorch's, unused)."""
    pg = current(group)
    if _config.distributed_debug():
        pg.host.check_same("barrier()")
    return _done(pg, pg.host.barrier(not async_op), [], async_op)


# --- helpers ------------------------------------------------------------------------------


def _reduce_op(op: Any, tensor: Tensor) -> ReduceOp:
    try:
        op = op if isinstance(op, ReduceOp) else ReduceOp(str(op).lower())
    except ValueError:
        raise DistributedError(f"unknown reduction {op!r}; use one of "
                               f"{[o.name for o in ReduceOp]} (flambeau.distributed.ReduceOp)"
                               ) from None
    if op is ReduceOp.AVG and getattr(tensor, "dtype", None) == np.bool_:
        raise DTypeError("ReduceOp.AVG needs a number tensor, got dtype bool; use SUM or MAX "
                         "(any rank true) or MIN (every rank)")
    return op


def _engine(pg: ProcessGroup, name: str, tensors: Sequence[Tensor], **details: Any) -> Any:
    """The engine for the tensors' device, after checking them (and, in debug mode, that
    every rank makes the same call)."""
    first = tensors[0]
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected flambeau tensors, got {type(t).__name__}")
        if t.device != first.device:
            raise DeviceMismatchError(f"{name}: expected tensors on one device, got "
                                      f"{first.device} and {t.device}")
        if t.dtype != first.dtype:
            raise DTypeError(f"{name}: expected tensors of one dtype, got {first.dtype} and "
                             f"{t.dtype}")
    if first.device.type == "meta":
        raise DistributedError(f"{name}: meta tensors have no values to exchange")
    if _config.distributed_debug():
        shapes = ", ".join(str(list(t.shape)) for t in tensors)
        extra = "".join(f", {k}={v}" for k, v in details.items())
        pg.host.check_same(f"{name}({first.dtype} {first.device.type} {shapes}{extra})")
    return pg.engine_for(first.device)


def _check_list(name: str, tensors: Sequence[Tensor], like: Tensor, size: int) -> None:
    if len(tensors) != size:
        raise ShapeError(f"{name}: expected a list of {size} tensors (one per rank), got "
                         f"{len(tensors)}")
    for t in tensors:
        if not isinstance(t, Tensor) or not isinstance(like, Tensor):
            raise TypeError(f"{name}: expected flambeau tensors, got {type(t).__name__}")
        if tuple(t.shape) != tuple(like.shape) or t.dtype != like.dtype or t.device != like.device:
            raise ShapeError(f"{name}: every tensor of the list must be like "
                             f"{list(like.shape)} {like.dtype} on {like.device}; got "
                             f"{list(t.shape)} {t.dtype} on {t.device}")


def _check_sizes(name: str, big: Tensor, small: Tensor, size: int) -> None:
    for t in (big, small):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected flambeau tensors, got {type(t).__name__}")
    if big.numel() != size * small.numel():
        raise ShapeError(f"{name}: expected {size} x {small.numel()} = "
                         f"{size * small.numel()} elements (world size x the smaller tensor's"
                         f"), got {big.numel()} (shape {list(big.shape)})")


def _writable(t: Tensor, keep: bool) -> tuple[np.ndarray, Callable[[], None]]:
    """A host array for a collective to write ``t``'s result into, and the step that puts
    it into ``t`` once complete."""
    return host.host_buffer(t, keep)


def _store(t: Tensor, values: np.ndarray) -> None:
    buf, done = host.host_buffer(t, keep=False)
    np.copyto(buf, values)
    done()


def _copy_rows(tensor_list: Sequence[Tensor], out: Tensor) -> None:
    with no_grad():
        for r, t in enumerate(tensor_list):
            t.copy_(out[r])


def _done(pg: ProcessGroup, work: Any, finish: list, async_op: bool) -> Work | None:
    handle = Work(work, finish, pg.timeout)
    if async_op:
        return handle
    work.wait()
    handle._complete()
    return None
