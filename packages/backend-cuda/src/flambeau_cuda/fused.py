"""Optional fused kernels on the GPU: softmax, log-softmax, cross-entropy and its gradient,
layer and batch norm, conv2d and its two gradients, max and average pooling with their
gradients, and multi-tensor SGD and Adam steps.

Signatures and meanings are those of :data:`flambeau.backends.OPTIONAL_KERNELS`; the
references, which the conformance kit compares these with, are the core's compositions.
The raw kernels are in ``sources/*.cu``, for float32 and float64; float16 arrays are
computed in float32 and rounded back. A convolution is im2col and one cuBLAS product per
chunk of the batch (its gradient for the input: the product, then col2im).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import cupy as cp
import numpy as np

from flambeau.backends import window_shape

from . import programs

HALF = np.dtype(np.float16)
#: Most im2col elements one chunk of a batch holds (256 MiB of float32).
COLUMN_BUDGET = 1 << 26
#: layer_norm reduces rows with one block each when there are this many rows or the
#: rows are this short; a few long rows (batch norm's channels) use cupy's reductions,
#: which spread each row over many blocks.
ROW_KERNEL_MIN_ROWS = 128
ROW_KERNEL_MAX_COLS = 4096
#: Most tensors one multi-tensor launch updates (the grid's y dimension).
MAX_TENSORS_PER_LAUNCH = 65535


def _float32_for_half(method: Any) -> Any:
    """``method`` computed in float32 when its first array is float16, float results
    rounded back to float16 (the raw kernels exist for float32 and float64)."""

    def up(a: Any) -> Any:
        return a.astype(np.float32) if isinstance(a, cp.ndarray) and a.dtype == HALF else a

    def down(a: Any) -> Any:
        return a.astype(HALF) if isinstance(a, cp.ndarray) and a.dtype == np.float32 else a

    @functools.wraps(method)
    def run(self: Any, first: Any, *args: Any, **kwargs: Any) -> Any:
        if first.dtype != HALF:
            return method(self, first, *args, **kwargs)
        result = method(self, up(first), *(up(a) for a in args),
                        **{k: up(v) for k, v in kwargs.items()})
        return tuple(down(r) for r in result) if isinstance(result, tuple) else down(result)

    return run


def _i64(*values: int) -> tuple:
    return tuple(np.int64(v) for v in values)


def _i32(*values: int) -> tuple:
    return tuple(np.int32(v) for v in values)


def _spans(n: int, per_sample: int) -> list[tuple[int, int]]:
    """Batch chunks [start, stop) whose im2col columns fit :data:`COLUMN_BUDGET`."""
    step = max(1, min(n, COLUMN_BUDGET // max(per_sample, 1)))
    return [(start, min(n, start + step)) for start in range(0, n, step)]


class FusedKernels:
    """Fused kernels, mixed into :class:`~flambeau_cuda.kernels.CupyKernels` (which gives
    ``self._raw``, the compiled raw kernels, and ``self.matmul``)."""

    _raw: programs.RawKernels

    # --- softmax and cross-entropy ------------------------------------------------------

    @_float32_for_half
    def softmax(self, x, axis):
        return self._softmax(x, axis, log_output=False)

    @_float32_for_half
    def log_softmax(self, x, axis):
        return self._softmax(x, axis, log_output=True)

    def _softmax(self, x, axis, log_output):
        if x.ndim == 0:
            return self._softmax(x.reshape(1), 0, log_output).reshape(())
        axis %= x.ndim
        rows_last = cp.ascontiguousarray(cp.moveaxis(x, axis, -1))
        y = cp.empty_like(rows_last)
        cols = rows_last.shape[-1]
        rows = rows_last.size // cols if cols else 0
        programs.launch_rows(self._raw.get("softmax.cu", "softmax_rows", x.dtype), rows, cols,
                             (rows_last, y, *_i64(rows, cols), np.int32(log_output)))
        return cp.ascontiguousarray(cp.moveaxis(y, -1, axis))

    @_float32_for_half
    def cross_entropy(self, logits, target):
        logits = cp.ascontiguousarray(logits)
        rows, cols = logits.shape
        loss = cp.empty(rows, logits.dtype)
        programs.launch_rows(self._raw.get("softmax.cu", "cross_entropy_rows", logits.dtype),
                             rows, cols,
                             (logits, cp.ascontiguousarray(target, dtype=np.int64), loss,
                              *_i64(rows, cols)))
        return loss

    @_float32_for_half
    def cross_entropy_grad(self, logits, target, grad):
        logits = cp.ascontiguousarray(logits)
        rows, cols = logits.shape
        dx = cp.empty((rows, cols), logits.dtype)
        # grad is (N,) or 0-d: step 0 gives every row its one element.
        grad = cp.ascontiguousarray(grad, dtype=logits.dtype)
        programs.launch_rows(
            self._raw.get("softmax.cu", "cross_entropy_grad_rows", logits.dtype), rows, cols,
            (logits, cp.ascontiguousarray(target, dtype=np.int64), grad,
             *_i64(1 if grad.size > 1 else 0), dx, *_i64(rows, cols)))
        return dx

    # --- normalisation ------------------------------------------------------------------

    @_float32_for_half
    def layer_norm(self, x, weight, bias, axes, eps):
        axes = tuple(axes)
        kept = tuple(a for a in range(x.ndim) if a not in axes)
        stats_shape = tuple(1 if a in axes else n for a, n in enumerate(x.shape))
        rows = math.prod(x.shape[a] for a in kept)
        cols = math.prod(x.shape[a] for a in axes)
        if x.size and (rows >= ROW_KERNEL_MIN_ROWS or cols <= ROW_KERNEL_MAX_COLS):
            by_rows = cp.ascontiguousarray(x.transpose(kept + axes))  # no copy for layer norm
            mean, var = cp.empty(rows, x.dtype), cp.empty(rows, x.dtype)
            programs.launch_rows(self._raw.get("norm.cu", "row_moments", x.dtype), rows, cols,
                                 (by_rows, mean, var, *_i64(rows, cols)))
            mean, var = mean.reshape(stats_shape), var.reshape(stats_shape)
        else:
            mean = x.mean(axis=axes, keepdims=True)
            centered = x - mean
            var = (centered * centered).mean(axis=axes, keepdims=True)
        return self._normalize(x, weight, bias, mean, var, eps), mean, var

    @_float32_for_half
    def batch_norm(self, x, weight, bias, mean, var, eps):
        return self._normalize(x, weight, bias, mean, var, eps)

    @staticmethod
    def _normalize(x, weight, bias, mean, var, eps):
        one = x.dtype.type
        return programs.elementwise("normalize")(
            x, mean, var, one(1) if weight is None else weight,
            one(0) if bias is None else bias, one(eps))

    # --- convolution --------------------------------------------------------------------

    def _im2col(self, x, kernel, stride, padding, dilation, out):
        n, c = x.shape[:2]
        cols = cp.empty((c * kernel[0] * kernel[1], n * out[0] * out[1]), x.dtype)
        programs.launch(self._raw.get("conv.cu", "im2col", x.dtype), cols.size,
                        (x, cols, *self._geometry(x.shape, out, kernel, stride, padding,
                                                  dilation)))
        return cols

    @staticmethod
    def _geometry(x_shape, out, kernel, stride, padding, dilation) -> tuple:
        """The scalars of conv.cu's GEOMETRY_PARAMS."""
        return (*_i64(*x_shape, *out), *_i32(*kernel, *stride, *padding, *dilation))

    @_float32_for_half
    def conv2d(self, x, w, stride, padding, dilation, groups):
        n, c = x.shape[:2]
        o, cg, kh, kw = w.shape
        ho, wo = window_shape(x.shape[2:], (kh, kw), stride, padding, dilation)
        y = cp.empty((n, o, ho, wo), x.dtype)
        if y.size == 0:
            return y
        x = cp.ascontiguousarray(x)
        wm = w.reshape(groups, o // groups, cg * kh * kw)
        for start, stop in _spans(n, c * kh * kw * ho * wo):
            cols = self._im2col(x[start:stop], (kh, kw), stride, padding, dilation, (ho, wo))
            out = self.matmul(wm, cols.reshape(groups, cg * kh * kw, -1))
            y[start:stop] = out.reshape(o, stop - start, ho, wo).transpose(1, 0, 2, 3)
        return y

    @_float32_for_half
    def conv2d_grad_weight(self, grad, x, w_shape, stride, padding, dilation, groups):
        n, o, ho, wo = grad.shape
        c = x.shape[1]
        cg, kh, kw = w_shape[1:]
        x = cp.ascontiguousarray(x)
        total = None
        for start, stop in _spans(n, c * kh * kw * ho * wo):
            cols = self._im2col(x[start:stop], (kh, kw), stride, padding, dilation, (ho, wo))
            g = cp.ascontiguousarray(grad[start:stop].transpose(1, 0, 2, 3))
            part = self.matmul(g.reshape(groups, o // groups, -1),
                               cols.reshape(groups, cg * kh * kw, -1).transpose(0, 2, 1))
            total = part if total is None else cp.add(total, part, out=total)
        if total is None:  # an empty batch
            return cp.zeros(tuple(w_shape), grad.dtype)
        return total.reshape(tuple(w_shape))

    @_float32_for_half
    def conv2d_grad_input(self, grad, w, x_shape, stride, padding, dilation, groups):
        n, o, ho, wo = grad.shape
        cg, kh, kw = w.shape[1:]
        c = cg * groups
        x_shape = tuple(x_shape)
        dx = cp.empty(x_shape, grad.dtype)
        wt = w.reshape(groups, o // groups, cg * kh * kw).transpose(0, 2, 1)
        col2im = self._raw.get("conv.cu", "col2im", grad.dtype)
        for start, stop in _spans(n, c * kh * kw * ho * wo):
            g = cp.ascontiguousarray(grad[start:stop].transpose(1, 0, 2, 3))
            cols = self.matmul(wt, g.reshape(groups, o // groups, -1)).reshape(c * kh * kw, -1)
            part = dx[start:stop]
            programs.launch(col2im, part.size,
                            (cols, part, *self._geometry(part.shape, (ho, wo), (kh, kw),
                                                         stride, padding, dilation)))
        return dx

    # --- pooling ------------------------------------------------------------------------

    @staticmethod
    def _pool_geometry(x_shape, out, kernel, stride, padding) -> tuple:
        """The scalars of pool.cu's POOL_PARAMS."""
        n, c, h, w = x_shape
        return (*_i64(n * c, h, w, *out), *_i32(*kernel, *stride, *padding))

    @_float32_for_half
    def max_pool2d(self, x, kernel, stride, padding, dilation, ceil_mode):
        out = window_shape(x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
        values = cp.empty((*x.shape[:2], *out), x.dtype)
        indices = cp.empty(values.shape, np.int64)
        programs.launch(self._raw.get("pool.cu", "max_pool", x.dtype), values.size,
                        (cp.ascontiguousarray(x), values, indices,
                         *self._pool_geometry(x.shape, out, kernel, stride, padding),
                         *_i32(*dilation)))
        return values, indices

    @_float32_for_half
    def max_pool2d_grad(self, grad, indices, x_shape, kernel, stride, padding, dilation,
                        ceil_mode):
        dx = cp.empty(tuple(x_shape), grad.dtype)
        programs.launch(self._raw.get("pool.cu", "max_pool_grad", grad.dtype), dx.size,
                        (cp.ascontiguousarray(grad), cp.ascontiguousarray(indices), dx,
                         *self._pool_geometry(x_shape, grad.shape[2:], kernel, stride,
                                              padding), *_i32(*dilation)))
        return dx

    @_float32_for_half
    def avg_pool2d(self, x, kernel, stride, padding, ceil_mode, count_include_pad,
                   divisor_override):
        out = window_shape(x.shape[2:], kernel, stride, padding, ceil_mode=ceil_mode)
        y = cp.empty((*x.shape[:2], *out), x.dtype)
        programs.launch(self._raw.get("pool.cu", "avg_pool", x.dtype), y.size,
                        (cp.ascontiguousarray(x), y,
                         *self._pool_geometry(x.shape, out, kernel, stride, padding),
                         np.int32(count_include_pad), np.int64(divisor_override or 0)))
        return y

    @_float32_for_half
    def avg_pool2d_grad(self, grad, x_shape, kernel, stride, padding, ceil_mode,
                        count_include_pad, divisor_override):
        dx = cp.empty(tuple(x_shape), grad.dtype)
        programs.launch(self._raw.get("pool.cu", "avg_pool_grad", grad.dtype), dx.size,
                        (cp.ascontiguousarray(grad), dx,
                         *self._pool_geometry(x_shape, grad.shape[2:], kernel, stride,
                                              padding),
                         np.int32(count_include_pad), np.int64(divisor_override or 0)))
        return dx

    # --- optimizer steps ----------------------------------------------------------------

    def sgd_step(self, params, grads, bufs, *, lr, momentum, dampening, weight_decay,
                 nesterov, maximize):
        has_buffer = bufs is not None

        def scalars(t):
            return (t(lr), t(momentum), t(1 - dampening), t(weight_decay),
                    *_i32(nesterov, maximize, has_buffer))

        self._multi_tensor("sgd_step", [params, grads, bufs or [None] * len(params)],
                           (True, False, True), scalars)

    def adam_step(self, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step, lr,
                  beta1, beta2, eps, weight_decay, decoupled, maximize):
        amsgrad = max_exp_avg_sqs is not None
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        step_size = lr / (1 - beta1**step)

        def scalars(t):
            return (t(beta2), t(eps), t(weight_decay), t(1 - lr * weight_decay), t(1 - beta1),
                    t(1 - beta2), t(bias_correction2_sqrt), t(step_size),
                    *_i32(decoupled, maximize, amsgrad))

        self._multi_tensor("adam_step",
                           [params, grads, exp_avgs, exp_avg_sqs,
                            max_exp_avg_sqs or [None] * len(params)],
                           (True, False, True, True, True), scalars)

    def _multi_tensor(self, name, lists, writable, scalars) -> None:
        """Launch optim.cu's kernel ``name`` once per dtype for the tensors ``lists[k][i]``.

        The kernel reads a table of pointers; an array it cannot address as a flat
        C-contiguous array of the kernel's type (a view, or float16 which runs in float32)
        is replaced by such a copy, written back afterwards if the kernel writes it.
        """
        by_dtype: dict[np.dtype, list[int]] = {}
        for i, param in enumerate(lists[0]):
            by_dtype.setdefault(param.dtype, []).append(i)
        for dtype, members in by_dtype.items():
            work = np.dtype(np.float32) if dtype == HALF else dtype
            function = self._raw.get("optim.cu", name, work)
            for first in range(0, len(members), MAX_TENSORS_PER_LAUNCH):
                chunk = members[first:first + MAX_TENSORS_PER_LAUNCH]
                entries, keep, write_back = [], [], []
                for i in chunk:
                    for arrays, writes in zip(lists, writable):
                        a = arrays[i]
                        if a is not None and (a.dtype != work or not a.flags.c_contiguous):
                            copy = a.astype(work, order="C")
                            keep.append(copy)
                            if writes:
                                write_back.append((a, copy))
                            a = copy
                        entries.append(0 if a is None else a.data.ptr)
                    entries.append(lists[0][i].size)
                largest = max(lists[0][i].size for i in chunk)
                if largest:
                    blocks = min(-(-largest // programs.BLOCK), 1024)
                    function((blocks, len(chunk)), (programs.BLOCK,),
                             (self._table(entries), *scalars(work.type)))
                for target, copy in write_back:
                    cp.copyto(target, copy, casting="unsafe")

    def _table(self, entries: list[int]) -> cp.ndarray:
        """``entries`` as an int64 device array, cached: parameters keep their memory from
        step to step, so the same table usually serves every step."""
        tables = self.__dict__.setdefault("_tables", {})
        host = np.array(entries, np.int64)
        key = host.tobytes()
        table = tables.get(key)
        if table is None:
            if len(tables) >= 64:
                tables.clear()
            table = tables[key] = cp.asarray(host)
        return table
