"""Objects to and from (tensors by name, a JSON structure tree, an alias table).

The tree mirrors the saved object; each node is a one-key JSON object::

    {"tensor": NAME}             a tensor: NAME is a header entry, or an alias of one
    {"list": [NODE, ...]}        {"tuple": [NODE, ...]}
    {"dict": [[KEY, NODE], ...]}  KEY: a string, integer, finite float, bool or null
    {"value": SCALAR}            a string, integer, finite float, bool or null
    {"float": "nan" | "inf" | "-inf"}
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._tensor import Tensor
from ._format import Entry, SerializationError, _parse_json, _short

STRUCTURE_KEY = "flambeau.structure"
ALIASES_KEY = "flambeau.aliases"
VERSION_KEY = "flambeau.format"
FORMAT_VERSION = "1"
#: Deepest nesting saved or loaded (far below Python's recursion limit).
MAX_DEPTH = 200

_SCALARS = (str, int, float, bool, type(None))
_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


@dataclass
class Flat:
    """An object taken apart for saving."""

    tree: Any
    tensors: list[tuple[str, Tensor]] = field(default_factory=list)  # each storage once
    aliases: dict[str, str] = field(default_factory=dict)  # alias name -> stored name

    def metadata(self) -> dict[str, str]:
        out = {VERSION_KEY: FORMAT_VERSION, STRUCTURE_KEY: _dumps(self.tree)}
        if self.aliases:
            out[ALIASES_KEY] = _dumps(self.aliases)
        return out


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def flatten(obj: Any) -> Flat:
    """Take ``obj`` apart; tensors sharing one device array are stored once (ties).

    Raises:
        SerializationError: for objects flambeau files cannot hold, lazy parameters,
            cycles and nesting deeper than :data:`MAX_DEPTH`.
    """
    walker = _Flattener()
    walker.flat.tree = walker.node(obj, "", 0)
    return walker.flat


class _Flattener:
    def __init__(self) -> None:
        self.flat = Flat(None)
        self.names: set[str] = set()
        self.stored: dict[int, tuple[Any, str]] = {}  # id(device array) -> (array, name)
        self.active: set[int] = set()

    def node(self, value: Any, path: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise SerializationError(f"cannot save: the object is nested more than "
                                     f"{MAX_DEPTH} levels deep (at {path!r})")
        if isinstance(value, Tensor):
            return {"tensor": self.tensor(value, path)}
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float):
            return {"value": value} if math.isfinite(value) else \
                {"float": "nan" if value != value else ("inf" if value > 0 else "-inf")}
        if isinstance(value, _SCALARS):
            return {"value": value}
        if isinstance(value, (list, tuple, Mapping)):
            if id(value) in self.active:
                raise SerializationError(f"cannot save: the container at {path or 'the top'!r} "
                                         "contains itself")
            self.active.add(id(value))
            try:
                if isinstance(value, Mapping):
                    return {"dict": [[_key(k, path), self.node(v, _join(path, k), depth + 1)]
                                     for k, v in value.items()]}
                kind = "tuple" if isinstance(value, tuple) else "list"
                return {kind: [self.node(v, _join(path, i), depth + 1)
                               for i, v in enumerate(value)]}
            finally:
                self.active.discard(id(value))
        raise SerializationError(_unsupported(value, path))

    def tensor(self, t: Tensor, path: str) -> str:
        if getattr(t, "_lazy", None) is not None:
            raise SerializationError(
                f"cannot save {path or 'the tensor'!r}: it is an uninitialized (lazy) "
                "parameter; run the model once on an example input (or load a state dict "
                "into it) so it has a shape, then save")
        name = self.unique(path or "tensor")
        hit = self.stored.get(id(t._data))
        if hit is not None:
            self.flat.aliases[name] = hit[1]
        else:
            self.stored[id(t._data)] = (t._data, name)  # holding the array keeps its id
            self.flat.tensors.append((name, t))
        return name

    def unique(self, name: str) -> str:
        if name in self.names or name == "__metadata__":
            i = 1
            while f"{name}#{i}" in self.names:
                i += 1
            name = f"{name}#{i}"
        self.names.add(name)
        return name


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _key(key: Any, path: str) -> Any:
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, _SCALARS) and not (isinstance(key, float) and not math.isfinite(key)):
        return key
    raise SerializationError(f"cannot save the dict at {path or 'the top'!r}: key {key!r} is a "
                             f"{type(key).__name__}; keys must be strings, integers, finite "
                             "floats, bools or None")


def _unsupported(value: Any, path: str) -> str:
    where = f"at {path!r}" if path else "(the top-level object)"
    kind = type(value).__name__
    hint = ""
    if hasattr(value, "state_dict") and hasattr(value, "load_state_dict"):
        hint = "; save its state_dict() instead"
    elif isinstance(value, np.ndarray):
        hint = "; convert it with flambeau.from_numpy(array) first"
    return (f"cannot save a {kind} {where}: flambeau files hold tensors and lists, tuples and "
            f"dicts of tensors, numbers, strings, bools and None, never pickles{hint}")


# --- loading --------------------------------------------------------------------------


@dataclass
class Plan:
    """What to build from a file: the tree and the alias table, both validated."""

    tree: Any
    aliases: dict[str, str]


def plan(entries: dict[str, Entry], metadata: dict[str, str], where: str) -> Plan:
    """Validate flambeau's metadata against the header's tensors.

    Files without it (written by ``safetensors`` or PyTorch) become a flat dict of their
    tensors in data order.
    """
    if STRUCTURE_KEY not in metadata:
        return Plan({"dict": [[name, {"tensor": name}] for name in entries]}, {})
    version = metadata.get(VERSION_KEY)
    if version != FORMAT_VERSION:
        raise SerializationError(
            f"{where} has flambeau format {version!r}; this flambeau reads format "
            f"{FORMAT_VERSION!r} (a newer flambeau may read the file)")
    aliases = _parse_json(metadata.get(ALIASES_KEY, "{}"), f"{where}: metadata {ALIASES_KEY!r}")
    if not isinstance(aliases, dict):
        raise SerializationError(f"{where}: metadata {ALIASES_KEY!r} must be a JSON object, "
                                 f"got {_short(aliases)}")
    for alias, target in aliases.items():
        if not isinstance(target, str):
            raise SerializationError(
                f"{where}: metadata {ALIASES_KEY!r} maps tensor {alias!r} to "
                f"{_short(target)}; expected the name of a tensor of the file (a string)")
        if target not in entries or alias in entries:
            raise SerializationError(
                f"{where}: metadata {ALIASES_KEY!r} maps {alias!r} to {_short(target)}; an "
                "alias must name no tensor of the file and point at one that exists")
    tree = _parse_json(metadata[STRUCTURE_KEY], f"{where}: metadata {STRUCTURE_KEY!r}")
    used: set[str] = set()
    _check(tree, 0, entries, aliases, used, where)
    unused = [name for name in entries if name not in used]
    if unused:
        raise SerializationError(f"{where}: metadata {STRUCTURE_KEY!r} does not mention the "
                                 f"tensor(s) {', '.join(map(repr, unused[:5]))}")
    return Plan(tree, aliases)


def _check(node: Any, depth: int, entries: dict[str, Entry], aliases: dict[str, str],
           used: set[str], where: str) -> None:
    def bad(detail: str) -> SerializationError:
        return SerializationError(f"{where}: metadata {STRUCTURE_KEY!r} is corrupt: {detail}")

    if depth > MAX_DEPTH:
        raise bad(f"nested more than {MAX_DEPTH} levels deep")
    if not isinstance(node, dict) or len(node) != 1:
        raise bad(f"expected a node like {{\"tensor\": NAME}}, got {_short(node)}")
    (kind, value), = node.items()
    if kind == "tensor":
        stored = aliases.get(value, value) if isinstance(value, str) else None
        if stored not in entries:
            raise bad(f"it refers to tensor {_short(value)}, which the file does not hold")
        used.add(stored)
    elif kind in ("list", "tuple"):
        if not isinstance(value, list):
            raise bad(f"{kind} node holds {_short(value)}, not a list")
        for item in value:
            _check(item, depth + 1, entries, aliases, used, where)
    elif kind == "dict":
        keys: set[Any] = set()
        for pair in value if isinstance(value, list) else [None]:
            if (not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], _SCALARS)
                    or pair[0] in keys):
                raise bad(f"dict node holds {_short(pair)}; expected distinct [KEY, NODE] pairs")
            keys.add(pair[0])
            _check(pair[1], depth + 1, entries, aliases, used, where)
    elif kind == "value":
        if not isinstance(value, _SCALARS):
            raise bad(f"value node holds {_short(value)}, not a scalar")
    elif kind != "float" or not isinstance(value, str) or value not in _FLOATS:
        raise bad(f"unknown node {_short(node)}")


def build(node: Any, tensors: dict[str, Tensor], aliases: dict[str, str]) -> Any:
    """The object a checked tree describes; every alias gives the same tensor object."""
    (kind, value), = node.items()
    if kind == "tensor":
        return tensors[aliases.get(value, value)]
    if kind == "list":
        return [build(item, tensors, aliases) for item in value]
    if kind == "tuple":
        return tuple(build(item, tensors, aliases) for item in value)
    if kind == "dict":
        return {key: build(item, tensors, aliases) for key, item in value}
    return value if kind == "value" else _FLOATS[value]
