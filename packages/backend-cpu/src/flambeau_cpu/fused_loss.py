"""The fused softmax and cross-entropy kernels of the cpu backend (references:
``flambeau.nn._softmax.softmax_reference``, ``log_softmax_reference``,
``flambeau.nn._loss.cross_entropy_reference`` and ``cross_entropy_grad_reference``)."""

from __future__ import annotations

import numpy as np


def _shifted(x, axis):
    """``(x - shift, shift)`` with ``shift`` the maximum along ``axis`` (kept), or 0 where
    that maximum is not finite: rows of -inf (or +inf) are not shifted, as in the
    references."""
    shift = np.maximum.reduce(x, axis=axis, keepdims=True) if x.size else np.zeros_like(x)
    if not np.isfinite(shift).all():
        shift[~np.isfinite(shift)] = 0
    return x - shift, shift


class FusedLossKernels:
    """``softmax``, ``log_softmax``, ``cross_entropy`` and ``cross_entropy_grad`` of
    ``flambeau.backends.OPTIONAL_KERNELS``."""

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
        return total - logits[np.arange(len(target)), target]

    def cross_entropy_grad(self, logits, target, grad):
        probs = self.softmax(logits, 1)
        probs[np.arange(len(target)), target] -= 1
        probs *= grad[:, None] if grad.ndim else grad
        return probs
