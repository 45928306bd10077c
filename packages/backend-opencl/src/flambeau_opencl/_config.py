"""Every environment variable flambeau-opencl reads, read in one place."""

from __future__ import annotations

import os

#: Which OpenCL devices become ``opencl:0..N-1``: a comma-separated list whose items are
#: a position in the full list (``0``), a device type (``gpu``, ``cpu``, ``accelerator``)
#: or text found, ignoring case, in the platform's and the device's names and vendors
#: (``pocl``, ``nvidia``, ``intel``).
#: Unset or empty: every device, GPUs first.
DEVICES_VAR = "FLAMBEAU_OPENCL_DEVICES"


def device_filter() -> list[str]:
    """The items of ``FLAMBEAU_OPENCL_DEVICES``, stripped; empty when unset."""
    raw = os.environ.get(DEVICES_VAR, "")
    return [item.strip() for item in raw.split(",") if item.strip()]
