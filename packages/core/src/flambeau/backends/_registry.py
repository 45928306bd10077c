"""Backend discovery: entry points loaded lazily, each inside its own error boundary.

Discovery runs once, on the first device query, under the registry's lock: other threads
wait for it to finish; a plugin that queries devices while it loads (same thread) sees
the backends loaded so far. The in-repo backends own their device types: no other
distribution may provide ``cpu``, ``cuda`` or ``opencl``, whatever the load order.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

import pluggy

from .. import _config
from ..errors import BackendError
from ._hookspecs import ENTRY_POINT_GROUP, PROJECT_NAME, BackendHookSpecs
from ._protocol import CONTRACT_VERSION, REQUIRED_KERNELS, Backend

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_LOG = logging.getLogger("flambeau.backends")

#: The in-repo backends: device type -> the distribution that alone may provide it.
IN_REPO_BACKENDS: dict[str, str] = {
    "cpu": "flambeau-cpu",
    "cuda": "flambeau-cuda",
    "opencl": "flambeau-opencl",
}

# Discovery states. DISCOVERING is only ever seen by the thread that holds the lock.
_PENDING, _DISCOVERING, _DONE = "pending", "discovering", "done"


@dataclass(frozen=True)
class PluginFailure:
    """A backend plugin that could not be used, and why.

    Attributes:
        name: The entry-point name (by convention the device type it provides).
        distribution: The distribution that declared it (``"<in-process>"`` if none).
        version: That distribution's version.
        message: One line saying what went wrong.
        traceback: The full traceback, for bug reports.
    """

    name: str
    distribution: str
    version: str
    message: str
    traceback: str

    def __str__(self) -> str:
        return f"{self.name} ({self.distribution} {self.version}): {self.message}"


#: The record's former name (it is not an exception), kept for existing imports.
PluginError = PluginFailure


class _Registry:
    """Loaded backends by name, and the plugins that failed."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._backends: dict[str, Backend] = {}
        self._origins: dict[str, str] = {}
        self._errors: list[PluginFailure] = []
        self._state = _PENDING

    def ensure_discovered(self) -> None:
        if self._state is _DONE:  # set last, after every backend is in place
            return
        # Other threads wait here until discovery is done. The discovering thread itself
        # re-enters (RLock) when a plugin queries devices while loading, and sees the
        # backends loaded so far instead of starting discovery again.
        with self._lock:
            if self._state is not _PENDING:
                return
            self._state = _DISCOVERING
            try:
                if not _config.plugin_autoload_disabled():
                    self._load_entry_points()
            except BaseException:  # KeyboardInterrupt: start afresh on the next query
                self._clear()
                raise
            self._state = _DONE

    def _load_entry_points(self) -> None:
        import importlib.metadata as metadata  # only on the first device query: it is slow

        entry_points = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=_ep_sort_key)
        for ep in entry_points:
            dist = getattr(ep, "dist", None)
            dist_name = (dist.metadata["Name"] if dist is not None else None) or "<unknown>"
            dist_version = dist.version if dist is not None else "?"
            where = (ep.name, dist_name, dist_version)
            try:
                _check_reserved_entry_point(ep, dist_name)
                _LOG.debug("loading backend plugin %r (%s) from %s %s",
                           ep.name, ep.value, dist_name, dist_version)
                started = time.perf_counter()
                module = ep.load()
                backends = _call_hook(module, ep.name)
                _LOG.debug("loaded backend plugin %r in %.3f s",
                           ep.name, time.perf_counter() - started)
            except BackendError as exc:
                self._record(where, str(exc))
                continue
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # SystemExit too: a plugin must not end the program
                self._record(where, f"failed to load: {_describe(exc)}")
                continue
            for backend in backends:
                try:
                    self._add_discovered(backend, dist_name, dist_version)
                except BackendError as exc:
                    self._record(where, str(exc))
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # a property such as ``name`` that raises
                    self._record(
                        where,
                        f"a backend object of type {type(backend).__qualname__} could not be "
                        f"checked: {_describe(exc)}",
                    )

    def _add_discovered(self, backend: Any, dist_name: str, dist_version: str) -> None:
        validate_backend(backend, dist_name)
        owner = IN_REPO_BACKENDS.get(backend.name)
        if owner is not None and _normalize(dist_name) != owner:
            raise BackendError(
                f"backend {backend.name!r} was refused: the device type {backend.name!r} is "
                f"reserved for the in-repo distribution {owner}, and this backend comes from "
                f"{dist_name} {dist_version}; a third-party backend must use a device type "
                "of its own"
            )
        self._add(backend, origin=f"{dist_name} {dist_version}")

    def _record(self, where: tuple[str, str, str], message: str) -> None:
        self._errors.append(PluginFailure(*where, message, traceback.format_exc()))

    def _add(self, backend: Any, origin: str, replace: bool = False) -> None:
        validate_backend(backend)
        name = backend.name
        if name in self._backends and not replace:
            raise BackendError(
                f"device type {name!r} is claimed twice: by {self._origins[name]} "
                f"and by {origin}; uninstall one of them (the first one is kept)"
            )
        self._backends[name] = backend
        self._origins[name] = origin

    def register(self, backend: Any, replace: bool) -> None:
        self.ensure_discovered()
        with self._lock:
            self._add(backend, origin="flambeau.backends.register()", replace=replace)

    def unregister(self, name: str) -> Backend:
        with self._lock:
            self._origins.pop(name, None)
            try:
                return self._backends.pop(name)
            except KeyError:
                raise KeyError(f"no backend named {name!r} is registered") from None

    def get(self, name: str) -> Backend | None:
        self.ensure_discovered()
        return self._backends.get(name)

    def origin(self, name: str) -> str | None:
        """Where backend ``name`` came from: its distribution and version, or ``register()``."""
        self.ensure_discovered()
        return self._origins.get(name)

    def all(self) -> dict[str, Backend]:
        self.ensure_discovered()
        return dict(self._backends)

    def errors(self) -> list[PluginFailure]:
        self.ensure_discovered()
        return list(self._errors)

    def reset(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self._backends.clear()
        self._origins.clear()
        self._errors.clear()
        self._state = _PENDING


def _normalize(dist_name: str) -> str:
    """A distribution name as pip compares them (PEP 503): ``Flambeau_CPU`` -> ``flambeau-cpu``."""
    return re.sub(r"[-_.]+", "-", dist_name).lower()


def _check_reserved_entry_point(ep: Any, dist_name: str) -> None:
    """Refuse, before importing anything, an entry point named like an in-repo backend
    that another distribution declares."""
    owner = IN_REPO_BACKENDS.get(ep.name)
    if owner is not None and _normalize(dist_name) != owner:
        raise BackendError(
            f"entry point {ep.name!r} = {ep.value} was not loaded: the device type "
            f"{ep.name!r} is reserved for the in-repo distribution {owner}; a third-party "
            "backend must use a device type of its own (rename its entry point and its backend)"
        )


def _describe(exc: BaseException) -> str:
    """One line for an exception a plugin raised; ``sys.exit`` gets its own wording."""
    if isinstance(exc, SystemExit):
        call = "sys.exit()" if exc.code is None else f"sys.exit({exc.code!r})"
        return (
            f"the plugin called {call} while loading; a plugin must raise an exception "
            "instead (the error is recorded and the other backends keep working)"
        )
    return f"{type(exc).__name__}: {exc}"


def _ep_sort_key(ep: Any) -> tuple[int, str]:
    # In-repo names first: a stable, readable order (ownership is enforced separately).
    return (0 if ep.name in IN_REPO_BACKENDS else 1, ep.name)


def _call_hook(module: Any, name: str) -> list[Any]:
    """Register ``module`` with a fresh plugin manager and call its hook alone."""
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(BackendHookSpecs)
    manager.register(module, name=name)
    results = manager.hook.flambeau_backends()
    if not results:
        raise BackendError(f"module {module.__name__!r} implements no flambeau_backends hook")
    backends: list[Any] = []
    for result in results:
        if result is None or isinstance(result, (str, bytes)):
            raise BackendError(f"flambeau_backends returned {result!r}, expected a list")
        backends.extend(result if isinstance(result, (list, tuple)) else [result])
    return backends


def validate_backend(backend: Any, distribution: str | None = None) -> None:
    """Check ``backend`` against the contract; raise :class:`BackendError` if it falls short.

    ``distribution`` (the plugin's, where known) names the package to upgrade when the
    contract versions differ."""
    name = getattr(backend, "name", None)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise BackendError(
            f"backend {backend!r} has name {name!r}; expected a lower-case identifier "
            "such as 'cpu' or 'mydevice'"
        )
    version = getattr(backend, "contract_version", None)
    if version != CONTRACT_VERSION:
        from .. import __version__

        newer = isinstance(version, int) and version > CONTRACT_VERSION
        upgrade = "flambeau" if newer else distribution or "<the backend's package>"
        raise BackendError(
            f"backend {name!r} implements contract version {version!r}, but flambeau "
            f"{__version__} needs contract version {CONTRACT_VERSION}; upgrade "
            f"{'flambeau' if newer else 'the backend'}: pip install --upgrade {upgrade}"
        )
    missing = [m for m in ("device_count", "device_info", "synchronize", "kernels")
               if not callable(getattr(backend, m, None))]
    if missing:
        raise BackendError(f"backend {name!r} lacks the method(s) {', '.join(missing)}")


def validate_kernels(name: str, kernels: Any) -> None:
    """Raise :class:`BackendError` if ``kernels`` misses a required kernel."""
    missing = [k for k in REQUIRED_KERNELS if not callable(getattr(kernels, k, None))]
    if missing:
        raise BackendError(
            f"backend {name!r} kernel set lacks the required kernel(s) {', '.join(missing)}"
        )


REGISTRY = _Registry()
