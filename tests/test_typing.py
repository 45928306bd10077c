"""The Tensor surface that type checkers see.

The methods ``flambeau._methods`` binds at import are declared for type checkers by the
generated stub ``flambeau/_tensor_methods.pyi`` (``tools/gen_tensor_stub.py``); these tests
keep it current and run mypy over ``tests/typing/``: a typical user script must pass, and
the lines of ``tensor_surface.py`` marked ``# E: <code>`` (a missing method, a wrong
keyword, ...) must fail with that code while every other line passes.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import runpy
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import flambeau._tensor
from flambeau import _methods

ROOT = Path(__file__).resolve().parents[1]
TYPING = ROOT / "tests" / "typing"
USER_SCRIPT = TYPING / "user_script.py"
SURFACE = TYPING / "tensor_surface.py"
STUB = ROOT / "packages/core/src/flambeau/_tensor_methods.pyi"
# The stub can only be compared with, and checked against, the flambeau it was made from.
FROM_CHECKOUT = Path(flambeau._tensor.__file__).resolve().parent == STUB.parent

# --strict, less one check flambeau cannot satisfy for its users: Module.__call__ returns
# Any, as PyTorch's does (what forward returns depends on the module), so a typed forward
# must be able to ``return self.net(X)`` without a cast. The core itself is not checked
# here (only the generated stub is), the user's side of it is.
MYPY_CONFIG = """\
[mypy]
strict = True
warn_return_any = False

[mypy-flambeau.*]
follow_imports = silent
"""
MYPY_LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+): (?P<kind>error|note): (?P<message>.*?)"
                       r"(?:  \[(?P<code>[a-z-]+)\])?$")
EXPECTED = re.compile(r"# E: (?P<code>[a-z-]+)$")


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    if not FROM_CHECKOUT:
        pytest.skip("flambeau is not installed from this checkout (editable)")
    spec = importlib.util.spec_from_file_location("gen_tensor_stub",
                                                  ROOT / "tools" / "gen_tensor_stub.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stub_is_current(generator: ModuleType) -> None:
    assert STUB.exists() and generator.render() == STUB.read_text(), (
        f"{STUB.relative_to(ROOT)} is stale (flambeau._methods or the signature of a bound "
        f"function changed); run `{generator.COMMAND}`"
    )


def test_every_bound_method_is_declared() -> None:
    if not FROM_CHECKOUT:
        pytest.skip("flambeau is not installed from this checkout (editable)")
    [cls] = [node for node in ast.parse(STUB.read_text()).body if isinstance(node, ast.ClassDef)]
    declared = {node.name for node in cls.body if isinstance(node, ast.FunctionDef)}
    assert declared == set(_methods.METHODS) | set(_methods.PROPERTIES)


def test_generator_refuses_an_unannotated_method(generator: ModuleType,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_methods.METHODS, "twice", lambda self: self * 2)
    with pytest.raises(generator.GeneratorError,
                       match=r"Tensor.twice \(.*<lambda>\): not fully annotated; annotate it"):
        generator.render()


def test_generator_refuses_an_undefined_annotation(generator: ModuleType,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    namespace: dict[str, Any] = {"__name__": "fake_ops"}
    exec("from __future__ import annotations\n"
         "def scaled(self, by: Scale) -> Tensor: ...", namespace)
    monkeypatch.setitem(_methods.METHODS, "scaled", namespace["scaled"])
    with pytest.raises(generator.GeneratorError, match=r"Tensor.scaled \(fake_ops.scaled\): "
                       r"annotation name 'Scale' is not defined in its module"):
        generator.render()


def test_generator_refuses_a_method_tensor_defines_itself(
        generator: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_methods.METHODS, "numel", _methods.METHODS["sum"])
    with pytest.raises(generator.GeneratorError, match=r"Tensor.numel is defined in "
                       r"_tensor.py and also bound by flambeau._methods; keep one of them"):
        generator.render()


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[int, list[str]]]:
    """mypy's errors over tests/typing/, by file name and line ('message  [code]')."""
    api = pytest.importorskip("mypy.api", reason="mypy is not installed (pip install mypy; "
                              "the hatch-test environment installs it)")
    folder = tmp_path_factory.mktemp("mypy")
    (folder / "mypy.ini").write_text(MYPY_CONFIG)
    targets = [USER_SCRIPT, SURFACE, *([STUB] if FROM_CHECKOUT else [])]
    stdout, stderr, status = api.run([
        "--config-file", str(folder / "mypy.ini"), "--cache-dir", str(folder / "cache"),
        "--show-error-codes", "--no-error-summary", "--no-pretty", *map(str, targets)])
    assert status in (0, 1) and not stderr, f"mypy did not run:\n{stderr}{stdout}"
    errors: dict[str, dict[int, list[str]]] = {path.name: {} for path in targets}
    for line in stdout.splitlines():
        match = MYPY_LINE.match(line)
        assert match, f"unexpected mypy output: {line!r}"
        if match["kind"] == "error":
            by_line = errors.setdefault(Path(match["path"]).name, {})
            by_line.setdefault(int(match["line"]), []).append(
                f"{match['message']}  [{match['code']}]")
    return errors


def test_user_script_type_checks(mypy_errors: dict[str, dict[int, list[str]]]) -> None:
    found = mypy_errors[USER_SCRIPT.name]
    assert not found, "mypy rejects tests/typing/user_script.py:\n" + "\n".join(
        f"  line {line}: {message}" for line, messages in sorted(found.items())
        for message in messages)


def test_stub_type_checks(mypy_errors: dict[str, dict[int, list[str]]]) -> None:
    if not FROM_CHECKOUT:
        pytest.skip("flambeau is not installed from this checkout (editable)")
    assert not mypy_errors[STUB.name], f"mypy rejects {STUB.name}: {mypy_errors[STUB.name]}"


def test_mypy_sees_the_tensor_surface(mypy_errors: dict[str, dict[int, list[str]]]) -> None:
    expected = {number: match["code"] for number, text in
                enumerate(SURFACE.read_text().splitlines(), start=1)
                if (match := EXPECTED.search(text))}
    assert len(expected) >= 5
    found = mypy_errors[SURFACE.name]
    problems = [f"  line {line}: expected an error [{code}], mypy found "
                f"{found.get(line) or 'none'}" for line, code in sorted(expected.items())
                if not any(m.endswith(f"[{code}]") for m in found.get(line, []))]
    problems += [f"  line {line}: unexpected {message}" for line, messages in
                 sorted(found.items()) if line not in expected for message in messages]
    assert not problems, "tests/typing/tensor_surface.py:\n" + "\n".join(problems)


def test_user_script_runs(capsys: pytest.CaptureFixture[str]) -> None:
    runpy.run_path(str(USER_SCRIPT), run_name="__main__")
    assert "MLP(" in capsys.readouterr().out
