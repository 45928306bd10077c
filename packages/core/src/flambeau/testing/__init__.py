"""The conformance kit: checks any backend's device against numpy references.

Run it on one device (extra arguments go to pytest)::

    python -m flambeau.testing cpu
    python -m flambeau.testing opencl:0 -x -q

or inside your own pytest suite, on every available device (or the ones named with
``--flambeau-device``)::

    # conftest.py
    pytest_plugins = ["flambeau.testing.plugin"]
    # test_conformance.py
    from flambeau.testing.kernel_checks import *  # noqa: F403

The kit needs pytest (``pip install "flambeau[testing]"``). Its helpers (:func:`assert_close`,
:func:`tolerance`) are importable for backends' own tests.
"""

from __future__ import annotations

from ._compare import assert_close, tolerance

#: The modules of checks the kit runs, in order.
CHECK_MODULES = ("flambeau.testing.kernel_checks",)

__all__ = ["CHECK_MODULES", "assert_close", "tolerance"]
