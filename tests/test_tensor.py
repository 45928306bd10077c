"""Tensors: creation, dtypes, conversions, devices and errors (PyTorch's behaviour)."""

from __future__ import annotations

import numpy as np
import pytest

import flambeau
from flambeau.errors import (
    DeviceMismatchError,
    DTypeError,
    FlambeauError,
    FlambeauIndexError,
    ShapeError,
)


def test_d2l_data_manipulation_cells():
    # The PyTorch cells of D2L's "Data Manipulation" section, torch -> flambeau.
    x = flambeau.arange(12, dtype=flambeau.float32)
    assert x.numel() == 12 and x.shape == (12,)
    X = x.reshape(3, 4)
    assert X.shape == flambeau.Size([3, 4]) and x.reshape(-1, 4).shape == (3, 4)
    assert flambeau.zeros((2, 3, 4)).shape == (2, 3, 4)
    assert flambeau.ones((2, 3, 4)).sum().item() == 24
    assert flambeau.randn(3, 4).shape == (3, 4)
    assert flambeau.tensor([[2, 1, 4, 3], [1, 2, 3, 4], [4, 3, 2, 1]]).shape == (3, 4)
    np.testing.assert_array_equal(X[-1].numpy(), [8, 9, 10, 11])
    np.testing.assert_array_equal(X[1:3].numpy(), np.arange(4, 12).reshape(2, 4))
    X[1, 2] = 17
    assert X[1, 2].item() == 17
    X[:2, :] = 12
    np.testing.assert_array_equal(X[:2].numpy(), np.full((2, 4), 12))
    assert x[6].item() == 12  # X is a view of x, as in PyTorch
    assert flambeau.exp(flambeau.arange(3.0))[1].item() == pytest.approx(np.e)
    a = flambeau.tensor([1.0, 2, 4, 8])
    b = flambeau.tensor([2, 2, 2, 2])
    assert (a + b).dtype == flambeau.float32
    np.testing.assert_allclose((a**b).numpy(), [1, 4, 16, 64])
    X = flambeau.arange(12, dtype=flambeau.float32).reshape((3, 4))
    Y = flambeau.tensor([[2.0, 1, 4, 3], [1, 2, 3, 4], [4, 3, 2, 1]])
    assert flambeau.cat((X, Y), dim=0).shape == (6, 4)
    assert flambeau.cat((X, Y), dim=1).shape == (3, 8)
    assert (X == Y).dtype == flambeau.bool and (X == Y).sum().item() == 2
    assert X.sum().item() == 66
    a = flambeau.arange(3).reshape((3, 1))
    b = flambeau.arange(2).reshape((1, 2))
    np.testing.assert_array_equal((a + b).numpy(), [[0, 1], [1, 2], [2, 3]])
    before = id(Y)
    Y = Y + X
    assert id(Y) != before
    Z = flambeau.zeros_like(Y)
    before = id(Z)
    Z[:] = X + Y
    assert id(Z) == before
    before = id(X)
    X += Y
    assert id(X) == before
    A = X.numpy()
    B = flambeau.from_numpy(A)
    assert type(A) is np.ndarray and type(B) is flambeau.Tensor
    a = flambeau.tensor([3.5])
    assert (a.item(), float(a), int(a)) == (3.5, 3.5, 3)


@pytest.mark.parametrize(
    ("data", "dtype"),
    [([1, 2], "int64"), ([1.0, 2], "float32"), ([True], "bool"), (3, "int64"), (2.5, "float32"),
     (np.zeros(2, np.float64), "float64"), (np.zeros(2, np.int32), "int32"), ([], "float32"),
     ([[1, 2], [3, 4]], "int64")],
)
def test_tensor_infers_dtypes_like_pytorch(data, dtype):
    assert flambeau.tensor(data).dtype == np.dtype(dtype)


def test_creation_defaults_and_arguments():
    assert flambeau.zeros(4).dtype == flambeau.float32
    assert flambeau.arange(4).dtype == flambeau.int64
    assert flambeau.arange(0, 1, 0.25).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert flambeau.arange(4.0).dtype == flambeau.float32
    assert flambeau.linspace(0, 1, 5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert flambeau.eye(2, 3).tolist() == [[1, 0, 0], [0, 1, 0]]
    assert flambeau.full((2,), 7).dtype == flambeau.int64
    assert flambeau.full((2,), 7.0).dtype == flambeau.float32
    assert flambeau.ones(2, 3, dtype=flambeau.int32).dtype == flambeau.int32
    assert flambeau.empty(2, 0).shape == (2, 0)
    t = flambeau.zeros(2, requires_grad=True)
    assert t.requires_grad and t.is_leaf
    like = flambeau.ones_like(flambeau.zeros(2, 3, dtype=flambeau.int16))
    assert like.dtype == flambeau.int16 and like.shape == (2, 3)
    assert flambeau.full_like(like, 4).tolist() == [[4] * 3] * 2
    assert flambeau.zeros((2, 3)).shape == flambeau.zeros([2, 3]).shape == (2, 3)


def test_bad_creation_arguments():
    with pytest.raises(ShapeError, match="non-negative"):
        flambeau.zeros(-1)
    with pytest.raises(DTypeError, match="unsupported dtype 'complex64'"):
        flambeau.zeros(2, dtype="complex64")
    with pytest.raises(DTypeError, match="numpy dtype complex128"):
        flambeau.tensor(np.zeros(2, complex))
    with pytest.raises(ShapeError, match="could not make a tensor"):
        flambeau.tensor([[1, 2], [3]])


def test_dtype_objects_are_numpy_dtypes():
    assert flambeau.float32 is np.dtype("float32")
    assert flambeau.float is flambeau.float32 and flambeau.long is flambeau.int64
    assert flambeau.ones(1).dtype == flambeau.float32


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("int64", 2.5, "float32"), ("float16", 2.5, "float16"), ("uint8", "int8", "int16"),
     ("int32", 5, "int32"), ("bool", True, "bool"), ("bool", 1, "int64"),
     ("int32", "float64_0d", "float64"), ("float32", "float64_0d", "float32")],
)
def test_promotion(a, b, expected):
    x = flambeau.ones(2, dtype=a)
    if isinstance(b, str):
        b = flambeau.ones(() if b.endswith("_0d") else 2, dtype=b.removesuffix("_0d"))
    assert (x + b).dtype == np.dtype(expected)


def test_integer_division_and_float_only_ops():
    assert (flambeau.tensor([3, 4]) / 2).tolist() == [1.5, 2.0]
    assert (flambeau.tensor([3, 4]) // 2).tolist() == [1, 2]
    with pytest.raises(DTypeError, match=r"mean\(\) needs a floating-point tensor, got dtype "
                       r"int64"):
        flambeau.arange(4).mean()
    with pytest.raises(DTypeError, match="can't be cast to the desired output type int64"):
        x = flambeau.arange(3)
        x += 1.5


def test_properties_and_conversions():
    x = flambeau.arange(6.0).reshape(2, 3)
    assert (x.ndim, x.dim(), x.numel(), x.size(), x.size(-1)) == (2, 2, 6, (2, 3), 3)
    assert x.T.shape == (3, 2) and x.mT.shape == (3, 2)
    assert x.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert np.asarray(x).shape == (2, 3)
    assert len(x) == 2 and [row.tolist() for row in x] == [[0, 1, 2], [3, 4, 5]]
    assert x.to(flambeau.int32).dtype == flambeau.int32 and x.long().dtype == flambeau.int64
    assert x.to(x) is x and x.to("cpu") is x
    assert f"{x.sum():.1f}" == "15.0"
    assert x.type() == "flambeau.FloatTensor"
    assert repr(x.shape) == "flambeau.Size([2, 3])"


def test_bool_of_tensors():
    assert bool(flambeau.tensor([1]))
    with pytest.raises(ShapeError, match="ambiguous"):
        bool(flambeau.ones(2))
    with pytest.raises(ShapeError, match="cannot be converted to a Python scalar"):
        flambeau.ones(2).item()


def test_dlpack_roundtrip_with_numpy():
    x = flambeau.arange(6.0).reshape(2, 3)
    host = np.from_dlpack(x)
    np.testing.assert_array_equal(host, x.numpy())
    back = flambeau.from_dlpack(np.arange(4, dtype=np.int32))
    assert back.dtype == flambeau.int32 and back.tolist() == [0, 1, 2, 3]


def test_errors_subclass_builtins():
    assert issubclass(ShapeError, ValueError) and issubclass(DTypeError, TypeError)
    assert issubclass(FlambeauIndexError, IndexError)
    assert issubclass(DeviceMismatchError, RuntimeError)
    assert issubclass(ShapeError, FlambeauError)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ShapeError, match=r"shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        flambeau.ones(2, 3) + flambeau.ones(4)
    with pytest.raises(ShapeError, match=r"matmul: shapes \[2, 3\] and \[4, 5\] cannot be "
                       r"multiplied"):
        flambeau.ones(2, 3) @ flambeau.ones(4, 5)
    with pytest.raises(ShapeError, match=r"shape \[5\] is invalid for input of size 6"):
        flambeau.ones(2, 3).reshape(5)


def test_index_errors():
    x = flambeau.ones(2, 3)
    with pytest.raises(FlambeauIndexError, match="index 5 is out of bounds for dimension 1 "
                       "with size 3"):
        x[0, 5]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match=r"index 7 is out of bounds for dimension 0"):
        x[[0, 7]]
    with pytest.raises(FlambeauIndexError, match="dimension out of range"):
        x.sum(dim=2)


def test_mixed_devices_raise_naming_both():
    a = flambeau.ones(2)
    b = flambeau.ones(2, device="boxed:0")
    with pytest.raises(DeviceMismatchError, match=r"add: expected all tensors on the same "
                       r"device, got cpu and boxed:0"):
        a + b
    with pytest.raises(DeviceMismatchError, match=r"matmul.*boxed:0 and cpu"):
        flambeau.ones(2, 2, device="boxed:0") @ flambeau.ones(2, 2)


def test_to_between_backends_with_gradients():
    x = flambeau.tensor([1.0, 2.0], requires_grad=True)
    y = x.to("boxed:1")
    assert y.device == flambeau.device("boxed:1") and str(y.device) == "boxed:1"
    z = y.to("boxed:0") * 3
    z.sum().backward()
    assert x.grad.device == flambeau.device("cpu")
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])
    assert "device='boxed:0'" in repr(z)


def test_default_device_applies_to_creation():
    with flambeau.device("boxed:1"):
        assert flambeau.ones(2).device == flambeau.device("boxed:1")
        assert flambeau.tensor([1]).device == flambeau.device("boxed:1")
    assert flambeau.ones(2).device == flambeau.device("cpu")
    assert repr(flambeau.ones(1).device) == "device(type='cpu')"


def test_repr_like_pytorch():
    assert repr(flambeau.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(flambeau.tensor([0.5, 2.25])) == "tensor([0.5000, 2.2500])"
    assert repr(flambeau.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(flambeau.tensor([1, 2], dtype=flambeau.int32)) == \
        "tensor([1, 2], dtype=flambeau.int32)"
    assert repr(flambeau.tensor(3.0, requires_grad=True)) == "tensor(3., requires_grad=True)"
    assert repr(flambeau.tensor([True, False])) == "tensor([ True, False])"
    assert repr(flambeau.zeros(2, 2)) == "tensor([[0., 0.],\n        [0., 0.]])"


def test_random_is_reproducible():
    flambeau.manual_seed(7)
    a = flambeau.rand(5)
    flambeau.manual_seed(7)
    b = flambeau.rand(5)
    c = flambeau.rand(5)
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    assert 0 <= a.min().item() and a.max().item() < 1
    flambeau.manual_seed(0)
    n = flambeau.randn(20000)
    assert abs(n.mean().item()) < 0.03 and abs(n.std().item() - 1) < 0.03
    r = flambeau.randint(3, 7, (1000,))
    assert r.dtype == flambeau.int64 and set(r.tolist()) == {3, 4, 5, 6}
    assert sorted(flambeau.randperm(6).tolist()) == list(range(6))
    x = flambeau.rand(3, dtype=flambeau.float64)
    assert x.dtype == flambeau.float64


def test_pickling_goes_through_the_host():
    import pickle

    x = flambeau.tensor([1.0, 2.0], requires_grad=True)
    y = pickle.loads(pickle.dumps(x))
    assert y.tolist() == [1.0, 2.0] and y.requires_grad


# --- running out of memory ----------------------------------------------------------------


@pytest.mark.parametrize("make, asked", [
    (lambda: flambeau.empty(10**12), "3.6 TiB (4000000000000 bytes)"),
    (lambda: flambeau.full((2**62,), 1.0), "(18446744073709551616 bytes)"),
    (lambda: flambeau.zeros(2**40, 2**40, dtype=flambeau.int8), "(1208925819614629174706176 "),
])
def test_running_out_of_host_memory_is_a_flambeau_error(make, asked):
    kept = flambeau.arange(5.0)
    with pytest.raises(flambeau.errors.OutOfMemoryError) as info:
        make()
    message = str(info.value)
    assert message.startswith("out of memory on cpu: tried to allocate ") and asked in message
    assert "free" in message and "Existing tensors are unchanged" in message
    assert isinstance(info.value, MemoryError)
    assert kept.sum().item() == 10.0


def test_sizes_beyond_int64_are_refused_by_name():
    with pytest.raises(flambeau.errors.ShapeError, match=r"sizes must fit in int64"):
        flambeau.empty(2**63)
