"""Shared fixtures: the conformance kit's device fixtures and fake plugin distributions."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from flambeau import backends

pytest_plugins = ["flambeau.testing.plugin"]


class FakeDistributions:
    """Writes installed-looking distributions (dist-info + module) into a sys.path folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, dist: str, ep_name: str, module: str, source: str, version: str = "1.0") -> None:
        (self.root / f"{module}.py").write_text(textwrap.dedent(source))
        info = self.root / f"{dist}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[flambeau.backends]\n{ep_name} = {module}\n")
        importlib.invalidate_caches()


@pytest.fixture
def fake_dists(tmp_path, monkeypatch):
    """Fake plugin distributions, visible to discovery for one test; state reset after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    backends.reload()
    yield FakeDistributions(tmp_path)
    for name in [m for m in sys.modules if m.startswith("fakeplugin_")]:
        del sys.modules[name]
    monkeypatch.undo()
    importlib.invalidate_caches()
    backends.reload()


@pytest.fixture
def clean_registry():
    """Reload plugins before and after a test that registers backends by hand."""
    backends.reload()
    yield
    backends.reload()
