"""flambeau-opencl: the OpenCL backend of flambeau (device type ``opencl``).

Every OpenCL 1.2 device of every installed platform is ``opencl:0..N-1``, GPUs first;
``FLAMBEAU_OPENCL_DEVICES`` narrows the list. ``pip install "flambeau-opencl[pocl]"``
adds PoCL, an OpenCL driver for CPUs.
"""

from .array import CLArray
from .backend import OpenCLBackend


def empty_cache(index: int | None = None) -> None:
    """Give the cached, unused device buffers of ``opencl:index`` (default: every device
    in use) back to the driver: the ``opencl`` backend's
    :meth:`~OpenCLBackend.empty_cache`."""
    from flambeau import backends

    backend = backends.get("opencl")
    if backend is not None:
        backend.empty_cache(index)


__all__ = ["CLArray", "OpenCLBackend", "empty_cache"]
