"""``flambeau.compile``: accepted so that PyTorch scripts run; it compiles nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def compile(model: Any = None, *, fullgraph: bool = False, dynamic: bool | None = None,
            backend: Any = "inductor", mode: str | None = None,
            options: dict[str, Any] | None = None, disable: bool = False) -> Any:
    """Return ``model`` (a module or a function) unchanged: **nothing is compiled**.

    flambeau has no compiler; this pass-through lets scripts written for
    ``torch.compile`` run as they are, at eager speed. The options are accepted and
    ignored. Called without a model it returns a decorator, like
    ``@torch.compile(mode=...)``; ``@flambeau.compile`` works too.

    >>> import flambeau
    >>> net = flambeau.nn.Linear(2, 1)
    >>> flambeau.compile(net) is net
    True
    >>> @flambeau.compile(mode="max-autotune")
    ... def double(x):
    ...     return x * 2
    >>> double(flambeau.ones(2))
    tensor([2., 2.])
    """
    if model is None:
        def decorate(fn: Callable[..., Any]) -> Any:
            return fn

        return decorate
    return model


__all__ = ["compile"]
