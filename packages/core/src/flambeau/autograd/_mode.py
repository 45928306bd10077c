"""Grad mode: whether operations record the graph (per thread, like PyTorch)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _GradState(threading.local):
    enabled = True
    # The callbacks queued for the backward running in this thread (None when none runs):
    # kept here, beside the grad mode it saves anyway, so a backward costs no second lookup.
    callbacks: list | None = None


STATE = _GradState()


def is_grad_enabled() -> bool:
    """True when new operations record the autograd graph."""
    return STATE.enabled


class set_grad_enabled:
    """Turn graph recording on or off; usable as a call, a context manager or a decorator."""

    def __init__(self, mode: bool) -> None:
        self._previous = STATE.enabled
        self.mode = bool(mode)
        STATE.enabled = self.mode

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        STATE.enabled = self._previous

    def __call__(self, fn: F) -> F:
        mode = self.mode
        STATE.enabled = self._previous  # used as a decorator: no effect until called

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class _GradModeBlock:
    _mode = True

    def __new__(cls, orig_func: Any = None) -> Any:
        # ``@no_grad`` without parentheses decorates, as in PyTorch.
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)

    def __enter__(self) -> None:
        self._previous = STATE.enabled
        STATE.enabled = self._mode

    def __exit__(self, *exc: object) -> None:
        STATE.enabled = self._previous

    def __call__(self, fn: F) -> F:
        mode = self._mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            previous = STATE.enabled
            STATE.enabled = mode
            try:
                return fn(*args, **kwargs)
            finally:
                STATE.enabled = previous

        return wrapper  # type: ignore[return-value]


class no_grad(_GradModeBlock):
    """Context manager / decorator: operations inside record no graph.

    >>> import flambeau
    >>> with flambeau.no_grad():
    ...     y = flambeau.ones(2, requires_grad=True) * 2
    >>> y.requires_grad
    False
    """

    _mode = False


class enable_grad(_GradModeBlock):
    """Context manager / decorator: record the graph even inside ``no_grad``."""

    _mode = True


class inference_mode(_GradModeBlock):
    """Context manager / decorator for inference, usable with or without parentheses.

    In flambeau it is exactly :class:`no_grad` (``inference_mode(False)`` is
    :class:`enable_grad`, as in PyTorch). Unlike PyTorch, tensors made inside are not
    "inference tensors": they can later take part in autograd and be changed in place, and
    nothing runs faster than under ``no_grad``.

    >>> import flambeau
    >>> @flambeau.inference_mode
    ... def predict(x):
    ...     return x * 2
    >>> predict(flambeau.ones(2, requires_grad=True)).requires_grad
    False
    """

    _mode = False

    def __new__(cls, mode: Any = True) -> Any:
        if isinstance(mode, bool):
            return object.__new__(cls)
        return cls()(mode)

    def __init__(self, mode: bool = True) -> None:
        self._mode = not mode
