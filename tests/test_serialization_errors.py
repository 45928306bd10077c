"""Bad files and bad objects: each gives a clear SerializationError, never a crash.

Every case of the issue's list is a row of ``BAD_FILES`` or a test below, and a
property-based test mutates valid files.
"""

from __future__ import annotations

import json
import os
import pickle
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import flambeau
from flambeau import nn
from flambeau.serialization import CheckpointNotFoundError, SerializationError, _reader

F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


def make(header, data=b"\0" * 8, length=None):
    """A file: 8-byte length, header (a dict made JSON, or raw bytes), data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(text) if length is None else length
    return n.to_bytes(8, "little") + text + data


def flambeau_meta(structure, aliases=None, version="1"):
    meta = {"flambeau.format": version, "flambeau.structure": json.dumps(structure)}
    if aliases is not None:
        meta["flambeau.aliases"] = json.dumps(aliases)
    return meta


VALID = make({"a": F32})
DEEP = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"

BAD_FILES = {
    "empty file": (b"", r"is empty \(0 bytes\); a safetensors file starts with an 8-byte"),
    "shorter than the length field": (b"\x10\0\0", "has only 3 bytes"),
    "truncated header": (VALID[:30], "header length field says 61 bytes but only 22 bytes "
                                     "follow it; the file is truncated"),
    "header length over the limit": ((2**40).to_bytes(8, "little") + b"{}",
                                     "more than the 100000000-byte limit"),
    "header length larger than the file": (make({"a": F32}, length=4000),
                                           "says 4000 bytes but only 69 bytes follow"),
    "header length zero": (make(b"", b"{}"), "the header length is 0 bytes"),
    "header not JSON": (make(b"{not json}"), "the header is not valid JSON"),
    "header a JSON list": (make(b"[1, 2]"), r"must be a JSON object starting with '\{'"),
    "header JSON then garbage": (make(b"{} xx", b""), "not valid JSON: Extra data"),
    "header not UTF-8": (make(b'{"\xff": 1}'), "not valid UTF-8"),
    "header with NaN": (make(b'{"a": NaN}'), "NaN is not valid JSON"),
    "duplicate tensor names": (make(b'{"a": %s, "a": %s}' % ((json.dumps(F32).encode(),) * 2)),
                               "duplicate key 'a'"),
    "header nested too deeply": (make(DEEP, b""), "nested too deeply"),
    "entry not an object": (make({"a": 3}), "must be an object with exactly the keys"),
    "entry with an extra key": (make({"a": dict(F32, extra=1)}), "exactly the keys dtype"),
    "unknown dtype": (make({"a": dict(F32, dtype="F33")}), 'unknown dtype "F33"'),
    "negative shape": (make({"a": dict(F32, shape=[-2])}),
                       r"shape \[-2\]; expected a list of non-negative integers"),
    "float shape": (make({"a": dict(F32, shape=[2.0])}), r"shape \[2.0\]; expected"),
    "bool shape": (make({"a": dict(F32, shape=[True])}), r"shape \[true\]; expected"),
    "string shape": (make({"a": dict(F32, shape=["2"])}), "expected a list of non-negative"),
    "shape not a list": (make({"a": dict(F32, shape=2)}), "shape 2; expected a list"),
    "offsets not a pair": (make({"a": dict(F32, data_offsets=[0])}),
                           r"data_offsets \[0\]; expected \[begin, end\]"),
    "negative offsets": (make({"a": dict(F32, data_offsets=[-8, 0])}), "two non-negative"),
    "shape and dtype do not match the bytes": (
        make({"a": dict(F32, shape=[3])}),
        r"shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] hold 8"),
    "astronomical shape": (make({"a": dict(F32, shape=[2**62, 2**62, 2**62])}),
                           "needs .* bytes but data_offsets"),
    "overlapping offsets": (make({"a": F32, "b": dict(F32, data_offsets=[4, 12])}, b"\0" * 12),
                            r"'b' has data_offsets \[4, 12\], overlapping the tensor before"),
    "out-of-order offsets": (make({"a": dict(F32, data_offsets=[8, 0])}),
                             r"data_offsets \[8, 0\]: begin after end"),
    "gap between tensors": (make({"a": dict(F32, shape=[1], data_offsets=[0, 4]),
                                  "b": dict(F32, shape=[1], data_offsets=[8, 12])}, b"\0" * 12),
                            "starts at data byte 8, leaving a gap after byte 4"),
    "out-of-bounds offsets": (make({"a": dict(F32, shape=[4], data_offsets=[0, 16])}),
                              r"past the end of the data section \(8 bytes\)"),
    "trailing garbage": (VALID + b"junk", "4 bytes of trailing data after the last tensor"),
    "metadata not strings": (make({"__metadata__": {"k": 1}, "a": F32}),
                             "'__metadata__' must map strings to strings"),
    "newer flambeau format": (
        make({"__metadata__": flambeau_meta({"tensor": "a"}, version="2"), "a": F32}),
        "has flambeau format '2'; this flambeau reads format '1'"),
    "structure not JSON": (
        make({"__metadata__": {"flambeau.format": "1", "flambeau.structure": "{"}, "a": F32}),
        "metadata 'flambeau.structure' is not valid JSON"),
    "structure names a missing tensor": (
        make({"__metadata__": flambeau_meta({"list": [{"tensor": "a"}, {"tensor": "b"}]}),
              "a": F32}),
        'refers to tensor "b", which the file does not hold'),
    "structure misses a tensor": (
        make({"__metadata__": flambeau_meta({"value": 1}), "a": F32}),
        "does not mention the tensor\\(s\\) 'a'"),
    "structure with an unknown node": (
        make({"__metadata__": flambeau_meta({"set": [{"tensor": "a"}]}), "a": F32}),
        'corrupt: unknown node {"set"'),
    "structure with repeated dict keys": (
        make({"__metadata__": flambeau_meta({"dict": [[1, {"tensor": "a"}], [1, {"value": 2}]]}),
              "a": F32}),
        "expected distinct \\[KEY, NODE\\] pairs"),
    "alias to a missing tensor": (
        make({"__metadata__": flambeau_meta({"list": [{"tensor": "a"}, {"tensor": "b"}]},
                                            {"b": "zzz"}), "a": F32}),
        "maps 'b' to \"zzz\"; an alias must name no tensor of the file and point at one"),
    # Hostile headers that used to escape as raw TypeError/ValueError (issue 11, defect 9).
    "alias to a list": (
        make({"__metadata__": flambeau_meta({"list": [{"tensor": "a"}, {"tensor": "b"}]},
                                            {"b": ["a"]}), "a": F32}),
        r"maps tensor 'b' to \[\"a\"\]; expected the name of a tensor of the file \(a string\)"),
    "alias to an object": (
        make({"__metadata__": flambeau_meta({"list": [{"tensor": "a"}, {"tensor": "b"}]},
                                            {"b": {"a": 1}}), "a": F32}),
        r"maps tensor 'b' to {\"a\": 1}; expected the name of a tensor"),
    "float node holding a list": (
        make({"__metadata__": flambeau_meta({"list": [{"tensor": "a"}, {"float": ["nan"]}]}),
              "a": F32}),
        r'corrupt: unknown node {"float": \["nan"\]}'),
    "dtype a list": (make({"a": dict(F32, dtype=["F32"])}),
                     r"tensor 'a' has unknown dtype \[\"F32\"\]; safetensors dtypes are"),
    "empty shape with a huge dimension": (
        make({"a": dict(F32, shape=[0, 2**62], data_offsets=[0, 0])}, b""),
        r"tensor 'a' has shape \[0, 4611686018427387904\]: empty, but its other dimensions "
        r"multiply to more than 2\*\*63 - 1 bytes"),
    "empty shape with huge dimensions": (
        make({"a": dict(F32, shape=[2**40, 0, 2**40], data_offsets=[0, 0])}, b""),
        r"tensor 'a' has shape \[1099511627776, 0, 1099511627776\]: empty, but"),
    "empty shape with a dimension over int64": (
        make({"a": dict(F32, shape=[2**64, 0], data_offsets=[0, 0])}, b""),
        r"tensor 'a' has shape \[18446744073709551616, 0\] with a dimension of "
        r"18446744073709551616; dimensions are at most 2\*\*63 - 1"),
    "dimension over int64": (make({"a": dict(F32, dtype="U8", shape=[2**63])}),
                             r"tensor 'a' has shape \[9223372036854775808\] with a dimension"),
    "empty shape one byte over the limit": (
        make({"a": {"dtype": "U8", "shape": [2**62, 0, 2], "data_offsets": [0, 0]}}, b""),
        r"tensor 'a' has shape \[4611686018427387904, 0, 2\]: empty, but"),
    "65 dimensions": (make({"a": dict(F32, shape=[1] * 65, data_offsets=[0, 4])}, b"\0" * 4),
                      "tensor 'a' has 65 dimensions; a tensor has at most 64"),
    "65 dimensions, empty": (make({"a": dict(F32, shape=[0] * 65, data_offsets=[0, 0])}, b""),
                             "tensor 'a' has 65 dimensions; a tensor has at most 64"),
}


@pytest.mark.parametrize("mmap", [True, None], ids=["mmap", "pread"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file(case, mmap, tmp_path):
    raw, message = BAD_FILES[case]
    path = tmp_path / "bad"
    path.write_bytes(raw)
    with pytest.raises(SerializationError, match=message) as info:
        flambeau.load(path, mmap=mmap)
    assert isinstance(info.value, (flambeau.FlambeauError, ValueError))
    assert "'" + str(path) + "'" in str(info.value)  # the message names the file
    with pytest.raises(SerializationError, match=message):
        flambeau.serialization.open(path, mmap=mmap)


def test_valid_base_of_the_table_loads(tmp_path):
    (tmp_path / "ok").write_bytes(VALID)
    assert flambeau.load(tmp_path / "ok")["a"].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("mmap", [True, False], ids=["mmap", "pread"])
def test_shapes_at_the_limits_load(tmp_path, mmap):
    """64 dimensions, and empty tensors whose other dimensions are huge but fit numpy."""
    raw = make({"d64": dict(F32, shape=[1] * 63 + [2]),
                "e": {"dtype": "U8", "shape": [2**61, 0, 2], "data_offsets": [8, 8]}})
    (tmp_path / "ok").write_bytes(raw)
    loaded = flambeau.load(tmp_path / "ok", mmap=mmap)
    assert loaded["d64"].shape == (1,) * 63 + (2,) and loaded["e"].shape == (2**61, 0, 2)
    with flambeau.serialization.open(tmp_path / "ok", mmap=mmap) as f:
        assert f.get_slice("e")[:3].shape == (3, 0, 2)


def test_unsupported_dtype_is_listed_but_refused_when_read(tmp_path):
    path = tmp_path / "u16"
    path.write_bytes(make({"b": {"dtype": "U16", "shape": [4], "data_offsets": [0, 8]}}))
    with pytest.raises(SerializationError, match="tensor 'b' has dtype U16, which flambeau "
                                                 "does not support"):
        flambeau.load(path)
    with flambeau.serialization.open(path) as f:
        assert (f.info("b").file_dtype, f.info("b").dtype, f.info("b").shape) == ("U16", None,
                                                                                (4,))
        with pytest.raises(SerializationError, match="U16"):
            f.get_slice("b")


# --- PyTorch pickles are refused unread ----------------------------------------------------


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_torch_zip_checkpoint_is_refused_with_conversion_advice(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    torch.save({"w": torch.ones(2), "evil": _Evil()}, "model.pt")
    assert not os.path.exists("PWNED")
    with pytest.raises(SerializationError, match=r"'model.pt' is a PyTorch pickle checkpoint "
                       r"\(the zip archive torch.save writes\), not safetensors; flambeau never "
                       r"unpickles files .*save_file\(torch.load\(PATH, weights_only=True\)"):
        flambeau.load("model.pt")
    assert not os.path.exists("PWNED")


def test_torch_legacy_pickle_and_plain_pickles_are_refused(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    torch.save(torch.ones(2), "legacy.pt", _use_new_zipfile_serialization=False)
    for protocol in (2, 3, 4, 5):
        with open(f"evil{protocol}.pkl", "wb") as f:
            pickle.dump(_Evil(), f, protocol=protocol)
    for name in ["legacy.pt"] + [f"evil{p}.pkl" for p in (2, 3, 4, 5)]:
        with pytest.raises(SerializationError, match=f"'{name}' is a Python pickle .*never "
                           "unpickles"):
            flambeau.load(name)
    assert not os.path.exists("PWNED")


def test_other_zip_archives_are_named(tmp_path):
    np.savez(tmp_path / "arrays.npz", a=np.ones(3))
    with pytest.raises(SerializationError, match=r"is a zip archive \(e.g. numpy's .npz\)"):
        flambeau.load(tmp_path / "arrays.npz")


def test_weights_only_false_is_refused(tmp_path):
    flambeau.save(flambeau.ones(1), tmp_path / "f")
    with pytest.raises(SerializationError, match="never unpickles"):
        flambeau.load(tmp_path / "f", weights_only=False)


# --- paths ---------------------------------------------------------------------------------


def test_directories_and_missing_paths(tmp_path):
    with pytest.raises(SerializationError, match="is a directory, not a file"):
        flambeau.load(tmp_path)
    with pytest.raises(SerializationError, match=r"cannot save to .*: it is a directory"):
        flambeau.save(flambeau.ones(1), tmp_path)
    with pytest.raises(CheckpointNotFoundError, match=r"'.*nothing' does not exist") as info:
        flambeau.load(tmp_path / "nothing")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(SerializationError, match=r"the folder '.*no-such-folder' does not exist"):
        flambeau.save(flambeau.ones(1), tmp_path / "no-such-folder" / "f")
    with pytest.raises(TypeError, match="expected a path"):
        flambeau.load(3)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(SerializationError, match="is not a regular file"):
        flambeau.load(tmp_path / "pipe")


_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.mark.skipif(_ROOT or os.name == "nt", reason="root ignores file permissions")
def test_no_permission(tmp_path):
    path = tmp_path / "f"
    flambeau.save(flambeau.ones(1), path)
    path.chmod(0)
    with pytest.raises(SerializationError, match=r"cannot read .*: permission denied"):
        flambeau.load(path)
    path.chmod(0o600)
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(SerializationError, match="permission denied"):
            flambeau.save(flambeau.zeros(1), path)
    finally:
        tmp_path.chmod(0o700)
    assert flambeau.load(path).tolist() == [1.0]


def test_no_permission_simulated(tmp_path, monkeypatch):
    """The same messages where the tests run as root (chmod does not stop root)."""
    path = tmp_path / "f"
    flambeau.save(flambeau.ones(1), path)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_reader, "builtins", types.SimpleNamespace(open=denied))
    with pytest.raises(SerializationError, match=r"cannot read .*/f': permission denied"):
        flambeau.load(path)
    monkeypatch.undo()
    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(SerializationError, match="cannot save to .*/f': permission denied "
                       r"\(writing in the folder .* needs write permission\); nothing was"):
        flambeau.save(flambeau.zeros(1), path)
    monkeypatch.undo()
    assert flambeau.load(path).tolist() == [1.0] and os.listdir(tmp_path) == ["f"]


# --- objects that cannot be saved ----------------------------------------------------------


def _cycle():
    items: list = [flambeau.ones(1)]
    items.append(items)
    return items


def _deep():
    obj: list = []
    for _ in range(300):
        obj = [obj]
    return obj


BAD_OBJECTS = {
    "module": (nn.Linear(2, 2), "cannot save a Linear .*; save its state_dict\\(\\) instead"),
    "numpy array": ({"a": np.ones(2)}, "a ndarray at 'a'.*flambeau.from_numpy"),
    "set": ([{1, 2}], "cannot save a set at '0': flambeau files hold tensors"),
    "cycle": (_cycle(), "the container at '1' contains itself"),
    "too deep": (_deep(), "nested more than 200 levels deep"),
    "tuple key": ({(1, 2): flambeau.ones(1)}, r"key \(1, 2\) is a tuple; keys must be"),
    "nan key": ({float("nan"): 1}, "key nan is a float"),
    "lazy parameter": ({"w": nn.Parameter()}, "'w': it is an uninitialized \\(lazy\\)"),
}


@pytest.mark.parametrize("case", list(BAD_OBJECTS))
def test_unsaveable_objects_write_nothing(case, tmp_path):
    obj, message = BAD_OBJECTS[case]
    with pytest.raises(SerializationError, match=message):
        flambeau.save(obj, tmp_path / "f")
    assert os.listdir(tmp_path) == []


def test_bad_user_metadata(tmp_path):
    with pytest.raises(SerializationError, match=r"'flambeau.x': keys starting with"):
        flambeau.save(flambeau.ones(1), tmp_path / "f", metadata={"flambeau.x": "1"})
    with pytest.raises(SerializationError, match="metadata must map strings to strings"):
        flambeau.save(flambeau.ones(1), tmp_path / "f", metadata={"n": 1})
    assert os.listdir(tmp_path) == []


# --- fuzzing -------------------------------------------------------------------------------


def _fuzz_base() -> bytes:
    import tempfile

    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "base")
    w = flambeau.arange(6.0).reshape(2, 3)
    flambeau.save({"w": w, "w_again": w, "n": [flambeau.arange(3), 7, None],
                   "m": flambeau.tensor([True, False]), "h": flambeau.ones(2).half()}, path)
    with open(path, "rb") as f:
        data = f.read()
    os.remove(path)
    os.rmdir(folder)
    return data


FUZZ_BASE = _fuzz_base()


def _leaves(obj):
    if isinstance(obj, flambeau.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _leaves(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _leaves(item)


#: JSON fragments hostile headers are made of: containers where names are expected, huge
#: and int64-overflowing sizes, zero dimensions next to them.
TOKENS = [b"[]", b"{}", b'["w"]', b'{"w":1}', b"0,", b"0, ", b"4611686018427387904,",
          b"18446744073709551616", b"9223372036854775808", b"1," * 64, b"-1", b"null"]


def _mutate(data, raw: bytearray) -> None:
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "byte", "truncate", "insert", "delete",
                                          "token"]))
        at = data.draw(st.integers(0, max(len(raw) - 1, 0)), label="at")
        if kind == "flip" and raw:
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "byte" and raw:
            raw[at] = data.draw(st.sampled_from(b'0129{}[]",:- \xff\x00e.'))
        elif kind == "truncate":
            del raw[at:]
        elif kind == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del raw[at:at + data.draw(st.integers(1, 4))]
        elif kind == "token":  # splice a hostile JSON fragment in (or over a few bytes)
            cut = data.draw(st.integers(0, 3), label="replaced")
            raw[at:at + cut] = data.draw(st.sampled_from(TOKENS), label="token")


_SIZES = st.sampled_from([0, 1, 2, 3, 2**31, 2**61, 2**62, 2**63 - 1, 2**63, 2**64])
#: Any JSON value, and shapes that are valid JSON but hostile (huge, overflowing, > 64 dims).
HOSTILE = st.one_of(
    st.recursive(st.none() | st.booleans() | _SIZES | st.integers() | st.text(max_size=3)
                 | st.sampled_from(["w", "F32", "nan"]),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=2), inner, max_size=2), max_leaves=5),
    st.lists(_SIZES, max_size=4),
    st.builds(lambda n, size: [size] * n, st.integers(60, 70), st.sampled_from([0, 1])),
)


def _mutate_json(data, header: dict) -> None:
    """Put a hostile JSON value where the header has a field: a tensor's dtype, shape or
    offsets, an alias target, or a node of the structure tree."""
    names = [name for name in header if name != "__metadata__"]
    meta = header["__metadata__"]
    value = data.draw(HOSTILE, label="value")
    what = data.draw(st.sampled_from(["dtype", "shape", "data_offsets", "alias", "node"]))
    if what == "alias":
        aliases = json.loads(meta["flambeau.aliases"])
        aliases[data.draw(st.sampled_from(sorted(aliases)))] = value
        meta["flambeau.aliases"] = json.dumps(aliases)
    elif what == "node":
        kind = data.draw(st.sampled_from(["tensor", "float", "value", "list", "tuple", "dict"]))
        tree = json.loads(meta["flambeau.structure"])
        meta["flambeau.structure"] = json.dumps({"list": [tree, {kind: value}]})
    else:
        header[data.draw(st.sampled_from(names), label="tensor")][what] = value


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 250)), deadline=None,
          database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_mutated_files_load_correctly_or_raise(tmp_path, data):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    n = int.from_bytes(FUZZ_BASE[:8], "little")
    where = data.draw(st.sampled_from(["anywhere", "header", "data", "json"]), label="where")
    if where == "anywhere":  # the length field, header and data alike
        raw = bytearray(FUZZ_BASE)
        _mutate(data, raw)
    elif where == "json":  # valid JSON, hostile values: past the parser into validation
        header = json.loads(FUZZ_BASE[8:8 + n])
        _mutate_json(data, header)
        text = json.dumps(header).encode()
        raw = bytearray(len(text).to_bytes(8, "little") + text + FUZZ_BASE[8 + n:])
    else:  # keep the length field right, to get past it into the header's checks
        header, body = bytearray(FUZZ_BASE[8:8 + n]), bytearray(FUZZ_BASE[8 + n:])
        _mutate(data, header if where == "header" else body)
        raw = bytearray(len(header).to_bytes(8, "little") + header + body)
    path = tmp_path / "fuzzed"
    path.write_bytes(bytes(raw))
    try:
        loaded = flambeau.load(path, mmap=data.draw(st.booleans(), label="mmap"))
    except SerializationError as exc:
        event(f"refused: {str(exc).split(': ', 1)[-1][:40]}")
        return
    event("loaded")
    # Accepted: the reference implementation must accept it too, with the same tensors.
    reference = safetensors_numpy.load(bytes(raw))
    expected = {(a.dtype.str, a.shape, a.tobytes()) for a in reference.values()}
    for t in _leaves(loaded):
        array = t.numpy()
        assert (array.dtype.str, array.shape, array.tobytes()) in expected
    with flambeau.serialization.open(path) as f:
        for name, array in reference.items():
            if name in f:
                assert f[name].numpy().tobytes() == array.tobytes()
