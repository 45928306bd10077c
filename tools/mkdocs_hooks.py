"""Build hooks of the documentation site (``mkdocs.yml`` names this file twice).

As a MkDocs hook: a page may link to a file of the repository outside ``docs/`` (an
example script, say) with a relative link such as ``../examples/distributed/train_ddp.py``.
MkDocs would report such a link as broken; here the file is copied into the site under
``repo/`` and the link pointed at the copy. A link to a file that does not exist is left
alone, so the strict build still fails on it.

As a griffe extension (:class:`Docstrings`): the docstrings are written for reading in
the source and for doctest, not in Markdown. Sphinx's roles (``:func:`name```) become code
spans, and doctest examples (``>>>`` lines and their output, up to a blank line) become
code blocks, so that their output (``[1, 2]``) is not read as a Markdown link.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from griffe import Docstring, Extension
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
_LINK = re.compile(r"\]\((\.\./[^)#\s]+)(#[^)\s]*)?\)")
# ``:func:`~a.b``` shows ``b``; ``:func:`a.b``` shows ``a.b``.
_ROLE = re.compile(r":(?:func|class|meth|attr|data|mod|obj|exc|const):`(~?)\.?([^`]+)`")


def _repo_target(page_uri: str, link: str) -> PurePosixPath | None:
    """The repository path ``link`` (relative to the page) names, if outside docs/."""
    parts = list(PurePosixPath("docs", page_uri).parent.parts)
    for part in PurePosixPath(link).parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part != ".":
            parts.append(part)
    path = PurePosixPath(*parts) if parts else None
    if path is None or path.parts[0] == "docs" or not (ROOT / path).is_file():
        return None
    return path


def on_page_markdown(markdown, page, config, files):
    """Point links at repository files outside docs/ to copies inside the site."""

    def rewrite(match: re.Match) -> str:
        target = _repo_target(page.file.src_uri, match.group(1))
        if target is None:
            return match.group(0)
        uri = f"repo/{target}"
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(ROOT / target)))
        depth = len(PurePosixPath(page.file.src_uri).parent.parts)
        return f"]({'../' * depth}{uri}{match.group(2) or ''})"

    return _LINK.sub(rewrite, markdown)


class Docstrings(Extension):
    """Make docstrings Markdown: roles as code spans, doctests as code blocks."""

    def on_instance(self, *, obj, **kwargs) -> None:
        if obj.docstring is None and obj.parent is not None and obj.parent.path == _STUB:
            obj.docstring = _bound_docstring(obj)
        if obj.docstring is not None:
            text = _ROLE.sub(_code_span, obj.docstring.value)
            obj.docstring.value = _fence_doctests(text)


_STUB = "flambeau._tensor_methods.TensorMethods"


def _bound_docstring(obj):
    """The docstring of the function flambeau binds as the Tensor method ``obj``.

    The methods are bound at import (``flambeau._methods``); the stub that declares them
    for type checkers carries signatures only.
    """
    import inspect

    import flambeau

    member = inspect.getattr_static(flambeau.Tensor, obj.name, None)
    doc = inspect.getdoc(member.fget if isinstance(member, property) else member)
    return Docstring(doc, parent=obj) if doc else None


def _fence_doctests(text: str) -> str:
    out: list[str] = []
    indent = None  # the indentation of the open doctest block, if one is open
    for line in text.splitlines():
        stripped = line.lstrip()
        if indent is None and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            if out and out[-1].strip():
                out.append("")
            out.append(f"{indent}```pycon")
        elif indent is not None and not stripped:
            out.append(f"{indent}```")
            indent = None
        out.append(line)
    if indent is not None:
        out.append(f"{indent}```")
    return "\n".join(out)


def _code_span(match: re.Match) -> str:
    name = match.group(2).rsplit(".", 1)[-1] if match.group(1) else match.group(2)
    return f"`{name}`"
