"""Write the stub that declares ``Tensor``'s bound methods for type checkers.

``flambeau._methods`` attaches about 190 operations to ``Tensor`` with ``setattr`` when
flambeau is imported, which mypy, pyright and IDEs cannot see. This script writes
``flambeau/_tensor_methods.pyi``: a class ``TensorMethods`` with one declaration per entry
of ``METHODS`` and ``PROPERTIES`` (the bound function's signature without its first
parameter), which ``Tensor`` inherits for type checkers only (``_tensor.py`` makes it
``object`` at run time), as ``torch.Tensor`` inherits its generated ``TensorBase``.
``tests/test_typing.py`` fails when the stub is stale. From the repository root, in the
workspace environment::

    hatch run python tools/gen_tensor_stub.py          # rewrite the stub
    hatch run python tools/gen_tensor_stub.py --check  # exit 1 if it is stale

Each bound function must be fully annotated (a ``def``, not a ``lambda``); the stub imports
what its annotations name, found in the function's module. Otherwise the script stops and
names the entry.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

CORE = Path(__file__).resolve().parents[1] / "packages/core/src/flambeau"
STUB = CORE / "_tensor_methods.pyi"
COMMAND = "hatch run python tools/gen_tensor_stub.py"
INDENT = " " * 4
WIDTH = 100
# typeshed's ``object`` declares these with a ``bool`` result; Tensor's compare elementwise
# (PyTorch's stubs carry the same ignore).
OVERRIDES_OBJECT = {"__eq__", "__ne__"}
EMPTY = inspect.Parameter.empty
HEADER = '''\
"""The methods and operators ``flambeau._methods`` binds onto ``Tensor`` at import.

``Tensor`` inherits ``TensorMethods`` for type checkers only. Generated from the
``METHODS`` and ``PROPERTIES`` tables by ``tools/gen_tensor_stub.py``: do not edit.
"""
'''


class GeneratorError(Exception):
    """The table cannot be turned into declarations; the message says why."""


class _Verbatim:
    """An annotation or default that ``inspect`` prints as given."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def render() -> str:
    """The text of the stub, from the tables of the imported ``flambeau._methods``."""
    import flambeau._tensor
    from flambeau import _methods

    if Path(flambeau._tensor.__file__).resolve().parent != CORE:
        raise GeneratorError(f"flambeau is imported from {flambeau._tensor.__file__}, not "
                             f"from this checkout; run `{COMMAND}`")
    return _Renderer(_methods.METHODS, _methods.PROPERTIES, flambeau._tensor.Tensor).stub()


class _Renderer:
    def __init__(self, methods: dict[str, Any], properties: dict[str, Any],
                 tensor: type) -> None:
        self.methods, self.properties = methods, properties
        bound = set(methods) | set(properties)
        own = _class_names(Path(inspect.getfile(tensor)).read_text(), tensor.__name__)
        if own & bound:
            raise GeneratorError(f"Tensor.{min(own & bound)} is defined in _tensor.py and "
                                 "also bound by flambeau._methods; keep one of them")
        # In a class body a method named ``int`` hides the builtin from the annotations
        # that follow it, so those spell ``builtins.int``.
        self.shadowed = {name for name in bound if hasattr(builtins, name)}
        self.imports: dict[str, Any] = {}  # name in the stub -> the object it means

    def stub(self) -> str:
        body = ["class TensorMethods:"]
        for name, fn in self.properties.items():
            body += [INDENT + line for line in ["@property", *self.declaration(name, fn)]]
        for name, fn in self.methods.items():
            body += [INDENT + line for line in self.declaration(name, fn)]
        return "\n".join([HEADER, *self.import_lines(), "", *body]) + "\n"

    def declaration(self, name: str, fn: Any) -> list[str]:
        where = f"Tensor.{name} ({fn.__module__}.{fn.__qualname__})"
        signature = inspect.signature(fn)
        params = list(signature.parameters.values())
        if not params or params[0].kind not in (params[0].POSITIONAL_ONLY,
                                                params[0].POSITIONAL_OR_KEYWORD):
            raise GeneratorError(f"{where}: the bound function must take the tensor first")
        if name.startswith("__"):
            # Python calls an operator with its operands only: the keyword options of the
            # bound function (``add``'s ``alpha``) are not part of ``__add__``.
            params = [p for p in params if p.kind is not p.KEYWORD_ONLY or p.default is EMPTY]
        params = [params[0].replace(name="self", annotation=EMPTY, default=EMPTY)] + [
            p.replace(annotation=_Verbatim(self.annotation(where, fn, p.annotation)),
                      default=_default(p.default)) for p in params[1:]]
        returns = self.annotation(where, fn, signature.return_annotation)
        ignore = "  # type: ignore[override]" if name in OVERRIDES_OBJECT else ""
        return _wrap_def(name, _pieces(params), f") -> {returns}: ...{ignore}")

    def annotation(self, where: str, fn: Any, text: Any) -> str:
        """``text`` as the stub spells it; records the imports it needs."""
        if text is EMPTY:
            raise GeneratorError(f"{where}: not fully annotated; annotate it (a def, not a "
                                 "lambda)")
        if not isinstance(text, str):
            raise GeneratorError(f"{where}: its module needs "
                                 "`from __future__ import annotations`")
        tree = ast.parse(text, mode="eval")
        names = _names_of(fn)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Name):
                continue
            meant = names.get(node.id, getattr(builtins, node.id, None))
            if meant is None:
                raise GeneratorError(f"{where}: annotation name {node.id!r} is not defined in "
                                     "its module")
            if meant is getattr(builtins, node.id, None):
                if node.id in self.shadowed:
                    self._need(where, "builtins", builtins)
                    node.id = f"builtins.{node.id}"
                continue
            if node.id in self.shadowed:
                raise GeneratorError(f"{where}: annotation name {node.id!r} is also a Tensor "
                                     "method; import it under another name")
            self._need(where, node.id, meant)
        return ast.unparse(tree)

    def _need(self, where: str, name: str, value: Any) -> None:
        if self.imports.setdefault(name, value) is not value:
            raise GeneratorError(f"{where}: annotation name {name!r} means another object "
                                 "than in other bound functions; import it under another name")

    def import_lines(self) -> list[str]:
        """The stub's imports, grouped and sorted as ruff's isort wants them."""
        straight: set[str] = set()
        from_imports: dict[str, set[str]] = {}
        for name, value in self.imports.items():
            if isinstance(value, ModuleType):
                alias = "" if value.__name__ == name else f" as {name}"
                straight.add(f"{value.__name__}{alias}")
            else:
                module, attr = _home(value, name)
                from_imports.setdefault(module, set()).add(
                    attr if attr == name else f"{attr} as {name}")
        sections: dict[int, list[str]] = {}
        for module in sorted(straight):
            sections.setdefault(_section(module), []).append(f"import {module}")
        for module, attrs in sorted(from_imports.items()):
            ordered = sorted(attrs, key=lambda a: (not a.isupper(), not a[:1].isupper(), a))
            sections.setdefault(_section(module), []).append(
                f"from {module} import {', '.join(ordered)}")
        lines: list[str] = []
        for section in sorted(sections):
            lines += [*([""] if lines else []), *sections[section]]
        return lines


def _section(module: str) -> int:
    """isort's section of ``module``: standard library, third party, flambeau."""
    top = module.partition(".")[0]
    return 2 if top == "flambeau" else 0 if top in sys.stdlib_module_names else 1


def _names_of(fn: Any) -> dict[str, Any]:
    """The names ``fn``'s annotations can use: its module's globals, and the imports of the
    module's ``if TYPE_CHECKING:`` blocks (which never run, so they are resolved here)."""
    module = sys.modules.get(fn.__module__ or "")
    return {**getattr(inspect.unwrap(fn), "__globals__", {}),
            **(_type_checking_imports(module) if module else {})}


@functools.cache
def _type_checking_imports(module: ModuleType) -> dict[str, Any]:
    names: dict[str, Any] = {}
    origin = module.__spec__.origin if module.__spec__ else None
    if not origin or not origin.endswith(".py"):
        return names
    for node in ast.parse(Path(origin).read_text()).body:
        if not (isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"):
            continue
        for item in node.body:
            if isinstance(item, ast.Import):
                for alias in item.names:
                    imported = importlib.import_module(alias.name)
                    top = alias.name.partition(".")[0]
                    names[alias.asname or top] = imported if alias.asname else sys.modules[top]
            elif isinstance(item, ast.ImportFrom):
                source = importlib.import_module("." * item.level + (item.module or ""),
                                                 module.__package__)
                for alias in item.names:
                    names[alias.asname or alias.name] = getattr(source, alias.name)
    return names


def _home(value: Any, name: str) -> tuple[str, str]:
    """The module ``value`` is imported from, and its name there."""
    module = getattr(value, "__module__", None)
    attr = getattr(value, "__qualname__", None) or getattr(value, "__name__", name)
    if not module or getattr(sys.modules.get(module), attr, None) is not value:
        raise GeneratorError(f"cannot tell where to import {name!r} ({value!r}) from")
    return module, attr


def _class_names(source: str, class_name: str) -> set[str]:
    """The names class ``class_name`` of ``source`` defines itself."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            names = set()
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(item.name)
                elif isinstance(item, ast.Assign):
                    names.update(t.id for t in item.targets if isinstance(t, ast.Name))
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
            return names
    raise GeneratorError(f"no class {class_name} in its module")


def _pieces(params: list[inspect.Parameter]) -> list[str]:
    """The parameters as written in a ``def``, with the ``/`` and ``*`` markers."""
    pieces = []
    for i, param in enumerate(params):
        kinds_before = {p.kind for p in params[:i]}
        if param.kind is param.KEYWORD_ONLY and not kinds_before & {param.VAR_POSITIONAL,
                                                                     param.KEYWORD_ONLY}:
            pieces.append("*")
        pieces.append(str(param))
        next_kind = params[i + 1].kind if i + 1 < len(params) else None
        if param.kind is param.POSITIONAL_ONLY and next_kind is not param.POSITIONAL_ONLY:
            pieces.append("/")
    return pieces


def _default(value: Any) -> Any:
    """A default as source text: literals as they are, anything else as ``...``."""
    if value is EMPTY:
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return _Verbatim(repr(value))
    if isinstance(value, str) and value.isprintable() and not set(value) & {'"', "\\"}:
        return _Verbatim(f'"{value}"')
    return _Verbatim("...")


def _wrap_def(name: str, pieces: list[str], tail: str) -> list[str]:
    """``def name(pieces...) tail``, wrapped at commas to fit the line width."""
    head = f"def {name}("
    pieces = [piece + "," for piece in pieces[:-1]] + [pieces[-1] + tail]
    lines, line = [], head + pieces[0]
    for piece in pieces[1:]:
        if len(INDENT) + len(line) + 1 + len(piece) > WIDTH:
            lines.append(line)
            line = " " * len(head) + piece
        else:
            line += " " + piece
    return [*lines, line]


def main(argv: list[str]) -> int:
    try:
        fresh = render()
    except GeneratorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if STUB.exists() and STUB.read_text() == fresh:
        return 0
    if "--check" in argv:
        print(f"{STUB} is stale (flambeau._methods changed); run `{COMMAND}`")
        return 1
    STUB.write_text(fresh)
    print(f"wrote {STUB}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
