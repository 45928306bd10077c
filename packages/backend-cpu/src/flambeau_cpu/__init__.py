"""flambeau-cpu: the numpy backend (device type ``cpu``)."""

from .backend import CpuBackend

__all__ = ["CpuBackend"]
