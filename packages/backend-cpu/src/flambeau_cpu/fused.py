"""Optional fused kernels of the numpy backend: 2-d convolution and pooling, softmax and
cross-entropy, and the optimizer steps.

Signatures and meanings are those of :data:`flambeau.backends.OPTIONAL_KERNELS`; the
references are the core's compositions (named in that table). Convolutions are im2col
(a strided view of the padded input, copied) and batched matrix products; pooling and
col2im loop over the kernel's positions (a handful), never over pixels. The optimizer
steps use numpy's in-place ufuncs, with the same formulas (and rounding order) as their
references.

What made them fast (bench/bench_lenet.py): the batch goes in chunks whose im2col
columns stay in cache, copied into per-thread scratch buffers rather than fresh arrays;
numpy is slow on short inner loops, so with stride 1 the short rows are copied once per
kernel column (``rows`` of _column_chunks), each kernel row's columns then being one long
run of them, copied by the forward pass and read in place by the weight gradient (no junk
columns to multiply or crop); avg pooling sums separably, or by a matrix product for
short rows. For the convolution gradients (bench/bench_conv.py): matrix products
whose operands are C-contiguous, and an input gradient that sums over the kernel's
columns inside its product, leaving col2im kh contiguous additions rather than kh * kw.
"""

from __future__ import annotations

import functools
import math
import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

from flambeau.backends import avg_pool_divisors, ceil_padding, window_shape


def _pad(x: np.ndarray, padding, extra=(0, 0), value=0.0) -> np.ndarray:
    """``x`` (N, C, H, W) padded by ``padding`` on both sides and ``extra`` more at the end."""
    (ph, pw), (eh, ew) = padding, extra
    if not (ph or pw or eh or ew):
        return x
    out = np.full((*x.shape[:2], x.shape[2] + 2 * ph + eh, x.shape[3] + 2 * pw + ew), value,
                  x.dtype)
    out[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]] = x
    return out


def _windows(xp: np.ndarray, kernel, stride, dilation, out) -> np.ndarray:
    """Read-only (N, C, kh, kw, Ho, Wo) view of padded ``xp``: [..., i, j, y, x] is
    ``xp[..., y * sh + i * dh, x * sw + j * dw]``."""
    sn, sc, sh, sw = xp.strides
    return as_strided(xp, (*xp.shape[:2], *kernel, *out),
                      (sn, sc, sh * dilation[0], sw * dilation[1], sh * stride[0],
                       sw * stride[1]), writeable=False)


def _slices(i: int, j: int, stride, dilation, out) -> tuple:
    """The positions of padded input that kernel position (i, j) reads, as slices."""
    return (slice(None), slice(None),
            slice(i * dilation[0], i * dilation[0] + (out[0] - 1) * stride[0] + 1, stride[0]),
            slice(j * dilation[1], j * dilation[1] + (out[1] - 1) * stride[1] + 1, stride[1]))


def _crop(xp: np.ndarray, padding, shape) -> np.ndarray:
    (ph, pw), (h, w) = padding, shape[2:]
    if xp.shape[2:] == (h, w):
        return xp
    return np.ascontiguousarray(xp[:, :, ph:ph + h, pw:pw + w])


#: Elements of im2col columns per batch chunk (1 MiB of float32): chunks stay in cache.
CHUNK_ELEMENTS = 1 << 18

_SCRATCH = threading.local()


def _scratch(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A reusable per-thread buffer (contents undefined): fresh large arrays cost page
    faults on every call."""
    store = _SCRATCH.__dict__
    size = math.prod(shape)
    buffer = store.get((name, dtype))
    if buffer is None or buffer.size < size:
        buffer = store[(name, dtype)] = np.empty(size, dtype)
    return buffer[:size].reshape(shape)


def _chunk(n: int, per_sample: int) -> int:
    """Samples per chunk (at least 1; at most n)."""
    return max(1, min(n, CHUNK_ELEMENTS // max(per_sample, 1)))


def _spans(n: int, step: int) -> list[tuple[int, int]]:
    return [(s, min(n, s + step)) for s in range(0, n, step)]


def _sum_of(arrays) -> np.ndarray:
    """The sum of an iterable of same-shape arrays, as a new array."""
    arrays = list(arrays)
    if len(arrays) == 1:
        return arrays[0].copy()
    total = arrays[0] + arrays[1]
    for a in arrays[2:]:
        total += a
    return total


def _column_chunks(x, kernel, stride, padding, dilation, out, groups, rows, copy=True):
    """(s, e, cols) for chunks of the batch: cols (e - s, groups, C // groups * kh * kw,
    Ho * r) is im2col, ``cols[.., (c * kh + i) * kw + j, y * r + q] = xp[.., c, y * sh +
    i * dh, q * sw + j * dw]``, in scratch, where r is Wo, or the padded width Wp when
    :func:`_flat` (columns Wo..Wp - 1 of each row are then junk the caller must drop, or
    multiply by zeros).

    With stride 1, copies read long runs (numpy is slow on short inner loops): with
    ``rows``, those of a scratch copy of x padded holding what each kernel column reads,
    row after row (``rows[.., c, j, y * Wo + q] = xp[.., c, y, q * sw + j * dw]``: short rows
    copied C * kw * Hp times rather than im2col's C * kh * kw * Ho), kernel row i's columns
    being the run from row i * dh; else those of x padded itself, flat, each kernel
    position one run at the padded width. Other strides copy a view of windows of x
    padded. Without ``copy`` (with ``rows`` only), cols is instead a view of ``rows``,
    (e - s, groups, kh, C // groups * kw, Ho * Wo), whose kernel rows a matrix product
    takes as they are.
    """
    n, c = x.shape[:2]
    (kh, kw), (ho, wo), cg = kernel, out, c // groups
    rows = stride[0] == 1 and (rows or stride[1] != 1)  # (flat needs stride 1 both ways)
    flat, copy = _flat(stride, rows), copy or not rows
    hp, r = x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1] if flat else wo
    # Chunks sized by cols, or by twice rows without it (what is read with them).
    step = _chunk(n, c * kw * (kh * ho * r if copy else 2 * hp * wo))
    shape = (groups, cg, kh, kw, ho, wo)
    if flat:
        (ph, pw), (h, w) = padding, x.shape[2:]
        xp = np.zeros((n, c, hp * r + dilation[1] * (kw - 1)), x.dtype)  # (junk reads past)
        xp[:, :, :hp * r].reshape(n, c, hp, r)[:, :, ph:ph + h, pw:pw + w] = x
        sn, sc, item = xp.strides
        view = as_strided(xp, (n, groups, cg, kh, kw, ho * r), (
            sn, cg * sc, sc, dilation[0] * r * item, dilation[1] * item, item), writeable=False)
    else:
        xp = _pad(x, padding)
        sn, sc, sh, sw = xp.strides
        if rows:
            source = as_strided(xp, (n, c, kw, hp, wo),
                                (sn, sc, dilation[1] * sw, sh, stride[1] * sw), writeable=False)
            buffer = _scratch("rows", (step, *source.shape[1:]), x.dtype)
            rb, rc, rj, rr, item = buffer.strides
            view = as_strided(buffer, (step, *shape), (rb, cg * rc, rc, dilation[0] * rr, rj,
                                                       rr, item), writeable=False)
        else:
            view = as_strided(xp, (n, *shape), (sn, cg * sc, sc, dilation[0] * sh,
                                                dilation[1] * sw, stride[0] * sh,
                                                stride[1] * sw), writeable=False)
    cols = _scratch("cols", (step, *view.shape[1:]), x.dtype) if copy else None
    for s, e in _spans(n, step):
        if rows:
            np.copyto(buffer[:e - s], source[s:e])
            chunk = view[:e - s]
        else:
            chunk = view[s:e]
        if not copy:
            yield s, e, chunk.transpose(0, 1, 3, 2, 4, 5, 6).reshape(e - s, groups, kh,
                                                                     cg * kw, ho * wo)
            continue
        np.copyto(cols[:e - s], chunk)
        yield s, e, cols[:e - s].reshape(e - s, groups, cg * kh * kw, ho * r)


def _flat(stride, rows) -> bool:
    """Whether :func:`_column_chunks` reads x padded flat, with junk columns."""
    return tuple(stride) == (1, 1) and not rows


def _transposed(grad: np.ndarray, s: int, e: int, groups: int, r: int) -> np.ndarray:
    """Samples s..e of ``grad`` (N, O, Ho, Wo) as (e - s, groups, Ho * r, O // groups),
    rows zero-padded to length r. numpy hands BLAS a transposed grad 3x slower than a
    C-contiguous one, unless grad has few channels, whose transposed copy (runs of
    O // groups values) costs more (bench/bench_conv.py)."""
    _, o, ho, wo = grad.shape
    og = o // groups
    if og < 8:
        widened = _widened(grad, s, e, r, "grad").reshape(e - s, groups, og, ho * r)
        return widened.transpose(0, 1, 3, 2)
    out = _scratch("grad", (e - s, groups, ho, r, og), grad.dtype)
    out[..., :wo, :] = grad[s:e].reshape(e - s, groups, og, ho, wo).transpose(0, 1, 3, 4, 2)
    out[..., wo:, :] = 0
    return out.reshape(e - s, groups, ho * r, og)


def _widened(grad: np.ndarray, s: int, e: int, r: int, name: str) -> np.ndarray:
    """Samples s..e of ``grad`` (N, O, Ho, Wo) with rows zero-padded to length r."""
    wo = grad.shape[3]
    if r == wo:
        return grad[s:e]
    out = _scratch(name, (e - s, *grad.shape[1:3], r), grad.dtype)
    out[..., :wo] = grad[s:e]
    out[..., wo:] = 0
    return out


def _grad_input_stride1(grad, w, hp, wp, dilation) -> np.ndarray:
    """conv2d_grad_input with stride 1 and one group, as the padded (N, C, hp, wp) input.

    Sums over the kernel's columns inside the matrix product, so that col2im adds kh
    rows of results rather than kh * kw: ``gs`` holds grad kw times, each copy shifted
    right by one more column (one copy from a view of ``g0``, grad by channel after
    ``lead`` zeros, its rows zero-padded to wp so shifts never wrap a row's values into
    the next), and ``w`` is laid out as (C * kh, O * kw). A chunk's columns run over
    (row, sample, column), so each kernel row's results add to ``acc`` (C, hp, chunk,
    wp) as one contiguous run per channel.
    """
    n, o, ho, wo = grad.shape
    _, c, kh, kw = w.shape
    (dh, dw), lead = dilation, dilation[1] * (kw - 1)
    wr = np.ascontiguousarray(w.transpose(1, 2, 0, 3)).reshape(c * kh, o * kw)
    dx = np.empty((n, c, hp, wp), grad.dtype)
    step = _chunk(n, (o * kw + c * kh) * ho * wp)
    g0 = _scratch("grad", (o, lead + step * ho * wp), grad.dtype)
    so, item = g0.strides
    shifted = as_strided(g0[:, lead:], (o, kw, step * ho * wp), (so, -dw * item, item),
                         writeable=False)
    gs = _scratch("shifted", (o, kw, step * ho * wp), grad.dtype)
    rows = _scratch("cols", (c * kh, step * ho * wp), grad.dtype)
    acc = _scratch("acc", (c, step * hp * wp), grad.dtype)
    for s, e in _spans(n, step):
        b = e - s
        m = ho * b * wp
        g0.fill(0)
        g0[:, lead:lead + m].reshape(o, ho, b, wp)[..., :wo] = grad[s:e].transpose(1, 2, 0, 3)
        np.copyto(gs[..., :m], shifted[..., :m])
        np.matmul(wr, gs[..., :m].reshape(o * kw, m), out=rows[:, :m])
        done = rows[:, :m].reshape(c, kh, m)
        d = acc[:, :hp * b * wp]
        d[:, :m] = done[:, 0]
        d[:, m:] = 0
        for i in range(1, kh):
            d[:, i * dh * b * wp:i * dh * b * wp + m] += done[:, i]
        dx[s:e] = d.reshape(c, hp, b, wp).transpose(2, 0, 1, 3)
    return dx


def _shifted(x, axis):
    """``(x - shift, shift)`` with ``shift`` the maximum along ``axis`` (kept), or 0 where
    that maximum is not finite: rows of -inf (or +inf) are not shifted, as in the
    references."""
    shift = _max_along(x, axis) if x.size else np.zeros_like(x)
    if not math.isfinite(np.add.reduce(shift, axis=None)):  # (an inf or NaN among them)
        shift[~np.isfinite(shift)] = 0
    return x - shift, shift


def _max_along(x, axis):
    """``np.maximum.reduce(x, axis, keepdims=True)``. Along short rows of a 2-D array
    (logits of a few classes) through a transposed copy: numpy reduces each short row
    slowly but vectorises across rows (rows of 10 at batch 256: 13 us along them, 2 us
    with the copy). A maximum is the same in any order, so the result is too (sums are
    not: they stay along the rows)."""
    if x.ndim == 2 and axis in (1, -1) and x.shape[1] <= 64 and x.shape[0] > 1:
        return np.maximum.reduce(np.ascontiguousarray(x.T), axis=0)[:, None]
    return np.maximum.reduce(x, axis=axis, keepdims=True)


@functools.lru_cache(maxsize=16)
def _rows(n: int) -> np.ndarray:
    rows = np.arange(n)
    rows.flags.writeable = False
    return rows


class FusedKernels:
    """The optional kernels, mixed into :class:`~flambeau_cpu.kernels.NumpyKernels`."""

    # --- convolution ----------------------------------------------------------------------
    # The batch is processed in chunks whose im2col columns stay in cache, in per-thread
    # scratch buffers.

    def conv2d(self, x, w, stride, padding, dilation, groups):
        n, c, h, _ = x.shape
        o, _, kh, kw = w.shape
        (ho, wo), og = window_shape(x.shape[2:], (kh, kw), stride, padding, dilation), o // groups
        # Rows (no junk columns to multiply and crop) where they fit in cache or cost less
        # than the crop (bench/bench_conv.py, LeNet's: 1.03x -> 0.89x and 2.55x -> 2.33x
        # torch's time; for wide rows, the padded width's few junk columns cost less).
        hp = h + 2 * padding[0]
        rows = c * kw * hp * wo <= CHUNK_ELEMENTS // 4 or c * kw * hp <= o * ho
        r = x.shape[3] + 2 * padding[1] if _flat(stride, rows) else wo
        wm = w.reshape(groups, og, -1)
        y = np.empty((n, groups, og, ho * r), x.dtype)
        for s, e, cols in _column_chunks(x, (kh, kw), stride, padding, dilation, (ho, wo),
                                         groups, rows):
            np.matmul(wm, cols, out=y[s:e])
        y = y.reshape(n, o, ho, r)
        return np.ascontiguousarray(y[..., :wo]) if r != wo else y

    def conv2d_grad_weight(self, grad, x, w_shape, stride, padding, dilation, groups):
        _, o, ho, wo = grad.shape
        cg, kh, kw = w_shape[1:]
        og, hp = o // groups, x.shape[2] + 2 * padding[0]
        # One product per kernel row from rows in place (no im2col copy, no junk), where
        # a sample's rows and grad fit in cache (else each product reads grad again):
        # LeNet's 1.18x -> 0.75x and 1.3x -> 1.0x torch's time (bench/bench_conv.py).
        by_row = stride[0] == 1 and (x.shape[1] * kw * hp + og * ho) * wo <= CHUNK_ELEMENTS
        r = x.shape[3] + 2 * padding[1] if _flat(stride, by_row) else wo
        blocks = kh if by_row else 1  # (products per chunk)
        dwt = np.zeros((groups, blocks, cg * kh * kw // blocks, og), grad.dtype)
        for s, e, cols in _column_chunks(x, (kh, kw), stride, padding, dilation, (ho, wo),
                                         groups, by_row, copy=not by_row):
            gt = _transposed(grad, s, e, groups, r)
            prod = _scratch("prod", (e - s, *dwt.shape), grad.dtype)
            for i in range(blocks):  # (junk columns of cols meet zeros of gt)
                np.matmul(cols[:, :, i] if by_row else cols, gt, out=prod[:, :, i])
            dwt += np.add.reduce(prod, axis=0)
        if by_row:  # (groups, kh, cg, kw, og)
            dwt = dwt.reshape(groups, kh, cg, kw, og).transpose(0, 4, 2, 1, 3)
        else:  # (groups, cg, kh, kw, og)
            dwt = dwt.reshape(groups, cg, kh, kw, og).transpose(0, 4, 1, 2, 3)
        return np.ascontiguousarray(dwt).reshape(w_shape)

    def conv2d_grad_input(self, grad, w, x_shape, stride, padding, dilation, groups):
        n, o, ho, wo = grad.shape
        _, cg, kh, kw = w.shape
        c, og = cg * groups, o // groups
        # The padded input, at least as large as the windows of grad reach.
        hp, wp = (max(x_shape[2 + a] + 2 * padding[a], (grad.shape[2 + a] - 1) * stride[a]
                      + dilation[a] * (w.shape[2 + a] - 1) + 1) for a in (0, 1))
        if tuple(stride) == (1, 1) and groups == 1 and cg * kh >= o:
            # (Otherwise the kw shifted copies of grad cost more than the adds they save.)
            return _crop(_grad_input_stride1(grad, w, hp, wp, dilation), padding, x_shape)
        wm = np.ascontiguousarray(w.reshape(groups, og, cg * kh * kw).transpose(0, 2, 1))
        if tuple(stride) == (1, 1):
            # Rows of grad zero-padded to the input's width wp: kernel position (i, j) then
            # adds one contiguous run of ho * wp values at flat offset i * dh * wp + j * dw.
            dx = np.zeros((n, c, hp * wp + dilation[1] * (kw - 1)), grad.dtype)
            for s, e in _spans(n, _chunk(n, c * kh * kw * ho * wp)):
                gp = _widened(grad, s, e, wp, "grad").reshape(e - s, groups, og, -1)
                cols = _scratch("cols", (e - s, groups, cg * kh * kw, ho * wp), grad.dtype)
                np.matmul(wm, gp, out=cols)
                cols = cols.reshape(e - s, c, kh, kw, ho * wp)
                d = dx[s:e]
                for i in range(kh):
                    for j in range(kw):
                        at = i * dilation[0] * wp + j * dilation[1]
                        d[:, :, at:at + ho * wp] += cols[:, :, i, j]
            dxp = dx[:, :, :hp * wp].reshape(n, c, hp, wp)
        else:
            dxp = np.zeros((n, c, hp, wp), grad.dtype)
            for s, e in _spans(n, _chunk(n, c * kh * kw * ho * wo)):
                cols = _scratch("cols", (e - s, groups, cg * kh * kw, ho * wo), grad.dtype)
                np.matmul(wm, grad[s:e].reshape(e - s, groups, og, -1), out=cols)
                cols = cols.reshape(e - s, c, kh, kw, ho, wo)
                d = dxp[s:e]
                for i in range(kh):  # col2im: add each kernel position's values where read
                    for j in range(kw):
                        d[_slices(i, j, stride, dilation, (ho, wo))] += cols[:, :, i, j]
        return _crop(dxp, padding, x_shape)

    # --- pooling --------------------------------------------------------------------------

    def max_pool2d(self, x, kernel, stride, padding, dilation, ceil_mode):
        out = window_shape(x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
        extra = ceil_padding(x.shape[2:], out, kernel, stride, padding, dilation)
        v = _windows(_pad(x, padding, extra, -np.inf), kernel, stride, dilation, out)
        best = v[:, :, 0, 0].copy()
        arg = np.zeros(best.shape, np.int8 if kernel[0] * kernel[1] <= 127 else np.int64)
        better = np.empty(best.shape, bool)
        # Branch-free updates (select-by-mask is slow on random data): positions come in
        # increasing order k, so the latest strictly better one is max(arg, better * k).
        positions = [(i, j) for i in range(kernel[0]) for j in range(kernel[1])]
        for k, (i, j) in enumerate(positions[1:], start=1):
            cand = v[:, :, i, j]
            np.greater(cand, best, out=better)
            np.maximum(best, cand, out=best)  # propagates NaN
            np.maximum(arg, np.multiply(better, k, dtype=arg.dtype), out=arg)
        nan = np.isnan(best)
        if nan.any():  # a window with a NaN: point at its first NaN
            for k in reversed(range(len(positions))):
                i, j = positions[k]
                arg[nan & np.isnan(v[:, :, i, j])] = k
        # Flat input position: the window's corner plus the kernel position's offset.
        w = x.shape[3]
        offsets = np.array([i * dilation[0] * w + j * dilation[1] for i in range(kernel[0])
                            for j in range(kernel[1])], np.int64)
        corners = ((np.arange(out[0]) * stride[0] - padding[0])[:, None] * w
                   + np.arange(out[1]) * stride[1] - padding[1])
        return best, offsets[arg] + corners

    def max_pool2d_grad(self, grad, indices, x_shape, kernel, stride, padding, dilation,
                        ceil_mode):
        n, c, h, w = x_shape
        planes = np.arange(n * c, dtype=np.int64).reshape(n, c, 1, 1) * (h * w)
        flat = (indices + planes).ravel()
        if all(s >= d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation)):
            dx = np.zeros(n * c * h * w, grad.dtype)  # windows do not overlap: no collisions
            dx[flat] = grad.ravel()
        else:
            dx = np.bincount(flat, grad.ravel(), n * c * h * w).astype(grad.dtype)
        return dx.reshape(x_shape)

    def avg_pool2d(self, x, kernel, stride, padding, ceil_mode, count_include_pad,
                   divisor_override):
        out = window_shape(x.shape[2:], kernel, stride, padding, ceil_mode=ceil_mode)
        divisors = self._divisors(x.shape, out, kernel, stride, padding, count_include_pad,
                                  divisor_override, x.dtype)
        if _by_product(x.shape, out, kernel, stride, padding, divisors):
            sums = np.matmul(x.reshape(-1, kernel[0] * x.shape[3]),
                             _pool_matrix(kernel, x.shape[3], x.dtype))
            if not np.isnan(sums).any():  # (else an inf or NaN spread through the zeros)
                sums /= divisors
                return sums.reshape(*x.shape[:2], *out)
        xp = _pad(x, padding, ceil_padding(x.shape[2:], out, kernel, stride, padding))
        # Separable window sums: over the kernel's rows, then over its columns.
        rows = _sum_of(xp[:, :, i:i + (out[0] - 1) * stride[0] + 1:stride[0]]
                       for i in range(kernel[0]))
        sums = _sum_of(rows[..., j:j + (out[1] - 1) * stride[1] + 1:stride[1]]
                       for j in range(kernel[1]))
        sums /= divisors
        return sums

    def avg_pool2d_grad(self, grad, x_shape, kernel, stride, padding, ceil_mode,
                        count_include_pad, divisor_override):
        n, c, ho, wo = grad.shape
        divisors = self._divisors(x_shape, (ho, wo), kernel, stride, padding,
                                  count_include_pad, divisor_override, grad.dtype)
        g = grad / divisors
        if _by_product(x_shape, (ho, wo), kernel, stride, padding, divisors) \
                and np.isfinite(g).all():  # (an inf would spread NaNs through the zeros)
            return np.matmul(g.reshape(-1, wo), _pool_matrix(kernel, x_shape[3], g.dtype).T
                             ).reshape(x_shape)
        eh, ew = ceil_padding(x_shape[2:], (ho, wo), kernel, stride, padding)
        hp, wp = x_shape[2] + 2 * padding[0] + eh, x_shape[3] + 2 * padding[1] + ew
        if all(s >= k for s, k in zip(stride, kernel)):  # windows do not overlap: assign
            tiled = all(s == k and (o - 1) * s + k == size for s, k, o, size in
                        zip(stride, kernel, (ho, wo), (hp, wp)))
            if tiled and kernel[1] == 2 and g.dtype.itemsize == 4:
                # Each row of g's values repeated in pairs, then kernel[0] times.
                dxp = np.empty((n, c, ho, kernel[0], wo), np.uint64)
                _in_pairs(g, dxp)
                return _crop(dxp.view(grad.dtype).reshape(n, c, hp, wp), padding, x_shape)
            dxp = (np.empty if tiled else np.zeros)((n, c, hp, wp), grad.dtype)
            for i in range(kernel[0]):
                for j in range(kernel[1]):
                    dxp[_slices(i, j, stride, (1, 1), (ho, wo))] = g
            return _crop(dxp, padding, x_shape)
        rows = np.zeros((n, c, ho, wp), grad.dtype)  # each window's share spread over columns,
        for j in range(kernel[1]):
            rows[..., j:j + (wo - 1) * stride[1] + 1:stride[1]] += g
        dxp = np.zeros((n, c, hp, wp), grad.dtype)  # then over rows
        for i in range(kernel[0]):
            dxp[:, :, i:i + (ho - 1) * stride[0] + 1:stride[0]] += rows
        return _crop(dxp, padding, x_shape)

    @staticmethod
    def _divisors(x_shape, out, kernel, stride, padding, count_include_pad, divisor_override,
                  dtype):
        if divisor_override is not None:
            return dtype.type(divisor_override)
        return _divisors(tuple(x_shape[2:]), tuple(out), tuple(kernel), tuple(stride),
                         tuple(padding), bool(count_include_pad), np.dtype(dtype))

    # --- softmax and cross-entropy ---------------------------------------------------------

    def softmax(self, x, axis):
        out, _ = _shifted(x, axis)
        np.exp(out, out=out)
        out /= np.add.reduce(out, axis=axis, keepdims=True)
        return out

    def log_softmax(self, x, axis):
        out, _ = _shifted(x, axis)
        out -= np.log(np.add.reduce(np.exp(out), axis=axis, keepdims=True))
        return out

    def cross_entropy(self, logits, target):
        shifted, shift = _shifted(logits, 1)
        total = np.add.reduce(np.exp(shifted, out=shifted), axis=1)
        np.log(total, out=total)
        total += shift[:, 0]
        return total - logits[_rows(len(target)), target]

    def cross_entropy_grad(self, logits, target, grad):
        probs = self.softmax(logits, 1)
        probs[_rows(len(target)), target] -= 1
        probs *= grad[:, None] if grad.ndim else grad
        return probs

    # --- optimizer steps -------------------------------------------------------------------

    def sgd_step(self, params, grads, bufs, *, lr, momentum, dampening, weight_decay,
                 nesterov, maximize):
        for i, (p, g) in enumerate(zip(params, grads)):
            if bufs is None and weight_decay == 0:
                _add_scaled(p, g, p.dtype.type(lr if maximize else -lr))
                continue
            g = -g if maximize else g
            if weight_decay != 0:
                g = g + p.dtype.type(weight_decay) * p
            if bufs is not None:
                buf = bufs[i]
                buf *= momentum
                buf += (1 - dampening) * g
                g = g + momentum * buf if nesterov else buf
            p -= p.dtype.type(lr) * g

    def adam_step(self, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step, lr,
                  beta1, beta2, eps, weight_decay, decoupled, maximize):
        step_size = lr / (1 - beta1**step)
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        for i, (p, g) in enumerate(zip(params, grads)):
            g = -g if maximize else g
            if weight_decay != 0:
                if decoupled:
                    p *= 1 - lr * weight_decay
                else:
                    g = g + weight_decay * p
            m, v = exp_avgs[i], exp_avg_sqs[i]
            m += (1 - beta1) * (g - m)
            v *= beta2
            v += (1 - beta2) * (g * g)
            second = v
            if max_exp_avg_sqs is not None:
                np.maximum(max_exp_avg_sqs[i], v, out=max_exp_avg_sqs[i])
                second = max_exp_avg_sqs[i]
            denom = np.sqrt(second) / bias_correction2_sqrt
            denom += eps
            p -= step_size * (m / denom)


#: Elements per piece of an in-place update: the piece's temporary stays in L1/L2 cache.
UPDATE_CHUNK = 1 << 15


def _add_scaled(p: np.ndarray, g: np.ndarray, alpha) -> None:
    """``p += alpha * g`` in place, in cache-sized pieces: the parameter-sized temporary
    ``alpha * g`` would cost a write and a read of the whole array, and evict what the
    next training step reads (bench/bench_speed.py, the MLP rows)."""
    if p.size <= UPDATE_CHUNK or not (p.flags.c_contiguous and g.flags.c_contiguous):
        p += alpha * g
        return
    pf, gf = p.reshape(-1), g.reshape(-1)
    scaled = _scratch("scaled", (UPDATE_CHUNK,), p.dtype)
    for s in range(0, pf.size, UPDATE_CHUNK):
        piece = pf[s:s + UPDATE_CHUNK]
        part = scaled[:piece.size]
        np.multiply(gf[s:s + UPDATE_CHUNK], alpha, out=part)
        np.add(piece, part, out=piece)


def _in_pairs(a: np.ndarray, out: np.ndarray) -> None:
    """4-byte ``a`` (N, C, H, W) written into uint64 ``out`` (N, C, H, k, W) as each row's
    values twice in a row (a float32 (N, C, H, k, 2 * W)), k times.

    A value's bits widened to 64 and times 2**32 + 1 are the bits of the pair: one pass,
    where writing every other element twice is slow (LeNet's first avg_pool2d_grad:
    0.37 -> 0.25 ms).
    """
    np.multiply(a.view(np.uint32)[:, :, :, None, :], np.uint64(0x1_0000_0001), out=out,
                dtype=np.uint64)


#: Longest run of input (kernel rows times width) that tiled average pooling reduces by a
#: matrix product: beyond it, multiplying by the zeros costs more than it saves over the
#: short strided sums (bench/bench_lenet.py's second avg_pool2d, 10 x 10: 0.14 -> 0.08 ms,
#: and its gradient; at 28 x 28 the sums are faster).
POOL_BY_PRODUCT = 32


def _by_product(x_shape, out, kernel, stride, padding, divisors) -> bool:
    """Whether avg_pool2d (or its gradient) goes by :func:`_pool_matrix`: windows that
    tile x exactly, one divisor, float32 or float64, short rows."""
    return (tuple(stride) == tuple(kernel) and not any(padding) and np.ndim(divisors) == 0
            and tuple(x_shape[2:]) == (out[0] * kernel[0], out[1] * kernel[1])
            and kernel[0] * x_shape[3] <= POOL_BY_PRODUCT
            and np.dtype(divisors.dtype) in (np.float32, np.float64))


@functools.lru_cache(maxsize=64)
def _pool_matrix(kernel, width, dtype) -> np.ndarray:
    """(kh * W, W // kw) ones and zeros: x's rows of tiled windows (kh rows of W values
    each) times it are the windows' sums."""
    kh, kw = kernel
    matrix = np.zeros((kh, width, width // kw), dtype)
    for q in range(width // kw):
        matrix[:, q * kw:(q + 1) * kw, q] = 1
    matrix = matrix.reshape(kh * width, -1)
    matrix.flags.writeable = False
    return matrix


@functools.lru_cache(maxsize=64)
def _divisors(size, out, kernel, stride, padding, count_include_pad, dtype):
    """avg_pool2d's divisors: a scalar when every window has the same one."""
    divisors = avg_pool_divisors(size, out, kernel, stride, padding, count_include_pad)
    if divisors.size and (divisors == divisors.flat[0]).all():
        return dtype.type(divisors.flat[0])
    divisors = divisors.astype(dtype)
    divisors.flags.writeable = False
    return divisors
