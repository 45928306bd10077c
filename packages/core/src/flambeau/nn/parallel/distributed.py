"""``DistributedDataParallel``: one replica of a module per rank, gradients averaged over
the ranks during backward.

Gradients are staged into persistent flat bucket tensors (one per device and dtype, in
reverse parameter order: the last layers' gradients are ready first), and each bucket's
``all_reduce`` starts asynchronously as soon as all its parameters' gradients are
accumulated (post-accumulate-grad hooks), always in bucket order so every rank issues the
same collectives in the same order. As in PyTorch, the staging copy also divides by the
world size (one pass: the collective then sums). An end-of-backward callback waits for the
collectives and copies the averages back into each ``param.grad``.

Copies cost: on 2 ranks of a 2-core machine, copying a 3 M-parameter MLP's gradients into
the buckets and back, plus a separate division, cost more than the all-reduce itself. So a
gradient of at least ``_DIRECT_BYTES`` is not staged: it is divided and reduced in place,
as a bucket of its own (Horovod's rule for tensors above its fusion threshold); that took
the step's overhead over a local step from +72% to +36% (``bench/bench_ddp.py``). After
the backward every ``param.grad`` holds the average, as in PyTorch; but from its hook to
the end of backward such a gradient is being reduced: read it after ``backward()``.

With ``gradient_as_bucket_view=True`` every ``param.grad`` *is* a view of its bucket
instead (PyTorch's option), so nothing is copied back, and backwards accumulate straight
into the buckets (no staging copy either, unless ``zero_grad()`` set the gradients to
``None``: then the new gradient is copied in and the view put back). At world size 1
nothing is staged.

Usage (under ``flambeau run -n N script.py``)::

    dist.init_process_group()
    model = DistributedDataParallel(Net())
    loss_fn(model(x), y).backward()      # model.module's grads are averaged over ranks
    with model.no_sync():                # accumulate locally, reduce on the next backward
        loss_fn(model(x2), y2).backward()
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ... import distributed as dist
from ..._creation import tensor, zeros, zeros_like
from ..._ops.host import scale_into
from ...autograd import no_grad, queue_callback
from ...errors import DistributedError, UninitializedParameterError
from ..module import Module
from ..parameter import is_lazy

__all__ = ["DistributedDataParallel"]

_FIRST_BUCKET_BYTES = 1024 * 1024  # PyTorch's first bucket: small, so it starts early
# Reduced in place, unstaged: a copy of this many bytes costs more than a collective's
# fixed cost (tens of microseconds through MPI on one machine).
_DIRECT_BYTES = 256 * 1024


class _Bucket:
    """A flat tensor holding the gradients of some parameters of one device and dtype;
    or, ``direct``, one parameter's gradient reduced where it lies (``buffer`` None)."""

    def __init__(self, params: list[tuple[str, Any]], direct: bool = False) -> None:
        self.params = params
        self.pending = len(params)
        self.work: Any = None
        self.target: Any = None  # what the collective reduces: the buffer, or the gradient
        if direct:
            self.buffer, self.slots = None, [None]
            return
        first = params[0][1]
        sizes = [p.numel() for _, p in params]
        self.buffer = zeros(sum(sizes), dtype=first.dtype, device=first.device)
        self.slots: list[Any] = []  # each parameter's view of the buffer, in its shape
        offset = 0
        for (_, p), n in zip(params, sizes):
            self.slots.append(self.buffer[offset:offset + n].view(tuple(p.shape)))
            offset += n
        self.target = self.buffer


class DistributedDataParallel(Module):
    """PyTorch's ``DistributedDataParallel``: wraps ``module`` (as ``.module``), makes
    every rank start from rank 0's parameters and buffers, and averages gradients over
    the ranks during each backward.

    Args:
        module: The model (its lazy parameters must be materialised: run one batch
            through it first).
        device_ids, output_device, dim: PyTorch's; the module stays on its device.
        broadcast_buffers: Copy rank 0's buffers (e.g. batch-norm running statistics) to
            every rank before each forward.
        process_group: ``None`` (the default group).
        bucket_cap_mb: Bucket size in MiB (the first bucket is at most 1 MiB).
        find_unused_parameters: Allow parameters that get no gradient in a backward
            (their gradient counts as zeros); otherwise that is an error naming them.
        gradient_as_bucket_view: Make each ``param.grad`` a view of its bucket (from the
            construction if it has a gradient, else from its first reduced backward), as
            PyTorch does: saves the copies into and out of the buckets, and the memory
            of a second copy of the gradients. ``zero_grad(set_to_none=False)`` keeps the
            views; after ``set_to_none=True`` (the optimizers' default) the next backward
            copies the new gradients in and makes them views again. Do not replace
            ``param.grad`` by a tensor of your own in the middle of a backward.

    Raises:
        UninitializedParameterError: if ``module`` still has lazy parameters.
        DistributedError: if :func:`flambeau.distributed.init_process_group` was not
            called.
    """

    def __init__(self, module: Module, device_ids: Any = None, output_device: Any = None,
                 dim: int = 0, broadcast_buffers: bool = True, process_group: Any = None,
                 bucket_cap_mb: float = 25, find_unused_parameters: bool = False,
                 check_reduction: bool = False, gradient_as_bucket_view: bool = False,
                 static_graph: bool = False) -> None:
        super().__init__()
        lazy = [n for n, p in [*module.named_parameters(), *module.named_buffers()]
                if is_lazy(p)]
        if lazy:
            raise UninitializedParameterError(
                f"DistributedDataParallel: {', '.join(lazy)} uninitialized (lazy); run one "
                "batch first through the module (e.g. module(example_batch)) so its shapes "
                "are known, then wrap it")
        self.module = module
        self.process_group = process_group
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.bucket_cap_mb = bucket_cap_mb
        self._world = dist.get_world_size(process_group)
        self._sync = True  # outside no_sync()
        self._sync_backward = True  # what the last forward saw: its backward follows it
        self._buckets: list[_Bucket] = []
        self._handles: list[Any] = []
        if self._world == 1:
            return
        with no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                dist.broadcast(t, 0, group=process_group)
        named = [(f"module.{n}", p) for n, p in module.named_parameters() if p.requires_grad]
        self._buckets = _make_buckets(named[::-1], int(bucket_cap_mb * 1024 * 1024),
                                      None if gradient_as_bucket_view else _DIRECT_BYTES)
        self._where: dict[int, tuple[_Bucket, Any]] = {}  # id(param) -> (bucket, its slot)
        for bucket in self._buckets:
            for (_, p), slot in zip(bucket.params, bucket.slots):
                self._where[id(p)] = (bucket, slot)
                self._handles.append(p.register_post_accumulate_grad_hook(self._on_grad))
                if gradient_as_bucket_view and p.grad is not None:
                    with no_grad():
                        slot.copy_(p.grad)
                    p.grad = slot
        self._reset()

    # --- forward and no_sync -------------------------------------------------------------

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._world > 1 and self._armed:  # the last backward failed before its end
            self._abandon()
        self._sync_backward = self._sync
        if self._world > 1 and self.broadcast_buffers:
            with no_grad():
                for b in self.module.buffers():
                    dist.broadcast(b, 0, group=self.process_group)
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Forwards inside (and so their backwards, as in PyTorch) only accumulate
        gradients locally; the backward of the first forward after it averages the
        accumulated gradients."""
        old, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = old

    # --- during backward -----------------------------------------------------------------

    def _reset(self) -> None:
        self._armed = False
        self._next = 0  # the next bucket to start
        self._polled = 0  # the oldest bucket whose collective may still be running
        self._reported: set[int] = set()
        for bucket in self._buckets:
            bucket.pending = len(bucket.params)
            bucket.work = None
            if bucket.buffer is None:
                bucket.target = None  # (drops this backward's gradient)

    def _abandon(self) -> None:
        """Wait for the collectives started (so ranks stay in step), drop the rest."""
        for b in self._buckets[:self._next]:
            b.work.wait()
        self._reset()

    def _on_grad(self, p: Any) -> None:
        if not self._sync_backward or id(p) in self._reported:
            return
        if not self._armed:
            self._armed = True
            queue_callback(self._finish)
        bucket, slot = self._where[id(p)]
        self._stage(p, bucket, slot)
        self._reported.add(id(p))
        bucket.pending -= 1
        if bucket.pending == 0:
            self._start_ready()
        self._poll()

    def _stage(self, p: Any, bucket: _Bucket, slot: Any) -> None:
        """Put ``p.grad / world`` into its bucket slot (the collective sums)."""
        with no_grad():
            if bucket.buffer is None:  # reduced where it lies
                grad = p.grad if p.grad.is_contiguous() else p.grad.contiguous()
                bucket.target = p.grad = grad.mul_(1.0 / self._world)
                return
            if p.grad is slot:  # accumulated straight into the bucket
                slot.mul_(1.0 / self._world)
                return
            scale_into(slot, p.grad, 1.0 / self._world)
            if self.gradient_as_bucket_view:
                p.grad = slot

    def _start_ready(self) -> None:
        """Start the ready buckets in bucket order (a later bucket waits for earlier)."""
        while self._next < len(self._buckets) and self._buckets[self._next].pending == 0:
            bucket = self._buckets[self._next]
            bucket.work = dist.all_reduce(bucket.target, dist.ReduceOp.SUM,
                                          group=self.process_group, async_op=True)
            self._next += 1

    def _poll(self) -> None:
        """Let MPI move the collectives in flight on: MPICH progresses nonblocking
        collectives only inside MPI calls. (On 2 ranks of a 2-core machine it made no
        measurable difference: each rank's own core does its copies either way.)"""
        while self._polled < self._next and self._buckets[self._polled].work.is_completed():
            self._polled += 1

    def _finish(self) -> None:
        unused = [] if len(self._reported) == len(self._where) else [
            (b, i) for b in self._buckets for i, (_, p) in enumerate(b.params)
            if id(p) not in self._reported]
        if unused and not self.find_unused_parameters:
            self._abandon()
            names = ", ".join(b.params[i][0] for b, i in unused)
            raise DistributedError(
                "Expected to have finished reduction in the prior iteration before starting "
                "a new one. This error indicates that your module has parameters that were "
                "not used in producing loss. You can enable unused parameter detection by "
                "passing the keyword argument `find_unused_parameters=True` to "
                "`flambeau.nn.parallel.DistributedDataParallel`, and by making sure all "
                "`forward` function outputs participate in calculating loss. Parameters "
                f"that were not used (rank {dist.get_rank()}): {names}")
        with no_grad():
            for b, i in unused:
                if b.buffer is None:
                    b.target = zeros_like(b.params[i][1])
                else:
                    b.slots[i].zero_()
                b.pending -= 1
        self._start_ready()
        used = None
        if self.find_unused_parameters:  # which parameters some rank used (every rank
            # asks, after all its buckets): those get the averaged gradient
            flags = [float(id(p) in self._reported) for b in self._buckets
                     for _, p in b.params]
            used = tensor(flags)
            dist.all_reduce(used, group=self.process_group)
            index = {id(p): k for k, (_, p) in enumerate(
                [q for b in self._buckets for q in b.params])}
        for b in self._buckets:
            b.work.wait()
        view = self.gradient_as_bucket_view
        with no_grad():
            for b in self._buckets:
                for (_, p), slot in zip(b.params, b.slots):
                    if slot is not None and id(p) in self._reported and p.grad is not slot:
                        p.grad.copy_(slot)
            for b, i in unused:
                p, slot = b.params[i][1], b.slots[i]
                if slot is None:
                    slot = b.target
                if used is not None and used[index[id(p)]].item() == 0:
                    continue  # no rank used it: its gradient stays as it was
                if p.grad is None or view:
                    p.grad = slot if view else slot.clone()
                elif p.grad is not slot:
                    p.grad.copy_(slot)
        self._reset()


def _make_buckets(params: list[tuple[str, Any]], cap: int,
                  direct: int | None) -> list[_Bucket]:
    """Group ``params`` (in the order given) by device and dtype into buckets: the first
    up to 1 MiB (or ``cap`` if smaller), then up to ``cap`` bytes each; a parameter of at
    least ``direct`` bytes gets a direct bucket of its own. Buckets are ordered by their
    last parameter, about when they become ready (a bucket waits for those before it)."""
    groups: list[tuple[list[tuple[str, Any]], bool]] = []  # (members, direct)
    open_: dict[tuple[str, str], tuple[list[tuple[str, Any]], int]] = {}
    first = True
    for name, p in params:
        key = (str(p.device), str(p.dtype))
        size = p.numel() * p.element_size()
        if direct is not None and size >= direct:
            groups.append(([(name, p)], True))
            continue
        members, used = open_.get(key, ([], 0))
        limit = min(_FIRST_BUCKET_BYTES, cap) if first else cap
        if members and used + size > limit:
            first = False
            members, used = [], 0
        if not members:
            groups.append((members, False))
        members.append((name, p))
        open_[key] = (members, used + size)
    order = {id(p): i for i, (_, p) in enumerate(params)}
    groups.sort(key=lambda group: order[id(group[0][-1][1])])
    return [_Bucket(members, is_direct) for members, is_direct in groups]
