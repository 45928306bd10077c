"""``torch.nn.parallel``: :class:`DistributedDataParallel` (data-parallel training over
the ranks of :mod:`flambeau.distributed`)."""

from __future__ import annotations

from .distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
