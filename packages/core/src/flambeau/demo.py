"""A short demo: the devices found, then a little arithmetic on the chosen device."""

from __future__ import annotations

import numpy as np

from . import _device
from .__main__ import print_devices
from .errors import FlambeauError


def run_demo(device_name: str | None = None) -> int:
    """Print the devices, then compute on ``device_name`` (default device if None)."""
    print_devices()
    try:
        dev = _device.device(device_name) if device_name else _device.get_default_device()
        kernels = _device.kernels_for(dev)
    except FlambeauError as exc:
        print(f"\nerror: {exc}")
        return 1
    print(f"\ncomputing on {dev} ({dev.info.name})")
    x = kernels.from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3))
    w = kernels.from_numpy(np.ones((3, 2), np.float32))
    y = kernels.binary("add", kernels.matmul(x, w), 1.0)
    print("x =\n", kernels.to_numpy(x))
    print("x @ ones(3, 2) + 1 =\n", kernels.to_numpy(y))
    print("sum:", kernels.to_numpy(kernels.reduce("sum", y, None, False)))
    return 0
