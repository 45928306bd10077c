"""pytest plugin of the conformance kit: the ``device`` and ``kernels`` fixtures.

Devices come from ``--flambeau-device NAME`` (repeatable) or, by default, every device
``flambeau.devices()`` finds.
"""

from __future__ import annotations

import pytest

import flambeau
from flambeau._device import kernels_for


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--flambeau-device",
        action="append",
        default=[],
        metavar="NAME",
        help="run flambeau's device checks on NAME (repeatable; default: every device)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" in metafunc.fixturenames:
        names = metafunc.config.getoption("--flambeau-device")
        chosen = [flambeau.device(n) for n in names] or flambeau.devices()
        metafunc.parametrize("device", chosen, ids=str, scope="session")


@pytest.fixture(scope="session")
def kernels(device: flambeau.Device):
    """The kernel set of the device under test."""
    return kernels_for(device)


@pytest.fixture(scope="session")
def supported_dtypes(device: flambeau.Device) -> tuple:
    """Dtypes the device under test reports as supported."""
    return tuple(device.info.dtypes)
