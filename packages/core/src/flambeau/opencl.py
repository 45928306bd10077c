"""``flambeau.opencl``: the opencl devices, shaped like ``torch.cuda``.

>>> import flambeau
>>> flambeau.opencl.manual_seed_all(0)  # seeds the one generator; a no-op without a device
>>> flambeau.opencl.memory_allocated() >= 0
True
"""

from ._device import type_functions

(device_count, is_available, synchronize, manual_seed, manual_seed_all, get_device_name,
 memory_allocated, empty_cache) = type_functions("opencl")

__all__ = ["device_count", "empty_cache", "get_device_name", "is_available", "manual_seed",
           "manual_seed_all", "memory_allocated", "synchronize"]
