"""Optional fused kernels of the numpy backend: 2-d convolution and pooling.

Signatures and meanings are those of :data:`flambeau.backends.OPTIONAL_KERNELS`; the
references are the compositions in ``flambeau.nn._conv``. Convolutions are im2col (a
strided view of the padded input, copied once) and one batched matrix product; pooling
and col2im loop over the kernel's positions (a handful), never over pixels.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from flambeau.backends import avg_pool_divisors, window_count


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


def _im2col(x, kernel, stride, padding, dilation, out, groups) -> np.ndarray:
    """(N, groups, C // groups * kh * kw, Ho * Wo), a contiguous copy."""
    cols = _windows(_pad(x, padding), kernel, stride, dilation, out)
    return cols.reshape(x.shape[0], groups, -1, out[0] * out[1])


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


def _pool_out(x_shape, kernel, stride, padding, dilation, ceil_mode) -> tuple[int, int]:
    return tuple(window_count(n, k, s, p, d, ceil_mode) for n, k, s, p, d in
                 zip(x_shape[2:], kernel, stride, padding, dilation))


def _ceil_extra(x_shape, out, kernel, stride, padding, dilation) -> tuple[int, int]:
    return tuple(max(0, (o - 1) * s + d * (k - 1) + 1 - n - 2 * p) for n, o, k, s, p, d in
                 zip(x_shape[2:], out, kernel, stride, padding, dilation))


#: Elements of im2col columns per batch chunk (1 MiB of float32): chunks stay in cache.
CHUNK_ELEMENTS = 1 << 18


def _chunk(n: int, per_sample: int) -> int:
    """Samples per chunk (at least 1; at most n)."""
    return max(1, min(n, CHUNK_ELEMENTS // max(per_sample, 1)))


def _spans(n: int, step: int) -> list[tuple[int, int]]:
    return [(s, min(n, s + step)) for s in range(0, n, step)]


def _sum_of(arrays) -> np.ndarray:
    """The sum of an iterable of same-shape arrays, as a new array."""
    arrays = iter(arrays)
    total = next(arrays).copy()
    for a in arrays:
        total += a
    return total


class FusedKernels:
    """Convolution and pooling kernels, mixed into :class:`~flambeau_cpu.kernels.NumpyKernels`."""

    # --- convolution ----------------------------------------------------------------------
    # The batch is processed in chunks whose im2col columns stay in cache; buffers are
    # allocated once per call.

    def conv2d(self, x, w, stride, padding, dilation, groups):
        n, c = x.shape[:2]
        o, cg, kh, kw = w.shape
        out = _pool_out(x.shape, (kh, kw), stride, padding, dilation, False)
        windows = _windows(_pad(x, padding), (kh, kw), stride, dilation, out)
        wm = w.reshape(groups, o // groups, cg * kh * kw)
        y = np.empty((n, groups, o // groups, out[0] * out[1]), x.dtype)
        cols = np.empty((_chunk(n, c * kh * kw * out[0] * out[1]), *windows.shape[1:]), x.dtype)
        for s, e in _spans(n, len(cols)):
            b = cols[:e - s]
            np.copyto(b, windows[s:e])
            np.matmul(wm, b.reshape(e - s, groups, cg * kh * kw, -1), out=y[s:e])
        return y.reshape(n, o, *out)

    def conv2d_grad_weight(self, grad, x, w_shape, stride, padding, dilation, groups):
        n, o, ho, wo = grad.shape
        c, (kh, kw) = x.shape[1], w_shape[2:]
        windows = _windows(_pad(x, padding), (kh, kw), stride, dilation, (ho, wo))
        gm = grad.reshape(n, groups, o // groups, ho * wo)
        dw = np.zeros((groups, o // groups, c // groups * kh * kw), grad.dtype)
        cols = np.empty((_chunk(n, c * kh * kw * ho * wo), *windows.shape[1:]), x.dtype)
        for s, e in _spans(n, len(cols)):
            b = cols[:e - s]
            np.copyto(b, windows[s:e])
            b = b.reshape(e - s, groups, -1, ho * wo).transpose(0, 1, 3, 2)
            dw += np.matmul(gm[s:e], b).sum(axis=0)
        return dw.reshape(w_shape)

    def conv2d_grad_input(self, grad, w, x_shape, stride, padding, dilation, groups):
        n, o, ho, wo = grad.shape
        _, cg, kh, kw = w.shape
        c, og = cg * groups, o // groups
        # The padded input, at least as large as the windows of grad reach.
        hp, wp = (max(x_shape[2 + a] + 2 * padding[a], (grad.shape[2 + a] - 1) * stride[a]
                      + dilation[a] * (w.shape[2 + a] - 1) + 1) for a in (0, 1))
        wm = np.ascontiguousarray(w.reshape(groups, og, cg * kh * kw).transpose(0, 2, 1))
        if stride == (1, 1):
            # Rows of grad padded to the input's width wp: kernel position (i, j) then adds
            # one contiguous run of ho * wp values at flat offset i * dh * wp + j * dw.
            slack = dilation[1] * (kw - 1)
            dx = np.zeros((n, c, hp * wp + slack), grad.dtype)
            gp = np.zeros((_chunk(n, c * kh * kw * ho * wp), o, ho, wp), grad.dtype)
            cols = np.empty((len(gp), groups, cg * kh * kw, ho * wp), grad.dtype)
            for s, e in _spans(n, len(gp)):
                gp[:e - s, :, :, :wo] = grad[s:e]
                b = cols[:e - s]
                np.matmul(wm, gp[:e - s].reshape(e - s, groups, og, -1), out=b)
                b = b.reshape(e - s, c, kh, kw, ho * wp)
                d = dx[s:e]
                for i in range(kh):
                    for j in range(kw):
                        at = i * dilation[0] * wp + j * dilation[1]
                        d[:, :, at:at + ho * wp] += b[:, :, i, j]
            dxp = dx[:, :, :hp * wp].reshape(n, c, hp, wp)
        else:
            dxp = np.zeros((n, c, hp, wp), grad.dtype)
            cols = np.empty((_chunk(n, c * kh * kw * ho * wo), groups, cg * kh * kw, ho * wo),
                            grad.dtype)
            for s, e in _spans(n, len(cols)):
                b = cols[:e - s]
                np.matmul(wm, grad[s:e].reshape(e - s, groups, og, -1), out=b)
                b = b.reshape(e - s, c, kh, kw, ho, wo)
                d = dxp[s:e]
                for i in range(kh):  # col2im: add each kernel position's values where read
                    for j in range(kw):
                        d[_slices(i, j, stride, dilation, (ho, wo))] += b[:, :, i, j]
        return _crop(dxp, padding, x_shape)

    # --- pooling --------------------------------------------------------------------------

    def max_pool2d(self, x, kernel, stride, padding, dilation, ceil_mode):
        out = _pool_out(x.shape, kernel, stride, padding, dilation, ceil_mode)
        extra = _ceil_extra(x.shape, out, kernel, stride, padding, dilation)
        xp = _pad(x, padding, extra, -np.inf)
        v = _windows(xp, kernel, stride, dilation, out)
        best = v[:, :, 0, 0].copy()
        arg = np.zeros(best.shape, np.int64)
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                if i == j == 0:
                    continue
                cand = v[:, :, i, j]
                better = (cand > best) | (cand != cand)  # a NaN wins, as in PyTorch
                np.copyto(best, cand, where=better)
                arg[better] = i * kernel[1] + j
        rows = (np.arange(out[0]) * stride[0] - padding[0])[:, None]
        cols = np.arange(out[1]) * stride[1] - padding[1]
        kh_, kw_ = np.divmod(arg, kernel[1])
        index = (rows + kh_ * dilation[0]) * x.shape[3] + cols + kw_ * dilation[1]
        return best, index

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
        out = _pool_out(x.shape, kernel, stride, padding, (1, 1), ceil_mode)
        xp = _pad(x, padding, _ceil_extra(x.shape, out, kernel, stride, padding, (1, 1)))
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
        eh, ew = _ceil_extra(x_shape, (ho, wo), kernel, stride, padding, (1, 1))
        hp, wp = x_shape[2] + 2 * padding[0] + eh, x_shape[3] + 2 * padding[1] + ew
        if all(s >= k for s, k in zip(stride, kernel)):  # windows do not overlap: assign
            dxp = np.zeros((n, c, hp, wp), grad.dtype)
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
        return avg_pool_divisors(x_shape[2:], tuple(out), kernel, stride, padding,
                                 count_include_pad).astype(dtype)
