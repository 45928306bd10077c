"""``flambeau.cuda.device_count()`` and friends, shaped like ``torch.cuda``."""

from ._device import type_functions

device_count, is_available, synchronize = type_functions("cuda")

__all__ = ["device_count", "is_available", "synchronize"]
