"""The code on the documentation site (docs/**/*.md) runs as written.

How a fenced block is treated, by its info string (docs/d2l/index.md tells readers too):

- ```` ```python ````: flambeau code. A page's blocks run in order, in one namespace per
  page, on the cpu device, in a temporary folder (so files the cells write land there).
- ```` ``` {.python .torch} ````: the book's PyTorch code. A page's blocks run against
  PyTorch in a namespace of their own where PyTorch is installed; skipped otherwise.
- ```` ``` {.python .file} ````: a file of a pytest suite whose first line names it
  (``# conftest.py``); the page's test writes the files and runs pytest on them.
- ```` ``` {.python .no-run} ````: shown only (it needs hardware CI lacks).
- a block made only of ``--8<-- "path"`` lines includes a file of the repository (the
  site build, ``mkdocs build --strict``, fails when it is missing); the file is tested
  where it lives (the example backend by the suite's own tests).

Any other ``python`` info string fails :func:`test_every_python_block_is_classified`, so
a misspelled class cannot silently turn a block off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import flambeau

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,})[ \t]*(?P<info>[^`\n]*)$")
_KINDS = {"python": "flambeau", "{.python .torch}": "torch", "{.python .file}": "file",
          "{.python .no-run}": "no-run"}
_INCLUDE = re.compile(r'^--8<-- "([^"]+)"$')


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # of the block's first code line, 1-based
    info: str
    code: str

    @property
    def kind(self) -> str | None:
        """How the block is treated (see the module docstring); None: not Python."""
        lines = [line for line in self.code.splitlines() if line.strip()]
        if self.info.startswith("python") and lines and all(
                _INCLUDE.match(line.strip()) for line in lines):
            return "include"
        if "python" not in self.info:
            return None
        return _KINDS.get(self.info, "unknown")

    def compiled(self):
        """The code, compiled so that tracebacks give the page and its line numbers."""
        name = str(self.page.relative_to(ROOT))
        return compile("\n" * (self.line - 1) + self.code, name, "exec")


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, in order, with their indentation removed."""
    found, lines, i = [], page.read_text().splitlines(), 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        i += 1
        if not opening:
            continue
        indent, ticks = opening["indent"], opening["ticks"]
        start, body = i, []
        while i < len(lines) and lines[i].strip() != ticks:
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        found.append(Block(page, start + 1, opening["info"].strip(), "\n".join(body) + "\n"))
    return found


def _pages_with(kind: str) -> list:
    return [pytest.param(p, id=str(p.relative_to(DOCS))) for p in PAGES
            if any(b.kind == kind for b in blocks(p))]


@contextlib.contextmanager
def _page_sandbox(folder: Path):
    """Run a page in ``folder`` on the cpu, and undo what its cells set globally (the
    working directory, the default device, logging set up by a cell)."""
    folder.mkdir()
    cwd, device = os.getcwd(), flambeau.get_default_device()
    handlers = logging.root.handlers[:]
    levels = {name: logger.level for name, logger in logging.root.manager.loggerDict.items()
              if isinstance(logger, logging.Logger)}
    os.chdir(folder)
    flambeau.set_default_device("cpu")
    try:
        yield
    finally:
        os.chdir(cwd)
        flambeau.set_default_device(device)
        logging.root.handlers[:] = handlers
        for name, logger in logging.root.manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.setLevel(levels.get(name, logging.NOTSET))


def _run(page: Path, kind: str, folder: Path) -> None:
    namespace = {"__name__": f"docs.{page.stem}"}
    with _page_sandbox(folder):
        for block in blocks(page):
            if block.kind == kind:
                exec(block.compiled(), namespace)


def test_the_pages_have_code_to_run():
    assert _pages_with("flambeau"), "no runnable block found: did the convention change?"


def test_every_python_block_is_classified():
    unknown = [f"{b.page.relative_to(ROOT)}:{b.line}: {b.info!r}" for p in PAGES
               for b in blocks(p) if b.kind == "unknown"]
    assert not unknown, f"python blocks of an unknown kind (see tests/test_docs.py): {unknown}"


@pytest.mark.parametrize("page", _pages_with("flambeau"))
def test_flambeau_cells_run(page, tmp_path):
    flambeau.manual_seed(0)
    _run(page, "flambeau", tmp_path / "flambeau")


@pytest.mark.parametrize("page", _pages_with("torch"))
def test_book_cells_run_on_pytorch(page, tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    _run(page, "torch", tmp_path / "torch")


D2L_SECTIONS = sorted(set((DOCS / "d2l").glob("*.md")) - {DOCS / "d2l" / "index.md",
                                                         DOCS / "d2l" / "later-chapters.md"})


@pytest.mark.parametrize("page", D2L_SECTIONS, ids=lambda p: p.stem)
def test_each_d2l_section_shows_the_book_and_flambeau(page):
    kinds = [b.kind for b in blocks(page)]
    assert "torch" in kinds and "flambeau" in kinds
    text = page.read_text()
    assert "## The book's cell" in text and "## What flambeau adds" in text
    first = next(b for b in blocks(page) if b.kind == "flambeau").code
    assert "import flambeau as torch" in first, "the one change the pages promise"


def test_every_d2l_page_is_listed_in_the_section_index():
    index = (DOCS / "d2l" / "index.md").read_text()
    for page in (DOCS / "d2l").glob("*.md"):
        assert page.name == "index.md" or f"({page.name})" in index, page.name


def test_included_files_exist():
    for page in PAGES:
        for block in blocks(page):
            if block.kind == "include":
                for line in block.code.split():
                    if line.startswith('"'):
                        assert (ROOT / line.strip('"')).is_file(), (page, line)


def _collected(args: list[str], cwd: Path) -> int:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, *args, "--collect-only", "-q", "-p", "no:randomly",
                           "-p", "no:cacheprovider"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    counted = re.search(r"(\d+) tests? collected", done.stdout)
    assert counted, done.stdout[-3000:]
    return int(counted.group(1))


@pytest.mark.parametrize("page", _pages_with("file"))
def test_pytest_suite_files_collect_the_whole_kit(page, tmp_path):
    """The guide's "inside your own pytest suite" files collect every check that
    ``python -m flambeau.testing DEVICE`` runs, not a part of them."""
    for block in blocks(page):
        if block.kind == "file":
            name = re.fullmatch(r"# (\S+\.py)", block.code.splitlines()[0])
            assert name, f"{page}:{block.line}: a file block starts with '# NAME.py'"
            (tmp_path / name.group(1)).write_text(block.code)
    ours = _collected(["-m", "pytest", "--flambeau-device", "cpu"], tmp_path)
    kit = _collected(["-m", "flambeau.testing", "cpu"], tmp_path)
    assert ours == kit > 0
