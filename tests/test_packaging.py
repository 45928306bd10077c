"""Publishing metadata: every distribution carries the license and pins the versions it
works with."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted([*ROOT.glob("packages/*/pyproject.toml"),
                   *ROOT.glob("examples/*/pyproject.toml")])


def _project(path: Path) -> dict:
    return tomllib.loads(path.read_text())["project"]


def _pin(requirements: list[str], name: str) -> Requirement:
    return next(r for r in map(Requirement, requirements) if r.name == name)


def test_every_distribution_ships_the_license():
    license_text = (ROOT / "LICENSE").read_text()
    assert "MIT License" in license_text and "flambeau contributors" in license_text
    assert len(PACKAGES) == 5
    for pyproject in PACKAGES:
        project = _project(pyproject)
        assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
        assert (pyproject.parent / "LICENSE").read_text() == license_text, pyproject
        assert project["authors"] == [{"name": "flambeau contributors"}]
        assert project["keywords"] and project["classifiers"]


def test_backends_pin_the_core_versions_of_their_contract():
    """A backend and a core of different contract versions must not install together: each
    backend's requirement on ``flambeau`` admits this core and no other minor version."""
    core = _project(ROOT / "packages/core/pyproject.toml")
    version = core["version"]
    major, minor = (int(part) for part in version.split(".")[:2])
    for pyproject in PACKAGES:
        project = _project(pyproject)
        if project["name"] == "flambeau":
            continue
        pin = _pin(project["dependencies"], "flambeau")
        assert pin.specifier.contains(version), pyproject
        assert not pin.specifier.contains(f"{major}.{minor + 1}.0"), pyproject
    for extra, requirements in core["optional-dependencies"].items():
        for requirement in map(Requirement, requirements):
            if requirement.name.startswith("flambeau-"):
                assert requirement.specifier.contains(version), extra
                assert not requirement.specifier.contains(f"{major}.{minor + 1}.0"), extra
