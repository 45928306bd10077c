"""``flambeau.nn``: modules, parameters, layers, initialisers (PyTorch's names).

>>> from flambeau import nn
>>> net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
>>> net[0].weight
<UninitializedParameter>
"""

from __future__ import annotations

from . import functional, init, utils
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .layers.activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Tanh
from .layers.basic import Dropout, Flatten, Unflatten
from .layers.conv import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    Conv1d,
    Conv2d,
    ConvTranspose2d,
    LazyConv1d,
    LazyConv2d,
    LazyConvTranspose2d,
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
    "UninitializedParameterError", "Unflatten", "functional", "init", "summary", "utils",
    "AdaptiveAvgPool2d", "AvgPool2d", "Conv1d", "Conv2d", "ConvTranspose2d", "LazyConv1d",
    "LazyConv2d", "LazyConvTranspose2d", "MaxPool2d",
]
