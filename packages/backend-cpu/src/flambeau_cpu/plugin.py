"""Entry point of flambeau-cpu: hands the core one :class:`CpuBackend`."""

from flambeau.backends import hookimpl


@hookimpl
def flambeau_backends() -> list:
    from .backend import CpuBackend

    return [CpuBackend()]
