"""Optional fused kernels of the opencl backend (see flambeau.backends.OPTIONAL_KERNELS).

Convolutions are products on the ``gemm.cl`` kernel: the input's windows are packed
straight into the product's panels (im2col without an intermediate array), and the input
gradient is a product followed by ``col2im``, which gathers (no atomics, deterministic).
Pooling, softmax rows, cross-entropy and the optimizer updates are one kernel each (the
updates one launch per parameter). The kernels live in ``sources/fused.cl``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flambeau.backends import window_shape

from ._errors import DTypeError
from .array import CLArray
from .gemm import GEMM_DTYPES, Panels, tile
from .geometry import rgeom
from .programs import CGEOM, CTYPES, INT, LIN, LONG

INT64 = np.dtype(np.int64)


def _float(op: str, *arrays: CLArray) -> None:
    for x in arrays:
        if x.dtype.kind != "f":
            raise DTypeError(f"{op} takes float arrays, got {x.dtype}")


def _scalar(value: Any, dtype: np.dtype) -> bytes:
    """A Python float as a kernel argument of dtype's compute type (rounded like the
    composition rounds scalars: to dtype first)."""
    typed = np.asarray(value).astype(dtype)
    return (typed.astype(np.float32) if dtype == np.float16 else typed).tobytes()


class FusedKernels:
    """Fused kernels, mixed into :class:`~flambeau_opencl.kernels.OpenCLKernels`."""

    _dev: Any

    # ---- softmax and cross-entropy ----------------------------------------------------

    def softmax(self, x, axis):
        return self._softmax(x, axis, 0)

    def log_softmax(self, x, axis):
        return self._softmax(x, axis, 1)

    def _softmax(self, x: CLArray, axis: int, mode: int) -> CLArray:
        x = self._arr(x)
        _float("softmax", x)
        axis = axis % max(x.ndim, 1)
        out = self._new(x.shape, x.dtype)
        if out.size == 0:
            return out
        length = x.shape[axis] if x.ndim else 1
        rows = out.size // length
        moved = axis == x.ndim - 1 or x.ndim == 0
        target = out if moved else self._new((rows, length), x.dtype)
        self._rows("softmax_rows", x, (axis,) if x.ndim else (), rows, length,
                   [target.buffer], [INT.pack(mode)])
        if not moved:
            kept = tuple(d for d in range(x.ndim) if d != axis)
            shape = tuple(x.shape[d] for d in kept) + (length,)
            view = target.view(shape, None, 0)
            order = list(range(len(kept)))
            order.insert(axis, len(kept))
            self._copy_into(out, self.permute(view, tuple(order)))
        return out

    def cross_entropy(self, logits, target):
        logits, target = self._arr(logits), self._contiguous(self._arr(target))
        _float("cross_entropy", logits)
        n, c = logits.shape
        out = self._new((n,), logits.dtype)
        if n == 0:
            return out
        self._rows("cross_entropy_rows", logits, (1,), n, c,
                   [target.buffer, LONG.pack(target.offset), out.buffer], [])
        return out

    def cross_entropy_grad(self, logits, target, grad):
        logits, target = self._arr(logits), self._contiguous(self._arr(target))
        grad = self._arr(grad)
        _float("cross_entropy_grad", logits)
        n, c = logits.shape
        out = self._new((n, c), logits.dtype)
        if out.size == 0:
            return out
        if grad.dtype != logits.dtype:
            grad = self.cast(grad, logits.dtype)
        # grad is (N,) (any stride) or 0-d: step 0 gives every row its one element.
        step = grad.strides[0] if grad.ndim and grad.shape[0] > 1 else 0
        self._rows("cross_entropy_grad_rows", logits, (1,), n, c,
                   [target.buffer, LONG.pack(target.offset), grad.buffer,
                    LONG.pack(grad.offset), LONG.pack(step), out.buffer], [])
        return out

    def _rows(self, name: str, x: CLArray, axes: tuple[int, ...], rows: int, length: int,
              buffers: list, extra: list) -> None:
        """Launch a row kernel of fused.cl: one row per output row, no partial parts."""
        x, kept, reduced = self._row_layout(x, axes)
        kernel = self._dev.kernel(x.dtype, name)
        local, _, per_group = self._row_split(rows, length, False, kernel)
        groups = -(-rows // per_group)
        geom = rgeom(rows, length, 1, length, per_group, kept, reduced, x.offset, 0)
        scratch = self._dev.local(local * 8)
        self._dev.run(kernel, (groups * local,), (local,),
                      [geom, x.buffer, *buffers, scratch, *extra])

    # ---- normalisation --------------------------------------------------------------

    def layer_norm(self, x, weight, bias, axes, eps):
        x = self._arr(x)
        _float("layer_norm", x)
        axes = tuple(axes)
        stat_shape = tuple(1 if d in axes else n for d, n in enumerate(x.shape))
        mean, var = self._new(stat_shape, x.dtype), self._new(stat_shape, x.dtype)
        rows = mean.size
        length = x.size // rows if rows else 0
        if x.size:
            self._rows("moments_rows", x, axes, rows, length, [mean.buffer, var.buffer], [])
        elif rows:
            self._fill(mean, float("nan"))
            self._fill(var, float("nan"))
        return self._normalize(x, weight, bias, mean, var, eps), mean, var

    def batch_norm(self, x, weight, bias, mean, var, eps):
        x = self._arr(x)
        _float("batch_norm", x)
        return self._normalize(x, weight, bias, self._arr(mean), self._arr(var), eps)

    def _normalize(self, x: CLArray, weight, bias, mean: CLArray, var: CLArray,
                   eps: float) -> CLArray:
        """(x - mean) / sqrt(var + eps) * weight + bias, as the composition rounds it."""
        y = self._new(x.shape, x.dtype)
        if y.size == 0:
            return y
        self._launch_strided(x.dtype, "normalize_s", x.shape, [y, x, mean, var],
                             [x.buffer, mean.buffer, var.buffer, y.buffer],
                             [_scalar(eps, x.dtype)])
        if weight is not None:
            self.binary("mul", y, self._arr(weight), out=y)
        if bias is not None:
            self.binary("add", y, self._arr(bias), out=y)
        return y

    # ---- optimizer updates --------------------------------------------------------------

    def sgd_step(self, params, grads, bufs, *, lr, momentum, dampening, weight_decay,
                 nesterov, maximize):
        flags = (1 if bufs is not None else 0) | (2 if nesterov else 0) | (4 if maximize else 0)
        for i, p in enumerate(params):
            p, g = self._arr(p), self._arr(grads[i])
            b = self._arr(bufs[i]) if bufs is not None else p
            _float("sgd_step", p)
            dt = p.dtype
            scalars = [_scalar(lr, dt), _scalar(momentum, dt), _scalar(1 - dampening, dt),
                       _scalar(weight_decay, dt)]
            self._update("sgd_update", [p, g, b], [p, b], flags, scalars)

    def adam_step(self, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step, lr,
                  beta1, beta2, eps, weight_decay, decoupled, maximize):
        # Scalars as the composition computes them (flambeau.optim.adam.adam_step).
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        step_size = lr / bias_correction1
        flags = (1 if max_exp_avg_sqs is not None else 0) | (2 if decoupled else 0) | \
            (4 if maximize else 0)
        for i, p in enumerate(params):
            p, g = self._arr(p), self._arr(grads[i])
            m, v = self._arr(exp_avgs[i]), self._arr(exp_avg_sqs[i])
            vmax = self._arr(max_exp_avg_sqs[i]) if max_exp_avg_sqs is not None else v
            _float("adam_step", p)
            dt = p.dtype
            scalars = [_scalar(value, dt) for value in (
                1 - lr * weight_decay, weight_decay, 1 - beta1, beta2, 1 - beta2,
                bias_correction2_sqrt, eps, -step_size)]
            self._update("adam_update", [p, g, m, v, vmax], [p, m, v, vmax], flags, scalars,
                         vmax=True)

    def _update(self, name: str, arrays: list[CLArray], written: list[CLArray], flags: int,
                scalars: list[bytes], vmax: bool = False) -> None:
        """One optimizer update kernel over contiguous copies of ``arrays`` where needed
        (written ones are copied back)."""
        if arrays[0].size == 0:
            return
        work = [x if x.contiguous else self.copy(x) for x in arrays]
        dev = self._dev
        glob, loc, chunk = dev.split(work[0].size)
        offsets = [x.offset for x in work[:4]] + [0] * (4 - min(len(work), 4))
        lin = LIN.pack(work[0].size, chunk, *offsets, flags, 0)
        args: list = [lin, *(x.buffer for x in work)]
        if vmax:
            args.append(LONG.pack(work[4].offset))
        dev.run(dev.kernel(work[0].dtype, name), glob, loc, args + scalars)
        for original, copy in zip(arrays, work):
            if copy is not original and any(original is w for w in written):
                self._copy_into(original, copy)

    # ---- convolution ----------------------------------------------------------------

    def _cgeom(self, x_shape, w_hw, out_hw, stride, padding, dilation, groups, k, nb, chunk,
               x: CLArray | None) -> bytes:
        n, c, h, w = x_shape
        strides = x.strides if x is not None else (0, 0, 0, 0)
        offset = x.offset if x is not None else 0
        return CGEOM.pack(n, c, h, w, groups, c // groups, *w_hw, *out_hw, *stride, *padding,
                          *dilation, k, nb, chunk, *strides, offset)

    def _chunked(self, count: int, panels: int, per_item: int) -> tuple:
        """(global, local, chunk) for packing ``count`` columns of ``panels`` panels."""
        dev = self._dev
        if dev.gpu_style:
            return (-(-count // 64) * 64, panels), (64, 1), 1
        chunk = max(1, min(count, -(-4096 // per_item), -(-count * panels // (dev.units * 8))))
        return (-(-count // chunk), panels), (1, 1), chunk

    def conv2d(self, x, w, stride, padding, dilation, groups):
        x, w = self._arr(x), self._contiguous(self._arr(w))
        _float("conv2d", x, w)
        n = x.shape[0]
        o, cg, kh, kw = w.shape
        ho, wo = window_shape(x.shape[2:], (kh, kw), stride, padding, dilation)
        out = self._new((n, o, ho, wo), x.dtype)
        k = cg * kh * kw
        if out.size == 0:
            return out
        if k == 0:
            self._fill(out, 0)
            return out
        og, hw = o // groups, ho * wo
        rm, nr = tile(x.dtype)
        w_view = w.view((groups, og, k), (og * k, k, 1), w.offset)
        a = self._pack("pack_a", w_view, (n, groups), og, k, rm, k, 1)
        nb = -(-hw // nr)
        panels = n * groups * nb
        cols = self._new((panels * k * nr,), self._gemm_dtype(x.dtype))
        glob, loc, chunk = self._chunked(k, panels, nr)
        geom = self._cgeom(x.shape, (kh, kw), (ho, wo), stride, padding, dilation, groups, k, nb,
                           chunk, x)
        self._dev.run(self._dev.kernel(x.dtype, "pack_im2col"), glob, loc,
                      [geom, x.buffer, cols.buffer])
        b = Panels(cols, nb * k * nr, n * groups)
        self._gemm(a, b, out, og, hw, k, n * groups)
        return out

    def conv2d_grad_input(self, grad, w, x_shape, stride, padding, dilation, groups):
        grad, w = self._contiguous(self._arr(grad)), self._contiguous(self._arr(w))
        _float("conv2d_grad_input", grad, w)
        n, o, ho, wo = grad.shape
        _, cg, kh, kw = w.shape
        x_shape = tuple(x_shape)
        dx = self._new(x_shape, grad.dtype)
        k, og, hw = cg * kh * kw, o // groups, ho * wo
        if dx.size == 0:
            return dx
        if k == 0 or og == 0 or hw == 0:
            self._fill(dx, 0)
            return dx
        rm, nr = tile(grad.dtype)
        w_t = w.view((groups, k, og), (og * k, 1, k), w.offset)
        a = self._pack("pack_a", w_t, (n, groups), k, og, rm, 1, k)
        g_view = grad.view((n, groups, og, hw), (o * hw, og * hw, hw, 1), grad.offset)
        b = self._pack("pack_b", g_view, (n, groups), hw, og, nr, 1, hw)
        cols = self._new((n * groups, k, hw), grad.dtype)
        self._gemm(a, b, cols, k, hw, og, n * groups)
        geom = self._cgeom(x_shape, (kh, kw), (ho, wo), stride, padding, dilation, groups, k, 0,
                           0, None)
        dev = self._dev
        glob, loc, chunk = dev.split(dx.size)
        dev.run(dev.kernel(dx.dtype, "col2im"), glob, loc,
                [LIN.pack(dx.size, chunk, 0, 0, 0, 0, 0, 0), geom, cols.buffer, dx.buffer])
        return dx

    def conv2d_grad_weight(self, grad, x, w_shape, stride, padding, dilation, groups):
        grad, x = self._contiguous(self._arr(grad)), self._arr(x)
        _float("conv2d_grad_weight", grad, x)
        n, o, ho, wo = grad.shape
        _, cg, kh, kw = w_shape
        dw = self._new(tuple(w_shape), grad.dtype)
        k, og, hw = cg * kh * kw, o // groups, ho * wo
        if dw.size == 0:
            return dw
        if n * hw == 0:
            self._fill(dw, 0)
            return dw
        rm, nr = tile(grad.dtype)
        g_view = grad.view((groups, og, n * hw), (og * hw, hw, 1), grad.offset)
        a = self._pack("pack_a", g_view, (groups,), og, n * hw, rm, hw, 1, inner_cols=hw,
                       outer_col_stride=o * hw)
        nb = -(-k // nr)
        panels = groups * nb
        cols = self._new((panels * n * hw * nr,), self._gemm_dtype(x.dtype))
        glob, loc, chunk = self._chunked(n * hw, panels, nr)
        geom = self._cgeom(x.shape, (kh, kw), (ho, wo), stride, padding, dilation, groups, k, nb,
                           chunk, x)
        self._dev.run(self._dev.kernel(x.dtype, "pack_im2col_t"), glob, loc,
                      [geom, x.buffer, cols.buffer])
        b = Panels(cols, nb * n * hw * nr, groups)
        self._gemm(a, b, dw, og, k, n * hw, groups)
        return dw

    @staticmethod
    def _gemm_dtype(dtype: np.dtype) -> np.dtype:
        return GEMM_DTYPES[CTYPES[dtype.name].gemm]

    # ---- pooling --------------------------------------------------------------------

    def max_pool2d(self, x, kernel, stride, padding, dilation, ceil_mode):
        x = self._arr(x)
        _float("max_pool2d", x)
        out_hw = window_shape(x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
        y = self._new((*x.shape[:2], *out_hw), x.dtype)
        index = self._new(y.shape, INT64)
        if y.size == 0:
            return y, index
        geom = self._cgeom(x.shape, kernel, out_hw, stride, padding, dilation, 1, 0, 0, 0, x)
        dev = self._dev
        glob, loc, chunk = dev.split(y.size)
        dev.run(dev.kernel(x.dtype, "max_pool"), glob, loc,
                [LIN.pack(y.size, chunk, 0, 0, 0, 0, 0, 0), geom, x.buffer, y.buffer,
                 index.buffer])
        return y, index

    def max_pool2d_grad(self, grad, indices, x_shape, kernel, stride, padding, dilation,
                        ceil_mode):
        grad = self._contiguous(self._arr(grad))
        indices = self._contiguous(self._arr(indices))
        dx = self._new(tuple(x_shape), grad.dtype)
        if dx.size == 0:
            return dx
        geom = self._cgeom(tuple(x_shape), kernel, grad.shape[2:], stride, padding, dilation, 1,
                           0, 0, 0, None)
        dev = self._dev
        glob, loc, chunk = dev.split(dx.size)
        dev.run(dev.kernel(dx.dtype, "max_pool_grad"), glob, loc,
                [LIN.pack(dx.size, chunk, 0, 0, 0, 0, 0, 0), geom, grad.buffer,
                 LONG.pack(grad.offset), indices.buffer, LONG.pack(indices.offset), dx.buffer])
        return dx

    @staticmethod
    def _avg_mode(count_include_pad, divisor_override) -> int:
        if divisor_override is not None:
            return 2
        return 1 if count_include_pad else 0

    def avg_pool2d(self, x, kernel, stride, padding, ceil_mode, count_include_pad,
                   divisor_override):
        x = self._arr(x)
        _float("avg_pool2d", x)
        out_hw = window_shape(x.shape[2:], kernel, stride, padding, ceil_mode=ceil_mode)
        y = self._new((*x.shape[:2], *out_hw), x.dtype)
        if y.size == 0:
            return y
        geom = self._cgeom(x.shape, kernel, out_hw, stride, padding, (1, 1), 1, 0, 0, 0, x)
        dev = self._dev
        glob, loc, chunk = dev.split(y.size)
        mode = self._avg_mode(count_include_pad, divisor_override)
        dev.run(dev.kernel(x.dtype, "avg_pool"), glob, loc,
                [LIN.pack(y.size, chunk, 0, 0, 0, 0, 0, 0), geom, x.buffer, y.buffer,
                 INT.pack(mode), _scalar(divisor_override or 1, x.dtype)])
        return y

    def avg_pool2d_grad(self, grad, x_shape, kernel, stride, padding, ceil_mode,
                        count_include_pad, divisor_override):
        grad = self._contiguous(self._arr(grad))
        dx = self._new(tuple(x_shape), grad.dtype)
        if dx.size == 0:
            return dx
        geom = self._cgeom(tuple(x_shape), kernel, grad.shape[2:], stride, padding, (1, 1), 1,
                           0, 0, 0, None)
        dev = self._dev
        glob, loc, chunk = dev.split(dx.size)
        mode = self._avg_mode(count_include_pad, divisor_override)
        dev.run(dev.kernel(dx.dtype, "avg_pool_grad"), glob, loc,
                [LIN.pack(dx.size, chunk, 0, 0, 0, 0, 0, 0), geom, grad.buffer,
                 LONG.pack(grad.offset), dx.buffer, INT.pack(mode),
                 _scalar(divisor_override or 1, grad.dtype)])
        return dx
