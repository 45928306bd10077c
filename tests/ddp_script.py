"""DistributedDataParallel on several ranks (run by tests/test_ddp.py under mpiexec):
gradients against one process on the concatenated batch, bitwise-equal parameters after
SGD steps, no_sync, buffer broadcast, unused parameters, gradients reduced in place
(unstaged); with the argument
``bucket_view``, gradient_as_bucket_view=True instead. Prints one line per rank."""

from __future__ import annotations

import numpy as np

import flambeau
import flambeau.distributed as dist
from flambeau import nn
from flambeau.errors import DistributedError
from flambeau.nn.parallel import DistributedDataParallel as DDP
from flambeau.nn.parallel import distributed as ddp_module

RTOL, ATOL = 1e-5, 1e-6
DIRECT_BYTES = ddp_module._DIRECT_BYTES


def mlp(seed: int) -> nn.Module:
    flambeau.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                         nn.Linear(32, 4))


def batch(seed: int, n: int) -> tuple:
    rng = np.random.default_rng(seed)
    return (flambeau.tensor(rng.standard_normal((n, 8)).astype(np.float32)),
            flambeau.tensor(rng.standard_normal((n, 4)).astype(np.float32)))


def local(t, rank: int, size: int):
    n = t.shape[0] // size
    return t[rank * n:(rank + 1) * n]


def same_on_all_ranks(t) -> None:
    parts = [flambeau.empty_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, t.detach())
    for p in parts:
        assert np.array_equal(p.numpy(), t.detach().numpy()), "ranks differ"


def check_gradients_and_steps(rank: int, size: int, cap: float) -> None:
    ref, model = mlp(0), DDP(mlp(7 * rank), bucket_cap_mb=cap)  # rank 1: other init
    for p, q in zip(ref.parameters(), model.module.parameters()):
        assert np.array_equal(p.detach().numpy(), q.detach().numpy())  # rank 0's
    staged = [b for b in model._buckets if b.buffer is not None]
    assert (len(staged) > 3) == (cap < 0.01), len(staged)
    loss_fn = nn.MSELoss()
    opt = flambeau.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    ref_opt = flambeau.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    for step in range(3):
        x, y = batch(step, 4 * size)
        opt.zero_grad()
        ref_opt.zero_grad()
        loss_fn(model(local(x, rank, size)), local(y, rank, size)).backward()
        loss_fn(ref(x), y).backward()
        for p, q in zip(ref.parameters(), model.module.parameters()):
            np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=RTOL, atol=ATOL)
            same_on_all_ranks(q.grad)
        opt.step()
        ref_opt.step()
    for p, q in zip(ref.parameters(), model.parameters()):
        same_on_all_ranks(q)
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-4,
                                   atol=1e-5)


def check_no_sync(rank: int, size: int) -> None:
    ref, model = mlp(0), DDP(mlp(0))
    loss_fn = nn.MSELoss()
    (xa, ya), (xb, yb) = batch(10, 4 * size), batch(11, 4 * size)
    with model.no_sync():
        loss_fn(model(local(xa, rank, size)), local(ya, rank, size)).backward()
    local_grads = [p.grad.numpy().copy() for p in model.module.parameters()]
    loss_fn(model(local(xb, rank, size)), local(yb, rank, size)).backward()
    loss_fn(ref(xa), ya).backward()
    loss_fn(ref(xb), yb).backward()
    for p, q in zip(ref.parameters(), model.module.parameters()):
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=RTOL, atol=ATOL)
        same_on_all_ranks(q.grad)
    # Inside no_sync the gradients were this rank's own (the ranks' halves differ).
    ref.zero_grad()
    loss_fn(ref(local(xa, rank, size)), local(ya, rank, size)).backward()
    for g, p in zip(local_grads, ref.parameters()):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=RTOL, atol=ATOL)


def check_buffers(rank: int) -> None:
    flambeau.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5))
    with flambeau.no_grad():
        net[1].running_mean.fill_(float(rank))  # made different on purpose
    model = DDP(net)
    assert net[1].running_mean.tolist() == [0.0] * 5  # rank 0's, from construction
    x = flambeau.ones(4, 3) * (rank + 1)
    model(x)  # each rank's statistics update its own running stats...
    with flambeau.no_grad():
        net[1].running_var.fill_(float(rank + 7))
    model(flambeau.ones(4, 3))  # ...but rank 0's are broadcast before each forward
    same_on_all_ranks(net[1].running_mean)
    same_on_all_ranks(net[1].running_var)
    assert net[1].running_var.tolist() != [float(rank + 7)] * 5 or rank == 0


class Backwards(nn.Module):
    """Layers registered in the opposite order to their use: buckets become ready out of
    order and must still start in bucket order."""

    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(16, 2)
        self.mid = nn.Linear(16, 16)
        self.inp = nn.Linear(3, 16)

    def forward(self, x):
        return self.out(self.mid(self.inp(x).relu()).relu())


def check_out_of_order_buckets(rank: int, size: int) -> None:
    flambeau.manual_seed(0)
    ref = Backwards()
    flambeau.manual_seed(rank)
    model = DDP(Backwards(), bucket_cap_mb=0.0001)
    assert len(model._buckets) >= 5, len(model._buckets)  # 5 if the 1 KB weight is direct
    x = flambeau.tensor(np.random.default_rng(3).standard_normal((2 * size, 3))
                        .astype(np.float32))
    model(local(x, rank, size)).square().mean().backward()
    ref(x).square().mean().backward()
    for p, q in zip(ref.parameters(), model.module.parameters()):
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=RTOL, atol=ATOL)
        same_on_all_ranks(q.grad)


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3, 2)
        self.fc2 = nn.Linear(3, 2)

    def forward(self, x, use_fc2: bool = False):
        return self.fc1(x) + (self.fc2(x) if use_fc2 else 0)


def check_unused(rank: int) -> None:
    flambeau.manual_seed(0)
    model = DDP(TwoHeads())
    try:
        model(flambeau.ones(2, 3)).sum().backward()
    except DistributedError as e:
        msg = str(e)
        assert "Expected to have finished reduction" in msg, msg
        assert "module.fc2.weight" in msg and "module.fc2.bias" in msg, msg
        assert "module.fc1" not in msg, msg
        assert "find_unused_parameters=True" in msg, msg
    else:
        raise AssertionError("no error for unused parameters")
    # The same model works on afterwards when every parameter is used.
    model.zero_grad()
    model(flambeau.ones(2, 3) * (rank + 1), use_fc2=True).sum().backward()
    same_on_all_ranks(model.module.fc2.weight.grad)

    flambeau.manual_seed(0)
    model = DDP(TwoHeads(), find_unused_parameters=True)
    for _ in range(2):  # fc2 unused everywhere: its grad stays None
        model.zero_grad()
        model(flambeau.ones(2, 3) * (rank + 1)).sum().backward()
        assert model.module.fc2.weight.grad is None
        assert model.module.fc1.weight.grad.tolist() == [[3.0, 3.0, 3.0]] * 2  # (2 + 4) / 2
    # fc2 used on rank 0 only: every rank gets the average (rank 0's / world size).
    model.zero_grad()
    model(flambeau.ones(2, 3), use_fc2=rank == 0).sum().backward()
    size = dist.get_world_size()
    assert model.module.fc2.weight.grad.tolist() == [[2.0 / size] * 3] * 2
    assert model.module.fc2.bias.grad.tolist() == [2.0 / size] * 2


class TransposedWeight(nn.Module):
    """A weight used transposed: its gradient comes back strided, not C-contiguous."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(flambeau.randn(4, 8))

    def forward(self, x):
        return x @ self.weight.T


def check_direct_buckets(rank: int, size: int) -> None:
    """Gradients big enough to skip staging (here: lowered to 512 bytes) are reduced in
    place, each its own bucket between the staged ones; everything above still holds."""
    ddp_module._DIRECT_BYTES = 512
    try:
        model = DDP(mlp(0))
        kinds = ["direct" if b.buffer is None else len(b.params) for b in model._buckets]
        assert kinds == ["direct", "direct", 3, "direct"], kinds  # by their last parameter
        check_gradients_and_steps(rank, size, cap=25)
        check_out_of_order_buckets(rank, size)
        check_no_sync(rank, size)
        ddp_module._DIRECT_BYTES = 16  # TwoHeads' 24-byte weights too
        check_unused(rank)
        flambeau.manual_seed(0)
        ref = TransposedWeight()
        flambeau.manual_seed(0)
        model = DDP(TransposedWeight())
        x = flambeau.tensor(np.random.default_rng(5).standard_normal((2 * size, 8))
                            .astype(np.float32))
        model(local(x, rank, size)).square().mean().backward()
        ref(x).square().mean().backward()
        grad = model.module.weight.grad
        np.testing.assert_allclose(grad.numpy(), ref.weight.grad.numpy(), rtol=RTOL, atol=ATOL)
        same_on_all_ranks(grad)
    finally:
        ddp_module._DIRECT_BYTES = DIRECT_BYTES


def bucket_values(model) -> list:
    return [b.buffer.numpy().copy() for b in model._buckets]


def grads_in_bucket_order(model) -> list:
    return [np.concatenate([p.grad.numpy().ravel() for _, p in b.params])
            for b in model._buckets]


def check_gradient_as_bucket_view(rank: int, size: int) -> None:
    """Gradients are views of the buckets (writes show in the bucket), equal to the
    default path bitwise, through zero_grad (to None and in place) and no_sync."""
    ref, model = DDP(mlp(0)), DDP(mlp(0), gradient_as_bucket_view=True)
    loss_fn = nn.MSELoss()
    opt = flambeau.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    ref_opt = flambeau.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9)
    params = list(model.module.parameters())

    def step(i: int, set_to_none: bool) -> None:
        x, y = batch(20 + i, 4 * size)
        opt.zero_grad(set_to_none=set_to_none)
        ref_opt.zero_grad(set_to_none=set_to_none)
        if not set_to_none:  # zeroed in place: still the bucket's views
            assert all(p.grad is model._where[id(p)][1] for p in params)
            assert all(not v.any() for v in bucket_values(model))
        for m in (model, ref):
            loss_fn(m(local(x, rank, size)), local(y, rank, size)).backward()
        for p, q in zip(ref.module.parameters(), params):
            assert np.array_equal(p.grad.numpy(), q.grad.numpy()), "not the default's"
            same_on_all_ranks(q.grad)
        for got, want in zip(bucket_values(model), grads_in_bucket_order(model)):
            assert np.array_equal(got, want)
        opt.step()
        ref_opt.step()

    for i, set_to_none in enumerate([True, False, False, True, False]):
        step(i, set_to_none)
    for p, q in zip(ref.parameters(), model.parameters()):
        assert np.array_equal(p.detach().numpy(), q.detach().numpy())
    # A write into a gradient is a write into its bucket, and the other way round.
    last = params[-1]
    with flambeau.no_grad():
        last.grad.fill_(3.0)
    assert bucket_values(model)[0][:last.numel()].tolist() == [3.0] * last.numel()
    with flambeau.no_grad():
        model._buckets[0].buffer.zero_()
    assert not last.grad.numpy().any()

    # no_sync accumulates locally into the views; the next backward averages the sum.
    ref_local = mlp(0)
    ref_local.load_state_dict(model.module.state_dict())
    ref_full = mlp(0)
    ref_full.load_state_dict(model.module.state_dict())
    (xa, ya), (xb, yb) = batch(30, 4 * size), batch(31, 4 * size)
    model.zero_grad(set_to_none=False)
    with model.no_sync():
        loss_fn(model(local(xa, rank, size)), local(ya, rank, size)).backward()
    loss_fn(ref_local(local(xa, rank, size)), local(ya, rank, size)).backward()
    for p, q in zip(ref_local.parameters(), params):
        assert q.grad is model._where[id(q)][1], "no_sync replaced the view"
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=RTOL, atol=ATOL)
    loss_fn(model(local(xb, rank, size)), local(yb, rank, size)).backward()
    loss_fn(ref_full(xa), ya).backward()
    loss_fn(ref_full(xb), yb).backward()
    for p, q in zip(ref_full.parameters(), params):
        assert q.grad is model._where[id(q)][1]
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=RTOL, atol=ATOL)
        same_on_all_ranks(q.grad)
    # After zero_grad() (to None), no_sync leaves fresh gradients; the next backward
    # copies them in and makes them views again.
    model.zero_grad()
    with model.no_sync():
        loss_fn(model(local(xa, rank, size)), local(ya, rank, size)).backward()
    assert all(q.grad is not model._where[id(q)][1] for q in params)
    loss_fn(model(local(xb, rank, size)), local(yb, rank, size)).backward()
    for p, q in zip(ref_full.parameters(), params):
        assert q.grad is model._where[id(q)][1]
        np.testing.assert_allclose(q.grad.numpy(), p.grad.numpy(), rtol=RTOL, atol=ATOL)

    # A parameter used on rank 0 only gets its view, holding the average, everywhere.
    flambeau.manual_seed(0)
    heads = DDP(TwoHeads(), find_unused_parameters=True, gradient_as_bucket_view=True)
    heads(flambeau.ones(2, 3), use_fc2=rank == 0).sum().backward()
    fc2 = heads.module.fc2.weight
    assert fc2.grad is heads._where[id(fc2)][1]
    assert fc2.grad.tolist() == [[2.0 / size] * 3] * 2

    # Gradients present at construction become views at once, values kept.
    net = mlp(0)
    net(flambeau.ones(2, 8)).sum().backward()
    before = [p.grad.numpy().copy() for p in net.parameters()]
    wrapped = DDP(net, gradient_as_bucket_view=True)
    for p, g in zip(net.parameters(), before):
        assert p.grad is wrapped._where[id(p)][1]
        assert np.array_equal(p.grad.numpy(), g)


if __name__ == "__main__":
    import sys

    dist.init_process_group()
    rank, size = dist.get_rank(), dist.get_world_size()
    if sys.argv[1:] == ["bucket_view"]:
        check_gradient_as_bucket_view(rank, size)
    else:
        check_gradients_and_steps(rank, size, cap=25)
        check_gradients_and_steps(rank, size, cap=0.001)  # one bucket per parameter or so
        check_out_of_order_buckets(rank, size)
        check_no_sync(rank, size)
        check_buffers(rank)
        check_unused(rank)
        check_direct_buckets(rank, size)
    dist.destroy_process_group()
    print(f"rank {rank}: ddp checks passed on {mlp(0)[0].weight.device}", flush=True)
