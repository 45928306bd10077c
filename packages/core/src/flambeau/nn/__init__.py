"""``flambeau.nn``: modules, parameters, layers, initialisers (PyTorch's names).

>>> from flambeau import nn
>>> net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
>>> net[0].weight
<UninitializedParameter>
"""

from __future__ import annotations

from . import functional, init, parallel, utils
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .layers.activation import (
    ELU,
    GELU,
    SELU,
    Hardsigmoid,
    Hardswish,
    LeakyReLU,
    LogSoftmax,
    Mish,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from .layers.basic import (
    Dropout,
    Dropout1d,
    Dropout2d,
    Flatten,
    Unflatten,
    Upsample,
    UpsamplingBilinear2d,
    UpsamplingNearest2d,
)
from .layers.conv import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    Conv1d,
    Conv2d,
    ConvTranspose2d,
    LazyConv1d,
    LazyConv2d,
    LazyConvTranspose2d,
    MaxPool1d,
    MaxPool2d,
)
from .layers.linear import Identity, LazyLinear, Linear
from .layers.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from .layers.normalization import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    GroupNorm,
    LayerNorm,
    LazyBatchNorm1d,
    LazyBatchNorm2d,
    LazyBatchNorm3d,
)
from .layers.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from .layers.sparse import Embedding
from .layers.transformer import (
    MultiheadAttention,
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from .module import IncompatibleKeys, LayerInputError, Module, StateDictError
from .parameter import (
    Parameter,
    UninitializedBuffer,
    UninitializedParameter,
    UninitializedParameterError,
)
from .summary import ModelSummary, summary

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
    "CrossEntropyLoss", "Embedding", "GroupNorm", "HuberLoss", "L1Loss", "LayerNorm",
    "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "MSELoss", "NLLLoss",
    "SmoothL1Loss", "UninitializedBuffer",
    "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNBase", "RNNCell", "RNNCellBase",
    "GELU", "Dropout", "Flatten", "Identity", "IncompatibleKeys", "LayerInputError",
    "LazyLinear", "LeakyReLU", "Linear", "LogSoftmax", "ModelSummary", "Module", "ModuleDict",
    "ModuleList", "Parameter", "ParameterDict", "ParameterList", "ReLU", "SiLU", "Sequential",
    "Sigmoid", "Softmax", "StateDictError", "Tanh", "UninitializedParameter",
    "UninitializedParameterError", "Unflatten", "functional", "init", "parallel", "summary",
    "utils",
    "AdaptiveAvgPool2d", "AvgPool2d", "Conv1d", "Conv2d", "ConvTranspose2d", "LazyConv1d",
    "LazyConv2d", "LazyConvTranspose2d", "MaxPool2d",
]
__all__ += [
    "ELU", "SELU", "Hardsigmoid", "Hardswish", "Mish", "Softplus", "Dropout1d", "Dropout2d",
    "Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d", "AdaptiveMaxPool2d",
    "AvgPool1d", "MaxPool1d", "MultiheadAttention", "Transformer", "TransformerDecoder",
    "TransformerDecoderLayer", "TransformerEncoder", "TransformerEncoderLayer",
]
