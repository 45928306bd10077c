"""``flambeau.nn.functional``: the functions layers are made of (PyTorch's names).

The public face of the operations in ``flambeau._ops``, where each one lives with its
gradient rule and its choice between a backend's fused kernel and the composition.

>>> import flambeau
>>> from flambeau.nn import functional as F
>>> F.relu(flambeau.tensor([-1.0, 2.0])).tolist()
[0.0, 2.0]
"""

from __future__ import annotations

from .._ops.activation import (
    dropout,
    dropout1d,
    dropout2d,
    elu,
    hardsigmoid,
    hardswish,
    leaky_relu,
    mish,
    relu,
    selu,
    silu,
    softplus,
)
from .._ops.attention import multi_head_attention_forward, scaled_dot_product_attention
from .._ops.conv import conv1d, conv2d, conv_transpose2d
from .._ops.elementwise import gelu, sigmoid, tanh
from .._ops.embedding import embedding, one_hot
from .._ops.linalg import linear
from .._ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from .._ops.normalization import batch_norm, group_norm, layer_norm
from .._ops.pooling import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
)
from .._ops.sampling import interpolate
from .._ops.shape import pad
from .._ops.softmax import log_softmax, softmax

__all__ = ["batch_norm", "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "cross_entropy", "dropout", "embedding", "gelu", "group_norm", "huber_loss",
           "l1_loss", "layer_norm", "leaky_relu", "linear", "log_softmax", "mse_loss",
           "nll_loss", "one_hot", "pad", "relu", "sigmoid", "silu", "smooth_l1_loss", "softmax",
           "tanh"]
__all__ += ["adaptive_avg_pool2d", "avg_pool2d", "conv1d", "conv2d", "conv_transpose2d",
            "max_pool2d"]
__all__ += ["adaptive_max_pool2d", "avg_pool1d", "dropout1d", "dropout2d", "elu",
            "hardsigmoid", "hardswish", "interpolate", "max_pool1d", "mish",
            "multi_head_attention_forward", "scaled_dot_product_attention", "selu", "softplus"]
