"""Entry point of flambeau-cuda: hands the core one :class:`CudaBackend`.

Cheap on purpose: cupy is imported only when a device is first counted or used.
"""

from flambeau.backends import hookimpl


@hookimpl
def flambeau_backends() -> list:
    from .backend import CudaBackend

    return [CudaBackend()]
