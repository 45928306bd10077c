"""Every environment variable flambeau reads, read in one place."""

from __future__ import annotations

import os

#: Set to ``1`` to skip entry-point discovery of backend plugins.
DISABLE_PLUGIN_AUTOLOAD_VAR = "FLAMBEAU_DISABLE_PLUGIN_AUTOLOAD"
#: The default device name (``cpu`` when unset).
DEFAULT_DEVICE_VAR = "FLAMBEAU_DEVICE"


def plugin_autoload_disabled() -> bool:
    """True when the user asked flambeau not to load plugins from entry points."""
    return os.environ.get(DISABLE_PLUGIN_AUTOLOAD_VAR, "").strip().lower() in {"1", "true", "yes"}


def default_device_name() -> str:
    """The device name from ``FLAMBEAU_DEVICE``, or ``"cpu"``."""
    return os.environ.get(DEFAULT_DEVICE_VAR, "").strip() or "cpu"
