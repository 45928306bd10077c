"""``flambeau.optim``: optimizers and learning-rate schedulers (PyTorch's names).

>>> import flambeau
>>> from flambeau import nn, optim
>>> net = nn.Linear(4, 1)
>>> opt = optim.Adam(net.parameters(), lr=1e-3)
>>> loss = (net(flambeau.ones(8, 4)) ** 2).mean()
>>> opt.zero_grad()
>>> loss.backward()
>>> opt.step()
"""

from __future__ import annotations

from . import lr_scheduler
from .adagrad import Adadelta, Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer, required
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler",
           "required"]
