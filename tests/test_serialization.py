"""flambeau.save / flambeau.load: round trips, format, ties, devices, lazy reads, atomicity.

Bad files and the fuzz test are in test_serialization_errors.py.
"""

from __future__ import annotations

import json
import mmap
import os
import pathlib
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import flambeau
from flambeau import nn
from flambeau.serialization import SerializationError, _reader, _writer

ALL_DTYPES = [flambeau.bool, flambeau.uint8, flambeau.int8, flambeau.int16, flambeau.int32,
              flambeau.int64, flambeau.float16, flambeau.float32, flambeau.float64]


def host(t):
    return t.detach().numpy()


def header_of(path):
    raw = pathlib.Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:], n


def same(a, b):
    """Same type, structure, dtypes, shapes and values (tensors compared bytewise)."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, flambeau.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert host(a).tobytes() == host(b).tobytes()
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
    elif isinstance(a, dict):
        assert list(a) == list(b) and [type(k) for k in a] == [type(k) for k in b]
        for key in a:
            same(a[key], b[key])
    else:
        assert a == b or (a != a and b != b)


# --- round trips -------------------------------------------------------------------------


def test_round_trip_every_structure(device, tmp_path):
    flambeau.manual_seed(0)
    values = {dt: flambeau.tensor(np.arange(-3, 3).reshape(2, 3), device=device).to(dt)
              for dt in ALL_DTYPES}
    cases = [
        values[flambeau.float32],
        [values[flambeau.int64], values[flambeau.float16]],
        (values[flambeau.bool], values[flambeau.uint8]),
        {"a": {"b": values[flambeau.float64], "c": [values[flambeau.int8]]},
         "d": values[flambeau.int16]},
        {str(dt): t for dt, t in values.items()},
        {"scalar": flambeau.tensor(2.5, device=device),
         "empty": flambeau.zeros(0, 3, device=device),
         "empty_int": flambeau.zeros(4, 0, dtype=flambeau.int32, device=device)},
        [],
        {},
    ]
    path = tmp_path / "obj"
    for obj in cases:
        flambeau.save(obj, path)
        loaded = flambeau.load(path, device=device)
        same(obj, loaded)
        for t in _tensors(loaded):
            assert t.device == flambeau.device(device) and not t.requires_grad


def _tensors(obj):
    if isinstance(obj, flambeau.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def test_paths_may_be_str_or_pathlike_without_extension(tmp_path):
    x = flambeau.arange(3)
    flambeau.save(x, str(tmp_path / "x-file"))
    flambeau.save(x, tmp_path / "y")
    same(flambeau.load(tmp_path / "x-file"), x)
    same(flambeau.load(str(tmp_path / "y")), x)
    assert sorted(os.listdir(tmp_path)) == ["x-file", "y"]


def test_file_saved_on_one_device_loads_on_every_other(tmp_path):
    x = flambeau.arange(12.0, device="boxed:1").reshape(3, 4)
    flambeau.save({"x": x}, tmp_path / "f")
    for target in ("cpu", "boxed:0", "boxed:1"):
        for use_map in (None, True, False):
            y = flambeau.load(tmp_path / "f", device=target, mmap=use_map)["x"]
            assert y.device == flambeau.device(target)
            np.testing.assert_array_equal(host(y), np.arange(12.0).reshape(3, 4))
    # PyTorch's spelling of the device argument.
    assert flambeau.load(tmp_path / "f", map_location="boxed:0")["x"].device.type == "boxed"


def test_non_tensor_values_keep_their_types(tmp_path):
    obj = {"int": 3, "big": 2**70, "float": 1.0, "neg_zero": -0.0, "nan": float("nan"),
           "inf": float("inf"), "-inf": float("-inf"), "bool": True, "none": None,
           "str": "é\n\"x\"", 0: "int key", 1.5: "float key", True: "bool key",
           None: "none key", "tuple": (1, (2.0, [None])), "np": np.float32(0.25)}
    flambeau.save(obj, tmp_path / "f")
    loaded = flambeau.load(tmp_path / "f")
    expected = dict(obj, np=0.25)
    same(expected, loaded)
    assert loaded["neg_zero"] == 0.0 and str(loaded["neg_zero"]) == "-0.0"


def test_colliding_paths_get_distinct_names(tmp_path):
    obj = {"a.b": flambeau.ones(1), "a": {"b": flambeau.zeros(1)}, "__metadata__": flambeau.ones(2),
           0: flambeau.full((1,), 5.0), "0": flambeau.full((1,), 6.0)}
    flambeau.save(obj, tmp_path / "f")
    header, _, _ = header_of(tmp_path / "f")
    assert sorted(k for k in header if k != "__metadata__") == [
        "0", "0#1", "__metadata__#1", "a.b", "a.b#1"]
    same(obj, flambeau.load(tmp_path / "f"))


# --- format ------------------------------------------------------------------------------


def test_golden_bytes(tmp_path):
    """Byte-exact output for a small dict, built by hand from the format description."""
    a = flambeau.tensor([[7]], dtype=flambeau.int16)
    flambeau.save({"b": flambeau.tensor([1.5, -2.0]), "a": a, "step": 3}, tmp_path / "f")
    structure = ('{"dict":[["b",{"tensor":"b"}],["a",{"tensor":"a"}],'
                 '["step",{"value":3}]]}')
    header = ('{"__metadata__":{"flambeau.format":"1","flambeau.structure":'
              + json.dumps(structure) + ',"format":"pt"},'
              '"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
              '"a":{"dtype":"I16","shape":[1,1],"data_offsets":[8,10]}}').encode()
    header += b" " * (-len(header) % 8)
    expected = (len(header).to_bytes(8, "little") + header
                + b"\x00\x00\xc0\x3f" + b"\x00\x00\x00\xc0" + b"\x07\x00")
    assert (tmp_path / "f").read_bytes() == expected


def test_layout_is_what_the_safetensors_package_writes(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float16),
              "i": np.arange(5), "m": np.array([True, False]), "d": np.zeros((2, 2)),
              "k": np.arange(3, dtype=np.int8), "u": np.arange(4, dtype=np.uint8)}
    flambeau.save({k: flambeau.from_numpy(v) for k, v in arrays.items()}, tmp_path / "f")
    ours, data, n = header_of(tmp_path / "f")
    theirs_raw = safetensors_numpy.save(arrays, metadata=ours["__metadata__"])
    m = int.from_bytes(theirs_raw[:8], "little")
    assert json.loads(theirs_raw[8:8 + m]) == ours
    assert list(json.loads(theirs_raw[8:8 + m])) == list(ours)  # same data order
    assert theirs_raw[8 + m:] == data and n == m and n % 8 == 0
    for entry in (v for k, v in ours.items() if k != "__metadata__"):
        size = np.dtype({"F64": "f8", "I64": "i8", "F32": "f4", "F16": "f2",
                         "I8": "i1", "U8": "u1", "BOOL": "?"}[entry["dtype"]]).itemsize
        assert entry["data_offsets"][0] % size == 0  # aligned


def test_files_open_in_safetensors_numpy_and_torch(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    torch = pytest.importorskip("torch")
    tensors = {f"t{i}": flambeau.tensor(np.arange(6).reshape(2, 3), dtype=dt)
               for i, dt in enumerate(ALL_DTYPES)}
    flambeau.save(tensors, tmp_path / "f")
    by_numpy = safetensors_numpy.load_file(tmp_path / "f")
    by_torch = safetensors_torch.load_file(tmp_path / "f")
    for name, t in tensors.items():
        np.testing.assert_array_equal(by_numpy[name], host(t))
        assert by_numpy[name].dtype == t.dtype
        assert by_torch[name].dtype == getattr(torch, str(t.dtype).replace("bool", "bool"))
        np.testing.assert_array_equal(by_torch[name].numpy(), host(t))


def test_files_written_by_safetensors_and_pytorch_load(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    torch = pytest.importorskip("torch")
    arrays = {"z": np.arange(4, dtype=np.int32), "a": np.linspace(0, 1, 6).reshape(3, 2),
              "s": np.array(1.5, np.float32), "e": np.zeros((0, 2), np.float16)}
    safetensors_numpy.save_file(arrays, tmp_path / "np.safetensors")
    loaded = flambeau.load(tmp_path / "np.safetensors")
    assert sorted(loaded) == sorted(arrays)
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype
        np.testing.assert_array_equal(host(loaded[name]), array)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    safetensors_torch.save_file(model.state_dict(), tmp_path / "torch.safetensors")
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    net.load_state_dict(flambeau.load(tmp_path / "torch.safetensors"))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(host(net(flambeau.from_numpy(x))),
                               model(torch.from_numpy(x)).detach().numpy(), rtol=1e-6)
    # A PyTorch model with tied weights saved by safetensors' save_model (duplicates dropped).
    tied = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    tied[1].weight = tied[0].weight
    safetensors_torch.save_model(tied, tmp_path / "tied.safetensors")
    assert len(flambeau.load(tmp_path / "tied.safetensors")) == 3


# --- ties and views ----------------------------------------------------------------------


def _tied_net():
    shared = nn.Linear(8, 8)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(),
                         nn.Linear(8, 1))


def test_tied_parameters_are_stored_once_and_loaded_as_one_object(tmp_path):
    net = _tied_net()
    flambeau.save(net.state_dict(), tmp_path / "tied")
    header, data, _ = header_of(tmp_path / "tied")
    assert "2.weight" in header and "4.weight" not in header and "4.bias" not in header
    aliases = json.loads(header["__metadata__"]["flambeau.aliases"])
    assert aliases == {"4.weight": "2.weight", "4.bias": "2.bias"}
    assert len(data) == 4 * (8 * 4 + 8 + 8 * 8 + 8 + 8 + 1)  # the shared layer once
    sd = flambeau.load(tmp_path / "tied")
    assert list(sd) == list(net.state_dict())
    assert sd["2.weight"] is sd["4.weight"] and sd["2.bias"] is sd["4.bias"]
    clone = _tied_net()
    clone.load_state_dict(sd)
    assert clone[2].weight is clone[4].weight
    np.testing.assert_array_equal(host(clone[4].weight), host(net[2].weight))
    x = flambeau.randn(3, 4)
    np.testing.assert_array_equal(host(clone(x)), host(net(x)))
    # Other readers see the stored names and can re-tie with the alias table.
    with flambeau.serialization.open(tmp_path / "tied") as f:
        assert f.aliases == aliases and "4.weight" in f and len(f) == 8
        np.testing.assert_array_equal(host(f["4.weight"]), host(net[2].weight))


def test_same_tensor_twice_in_a_list_is_one_object(tmp_path):
    x, y = flambeau.arange(3.0), flambeau.ones(2)
    flambeau.save([x, y, x, x.detach()], tmp_path / "f")
    a, b, c, d = flambeau.load(tmp_path / "f")
    assert a is c is d and a is not b
    same(a, x)


def test_views_write_only_their_own_bytes(tmp_path):
    big = flambeau.arange(10_000.0).reshape(100, 100)
    flambeau.save({"row": big[3], "cols": big[:4, ::25], "t": big[:2, :3].t()}, tmp_path / "f")
    _, data, _ = header_of(tmp_path / "f")
    assert len(data) == 4 * (100 + 16 + 6)
    loaded = flambeau.load(tmp_path / "f")
    expected = np.arange(10_000.0, dtype=np.float32).reshape(100, 100)
    np.testing.assert_array_equal(host(loaded["row"]), expected[3])
    np.testing.assert_array_equal(host(loaded["cols"]), expected[:4, ::25])
    np.testing.assert_array_equal(host(loaded["t"]), expected[:2, :3].T)


# --- memory mapping, pread, streaming ----------------------------------------------------


def _mapped(array):
    while array is not None:
        if isinstance(array, mmap.mmap):
            return True
        array = array.obj if isinstance(array, memoryview) else getattr(array, "base", None)
    return False


def test_cpu_load_with_mmap_maps_copy_on_write(tmp_path):
    path = tmp_path / "f"
    flambeau.save({"w": flambeau.arange(6.0).reshape(2, 3), "i": flambeau.arange(3)}, path)
    before = path.read_bytes()
    assert not _mapped(flambeau.load(path)["w"]._data)  # mapping is opt-in
    sd = flambeau.load(path, mmap=True)
    assert _mapped(sd["w"]._data) and _mapped(sd["i"]._data)  # zero-copy
    sd["w"].add_(100)
    sd["i"][0] = 7
    assert host(sd["w"])[0, 0] == 100 and host(sd["i"])[0] == 7
    assert path.read_bytes() == before  # in-place edits never reach the file
    same(flambeau.load(path)["w"], flambeau.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("use_map", [None, False], ids=["default", "mmap=False"])
def test_pread_load_copies_nothing_twice(tmp_path, monkeypatch, use_map):
    path = tmp_path / "f"
    flambeau.save({"w": flambeau.arange(6.0)}, path)
    reads = []
    original = _reader.Reader._read

    def spy(self, offset, n, *, fresh):
        reads.append(original(self, offset, n, fresh=fresh))
        return reads[-1]

    monkeypatch.setattr(_reader.Reader, "_read", spy)
    w = flambeau.load(path, mmap=use_map)["w"]
    assert not _mapped(w._data) and w._data.flags.writeable
    assert len(reads) == 1 and np.shares_memory(w._data, reads[0])  # the array read, adopted
    w.add_(1)
    same(w, flambeau.arange(1.0, 7.0))


def test_saving_over_a_mapped_file_leaves_loaded_tensors_alone(tmp_path):
    path = tmp_path / "f"
    flambeau.save({"w": flambeau.ones(1000)}, path)
    old = flambeau.load(path, mmap=True)["w"]
    flambeau.save({"w": flambeau.zeros(1000)}, path)
    assert host(old).sum() == 1000 and host(flambeau.load(path)["w"]).sum() == 0


def test_other_devices_stream_through_one_host_buffer(tmp_path, monkeypatch):
    sizes = [10, 300, 20]
    flambeau.save({f"t{i}": flambeau.ones(n) for i, n in enumerate(sizes)}, tmp_path / "f")
    kernels = flambeau.ones(1, device="boxed:0")._k
    seen = []
    original = kernels.from_numpy

    def spy(array):
        seen.append(array)
        return original(array)

    monkeypatch.setattr(kernels, "from_numpy", spy)
    loaded = flambeau.load(tmp_path / "f", device="boxed:0")
    assert [a.size for a in seen] == sizes  # data order here: names
    assert all(np.shares_memory(a, seen[1]) for a in seen)  # one buffer, the largest
    assert all(host(t).sum() == n for t, n in zip(loaded.values(), sizes))


# --- lazy reading ------------------------------------------------------------------------


def test_open_reads_names_shapes_dtypes_from_the_header_alone(tmp_path, monkeypatch):
    flambeau.save({"w": flambeau.zeros(4, 3), "n": flambeau.arange(2, dtype=flambeau.int16)},
                  tmp_path / "f", metadata={"note": "hi"})

    def no_data(*args):
        raise AssertionError("data was read")

    monkeypatch.setattr(_reader.Reader, "_host", no_data)
    with flambeau.serialization.open(tmp_path / "f") as f:
        assert f.keys() == ["w", "n"] and list(f) == ["w", "n"] and "w" in f
        info = f.info("w")
        assert (info.shape, info.dtype, info.file_dtype, info.nbytes) == (
            flambeau.Size([4, 3]), flambeau.float32, "F32", 48)
        assert f.info("n").dtype == flambeau.int16
        assert f.metadata["note"] == "hi" and f.metadata["format"] == "pt"
        assert f.get_slice("w").shape == (4, 3)
        with pytest.raises(KeyError, match=r"has no tensor 'x'; it has 'w', 'n'"):
            f.info("x")
    with pytest.raises(SerializationError, match=r"reader of .* is closed"):
        f.get_tensor("w")


INDICES = [0, -1, 3, slice(None), slice(1, 3), slice(None, None, 2), slice(None, None, -1),
           slice(4, 0, -2), slice(2, 2), (1, 2), (slice(1, 4), -1), (Ellipsis, 1),
           (slice(None, None, -2), slice(0, 3, 2)), Ellipsis, (2, Ellipsis, slice(1, 2))]


@pytest.mark.parametrize("use_map", [True, False], ids=["mmap", "pread"])
def test_lazy_tensors_and_slices(tmp_path, use_map, monkeypatch):
    reference = np.arange(5 * 4 * 3, dtype=np.float64).reshape(5, 4, 3)
    flambeau.save({"x": flambeau.from_numpy(reference), "s": flambeau.tensor(3)}, tmp_path / "f")
    reads = []
    original = _reader.Reader._read

    def spy(self, offset, n, *, fresh):
        reads.append(n)
        return original(self, offset, n, fresh=fresh)

    monkeypatch.setattr(_reader.Reader, "_read", spy)
    for device in ("cpu", "boxed:1"):
        with flambeau.serialization.open(tmp_path / "f", device=device, mmap=use_map) as f:
            np.testing.assert_array_equal(host(f.get_tensor("x")), reference)
            assert f["s"].item() == 3 and f.get_slice("s")[...].item() == 3
            x = f.get_slice("x")
            for index in INDICES:
                got = x[index]
                assert got.device == flambeau.device(device)
                np.testing.assert_array_equal(host(got), reference[index], err_msg=str(index))
                assert got.shape == reference[index].shape
    if not use_map:
        assert 12 * 8 in reads and 2 * 12 * 8 in reads  # x[3] and x[1:3] read just their rows
    else:
        assert reads == []


def test_bad_slices_raise_index_errors(tmp_path):
    flambeau.save({"x": flambeau.zeros(3, 2)}, tmp_path / "f")
    with flambeau.serialization.open(tmp_path / "f") as f:
        x = f.get_slice("x")
        for index, message in [(3, "index 3 is out of range for dimension 0 of size 3"),
                               ((0, 0, 0), "too many indices: 3"),
                               ([0, 1], "takes ints, slices and '...', got list"),
                               (slice(None, None, 0), "step cannot be zero"),
                               ((..., ...), "single ellipsis")]:
            with pytest.raises(flambeau.errors.FlambeauIndexError, match=message):
                x[index]


# --- atomic, durable saves ---------------------------------------------------------------


@pytest.fixture(params=["anonymous", "named"])
def temp_kind(request, monkeypatch):
    """Run a test with the O_TMPFILE temporary file and with the named fallback."""
    if request.param == "named":
        monkeypatch.setattr(_writer._AtomicFile, "_open_anonymous", lambda self: None)
    return request.param


@pytest.mark.parametrize("interrupt", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_exception_mid_save_keeps_the_previous_file(tmp_path, monkeypatch, interrupt, temp_kind):
    path = tmp_path / "ckpt"
    flambeau.save({"a": flambeau.ones(3)}, path)
    before = path.read_bytes()
    calls = []
    original = _writer._write_tensor

    def failing(f, tensor, code, nbytes):
        calls.append(code)
        if len(calls) == 2:
            raise interrupt
        original(f, tensor, code, nbytes)

    monkeypatch.setattr(_writer, "_write_tensor", failing)
    with pytest.raises(type(interrupt)):
        flambeau.save({"a": flambeau.zeros(3), "b": flambeau.zeros(3)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt"]


def test_disk_errors_become_serialization_errors(tmp_path, monkeypatch, temp_kind):
    path = tmp_path / "ckpt"
    flambeau.save(flambeau.ones(2), path)

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(SerializationError, match=r"could not save .*ckpt': No space left on "
                       "device; the previous file \\(if any\\) was left intact"):
        flambeau.save(flambeau.zeros(2), path)
    monkeypatch.undo()
    same(flambeau.load(path), flambeau.ones(2))
    assert os.listdir(tmp_path) == ["ckpt"]


def test_save_fsyncs_the_file_and_the_folder(tmp_path, monkeypatch, temp_kind):
    synced = []
    original = os.fsync

    def spy(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        original(fd)

    monkeypatch.setattr(os, "fsync", spy)
    flambeau.save(flambeau.ones(2), tmp_path / "ckpt")
    assert synced == [False, True]
    assert os.listdir(tmp_path) == ["ckpt"]


def test_big_tensors_are_written_in_chunks_with_writeback_hints(tmp_path, monkeypatch):
    hints = []
    monkeypatch.setattr(_writer, "CHUNK_BYTES", 16)
    if _writer._FADVISE is not None:
        original = _writer._FADVISE

        def spy(fd, offset, size, advice):
            hints.append((offset, size))
            return original(fd, offset, size, advice)

        monkeypatch.setattr(_writer, "_FADVISE", spy)
    x = flambeau.arange(10.0)  # 40 bytes: chunks of 16, 16 and 8
    flambeau.save({"x": x, "y": flambeau.arange(3)}, tmp_path / "f")
    same(flambeau.load(tmp_path / "f")["x"], x)
    if _writer._FADVISE is not None:
        n = header_of(tmp_path / "f")[2] + 8
        assert hints == [(n, 16), (n + 16, 8), (n + 24, 16), (n + 40, 16), (n + 56, 8)]


def test_killed_process_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / "ckpt"
    flambeau.save({"a": flambeau.ones(3)}, path)
    before = path.read_bytes()
    script = textwrap.dedent(f"""
        import os, flambeau
        from flambeau.serialization import _writer
        def die(*args):
            os._exit(9)  # no cleanup, like a crash or SIGKILL
        _writer._write_tensor = die
        flambeau.save({{"a": flambeau.zeros(3)}}, {str(path)!r})
    """)
    done = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert done.returncode == 9
    assert path.read_bytes() == before
    if hasattr(os, "O_TMPFILE"):
        assert os.listdir(tmp_path) == ["ckpt"]  # anonymous temp file: nothing left behind


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions and symlinks")
def test_save_keeps_permissions_and_writes_through_symlinks(tmp_path):
    real = tmp_path / "real"
    flambeau.save(flambeau.ones(1), real)
    assert stat.S_IMODE(real.stat().st_mode) == 0o666 & ~_umask()
    real.chmod(0o640)
    link = tmp_path / "link"
    link.symlink_to(real)
    flambeau.save(flambeau.zeros(1), link)
    assert link.is_symlink() and stat.S_IMODE(real.stat().st_mode) == 0o640
    same(flambeau.load(real), flambeau.zeros(1))


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- modules and optimizers --------------------------------------------------------------


def test_d2l_read_write_cells(tmp_path, monkeypatch):
    """D2L 6.6 (PyTorch version) with ``torch`` replaced by ``flambeau``."""
    monkeypatch.chdir(tmp_path)
    torch = flambeau
    from flambeau.nn import functional as F

    x = torch.arange(4)
    torch.save(x, "x-file")
    x2 = torch.load("x-file")
    assert (x2 == x).all()

    y = torch.zeros(4)
    torch.save([x, y], "x-files")
    x2, y2 = torch.load("x-files")
    assert (x2 == x).all() and (y2 == y).all()

    mydict = {"x": x, "y": y}
    torch.save(mydict, "mydict")
    mydict2 = torch.load("mydict")
    assert list(mydict2) == ["x", "y"] and (mydict2["y"] == y).all()

    for lazy in (True, False):

        class MLP(nn.Module):
            def __init__(self, lazy=lazy):
                super().__init__()
                self.hidden = nn.LazyLinear(256) if lazy else nn.Linear(20, 256)
                self.output = nn.LazyLinear(10) if lazy else nn.Linear(256, 10)

            def forward(self, x):
                return self.output(F.relu(self.hidden(x)))

        net = MLP()
        X = torch.randn(size=(2, 20))
        Y = net(X)
        torch.save(net.state_dict(), "mlp.params")
        clone = MLP()
        clone.load_state_dict(torch.load("mlp.params"))
        clone.eval()
        Y_clone = clone(X)
        assert (Y_clone == Y).all()


def test_save_and_load_parameters_gluon_names(tmp_path):
    net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(2))
    with pytest.raises(SerializationError, match=r"'0.weight': it is an uninitialized"):
        net.save_parameters(tmp_path / "net.params")
    assert os.listdir(tmp_path) == []
    x = flambeau.randn(3, 5)
    y = net(x)
    net.save_parameters(tmp_path / "net.params")
    clone = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(2))
    assert clone.load_parameters(tmp_path / "net.params") == ([], [])
    np.testing.assert_array_equal(host(clone(x)), host(y))


def test_load_state_dict_fills_parameters_on_their_device(tmp_path):
    net = nn.Sequential(nn.Linear(3, 2))
    flambeau.save(net.state_dict(), tmp_path / "f")
    other = nn.Sequential(nn.Linear(3, 2)).to("boxed:1")
    other.load_state_dict(flambeau.load(tmp_path / "f"))
    assert other[0].weight.device == flambeau.device("boxed:1")
    np.testing.assert_array_equal(host(other[0].weight), host(net[0].weight))


def test_checkpoint_of_a_wrapped_model_loads_with_key_remapping(tmp_path):
    class Wrapper(nn.Module):  # like DataParallel: keys get a "module." prefix
        def __init__(self, module):
            super().__init__()
            self.module = module

    inner = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    flambeau.save(Wrapper(inner).state_dict(), tmp_path / "f")
    loaded = flambeau.load(tmp_path / "f")
    assert next(iter(loaded)) == "module.0.weight"
    fresh = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with pytest.raises(nn.StateDictError, match=r"missing keys: 0.weight"):
        fresh.load_state_dict(loaded)
    assert fresh.load_state_dict(loaded, strip_prefix="module.") == ([], [])
    np.testing.assert_array_equal(host(fresh[2].weight), host(inner[2].weight))
    renamed = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    report = renamed.load_state_dict(loaded, strict=False,
                                     key_map=lambda k: k.replace("module.", "", 1))
    assert report.missing_keys == [] and report.unexpected_keys == []


def test_optimizer_shaped_state_dict_keeps_ints_and_hyper_parameters(tmp_path):
    state = {
        "state": {0: {"step": 3, "exp_avg": flambeau.randn(2, 2),
                      "exp_avg_sq": flambeau.rand(2, 2)},
                  1: {"step": 3, "exp_avg": flambeau.randn(2), "exp_avg_sq": flambeau.rand(2)},
                  2: {"momentum_buffer": None}},
        "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-08,
                          "weight_decay": 0.0, "amsgrad": False, "maximize": False,
                          "foreach": None, "name": "body", "params": [0, 1]},
                         {"lr": 0.1, "momentum": 0.9, "nesterov": True, "params": [2]}],
    }
    flambeau.save(state, tmp_path / "opt")
    same(state, flambeau.load(tmp_path / "opt"))
    header, _, _ = header_of(tmp_path / "opt")
    assert sorted(k for k in header if k != "__metadata__") == [
        "state.0.exp_avg", "state.0.exp_avg_sq", "state.1.exp_avg", "state.1.exp_avg_sq"]
    structure = header["__metadata__"]["flambeau.structure"]
    assert '"step",{"value":3}' in structure and '"betas",{"tuple":[{"value":0.9}' in structure


def test_real_optimizer_resumes_exactly(tmp_path):
    optim = pytest.importorskip("flambeau.optim")

    def run(steps, resume_from=None):
        flambeau.manual_seed(1)
        net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        opt = optim.Adam(net.parameters(), lr=0.01)
        if resume_from is not None:
            net.load_state_dict(flambeau.load(resume_from / "net"))
            opt.load_state_dict(flambeau.load(resume_from / "opt"))
        x = flambeau.randn(8, 3)
        for _ in range(steps):
            opt.zero_grad()
            (net(x) ** 2).mean().backward()
            opt.step()
        return net, opt

    straight, _ = run(4)
    net, opt = run(2)
    flambeau.save(net.state_dict(), tmp_path / "net")
    flambeau.save(opt.state_dict(), tmp_path / "opt")
    assert flambeau.load(tmp_path / "opt")["state"][0]["step"] == 2
    resumed, _ = run(2, resume_from=tmp_path)
    for a, b in zip(resumed.parameters(), straight.parameters()):
        np.testing.assert_allclose(host(a), host(b), rtol=1e-6)
