"""``Module``: the block models are built from (PyTorch's ``nn.Module``).

Parameters, buffers and sub-modules register themselves when assigned as attributes;
names nest with dots (``net.0.weight``). A parameter object that appears in two places
is one parameter: listed once by ``parameters()``, saved under both names. Forward and
backward hooks run in PyTorch's order; a module without hooks is called as cheaply as its
``forward`` (one falsy check).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .. import _dtypes
from .._hooks import BackwardHook, ModuleHook, RemovableHandle
from .._tensor import Tensor
from ..errors import FlambeauError, LayerInputError, StateDictError
from .parameter import Parameter, is_lazy


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` did not load: a ``(missing_keys, unexpected_keys)`` pair as in
    PyTorch, plus ``mismatched_keys`` (shape mismatches, skipped when ``strict=False``)."""

    mismatched_keys: list[str]

    def __new__(cls, missing_keys: list[str], unexpected_keys: list[str],
                mismatched_keys: list[str] | None = None) -> IncompatibleKeys:
        report = super().__new__(cls, missing_keys, unexpected_keys)
        report.mismatched_keys = list(mismatched_keys or [])
        return report


class Module:
    """Base class of every layer and model. Subclasses set attributes in ``__init__``
    (after ``super().__init__()``) and define ``forward``."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        # {handle id: ModuleHook} in call order; None until a hook is registered.
        object.__setattr__(self, "_module_hooks", None)

    # --- registration -------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise FlambeauError(
                f"cannot assign {name!r} before Module.__init__(); call super().__init__() "
                f"first in {type(self).__name__}.__init__"
            )
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                "(a Parameter or None is required)")
            params[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r}")
            buffers[name] = value
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r}")
            modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        self.__dict__.pop(name, None)
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        self._non_persistent.discard(name)

    def __getattr__(self, name: str) -> Any:
        state = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in state and name in state[table]:
                return state[table][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or a ``None`` placeholder) under ``name``."""
        _check_name(name, self)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot register {type(param).__name__} as parameter {name!r}; "
                            "wrap it in nn.Parameter")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register a tensor that is state but not a parameter (e.g. running statistics);
        saved in the state dict unless ``persistent=False``."""
        _check_name(name, self)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot register {type(tensor).__name__} as buffer {name!r}")
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as a child named ``name`` (any string without dots)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module")
        if not isinstance(name, str) or "." in name or name == "":
            raise KeyError(f"module name must be a non-empty string without dots, got {name!r}")
        self._forget(name)
        self._modules[name] = module

    register_module = add_module

    # --- traversal ----------------------------------------------------------------------

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-modules with their names."""
        seen: set[int] = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        """Direct sub-modules."""
        for _, module in self.named_children():
            yield module

    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, depth first, with dotted names."""
        stack: list[tuple[str, Module]] = [(prefix, self)]
        seen = memo if memo is not None else set()
        while stack:
            name, module = stack.pop()
            if remove_duplicate:
                if id(module) in seen:
                    continue
                seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m)
                        for n, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        """This module and every sub-module."""
        for _, module in self.named_modules():
            yield module

    def _named_members(self, table: str, prefix: str, recurse: bool,
                       remove_duplicate: bool) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, value in getattr(module, table).items():
                if value is None:
                    continue
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield (f"{module_name}.{name}" if module_name else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """Parameters with dotted names; a tied parameter is listed once (first name)."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter once."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        """Buffers with dotted names."""
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """Every buffer once."""
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def get_submodule(self, target: str) -> Module:
        """The sub-module at dotted path ``target`` (``""`` is this module)."""
        module: Module = self
        walked = []
        for part in target.split(".") if target else []:
            child = module._modules.get(part)
            if child is None:
                where = ".".join(walked) or "the root module"
                raise AttributeError(f"{where} ({module._get_name()}) has no sub-module "
                                     f"{part!r}; it has {list(module._modules) or 'none'}")
            walked.append(part)
            module = child
        return module

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at dotted path ``target``."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._parameters or module._parameters[name] is None:
            raise AttributeError(f"{module._get_name()} at {module_path or 'the root'!r} has no "
                                 f"parameter {name!r}")
        return module._parameters[name]

    # --- calling ------------------------------------------------------------------------

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _HOOK_COUNT or _TRACERS:  # the one check a call pays while no module has hooks
            return self._call_with_hooks(args, kwargs)
        try:
            return self.forward(*args, **kwargs)
        except LayerInputError as err:
            err.entered(self)
            raise

    def _call_with_hooks(self, args: tuple, kwargs: dict) -> Any:
        """A call with hooks (or under a summary's tracer), in PyTorch's order: forward
        pre-hooks, identity nodes on the inputs for backward hooks, ``forward``, forward
        hooks, identity nodes on the outputs. Forward hooks with ``always_call`` also run
        when something before them raised."""
        table = self._module_hooks
        if not table and not _TRACERS:  # (another module has hooks)
            try:
                return self.forward(*args, **kwargs)
            except LayerInputError as err:
                err.entered(self)
                raise
        hooks = tuple(table.values()) if table else ()
        result = None
        called: set[int] = set()  # always_call hooks that already ran
        try:
            for hook in hooks:
                if hook.kind != "forward_pre":
                    continue
                if hook.with_kwargs:
                    replaced = hook.fn(self, args, kwargs)
                    if replaced is not None:
                        if not (isinstance(replaced, tuple) and len(replaced) == 2):
                            raise TypeError(
                                f"forward pre-hook {_hook_name(hook.fn)} of {self._get_name()} "
                                "(with_kwargs=True) must return None or a tuple (new_args, "
                                f"new_kwargs), but got {replaced!r}")
                        args, kwargs = replaced
                else:
                    replaced = hook.fn(self, args)
                    if replaced is not None:
                        args = replaced if isinstance(replaced, tuple) else (replaced,)
            backward = [h.fn for h in hooks if h.kind == "backward"]
            backward_pre = [h.fn for h in hooks if h.kind == "backward_pre"]
            bw_hook = None
            if backward or backward_pre:
                bw_hook = BackwardHook(self, backward, backward_pre)
                args = bw_hook.setup_input_hook(args)
            tracer = _TRACERS[-1] if _TRACERS else None
            if tracer is not None:
                tracer.enter(self)
            try:
                result = self.forward(*args, **kwargs)
            except LayerInputError as err:
                err.entered(self)
                raise
            for hook in tuple(table.values()) if table else ():
                if hook.kind != "forward":
                    continue
                if hook.always_call:
                    called.add(id(hook))
                result = _after_forward(self, hook, args, kwargs, result)
            if bw_hook is not None:
                if not isinstance(result, (Tensor, tuple)):
                    warnings.warn(f"{self._get_name()} has backward hooks, which are called only "
                                  "for an output that is a Tensor or a tuple of Tensors, but "
                                  f"its forward returned {type(result).__name__}", stacklevel=3)
                result = bw_hook.setup_output_hook(result)
            if tracer is not None:
                tracer.exit(self, result)
            return result
        except Exception:
            for hook in tuple(table.values()) if table else ():
                if hook.kind != "forward" or not hook.always_call or id(hook) in called:
                    continue
                try:
                    result = _after_forward(self, hook, args, kwargs, result)
                except Exception as err:
                    warnings.warn(f"forward hook {_hook_name(hook.fn)} with always_call=True "
                                  f"raised an exception that was silenced as another error was "
                                  f"raised in forward: {err}", stacklevel=3)
            raise

    # --- hooks --------------------------------------------------------------------------

    def _add_hook(self, kind: str, fn: Callable, prepend: bool, with_kwargs: bool = False,
                  always_call: bool = False) -> RemovableHandle:
        if not callable(fn):
            raise TypeError(f"a hook must be callable, got {type(fn).__name__}")
        table = self._module_hooks
        if table is None:
            table = _HookTable()
            object.__setattr__(self, "_module_hooks", table)
        handle = RemovableHandle(table)
        table[handle.id] = ModuleHook(kind, fn, with_kwargs, always_call)
        if prepend:
            table.move_to_end(handle.id, last=False)
        return handle

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args)`` before each ``forward``; a value it returns replaces
        the positional inputs (a tuple, or one value that is wrapped into a tuple). With
        ``with_kwargs``: ``hook(module, args, kwargs)`` returns ``None`` or
        ``(args, kwargs)``. ``prepend`` runs it before the hooks already registered.

        >>> from flambeau import nn
        >>> import flambeau
        >>> double = nn.Identity()
        >>> handle = double.register_forward_pre_hook(lambda module, args: args[0] * 2)
        >>> double(flambeau.tensor([1.0, 2.0]))
        tensor([2., 4.])
        >>> handle.remove()
        """
        return self._add_hook("forward_pre", hook, prepend, with_kwargs=with_kwargs)

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False,
                              always_call: bool = False) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after each ``forward`` (``hook(module, args,
        kwargs, output)`` with ``with_kwargs``); a value it returns replaces the output.
        ``always_call`` runs it even when the call raised. ``prepend`` runs it first.

        >>> from flambeau import nn
        >>> import flambeau
        >>> layer = nn.Linear(3, 2)
        >>> shapes = []
        >>> with layer.register_forward_hook(lambda m, args, out: shapes.append(out.shape)):
        ...     _ = layer(flambeau.ones(4, 3))
        >>> shapes
        [flambeau.Size([4, 2])]
        """
        return self._add_hook("forward", hook, prepend, with_kwargs=with_kwargs,
                              always_call=always_call)

    def register_full_backward_pre_hook(self, hook: Callable,
                                        prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_output)`` when the gradients with respect to the
        module's outputs are computed (before they flow into the module); a tuple it
        returns replaces ``grad_output``. Entries of non-tensor outputs are ``None``."""
        return self._add_hook("backward_pre", hook, prepend)

    def register_full_backward_hook(self, hook: Callable,
                                    prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` when the gradients with respect to
        the module's positional inputs are computed; a tuple it returns replaces
        ``grad_input``. Entries of non-tensor inputs are ``None``; a tensor input that got
        no gradient has zeros (as in PyTorch). Inputs are wrapped in identity nodes, so an
        in-place change of them inside ``forward`` is refused while recording.

        >>> from flambeau import nn
        >>> import flambeau
        >>> layer = nn.Linear(3, 2)
        >>> seen = []
        >>> _ = layer.register_full_backward_hook(
        ...     lambda m, grad_input, grad_output: seen.append(grad_input[0].shape))
        >>> layer(flambeau.ones(4, 3, requires_grad=True)).sum().backward()
        >>> seen
        [flambeau.Size([4, 3])]
        """
        return self._add_hook("backward", hook, prepend)

    # --- state --------------------------------------------------------------------------

    def state_dict(self, *, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """Every parameter and persistent buffer by dotted name (tied ones under each
        name, as one object). Values are detached unless ``keep_vars``."""
        out: OrderedDict = OrderedDict()
        for module_name, module in self.named_modules(remove_duplicate=False):
            base = f"{prefix}{module_name}." if module_name else prefix
            for name, param in module._parameters.items():
                if param is not None:
                    out[base + name] = param if keep_vars else _detached(param)
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent:
                    out[base + name] = buffer if keep_vars else _detached(buffer)
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, *,
                        strip_prefix: str | None = None,
                        key_map: Callable[[str], str] | None = None) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into this module's parameters and buffers.

        Keys may be rewritten first: ``strip_prefix`` (e.g. ``"module."`` from a wrapped
        model) and then ``key_map(key)``. Everything is checked before anything is
        written, so a failed load leaves the module unchanged. Lazy parameters take the
        saved shapes (and values loaded win over pending initialisers).

        Returns:
            An :class:`IncompatibleKeys` report of missing, unexpected and mismatched
            (wrong shape) keys. With ``strict`` any of them is an error and nothing is
            loaded; without it, mismatched keys are skipped (PyTorch raises for them even
            then) and everything else is loaded. A parameter tied under several names
            takes the value of the last name, as in PyTorch.
        """
        from .._ops.inplace import copy_
        from ..autograd import no_grad

        incoming = _remap(state_dict, strip_prefix, key_map)
        targets = self.state_dict(keep_vars=True)
        missing = [k for k in targets if k not in incoming]
        unexpected = [k for k in incoming if k not in targets]
        problems, mismatched = [], []
        lazy_shapes: dict[int, tuple[str, tuple]] = {}
        for key, target in targets.items():
            if key not in incoming:
                continue
            value = incoming[key]
            if not isinstance(value, Tensor):
                problems.append(f"{key}: expected a Tensor, got {type(value).__name__}")
            elif is_lazy(target):
                first = lazy_shapes.setdefault(id(target), (key, tuple(value.shape)))
                if first[1] != tuple(value.shape):
                    mismatched.append(key)
                    problems.append(f"{key}: shape {list(value.shape)} differs from "
                                    f"{list(first[1])} given for the same (tied) parameter "
                                    f"as {first[0]}")
            elif tuple(value.shape) != tuple(target.shape):
                mismatched.append(key)
                problems.append(f"{key}: the checkpoint has shape {list(value.shape)}, the "
                                f"model has shape {list(target.shape)}")
        if strict:
            if unexpected:
                problems.insert(0, "unexpected keys: " + ", ".join(unexpected))
            if missing:
                problems.insert(0, "missing keys: " + ", ".join(missing))
        else:
            problems = [p for p in problems if p.split(":")[0] not in mismatched]
        if problems:
            raise StateDictError(f"error(s) loading the state dict into {self._get_name()} "
                                 "(nothing was changed):\n  " + "\n  ".join(problems))
        materialized = {id(target) for target in targets.values() if is_lazy(target)}
        with no_grad():
            for key, target in targets.items():
                if key not in incoming or key in mismatched:
                    continue
                value = incoming[key]
                if is_lazy(target):
                    target.materialize(tuple(value.shape), device=None, dtype=value.dtype)
                copy_(target, value)
        for module in self.modules():
            if any(id(p) in materialized for table in (module._parameters, module._buffers)
                   for p in table.values()):  # lazy buffers too (LazyBatchNorm's statistics)
                module._lazy_loaded()
        return IncompatibleKeys(missing, unexpected, mismatched)

    def _lazy_loaded(self) -> None:
        """Called after ``load_state_dict`` gave this module's lazy parameters their shapes;
        lazy layers set the sizes they would otherwise read from the first input."""

    # --- conversion and modes -----------------------------------------------------------

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every sub-module (children first) and then on this module."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def _convert(self, device: Any, dtype: Any) -> Module:
        from .._methods import to as tensor_to

        if dtype is not None and not _dtypes.is_floating(_dtypes.as_dtype(dtype)):
            raise TypeError(f"Module.to() only takes floating-point dtypes, got {dtype}")
        moved: dict[int, Tensor] = {}
        for module in self.modules():
            for table in (module._parameters, module._buffers):
                for value in table.values():
                    if value is None:
                        continue
                    if is_lazy(value):
                        value._lazy_to(device, dtype)
                        continue
                    if id(value) not in moved:
                        cast_dtype = dtype if _dtypes.is_floating(value.dtype) else None
                        detached = value.detach()
                        new = tensor_to(detached, device=device, dtype=cast_dtype)
                        if new is not detached:  # moved or cast: a new array
                            value.data = new
                        if value.grad is not None:
                            value.grad = tensor_to(value.grad, device=device,
                                                   dtype=cast_dtype)
                        moved[id(value)] = value
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Move parameters and buffers to a device and/or float dtype, in place."""
        from .._methods import _parse_to

        device, dtype = _parse_to(args, dict(kwargs))
        return self._convert(device, dtype)

    def cpu(self) -> Module:
        """Move everything to the cpu device."""
        return self._convert("cpu", None)

    def cuda(self, device: Any = None) -> Module:
        """Move everything to a CUDA device (``cuda:0`` by default)."""
        from .. import _device

        target = _device.Device("cuda", device) if isinstance(device, int) else (
            device or "cuda:0")
        return self._convert(target, None)

    def float(self) -> Module:
        """Cast floating-point parameters and buffers to float32."""
        return self._convert(None, _dtypes.float32)

    def double(self) -> Module:
        """Cast floating-point parameters and buffers to float64."""
        return self._convert(None, _dtypes.float64)

    def half(self) -> Module:
        """Cast floating-point parameters and buffers to float16."""
        return self._convert(None, _dtypes.float16)

    def bfloat16(self) -> Module:
        """Cast floating-point parameters and buffers to bfloat16."""
        return self._convert(None, _dtypes.load_bfloat16())

    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active, batch norm uses batch statistics)."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Set evaluation mode: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Turn gradient tracking of every parameter on or off."""
        for param in self.parameters():
            param.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter (to ``None`` by default)."""
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.zero_()

    # --- saving (Gluon's names) ---------------------------------------------------------

    def save_parameters(self, path: Any) -> None:
        """Save the state dict to ``path`` (``flambeau.save``; Gluon's name)."""
        from .. import serialization

        serialization.save(self.state_dict(), path)

    def load_parameters(self, path: Any, strict: bool = True) -> IncompatibleKeys:
        """Load a state dict saved by :meth:`save_parameters`."""
        from .. import serialization

        return self.load_state_dict(serialization.load(path), strict=strict)

    # --- printing -----------------------------------------------------------------------

    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """The text inside this module's parentheses in its repr; override in layers."""
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, module in self._modules.items():
            text = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {text}")
        if not lines:
            return f"{self._get_name()}()"
        if len(lines) == 1 and not self._modules:
            return f"{self._get_name()}({lines[0]})"
        body = "\n  ".join(lines)
        return f"{self._get_name()}(\n  {body}\n)"

    def __getstate__(self) -> dict:
        return dict(self.__dict__)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_module_hooks", None)  # (saved before hooks existed)


# While a summary traces a model: objects told ``enter(module)`` before each forward and
# ``exit(module, output)`` after it.
_TRACERS: list[Any] = []

# How many hooks all modules hold together. While none does and no summary traces, a call
# is ``forward()`` plus one check of two globals (a per-module attribute would cost more:
# Module's ``__getattr__`` keeps CPython from specialising attribute loads on modules).
_HOOK_COUNT = 0


class _HookTable(OrderedDict):
    """``Module._module_hooks``: {handle id: ModuleHook} in call order, counted in
    ``_HOOK_COUNT`` as entries come and go (a copied module's table counts its own)."""

    def __setitem__(self, key: Any, value: Any) -> None:
        global _HOOK_COUNT
        if key not in self:
            _HOOK_COUNT += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        global _HOOK_COUNT
        super().__delitem__(key)
        _HOOK_COUNT -= 1

    def __del__(self) -> None:
        global _HOOK_COUNT
        try:
            _HOOK_COUNT -= len(self)
        except NameError:  # (interpreter shutdown)
            pass


def _detached(value: Tensor) -> Tensor:
    if is_lazy(value):
        return value
    return value.detach()



def _after_forward(module: Module, hook: ModuleHook, args: tuple, kwargs: dict,
                   result: Any) -> Any:
    """The output after forward hook ``hook`` (which may replace it)."""
    replaced = (hook.fn(module, args, kwargs, result) if hook.with_kwargs
                else hook.fn(module, args, result))
    return result if replaced is None else replaced


def _hook_name(fn: Callable) -> str:
    return repr(getattr(fn, "__name__", fn))


def _check_name(name: Any, module: Module) -> None:
    if "_parameters" not in module.__dict__:
        raise FlambeauError("call Module.__init__() before registering parameters or buffers")
    if not isinstance(name, str) or "." in name or name == "":
        raise KeyError(f"names must be non-empty strings without dots, got {name!r}")


def _remap(state_dict: Mapping[str, Any], strip_prefix: str | None,
           key_map: Callable[[str], str] | None) -> dict[str, Any]:
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"expected a state dict (a mapping of names to tensors), got "
                        f"{type(state_dict).__name__}")
    out: dict[str, Any] = {}
    for key, value in state_dict.items():
        if strip_prefix and key.startswith(strip_prefix):
            key = key[len(strip_prefix):]
        if key_map is not None:
            key = key_map(key)
        out[key] = value
    return out
