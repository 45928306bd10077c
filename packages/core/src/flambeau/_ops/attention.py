"""Attention for ``nn.functional``: ``scaled_dot_product_attention`` and
``multi_head_attention_forward`` (what ``nn.MultiheadAttention`` runs), composed of
matmul, softmax and dropout, whose gradients they take.

Masks follow PyTorch, whose two functions read a bool mask the opposite ways:
``scaled_dot_product_attention`` attends where the mask is True,
``multi_head_attention_forward`` ignores the positions where ``attn_mask`` or
``key_padding_mask`` is True. Float masks are added to the scores in both.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _dtypes
from .._tensor import Tensor
from ..errors import DTypeError, ShapeError
from . import elementwise as ew
from ._common import cast, full_like_device, to_tensor
from .activation import dropout
from .linalg import linear, matmul
from .reduction import all as _all
from .reduction import mean
from .shape import cat, expand, pad, permute, reshape, split, squeeze_axes, transpose, unsqueeze
from .softmax import softmax


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """``softmax(query @ key.T * scale + mask) @ value`` over (..., L, E) queries, (..., S, E)
    keys and (..., S, Ev) values, as ``torch.nn.functional.scaled_dot_product_attention``.

    ``attn_mask`` is bool (True: may attend) or float (added to the scores), broadcast to
    (..., L, S); ``is_causal`` lets query ``i`` attend keys ``0..i`` only; ``scale``
    defaults to ``1 / sqrt(E)``; dropout with probability ``dropout_p`` is applied to the
    attention weights (always: pass 0 in eval mode). A query that may attend no key gets
    zeros, as in PyTorch. ``enable_gqa``: key and value may have fewer heads (dimension -3)
    than the query, each shared by consecutive query heads.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> q = k = flambeau.zeros(1, 2, 4)
    >>> v = flambeau.tensor([[[1.0], [3.0]]])
    >>> F.scaled_dot_product_attention(q, k, v, is_causal=True).flatten().tolist()
    [1.0, 2.0]
    """
    op = "scaled_dot_product_attention"
    _check_qkv(op, query, key, value, enable_gqa)
    if enable_gqa:
        key, value = _share_heads(key, query.shape[-3]), _share_heads(value, query.shape[-3])
    bias = None
    if is_causal:
        if attn_mask is not None:
            raise ValueError(f"{op}: give attn_mask or is_causal=True, not both (the causal "
                             "mask would be ignored); fold it into attn_mask instead")
        bias = _causal(query.shape[-2], key.shape[-2], query)
    elif attn_mask is not None:
        bias = _float_mask(op, "attn_mask", attn_mask, query.dtype, keep_true=True)
    return attend(query, key, value, bias, dropout_p, scale, safe=bias is not None)[0]


def _causal(rows: int, cols: int, like: Tensor) -> Tensor:
    """(rows, cols): 0 where key ``j <= i`` for query ``i``, else -inf."""
    return to_tensor(np.triu(np.full((rows, cols), -np.inf), 1), like, like.dtype)


def _check_qkv(op: str, query: Tensor, key: Tensor, value: Tensor, gqa: bool) -> None:
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise ShapeError(f"{op}: expected query, key and value of at least 2 dimensions "
                         f"(..., L, E), got shapes {list(query.shape)}, {list(key.shape)} "
                         f"and {list(value.shape)}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ShapeError(f"{op}: expected query (..., L, E), key (..., S, E) and value "
                         f"(..., S, Ev), got shapes {list(query.shape)}, {list(key.shape)} "
                         f"and {list(value.shape)}")
    if gqa and (query.ndim < 3 or key.ndim < 3 or value.ndim < 3 or key.shape[-3] == 0
                or query.shape[-3] % key.shape[-3] or query.shape[-3] % value.shape[-3]):
        raise ShapeError(f"{op}: with enable_gqa, the query's heads (dimension -3) must be a "
                         f"multiple of the key's and value's, got shapes {list(query.shape)}, "
                         f"{list(key.shape)} and {list(value.shape)}")


def _share_heads(x: Tensor, heads: int) -> Tensor:
    """``x`` (..., Hk, S, E) with each head repeated ``heads // Hk`` times in a row."""
    *lead, hk, s, e = x.shape
    grown = expand(unsqueeze(x, -3), (*lead, hk, heads // hk, s, e))
    return reshape(grown, (*lead, heads, s, e))


def _float_mask(op: str, name: str, mask: Tensor, dtype: Any, keep_true: bool) -> Tensor:
    """A bool ``mask`` as 0 / -inf to add to scores (-inf where the mask is ``keep_true``'s
    opposite), a float mask as it is; other dtypes raise."""
    if mask.dtype == _dtypes.bool_:
        allowed = mask if keep_true else ew.logical_not(mask)
        return ew.where(allowed, to_tensor(0.0, mask, dtype), -math.inf)
    if mask.dtype.kind != "f":
        raise DTypeError(f"{op}: {name} must be a bool or floating-point tensor, got "
                         f"{mask.dtype}; compare it to make a bool mask, e.g. mask != 0")
    return cast(mask, dtype)


def attend(query: Tensor, key: Tensor, value: Tensor, bias: Tensor | None, dropout_p: float,
           scale: float | None, safe: bool) -> tuple[Tensor, Tensor]:
    """(attention output, weights after dropout). With ``safe``, rows whose scores are all
    -inf get weights 0 (and no NaN gradients) instead of NaN."""
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = matmul(ew.mul(query, scale), transpose(key, -2, -1))
    if bias is not None:
        try:
            scores = ew.add(scores, bias)
        except ShapeError as err:
            raise ShapeError(f"the attention mask of shape {list(bias.shape)} does not "
                             f"broadcast to the scores' shape {list(scores.shape)} "
                             f"(..., L, S)") from err
    if safe:
        dead = _all(ew.eq(scores.detach(), -math.inf), -1, keepdim=True)
        weights = ew.where(dead, 0.0, softmax(ew.where(dead, 0.0, scores), -1))
    else:
        weights = softmax(scores, -1)
    weights = dropout(weights, dropout_p, True)
    return matmul(weights, value), weights


def multi_head_attention_forward(
        query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
        in_proj_weight: Tensor | None, in_proj_bias: Tensor | None, bias_k: Tensor | None,
        bias_v: Tensor | None, add_zero_attn: bool, dropout_p: float,
        out_proj_weight: Tensor, out_proj_bias: Tensor | None, training: bool = True,
        key_padding_mask: Tensor | None = None, need_weights: bool = True,
        attn_mask: Tensor | None = None, use_separate_proj_weight: bool = False,
        q_proj_weight: Tensor | None = None, k_proj_weight: Tensor | None = None,
        v_proj_weight: Tensor | None = None, static_k: Tensor | None = None,
        static_v: Tensor | None = None, average_attn_weights: bool = True,
        is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
    """Multi-head attention of (L, N, E) queries over (S, N, Ek) keys and (S, N, Ev) values
    (or unbatched (L, E), (S, Ek), (S, Ev)), as ``torch.nn.functional.
    multi_head_attention_forward``: project, split ``embed_dim`` into ``num_heads`` heads,
    attend, join and project out. Returns (output, attention weights or ``None``).

    ``key_padding_mask`` (N, S) and ``attn_mask`` (L, S) or (N * num_heads, L, S): bool
    (True: ignore that key) or float (added). ``is_causal`` is a hint that ``attn_mask`` is
    the causal mask, which must be given. The weights are averaged over heads unless
    ``average_attn_weights=False``.

    >>> import flambeau
    >>> from flambeau.nn import functional as F
    >>> x = flambeau.ones(3, 2, 4)
    >>> out, w = F.multi_head_attention_forward(
    ...     x, x, x, 4, 2, flambeau.ones(12, 4), None, None, None, False, 0.0,
    ...     flambeau.ones(4, 4), None)
    >>> out.shape, w.shape
    (flambeau.Size([3, 2, 4]), flambeau.Size([2, 3, 3]))
    """
    op = "multi_head_attention_forward"
    batched = _mha_shapes(op, query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = unsqueeze(query, 1), unsqueeze(key, 1), unsqueeze(value, 1)
        if key_padding_mask is not None:
            key_padding_mask = unsqueeze(key_padding_mask, 0)
    tgt_len, bsz, embed_dim = query.shape
    if is_causal and attn_mask is None:
        raise ValueError(f"{op}: is_causal=True is a hint that attn_mask is the causal mask, "
                         "and needs that attn_mask; make one with "
                         "nn.Transformer.generate_square_subsequent_mask(L)")
    if key_padding_mask is not None:
        key_padding_mask = _float_mask(op, "key_padding_mask", key_padding_mask, query.dtype,
                                       keep_true=False)
    if is_causal and key_padding_mask is None and not need_weights:
        # As PyTorch: the hint is taken at its word, the causal mask replaces attn_mask.
        attn_mask = _causal(tgt_len, key.shape[0], query)
    elif attn_mask is not None:
        attn_mask = _float_mask(op, "attn_mask", attn_mask, query.dtype, keep_true=False)
    if embed_dim != embed_dim_to_check:
        raise ShapeError(f"{op}: expected a query with embed_dim={embed_dim_to_check} "
                         f"features, got shape {list(query.shape)}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise ShapeError(f"{op}: embed_dim={embed_dim} is not divisible by "
                         f"num_heads={num_heads}")
    q, k, v = _project(op, query, key, value, in_proj_weight, in_proj_bias,
                       use_separate_proj_weight, (q_proj_weight, k_proj_weight, v_proj_weight))
    src_len = key.shape[0]
    if attn_mask is not None:
        want = (tgt_len, src_len) if attn_mask.ndim == 2 else (bsz * num_heads, tgt_len,
                                                               src_len)
        if tuple(attn_mask.shape) != want:
            raise ShapeError(f"{op}: expected a {attn_mask.ndim}-d attn_mask of shape "
                             f"{list(want)} (L={tgt_len}, S={src_len}, N * num_heads="
                             f"{bsz * num_heads}), got {list(attn_mask.shape)}")
        attn_mask = unsqueeze(attn_mask, 0) if attn_mask.ndim == 2 else attn_mask
    if bias_k is not None or bias_v is not None:
        if bias_k is None or bias_v is None:
            raise ValueError(f"{op}: give both bias_k and bias_v, or neither")
        k = cat([k, expand(bias_k, (1, bsz, embed_dim))])
        v = cat([v, expand(bias_v, (1, bsz, embed_dim))])
        attn_mask, key_padding_mask = _one_more_key(attn_mask), _one_more_key(key_padding_mask)
    q = transpose(reshape(q, (tgt_len, bsz * num_heads, head_dim)), 0, 1)
    k = _heads(op, "static_k", k, static_k, bsz * num_heads, head_dim)
    v = _heads(op, "static_v", v, static_v, bsz * num_heads, head_dim)
    if add_zero_attn:
        k = cat([k, full_like_device(0, (bsz * num_heads, 1, head_dim), k.dtype, k)], 1)
        v = cat([v, full_like_device(0, (bsz * num_heads, 1, head_dim), v.dtype, v)], 1)
        attn_mask, key_padding_mask = _one_more_key(attn_mask), _one_more_key(key_padding_mask)
    src_len = k.shape[1]
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (bsz, src_len):
            raise ShapeError(f"{op}: expected a key_padding_mask of shape [{bsz}, {src_len}] "
                             f"(N, S), got {list(key_padding_mask.shape)}")
        padding = reshape(key_padding_mask, (bsz, 1, 1, src_len))
        padding = reshape(expand(padding, (bsz, num_heads, 1, src_len)),
                          (bsz * num_heads, 1, src_len))
        attn_mask = padding if attn_mask is None else ew.add(attn_mask, padding)
    if attn_mask is not None:  # (N * heads or 1, L or 1, S) as (N or 1, heads or 1, ., S)
        attn_mask = unsqueeze(attn_mask, 0) if attn_mask.shape[0] == 1 else \
            reshape(attn_mask, (bsz, num_heads, -1, src_len))
    q, k, v = (reshape(t, (bsz, num_heads, t.shape[1], t.shape[2])) for t in (q, k, v))
    out, weights = attend(q, k, v, attn_mask, dropout_p if training else 0.0, None,
                          safe=not need_weights)
    out = reshape(permute(out, (2, 0, 1, 3)), (tgt_len * bsz, embed_dim))
    out = reshape(linear(out, out_proj_weight, out_proj_bias), (tgt_len, bsz, -1))
    if not need_weights:
        return (out if batched else squeeze_axes(out, (1,))), None
    if average_attn_weights:
        weights = mean(weights, 1)
    if not batched:
        out, weights = squeeze_axes(out, (1,)), squeeze_axes(weights, (0,))
    return out, weights


def _mha_shapes(op: str, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None, attn_mask: Tensor | None,
                num_heads: int) -> bool:
    """Check the ranks of the inputs and masks; True for batched (3-d) ones."""
    if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
        raise ShapeError(f"{op}: expected query, key and value all 3-d (L, N, E) or all 2-d "
                         f"(unbatched), got shapes {list(query.shape)}, {list(key.shape)} "
                         f"and {list(value.shape)}")
    batched = query.ndim == 3
    if key_padding_mask is not None and key_padding_mask.ndim != query.ndim - 1:
        raise ShapeError(f"{op}: expected a {query.ndim - 1}-d key_padding_mask for a "
                         f"{query.ndim}-d query, got shape {list(key_padding_mask.shape)}")
    if attn_mask is not None and attn_mask.ndim not in (2, 3):
        raise ShapeError(f"{op}: expected a 2-d (L, S) or 3-d (N * num_heads, L, S) "
                         f"attn_mask, got shape {list(attn_mask.shape)}")
    if not batched and attn_mask is not None and attn_mask.ndim == 3 and \
            tuple(attn_mask.shape) != (num_heads, query.shape[0], key.shape[0]):
        raise ShapeError(f"{op}: expected a 3-d attn_mask of shape "
                         f"{[num_heads, query.shape[0], key.shape[0]]} for unbatched "
                         f"inputs, got {list(attn_mask.shape)}")
    if batched and query.shape[1] != key.shape[1]:
        raise ShapeError(f"{op}: query and key have different batch sizes: shapes "
                         f"{list(query.shape)} and {list(key.shape)}")
    return batched


def _project(op: str, query: Tensor, key: Tensor, value: Tensor, packed: Tensor | None,
             bias: Tensor | None, separate: bool,
             weights: tuple[Tensor | None, ...]) -> tuple[Tensor, Tensor, Tensor]:
    """The input projections, from the packed (3E, E) weight or three separate ones."""
    if tuple(key.shape[:2]) != tuple(value.shape[:2]) or (
            not separate and tuple(key.shape) != tuple(value.shape)):
        raise ShapeError(f"{op}: key and value must have the same "
                         f"{'sequence and batch sizes' if separate else 'shape'}, got "
                         f"{list(key.shape)} and {list(value.shape)}")
    if separate:
        if any(w is None for w in weights):
            raise ValueError(f"{op}: use_separate_proj_weight=True needs q_proj_weight, "
                             "k_proj_weight and v_proj_weight")
    elif packed is None:
        raise ValueError(f"{op}: in_proj_weight is None; give it, or "
                         "use_separate_proj_weight=True with the three weights")
    else:
        weights = split(packed, packed.shape[0] // 3)
    biases = (None,) * 3 if bias is None else split(bias, bias.shape[0] // 3)
    return tuple(linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases))


def _heads(op: str, name: str, x: Tensor, static: Tensor | None, batch_heads: int,
           head_dim: int) -> Tensor:
    """(S, N, E) as (N * heads, S, head_dim), or the caller's ``static`` one, checked."""
    if static is None:
        return transpose(reshape(x, (x.shape[0], batch_heads, head_dim)), 0, 1)
    if static.ndim != 3 or static.shape[0] != batch_heads or static.shape[2] != head_dim:
        raise ShapeError(f"{op}: expected {name} of shape [{batch_heads}, S, {head_dim}] "
                         f"(N * num_heads, S, head_dim), got {list(static.shape)}")
    return static


def _one_more_key(mask: Tensor | None) -> Tensor | None:
    """A mask with a 0 (attend) column for an appended key."""
    return None if mask is None else pad(mask, (0, 1))
