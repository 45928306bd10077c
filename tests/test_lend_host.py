"""The optional kernel ``lend_host`` (opencl: a buffer map on a host-unified-memory device)
and the core's use of it in ``flambeau._ops.host.host_buffer``: the lent view shows the
array's values after the work queued before, host writes land for the work queued after
the release, the buffer is unmapped afterwards, and arrays it cannot lend (strided views,
empty arrays, devices without host-unified memory) fall back to a host copy.
"""

from __future__ import annotations

import numpy as np
import pytest

import flambeau
from flambeau._ops import host

cl = pytest.importorskip("pyopencl", reason='pyopencl is missing: pip install '
                         '"flambeau-opencl[pocl]"')
pytest.importorskip("flambeau_opencl", reason="flambeau-opencl is not installed")

_BACKEND = flambeau.backends.get("opencl")
_COUNT = _BACKEND.device_count() if _BACKEND is not None else 0
pytestmark = pytest.mark.skipif(_COUNT == 0, reason="no OpenCL device here")

DEV = "opencl:0"


# The device state is read from a tensor, not kept from import time: other tests reload
# the plugins, and a state kept from before would not be the one tensors use.
def _state():
    return flambeau.ones(1, device=DEV)._k._dev


def _unified() -> bool:
    return _state().host_unified


def _map_count(t) -> int:
    t._k._dev.finish()  # the unmap is a queued command
    return t._data.buffer.get_info(cl.mem_info.MAP_COUNT)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_, np.float16])
def test_lent_view_reads_pending_values_and_writes_land(dtype):
    if not _unified():
        pytest.skip("the device has no host-unified memory")
    base = flambeau.arange(40, device=DEV).reshape(4, 10)
    t = (base * 3 + 1).to(dtype)  # queued kernels the loan must wait for
    row = t[1:3]  # a contiguous view at an offset into its buffer
    expected = (np.arange(40).reshape(4, 10) * 3 + 1).astype(dtype)
    view, release = t._k.lend_host(row._data)
    np.testing.assert_array_equal(view, expected[1:3])
    assert view.dtype == np.dtype(dtype) and view.flags.c_contiguous
    assert _map_count(row) == 1
    view[...] = np.ones((2, 10), dtype)
    release()
    assert _map_count(row) == 0
    expected[1:3] = 1
    np.testing.assert_array_equal((t + 0).numpy(), expected)  # a kernel after the loan


def test_host_buffer_lends_and_gives_back():
    if not _unified():
        pytest.skip("the device has no host-unified memory")
    t = flambeau.arange(6, dtype=flambeau.float32, device=DEV) * 2
    version = t._version[0]
    buf, done = host.host_buffer(t, keep=True)
    np.testing.assert_array_equal(buf, np.arange(6) * 2)
    assert _map_count(t) == 1
    buf += 1
    done()
    assert _map_count(t) == 0 and t._version[0] == version + 1
    np.testing.assert_array_equal(t.numpy(), np.arange(6) * 2 + 1)


def test_zero_d_tensor():
    if not _unified():
        pytest.skip("the device has no host-unified memory")
    t = flambeau.tensor(2.5, device=DEV)
    buf, done = host.host_buffer(t, keep=True)
    assert buf.shape == () and buf == 2.5
    buf[...] = 4.0
    done()
    assert t.item() == 4.0 and _map_count(t) == 0


@pytest.mark.parametrize("make", [lambda t: t.T, lambda t: t[:, ::2], lambda t: t[:0]])
def test_arrays_it_cannot_lend_fall_back_to_a_copy(make):
    base = flambeau.arange(12, dtype=flambeau.float32, device=DEV).reshape(3, 4)
    t = make(base)
    assert t._k.lend_host(t._data) is None
    buf, done = host.host_buffer(t, keep=True)
    np.testing.assert_array_equal(buf, make(np.arange(12, dtype=np.float32).reshape(3, 4)))
    assert _map_count(base) == 0
    buf[...] = -1
    done()
    ref = np.arange(12, dtype=np.float32).reshape(3, 4)
    make(ref)[...] = -1  # numpy's views write through too
    np.testing.assert_array_equal(base.numpy(), ref)


def test_no_host_unified_memory_gives_none(monkeypatch):
    monkeypatch.setattr(_state(), "host_unified", False)
    t = flambeau.ones(4, device=DEV)
    assert t._k.lend_host(t._data) is None
    buf, done = host.host_buffer(t, keep=True)
    buf[...] = 7
    done()
    np.testing.assert_array_equal(t.numpy(), np.full(4, 7, np.float32))


def test_a_dropped_loan_is_unmapped_when_collected():
    # A collective that raises before completing never calls the step; pyopencl's map
    # object unmaps when it is garbage-collected.
    if not _unified():
        pytest.skip("the device has no host-unified memory")
    import gc

    t = flambeau.ones(1000, device=DEV) * 2
    buf, done = host.host_buffer(t)
    assert _map_count(t) == 1
    del buf, done
    gc.collect()
    assert _map_count(t) == 0
    assert t.sum().item() == 2000.0
