"""Entry point of flambeau-opencl: hands the core one :class:`OpenCLBackend`.

The backend loads even without an OpenCL driver (it then has no devices and says why), so
``flambeau devices`` can explain what to install.
"""

from flambeau.backends import hookimpl


@hookimpl
def flambeau_backends() -> list:
    """Return the opencl backend (devices are listed on the first query, not here)."""
    from .backend import OpenCLBackend

    return [OpenCLBackend()]
