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
with stride 1, rows are laid out at the padded width so that each kernel position is one
long contiguous run (numpy is slow on short inner loops); avg pooling sums separably.
For the convolution gradients (bench/bench_conv.py): matrix products whose operands are
C-contiguous, and an input gradient that sums over the kernel's columns inside its
product, leaving col2im kh additions rather than kh * kw.
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


def _columns(x, kernel, stride, padding, dilation, out) -> tuple[np.ndarray, int]:
    """A read-only view of ``x`` padded whose copy, reshaped to (N, C * kh * kw, Ho * r),
    is im2col, and its row length r.

    With stride 1 the view is (N, C, kh, kw, Ho * Wp) and r the padded width Wp: each
    kernel position is one contiguous run of the padded input (fast to copy), and columns
    Wo..Wp - 1 of each row are junk the caller must drop (or multiply by zeros).
    Otherwise it is (N, C, kh, kw, Ho, Wo) and r = Wo.
    """
    n, c = x.shape[:2]
    if tuple(stride) != (1, 1):
        return _windows(_pad(x, padding), kernel, stride, dilation, out), out[1]
    (ph, pw), (h, w) = padding, x.shape[2:]
    hp, wp = h + 2 * ph, w + 2 * pw
    slack = dilation[1] * (kernel[1] - 1)  # the last rows' junk reads past the end
    flat = np.zeros((n, c, hp * wp + slack), x.dtype)
    flat[:, :, :hp * wp].reshape(n, c, hp, wp)[:, :, ph:ph + h, pw:pw + w] = x
    sn, sc, item = flat.strides
    view = as_strided(flat, (n, c, *kernel, out[0] * wp),
                      (sn, sc, dilation[0] * wp * item, dilation[1] * item, item),
                      writeable=False)
    return view, wp


def _column_chunks(view: np.ndarray, per_sample: int):
    """(s, e, cols) for chunks of the batch: cols a scratch copy of ``view[s:e]``, the
    im2col columns of ``_columns``."""
    n = view.shape[0]
    for s, e in _spans(n, _chunk(n, per_sample)):
        cols = _scratch("cols", (e - s, *view.shape[1:]), view.dtype)
        np.copyto(cols, view[s:e])
        yield s, e, cols


def _widened(grad: np.ndarray, s: int, e: int, r: int, name: str) -> np.ndarray:
    """Samples s..e of ``grad`` (N, O, Ho, Wo) with rows zero-padded to length r."""
    wo = grad.shape[3]
    if r == wo:
        return grad[s:e]
    out = _scratch(name, (e - s, *grad.shape[1:3], r), grad.dtype)
    out[..., :wo] = grad[s:e]
    out[..., wo:] = 0
    return out


def _by_channel(grad: np.ndarray, s: int, e: int, out: np.ndarray) -> np.ndarray:
    """Samples s..e of ``grad`` (N, O, Ho, Wo) written into ``out`` (O, e - s, Ho, r),
    rows zero-padded to length r."""
    wo = grad.shape[3]
    out[..., :wo] = grad[s:e].transpose(1, 0, 2, 3)
    out[..., wo:] = 0
    return out


def _grad_input_stride1(grad, w, hp, wp, dilation) -> np.ndarray:
    """conv2d_grad_input with stride 1 and one group, as the padded (N, C, hp, wp) input.

    Sums over the kernel's columns inside the matrix product, so that col2im adds kh
    rows of results rather than kh * kw: ``gs`` holds grad kw times, each copy shifted
    right by one more column (rows zero-padded to wp, so shifts never wrap a row's
    values into the next), and ``w`` is laid out as (C * kh, O * kw).
    """
    n, o, ho, _ = grad.shape
    _, c, kh, kw = w.shape
    (dh, dw), run = dilation, ho * wp
    wr = np.ascontiguousarray(w.transpose(1, 2, 0, 3)).reshape(c * kh, o * kw)
    dx = np.zeros((c, n, hp * wp), grad.dtype)
    for s, e in _spans(n, _chunk(n, (o * kw + c * kh) * run)):
        m = (e - s) * run
        gs = _scratch("shifted", (o, kw, m), grad.dtype)
        _by_channel(grad, s, e, gs[:, 0].reshape(o, e - s, ho, wp))
        for j in range(1, kw):
            gs[:, j, :j * dw] = 0
            gs[:, j, j * dw:] = gs[:, 0, :m - j * dw]
        rows = _scratch("cols", (c * kh, m), grad.dtype)
        np.matmul(wr, gs.reshape(o * kw, m), out=rows)
        rows = rows.reshape(c, kh, e - s, run)
        for i in range(kh):
            dx[:, s:e, i * dh * wp:i * dh * wp + run] += rows[:, i]
    return dx.reshape(c, n, hp, wp).transpose(1, 0, 2, 3)


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
        n, c = x.shape[:2]
        o, cg, kh, kw = w.shape
        ho, wo = window_shape(x.shape[2:], (kh, kw), stride, padding, dilation)
        view, r = _columns(x, (kh, kw), stride, padding, dilation, (ho, wo))
        wm = w.reshape(groups, o // groups, cg * kh * kw)
        y = np.empty((n, groups, o // groups, ho * r), x.dtype)
        for s, e, cols in _column_chunks(view, c * kh * kw * ho * r):
            np.matmul(wm, cols.reshape(e - s, groups, cg * kh * kw, -1), out=y[s:e])
        y = y.reshape(n, o, ho, r)
        return np.ascontiguousarray(y[..., :wo]) if r != wo else y

    def conv2d_grad_weight(self, grad, x, w_shape, stride, padding, dilation, groups):
        _, o, ho, wo = grad.shape
        c, (kh, kw) = x.shape[1], w_shape[2:]
        og, kg = o // groups, c // groups * kh * kw
        view, r = _columns(x, (kh, kw), stride, padding, dilation, (ho, wo))
        # cols @ grad.T per sample. numpy hands BLAS a transposed grad 3x slower than a
        # C-contiguous one, unless grad has few channels, whose transposed copy (runs of
        # og values) costs more (bench/bench_conv.py).
        dwt = np.zeros((groups, kg, og), grad.dtype)
        for s, e, cols in _column_chunks(view, c * kh * kw * ho * r):
            if og < 8:
                gm = _widened(grad, s, e, r, "grad").reshape(e - s, groups, og, ho * r)
                gt = gm.transpose(0, 1, 3, 2)
            else:
                gt = _scratch("grad", (e - s, groups, ho, r, og), grad.dtype)
                gt[..., :wo, :] = grad[s:e].reshape(e - s, groups, og, ho, wo).transpose(
                    0, 1, 3, 4, 2)
                gt[..., wo:, :] = 0
                gt = gt.reshape(e - s, groups, ho * r, og)
            prod = _scratch("prod", (e - s, groups, kg, og), grad.dtype)
            # Junk columns of cols meet zeros of gt.
            np.matmul(cols.reshape(e - s, groups, kg, ho * r), gt, out=prod)
            dwt += np.add.reduce(prod, axis=0)
        return np.ascontiguousarray(dwt.transpose(0, 2, 1)).reshape(w_shape)

    def conv2d_grad_input(self, grad, w, x_shape, stride, padding, dilation, groups):
        n, o, ho, wo = grad.shape
        _, cg, kh, kw = w.shape
        c, og = cg * groups, o // groups
        # The padded input, at least as large as the windows of grad reach.
        hp, wp = (max(x_shape[2 + a] + 2 * padding[a], (grad.shape[2 + a] - 1) * stride[a]
                      + dilation[a] * (w.shape[2 + a] - 1) + 1) for a in (0, 1))
        if tuple(stride) == (1, 1) and groups == 1 and cg * kh >= o:
            # (Otherwise the kw shifted copies of grad cost more than the adds they save.)
            dxp = _grad_input_stride1(grad, w, hp, wp, dilation)
            return np.ascontiguousarray(_crop(dxp, padding, x_shape))
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
        xp = _pad(x, padding, ceil_padding(x.shape[2:], out, kernel, stride, padding))
        # Separable window sums: over the kernel's rows, then over its columns.
        rows = _sum_of(xp[:, :, i:i + (out[0] - 1) * stride[0] + 1:stride[0]]
                       for i in range(kernel[0]))
        sums = _sum_of(rows[..., j:j + (out[1] - 1) * stride[1] + 1:stride[1]]
                       for j in range(kernel[1]))
        return sums / self._divisors(x.shape, out, kernel, stride, padding, count_include_pad,
                                     divisor_override, x.dtype)

    def avg_pool2d_grad(self, grad, x_shape, kernel, stride, padding, ceil_mode,
                        count_include_pad, divisor_override):
        n, c, ho, wo = grad.shape
        g = grad / self._divisors(x_shape, (ho, wo), kernel, stride, padding,
                                  count_include_pad, divisor_override, grad.dtype)
        eh, ew = ceil_padding(x_shape[2:], (ho, wo), kernel, stride, padding)
        hp, wp = x_shape[2] + 2 * padding[0] + eh, x_shape[3] + 2 * padding[1] + ew
        if all(s >= k for s, k in zip(stride, kernel)):  # windows do not overlap: assign
            tiled = all(s == k and (o - 1) * s + k == size for s, k, o, size in
                        zip(stride, kernel, (ho, wo), (hp, wp)))
            if tiled and kernel[1] == 2 and g.dtype.itemsize == 4:
                # Each row of g's values repeated in pairs, then kernel[0] times.
                dxp = np.empty((n, c, ho, kernel[0], wp), grad.dtype)
                dxp[...] = _in_pairs(g)[:, :, :, None, :]
                return _crop(dxp.reshape(n, c, hp, wp), padding, x_shape)
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


def _in_pairs(a: np.ndarray) -> np.ndarray:
    """4-byte ``a`` (..., w) as (..., 2 * w), each value twice in a row.

    A value's bits widened to 64 and times 2**32 + 1 are the bits of the pair: two
    contiguous passes, where writing every other element twice is slow (LeNet's first
    avg_pool2d_grad: 0.37 -> 0.25 ms).
    """
    pairs = np.ascontiguousarray(a).view(np.uint32).astype(np.uint64)
    pairs *= np.uint64(0x1_0000_0001)
    return pairs.view(a.dtype)


@functools.lru_cache(maxsize=64)
def _divisors(size, out, kernel, stride, padding, count_include_pad, dtype):
    """avg_pool2d's divisors: a scalar when every window has the same one."""
    divisors = avg_pool_divisors(size, out, kernel, stride, padding, count_include_pad)
    if divisors.size and (divisors == divisors.flat[0]).all():
        return dtype.type(divisors.flat[0])
    divisors = divisors.astype(dtype)
    divisors.flags.writeable = False
    return divisors
