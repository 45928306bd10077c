"""``flambeau.nn.utils``: gradient clipping and flattening parameters (PyTorch's names).

>>> import flambeau
>>> from flambeau import nn
>>> w = nn.Parameter(flambeau.tensor([3.0, 4.0]))
>>> w.grad = flambeau.tensor([30.0, 40.0])
>>> nn.utils.clip_grad_norm_([w], max_norm=5.0)
tensor(50.)
>>> w.grad
tensor([3., 4.])
"""

from __future__ import annotations

from .clip_grad import (
    clip_grad_norm,
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_with_norm_,
    get_total_norm,
)
from .convert_parameters import parameters_to_vector, vector_to_parameters

__all__ = ["clip_grad_norm", "clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_",
           "get_total_norm", "parameters_to_vector", "vector_to_parameters"]
