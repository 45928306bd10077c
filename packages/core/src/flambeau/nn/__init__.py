"""``flambeau.nn``: modules, parameters, layers, initialisers (PyTorch's names).

>>> from flambeau import nn
>>> net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
>>> net[0].weight
<UninitializedParameter>
"""

from __future__ import annotations

from . import functional, init
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .layers.activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax, Tanh
from .layers.basic import Dropout, Flatten, Unflatten
from .layers.linear import Identity, LazyLinear, Linear
from .module import IncompatibleKeys, LayerInputError, Module, StateDictError
from .parameter import (
    Parameter,
    UninitializedParameter,
    UninitializedParameterError,
)
from .summary import ModelSummary, summary

__all__ = [
    "GELU", "Dropout", "Flatten", "Identity", "IncompatibleKeys", "LayerInputError",
    "LazyLinear", "LeakyReLU", "Linear", "LogSoftmax", "ModelSummary", "Module", "ModuleDict",
    "ModuleList", "Parameter", "ParameterDict", "ParameterList", "ReLU", "SiLU", "Sequential",
    "Sigmoid", "Softmax", "StateDictError", "Tanh", "UninitializedParameter",
    "UninitializedParameterError", "Unflatten", "functional", "init", "summary",
]
