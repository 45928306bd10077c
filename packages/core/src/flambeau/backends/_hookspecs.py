"""The pluggy hook a backend plugin implements (project name ``flambeau``)."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "flambeau"
ENTRY_POINT_GROUP = "flambeau.backends"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class BackendHookSpecs:
    """Hook specifications. A plugin module implements them with :data:`hookimpl`."""

    @hookspec
    def flambeau_backends(self) -> list:  # type: ignore[empty-body]
        """Return the :class:`~flambeau.backends.Backend` objects this plugin provides.

        Called once, on the first device query. Keep it cheap: import heavy libraries
        here rather than at module import, and raise if the backend cannot work at all
        (the error is recorded and shown to users; other backends keep working).
        A backend with no devices right now should still be returned, with
        ``device_count() == 0``.

        Example::

            from flambeau.backends import hookimpl

            @hookimpl
            def flambeau_backends():
                from .backend import MyBackend
                return [MyBackend()]
        """
