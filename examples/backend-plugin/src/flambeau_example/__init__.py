"""flambeau-example-backend: an example third-party backend (device type ``boxed``)."""

from .backend import BoxedBackend
from .kernels import BoxedArray, BoxedKernels

__all__ = ["BoxedArray", "BoxedBackend", "BoxedKernels"]
