"""Fused optimizer updates for the cpu backend: one call updates every parameter in
place with numpy's in-place ufuncs, the same formulas (and rounding order) as the core's
reference compositions in ``flambeau.optim.sgd.sgd_step`` and ``flambeau.optim.adam``."""

from __future__ import annotations

import numpy as np


class FusedOptimizerKernels:
    """``sgd_step`` and ``adam_step`` of ``flambeau.backends.OPTIONAL_KERNELS``."""

    def sgd_step(self, params, grads, bufs, *, lr, momentum, dampening, weight_decay,
                 nesterov, maximize):
        for i, (p, g) in enumerate(zip(params, grads)):
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
