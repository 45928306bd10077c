"""A short demo: the devices found, then tensors and a gradient on the chosen device."""

from __future__ import annotations

from . import _device
from .__main__ import print_devices
from .errors import FlambeauError


def run_demo(device_name: str | None = None) -> int:
    """Print the devices, then compute on ``device_name`` (default device if None)."""
    import flambeau

    print_devices()
    try:
        dev = _device.device(device_name) if device_name else _device.get_default_device()
        x = flambeau.arange(6.0, device=dev).reshape(2, 3)
    except FlambeauError as exc:
        print(f"\nerror: {exc}")
        return 1
    print(f"\ncomputing on {dev} ({dev.info.name})")
    w = flambeau.ones(3, 2, device=dev, requires_grad=True)
    y = x @ w + 1
    print("x =", x, sep="\n")
    print("y = x @ w + 1 =", y, sep="\n")
    loss = (y**2).mean()
    loss.backward()
    print(f"loss = mean(y ** 2) = {loss.item():.4f}")
    print("d loss / d w =", w.grad, sep="\n")
    return 0
