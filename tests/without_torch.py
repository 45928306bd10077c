"""pytest plugin of ``hatch run no-torch:test``: the suite without PyTorch, in one line.

Where torch is not installed, the PyTorch reference checks skip themselves (module-level
or per-test ``pytest.importorskip("torch")``). This plugin keeps them out of the skip
summary, where they would fill a screen: test modules that skip as a whole are collected
as empty, single tests that skip for want of torch are counted apart, and one line at the
end says how many were left out and how to run them. Where torch is installed it does
nothing.
"""

from __future__ import annotations

import importlib.util

import pytest

_ACTIVE = importlib.util.find_spec("torch") is None
_CATEGORY = "needs torch"
_modules: set[str] = set()  # a module is collected twice: for its tests and its doctests


def _about_torch(report: pytest.CollectReport | pytest.TestReport) -> bool:
    # A skip's longrepr is (path, line, reason); importorskip's reason names the module
    # ("could not import 'torch'") or is the test's own ("PyTorch (CPU) is the reference").
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return report.skipped and "torch" in reason.lower()


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    report = yield
    if _ACTIVE and _about_torch(report):
        _modules.add(report.nodeid)
        report.outcome, report.longrepr, report.result = "passed", None, []
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    if _ACTIVE and _about_torch(report):
        return _CATEGORY, "t", "NEEDS TORCH"
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _ACTIVE:
        return
    tests = len(terminalreporter.stats.get(_CATEGORY, []))
    terminalreporter.write_line(
        f"PyTorch is not installed: left out {len(_modules)} test modules and {tests} tests "
        "that compare with it (`hatch test` runs them)")
    if terminalreporter.verbosity > 0:
        terminalreporter.write_line("  modules left out: " + ", ".join(sorted(_modules)))
