"""pytest plugin of the conformance kit: the ``device`` and ``kernels`` fixtures.

Devices come from ``--flambeau-device NAME`` (repeatable; a name that is no device is a
usage error before anything runs) or, by default, every device ``flambeau.devices()``
finds. Checks of optional kernels a device does not offer are skipped; they are summed
up in one line per device at the end instead of a line per kernel.
"""

from __future__ import annotations

import re

import pytest

import flambeau
from flambeau._device import kernels_for
from flambeau.errors import FlambeauError

# The reasons of the skips for an optional kernel a device lacks ("cpu:0 has no fused
# softmax kernel; ...", "the backend has no random_uniform (an optional kernel)").
_ABSENT_KERNEL = re.compile(r"has no (?:fused )?(\w+)(?: kernel|\s*\(an optional kernel\))")
_CATEGORY = "without an optional kernel"
_absent: dict[str, dict[str, int]] = {}  # device -> kernel -> checks skipped


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


def pytest_configure(config: pytest.Config) -> None:
    for name in config.getoption("--flambeau-device"):
        try:
            flambeau.device(name).info  # noqa: B018 (resolving it is the check)
        except FlambeauError as exc:
            raise pytest.UsageError(f"--flambeau-device {name}: {exc}") from None


@pytest.hookimpl(hookwrapper=True)  # (the old-style wrapper: pytest 7 has no other)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = (yield).get_result()
    longrepr = report.longrepr
    match = (_ABSENT_KERNEL.search(longrepr[2])
             if report.skipped and isinstance(longrepr, tuple) else None)
    params = getattr(item, "callspec", None)
    device = params.params.get("device") if params else None
    if match and device is not None:
        report.flambeau_absent_kernel = (str(device), match[1])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    absent = getattr(report, "flambeau_absent_kernel", None)
    if absent:
        kernels = _absent.setdefault(absent[0], {})
        kernels[absent[1]] = kernels.get(absent[1], 0) + 1


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    if getattr(report, "flambeau_absent_kernel", None):
        return _CATEGORY, "o", "NO OPTIONAL KERNEL"
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for device, kernels in sorted(_absent.items()):
        terminalreporter.write_line(
            f"{device} lacks the optional kernels {', '.join(sorted(kernels))} (the core's "
            f"compositions run instead): {sum(kernels.values())} checks of them skipped")
