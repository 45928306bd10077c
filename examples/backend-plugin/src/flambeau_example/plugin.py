"""Entry point of flambeau-example-backend: hands the core one :class:`BoxedBackend`."""

from flambeau.backends import hookimpl


@hookimpl
def flambeau_backends() -> list:
    """Return the backends this plugin provides (called once, on the first device query)."""
    # Imported here, not at module level, so that loading the entry point stays cheap.
    from .backend import BoxedBackend

    return [BoxedBackend()]
