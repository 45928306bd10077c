"""Data-parallel training on several processes: ``flambeau run -n 2 train_ddp.py``.

Each rank reads its own share of the data (DistributedSampler), the model's gradients
are averaged across ranks during backward (DistributedDataParallel), and rank 0 saves
the checkpoint. Run as a plain ``python train_ddp.py`` it is a world of one.
"""

import os
import sys
import tempfile

import flambeau
import flambeau.distributed as dist
from flambeau import nn
from flambeau.nn.parallel import DistributedDataParallel
from flambeau.utils.data import DataLoader, TensorDataset
from flambeau.utils.data.distributed import DistributedSampler


def main(out_dir: str) -> None:
    dist.init_process_group()
    rank, world = dist.get_rank(), dist.get_world_size()
    flambeau.manual_seed(0)  # the same data everywhere; DDP copies rank 0's weights anyway
    true_w = flambeau.tensor([[2.0, -3.4]])
    features = flambeau.normal(0, 1, (1000, 2))
    labels = features @ true_w.T + 4.2 + flambeau.normal(0, 0.01, (1000, 1))
    dataset = TensorDataset(features, labels)
    sampler = DistributedSampler(dataset, shuffle=True, seed=0)
    loader = DataLoader(dataset, batch_size=10 // world, sampler=sampler)

    model = DistributedDataParallel(nn.Linear(2, 1))
    optimizer = flambeau.optim.SGD(model.parameters(), lr=0.03)
    loss_fn = nn.MSELoss()
    for epoch in range(3):
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
        for X, y in loader:
            optimizer.zero_grad()
            loss_fn(model(X), y).backward()  # gradients are averaged across ranks here
            optimizer.step()
    weight = model.module.weight.detach()
    print(f"rank {rank}/{world}: w = {weight.tolist()}, b = {model.module.bias.item():.3f}")
    if rank == 0:
        flambeau.save(model.module.state_dict(), os.path.join(out_dir, "linear.params"))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp())
