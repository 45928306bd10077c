"""flambeau against PyTorch: the tensor API D2L and everyday scripts call beyond the basics
(issue 15): repeat_interleave, reversed(), numpy's axis=/keepdims= names, einsum, sorting
and searching, whole-tensor comparisons, blends, triangles and diagonals, roll, cumprod,
baddbmm. Each case runs on cpu and, where installed, on opencl:0 (the same compositions of
kernels). See ``torch_reference.py`` for how a case is checked."""

from __future__ import annotations

import numpy as np
import pytest
from torch_reference import case, cases, check, const, rand

import flambeau

X34 = rand(3, 4)
X234 = rand(2, 3, 4)
V3 = rand(3)
INTS = const(np.array([3, 1, 3, 2, 1, 3]))
SPECIAL = const(np.array([1.0, np.inf, np.nan, -np.inf, 2.0, 0.0], np.float32))
NEAR = const(np.array([1.0 + 1e-7, np.inf, np.nan, np.inf, 2.5, 1e-9], np.float32))
WITH_ZEROS = np.array([[1.5, 0.0, 2.0, -1.0], [0.0, 0.0, 3.0, 0.5]], np.float32)
BOUNDS = const(np.array([-1.0, 0.0, 1.0], np.float32))

DEVICES = ["cpu"] + (["opencl:0"] if any(d.type == "opencl" for d in flambeau.devices())
                     else [])


@pytest.fixture(params=DEVICES)
def on_device(request):
    """Make flambeau's tensors on each device (torch stays on the cpu)."""
    flambeau.set_default_device(request.param)
    yield request.param
    flambeau.set_default_device(None)


OPS = {
    # repeat_interleave (D2L's masked_softmax and MultiHeadAttention)
    "repeat_interleave_dim": case(lambda lib, x: x.repeat_interleave(2, dim=1), X34),
    "repeat_interleave_flat": case(lambda lib, x: lib.repeat_interleave(x, 3), X34),
    "repeat_interleave_tensor": case(
        lambda lib, x: x.repeat_interleave(lib.tensor([1, 0, 2]), dim=0), X34),
    "repeat_interleave_counts": case(lambda lib: lib.repeat_interleave(lib.tensor([2, 0, 1]))),
    "repeat_interleave_valid_lens": case(lambda lib, v: lib.repeat_interleave(v, 3),
                                         const(np.array([1, 2]))),
    # reversed(tensor) is x.flip(0) (D2L's bidirectional RNN)
    "reversed": case(lambda lib, x: reversed(x), X34),
    "reversed_list": case(lambda lib, x: lib.stack(list(reversed(list(x)))), X34),
    # numpy's names, accepted by PyTorch's reductions
    "argmax_axis": case(lambda lib, x: x.argmax(axis=1), X34),
    "argmin_axis_keepdims": case(lambda lib, x: lib.argmin(x, axis=0, keepdims=True), X34),
    "sum_axis_keepdims": case(lambda lib, x: x.sum(axis=0, keepdims=True), X34),
    "mean_axis": case(lambda lib, x: lib.mean(x, axis=(0, 2)), X234),
    "max_axis": case(lambda lib, x: x.max(axis=1), X34),
    "amax_axis": case(lambda lib, x: x.amax(axis=-1, keepdims=True), X34),
    "std_axis": case(lambda lib, x: x.std(axis=1), X34),
    "logsumexp_axis": case(lambda lib, x: lib.logsumexp(x, axis=1), X34),
    "prod_axis": case(lambda lib, x: x.prod(axis=0), X34),
    # einsum
    "einsum_matmul": case(lambda lib, a, b: lib.einsum("ij,jk->ik", a, b), X34, rand(4, 2)),
    "einsum_implicit": case(lambda lib, a, b: lib.einsum("ij,jk", a, b), X34, rand(4, 2)),
    "einsum_list": case(lambda lib, a, b: lib.einsum("ij,kj->ik", [a, b]), X34, rand(5, 4)),
    "einsum_batched": case(lambda lib, a, b: lib.einsum("bij,bjk->bik", a, b), X234,
                           rand(2, 4, 5)),
    "einsum_attention": case(lambda lib, q, k: lib.einsum("bhqd,bhkd->bhqk", q, k),
                             rand(2, 2, 3, 4), rand(2, 2, 5, 4)),
    "einsum_trace": case(lambda lib, x: lib.einsum("ii", x), rand(3, 3)),
    "einsum_diagonal": case(lambda lib, x: lib.einsum("ii->i", x), rand(3, 3)),
    "einsum_outer": case(lambda lib, a, b: lib.einsum("i,j->ij", a, b), V3, rand(4)),
    "einsum_total": case(lambda lib, x: lib.einsum("ijk->", x), X234),
    "einsum_transpose": case(lambda lib, x: lib.einsum("ijk->kji", x), X234),
    "einsum_ellipsis": case(lambda lib, x: lib.einsum("...ij->...ji", x), X234),
    "einsum_ellipsis_broadcast": case(lambda lib, a, b: lib.einsum("...ij,...jk->...ik", a, b),
                                      X234, rand(1, 4, 2)),
    "einsum_three": case(lambda lib, a, b, c: lib.einsum("ij,jk,kl->il", a, b, c), X34,
                         rand(4, 5), rand(5, 2)),
    "einsum_shared_summed": case(lambda lib, a, b: lib.einsum("ij,ij->i", a, b), X34, X34),
    "einsum_ints": case(lambda lib, a, b: lib.einsum("ij,j->i", a, b),
                        const(np.arange(6).reshape(2, 3)), const(np.array([1, 2, 3]))),
    # softmax and log_softmax at top level
    "softmax": case(lambda lib, x: lib.softmax(x, 1), X34),
    "log_softmax": case(lambda lib, x: lib.log_softmax(x, dim=0), X34),
    # sorting and searching
    "sort": case(lambda lib, x: x.sort(dim=1), X34),
    "sort_descending": case(lambda lib, x: lib.sort(x, 0, descending=True), X34),
    "sort_stable_ties": case(lambda lib, x: lib.sort(x, stable=True), INTS),
    "sort_descending_stable_ties": case(
        lambda lib, x: lib.sort(x, descending=True, stable=True), INTS),
    "sort_nan": case(lambda lib, x: lib.sort(x, descending=True), SPECIAL),
    "argsort": case(lambda lib, x: x.argsort(dim=0), X34),
    "argsort_descending": case(lambda lib, x: lib.argsort(x, descending=True), X34),
    "topk": case(lambda lib, x: x.topk(2), X34),
    "topk_smallest": case(lambda lib, x: lib.topk(x, 2, dim=0, largest=False), X34),
    "kthvalue": case(lambda lib, x: x.kthvalue(2, 1), X34),
    "kthvalue_keepdim": case(lambda lib, x: lib.kthvalue(x, 1, 0, keepdim=True), X34),
    "unique": case(lambda lib, x: lib.unique(x), INTS),
    "unique_method": case(lambda lib, x: x.unique(), INTS),
    "unique_inverse_counts": case(
        lambda lib, x: lib.unique(x, return_inverse=True, return_counts=True), INTS),
    "unique_2d_inverse": case(lambda lib, x: lib.unique(x, return_inverse=True),
                              const(np.array([[2, 1], [1, 2]]))),
    "unique_dim": case(lambda lib, x: lib.unique(x, dim=0, return_counts=True),
                       const(np.array([[1, 2], [0, 1], [1, 2]]))),
    "bucketize": case(lambda lib, x, b: lib.bucketize(x, b), X34, BOUNDS),
    "bucketize_right_int32": case(lambda lib, x, b: lib.bucketize(x, b, right=True,
                                                                  out_int32=True),
                                  const(np.array([-1.0, 0.5, 1.0], np.float32)), BOUNDS),
    # comparisons of whole tensors
    "isclose": case(lambda lib, a, b: lib.isclose(a, b), SPECIAL, NEAR),
    "isclose_equal_nan": case(lambda lib, a, b: a.isclose(b, rtol=0.3, equal_nan=True),
                              SPECIAL, NEAR),
    "isclose_ints": case(lambda lib, a, b: lib.isclose(a, b, atol=1),
                         const(np.array([1, 5, 9])), const(np.array([2, 7, 9]))),
    "allclose": case(lambda lib, a, b: lib.allclose(a, b), SPECIAL, SPECIAL),
    "allclose_equal_nan": case(lambda lib, a: a.allclose(a, equal_nan=True), SPECIAL),
    "allclose_far": case(lambda lib, a, b: lib.allclose(a, b, atol=0.1), X34, X234[0]),
    "equal": case(lambda lib, x: lib.equal(x, x.clone()), X34),
    "equal_values": case(lambda lib, x: x.equal(x + 1), X34),
    "equal_shapes": case(lambda lib, x: lib.equal(x, x[:2]), X34),
    "is_floating_point": case(lambda lib, x, i: (x.is_floating_point(),
                                                 lib.is_floating_point(i)), X34, INTS),
    "type_as": case(lambda lib, x, i: (x.type_as(i), i.type_as(x)), X34, INTS),
    # blends and cleanups
    "lerp": case(lambda lib, a, b: lib.lerp(a, b, 0.3), X34, rand(3, 4)),
    "lerp_tensor_weight": case(lambda lib, a, b, w: a.lerp(b, w), X34, rand(3, 4), rand(4)),
    "nan_to_num": case(lambda lib, x: lib.nan_to_num(x), SPECIAL),
    "nan_to_num_values": case(lambda lib, x: x.nan_to_num(1.0, 2.0, -3.0), SPECIAL),
    "nan_to_num_grad": case(lambda lib, x: lib.nan_to_num(x / x.abs().sign()), X34),
    "nan_to_num_ints": case(lambda lib, x: lib.nan_to_num(x), INTS),
    # moves, cumulative products, triangles, diagonals
    "flip": case(lambda lib, x: lib.flip(x, [0, 1]), X34),
    "roll": case(lambda lib, x: lib.roll(x, 1, 1), X34),
    "roll_dims": case(lambda lib, x: x.roll((1, -2), (0, 1)), X34),
    "roll_flat": case(lambda lib, x: lib.roll(x, 5), X34),
    "roll_whole_turn": case(lambda lib, x: x.roll(4, -1), X34),
    "cumprod": case(lambda lib, x: x.cumprod(1), X34),
    "cumprod_zeros": case(lambda lib, x: lib.cumprod(x, dim=1), WITH_ZEROS),
    "cumprod_ints": case(lambda lib, x: lib.cumprod(x, 0), INTS),
    "cumsum": case(lambda lib, x: lib.cumsum(x, dim=0), X34),
    "tril": case(lambda lib, x: lib.tril(x), X34),
    "tril_below": case(lambda lib, x: x.tril(-1), X34),
    "triu": case(lambda lib, x: x.triu(1), X34),
    "triu_batched": case(lambda lib, x: lib.triu(x, -1), X234),
    "tril_ints": case(lambda lib, x: lib.tril(x), const(np.arange(9).reshape(3, 3))),
    "diag_vector": case(lambda lib, v: lib.diag(v), V3),
    "diag_vector_above": case(lambda lib, v: lib.diag(v, 1), V3),
    "diag_vector_below": case(lambda lib, v: v.diag(-2), V3),
    "diag_matrix": case(lambda lib, x: x.diag(), X34),
    "diag_matrix_above": case(lambda lib, x: lib.diag(x, 2), X34),
    "diag_matrix_below": case(lambda lib, x: lib.diag(x, -1), X34),
    "outer": case(lambda lib, a, b: lib.outer(a, b), V3, rand(4)),
    "bmm": case(lambda lib, a, b: lib.bmm(a, b), X234, rand(2, 4, 2)),
    "baddbmm": case(lambda lib, c, a, b: lib.baddbmm(c, a, b), rand(2, 3, 2), X234,
                    rand(2, 4, 2)),
    "baddbmm_scaled": case(lambda lib, c, a, b: c.baddbmm(a, b, beta=0.5, alpha=2.0),
                           rand(3, 2), X234, rand(2, 4, 2)),
    "baddbmm_beta_zero": case(lambda lib, c, a, b: lib.baddbmm(c, a, b, beta=0),
                              const(np.full((2, 3, 2), np.nan, np.float32)), X234,
                              rand(2, 4, 2)),
}


@pytest.mark.parametrize(("fn", "inputs", "options"), cases(OPS))
def test_op(fn, inputs, options, on_device):
    check(fn, *inputs, **options)


ERRORS = {
    "topk_too_large": lambda lib, x: x.topk(5),
    "kthvalue_zero": lambda lib, x: x.kthvalue(0),
    "repeat_interleave_wrong_count": lambda lib, x: x.repeat_interleave(lib.tensor([1, 2]), 0),
    "einsum_operand_count": lambda lib, x: lib.einsum("ij,jk->ik", x),
    "einsum_wrong_rank": lambda lib, x: lib.einsum("ijk->i", x),
    "einsum_sizes": lambda lib, x: lib.einsum("ij,ij->i", x, x.t()),
    "isclose_dtypes": lambda lib, x: lib.isclose(x, x.double()),
    "tril_vector": lambda lib, x: lib.tril(x[0]),
    "diag_3d": lambda lib, x: lib.diag(x.unsqueeze(0)),
}


@pytest.mark.parametrize("fn", list(ERRORS.values()), ids=list(ERRORS))
def test_errors_where_torch_raises(fn):
    import torch

    x = rand(3, 4)
    with pytest.raises((RuntimeError, ValueError, IndexError)):
        fn(torch, torch.tensor(x))
    with pytest.raises((flambeau.FlambeauError, ValueError)):
        fn(flambeau, flambeau.tensor(x))


def test_sorting_gradients_flow_through_gather():
    x = flambeau.tensor([[3.0, 1.0, 2.0]], requires_grad=True)
    values, indices = x.sort(descending=True)
    assert values.grad_fn.name() == "GatherBackward0"
    (values * flambeau.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert x.grad.tolist() == [[1.0, 100.0, 10.0]]
    assert indices.tolist() == [[0, 2, 1]]
