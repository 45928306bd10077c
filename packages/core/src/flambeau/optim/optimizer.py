"""``Optimizer``: parameter groups, per-parameter state, and PyTorch's state-dict format.

An optimizer holds ``param_groups`` (dicts with a ``"params"`` list and that group's
options, defaults filled in) and ``state`` (a dict from parameter to its buffers).
``step()`` runs under ``no_grad`` and updates parameters with in-place tensor ops, so
it works on every device; a backend's fused kernels (``sgd_step``, ``adam_step``, see
:data:`flambeau.backends.OPTIONAL_KERNELS`) replace the composition where present.

Parameters are referred to by object, never by value: a lazy (uninitialised) parameter
can be handed to an optimizer before the model's first forward, because materialising
it keeps the same object. A tensor listed twice (a tied weight) is one parameter,
updated once per step.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from .._ops._common import full_like_device
from .._tensor import Tensor
from ..autograd import enable_grad, no_grad
from ..errors import DeviceMismatchError, ShapeError


class _RequiredParameter:
    """Marks an option a parameter group must give (no default)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required: Any = _RequiredParameter()
"""Default value of an option without a default (PyTorch's ``optim.optimizer.required``)."""


# Unlike PyTorch, a set is refused at the top level too: its order, and so the indices
# of a state dict, changes between runs.
_SET_ERROR = ("optimizer parameters need to be organized in ordered collections, but the "
              "ordering of tensors in sets changes between runs; use a list instead")


# How PyTorch's messages name an option ("Invalid learning rate: -1 (must be >= 0)").
_OPTION_LABELS = {"lr": "learning rate", "eps": "epsilon value"}


class Optimizer:
    """Base class of optimizers: parameter groups, state, ``zero_grad`` and state dicts.

    Args:
        params: An iterable of tensors, of ``(name, tensor)`` pairs (e.g.
            ``model.named_parameters()``), or of dicts each defining a parameter group
            (``{"params": [...], "lr": 0.1}``) whose options override ``defaults``.
        defaults: Option values for groups that do not set them.

    Subclasses define ``_step_group(group)``, called under ``no_grad`` for each group by
    :meth:`step`, and may define ``_check_group(group)`` to validate a group's options.

    >>> import flambeau
    >>> from flambeau import nn, optim
    >>> net = nn.Linear(2, 1)
    >>> opt = optim.SGD([{"params": [net.weight]}, {"params": [net.bias], "lr": 0.5}], lr=0.1)
    >>> [g["lr"] for g in opt.param_groups]
    [0.1, 0.5]
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._step_count = 0
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got a single {type(params).__name__}; wrap it in a list: [tensor]")
        if isinstance(params, dict):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got a dict; pass [dict] for one group")
        if isinstance(params, (set, frozenset)):
            raise TypeError(_SET_ERROR)
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # --- groups -------------------------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (e.g. to unfreeze layers while
        fine-tuning). Options the group does not set take the optimizer's defaults.

        Raises:
            TypeError: for something that is not a tensor among the parameters.
            ValueError: for a non-leaf tensor, a parameter already in another group, or a
                missing required option.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry with its tensors")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(_SET_ERROR)
        params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with or without names; some "
                                 "param names are missing")
            params = [p[1] for p in params]
        for i, param in enumerate(params):
            if not isinstance(param, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but parameter {i} of "
                                f"group {len(self.param_groups)} is a {type(param).__name__}")
            if param.grad_fn is not None:
                raise ValueError(
                    f"can't optimize a non-leaf Tensor (parameter {i} of group "
                    f"{len(self.param_groups)} was computed by {param.grad_fn.name()}); "
                    "optimize the leaf it came from, or detach().requires_grad_() a copy")
        # A tied parameter listed twice would otherwise be updated twice per step.
        unique: dict[int, int] = {}
        for i, param in enumerate(params):
            unique.setdefault(id(param), i)
        if len(unique) != len(params):
            warnings.warn(
                f"optimizer got a parameter group with {len(params) - len(unique)} duplicate "
                "parameter(s) (the same tensor listed more than once, e.g. a tied weight); "
                "each is kept once and updated once per step", UserWarning, stacklevel=3)
            keep = sorted(unique.values())
            params = [params[i] for i in keep]
            names = [names[i] for i in keep] if names else names
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in taken for p in params):
            raise ValueError("some parameters appear in more than one parameter group; each "
                             "tensor may belong to one group only")
        if any(("param_names" in g) != bool(names) for g in self.param_groups):
            raise ValueError("all optimizer param groups should be with or without names")
        group["params"] = params
        if names:
            group["param_names"] = names
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            group.setdefault(name, default)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate a group's options (subclasses raise ``ValueError`` on bad values)."""

    @staticmethod
    def _require_non_negative(group: dict[str, Any], *names: str) -> None:
        """Raise PyTorch's ``ValueError`` for the first of ``names`` that is negative."""
        for name in names:
            if group[name] < 0.0:
                label = _OPTION_LABELS.get(name, f"{name} value")
                raise ValueError(f"Invalid {label}: {group[name]} (must be >= 0)")

    # --- stepping -----------------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to ``None`` (default) or to zeros in place."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:
                    grad = param.grad
                    if grad.grad_fn is not None:
                        grad.detach_()
                    else:
                        grad.requires_grad = False
                    grad.zero_()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns ``closure()``'s loss.

        Args:
            closure: Re-evaluates the model and returns the loss (called with gradients
                enabled, before the update), for optimizers that need it.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._step_group(group)
        self._step_count += 1
        return loss

    def _step_group(self, group: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define step() or _step_group()")

    def _params_with_grad(self, group: dict[str, Any]) -> list[Tensor]:
        """The group's parameters that have a gradient, checked against their shapes."""
        out = []
        for param in group["params"]:
            grad = param.grad
            if grad is None:
                continue
            # ``.grad =`` checks both; ``param.data = ...`` may change them afterwards.
            if grad.shape != param.shape:
                raise ShapeError(f"{type(self).__name__}: a parameter of shape "
                                 f"{list(param.shape)} has a gradient of shape "
                                 f"{list(grad.shape)}; they must match")
            if grad._device is not param._device and grad._device != param._device:
                raise DeviceMismatchError(
                    f"{type(self).__name__}: a parameter on {param.device} has a gradient on "
                    f"{grad.device}; move the gradient (or zero_grad()) after moving the "
                    "parameter")
            out.append(param)
        return out

    # --- state dicts --------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state in PyTorch's format.

        ``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``, where
        parameters are numbered across groups in order. Tensors are copies (a snapshot:
        later steps do not change it); ``"step"`` counts are ints.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for param in group["params"]:
                index.setdefault(id(param), len(index))
                packed["params"].append(index[id(param)])
            groups.append(packed)
        state = {}
        for param, values in self.state.items():
            if id(param) in index and values:
                state[index[id(param)]] = {k: _snapshot(v) for k, v in values.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore state saved by :meth:`state_dict` (this library's or PyTorch's).

        Groups and parameters are matched by position; each group keeps its parameters
        and takes the saved options. State tensors are copied to their parameter's device
        and dtype. Everything is checked before anything changes.
        """
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError("expected an optimizer state dict: a dict with 'state' and "
                             f"'param_groups', got {_describe(state_dict)}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter group(s), "
                             f"this optimizer has {len(self.param_groups)}")
        by_index: dict[int, Tensor] = {}
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"loaded state dict's parameter group {i} has "
                                 f"{len(saved['params'])} parameter(s), this optimizer's has "
                                 f"{len(group['params'])}")
            for key, param in zip(saved["params"], group["params"]):
                by_index[int(key)] = param
        state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for key, values in state_dict["state"].items():
            if int(key) not in by_index:
                raise ValueError(f"loaded state dict has state for parameter {key}, which no "
                                 "parameter group lists")
            param = by_index[int(key)]
            state[param] = {name: _restore(name, value, param, key)
                            for name, value in values.items()}
        groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            new = {k: v for k, v in saved.items() if k not in ("params", "param_names")}
            new["params"] = group["params"]
            if "param_names" in group:
                new["param_names"] = group["param_names"]
            groups.append(new)
        self.state = state
        self.param_groups = groups

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key not in ("params", "param_names"):
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def zeros_like_param(param: Tensor) -> Tensor:
    """A zero buffer with ``param``'s shape, dtype and device (for optimizer state)."""
    return full_like_device(0, tuple(param.shape), param.dtype, param)


def _snapshot(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach().clone()
    return value


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))}"
    return f"a {type(value).__name__}"


def _restore(name: str, value: Any, param: Tensor, key: Any) -> Any:
    """A saved state value made ready for ``param``: steps as ints, tensors copied onto
    the parameter's device (floats in its dtype)."""
    if name == "step":
        return int(float(value.item() if hasattr(value, "item") else value))
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if not isinstance(value, Tensor):
        if not hasattr(value, "__array__"):
            return value
        import numpy as np

        from .._creation import tensor

        host = np.asarray(value)
        value = tensor(host, dtype=host.dtype)
    lazy = getattr(param, "is_uninitialized", None)
    if lazy is not None and lazy():
        return value.detach().clone()
    if tuple(value.shape) != tuple(param.shape):
        raise ShapeError(f"loaded state dict's {name!r} for parameter {key} has shape "
                         f"{list(value.shape)}, the parameter has shape {list(param.shape)}")
    value = value.detach().to(param.device)
    if value.dtype.kind == "f" and param.dtype.kind == "f":
        value = value.to(param.dtype)
    return value.clone()
