"""``flambeau.Tensor``: a device array, its device, and its place in the autograd graph.

The class holds state and conversions; operations live in ``flambeau._ops`` and are bound
as methods by ``flambeau._methods``.
"""

from __future__ import annotations

from collections.abc import Callable
from math import prod as _prod
from typing import TYPE_CHECKING, Any, SupportsIndex

import numpy as np

from . import _device, _dtypes
from .autograd import _engine
from .autograd import backward as _autograd_backward
from .errors import DeviceMismatchError, DTypeError, FlambeauError, ShapeError

# The ~190 methods and operators that flambeau._methods binds onto Tensor at import are
# declared for type checkers and IDEs by a stub generated from its table, _tensor_methods.pyi
# (tools/gen_tensor_stub.py), which Tensor inherits for them only.
if TYPE_CHECKING:
    from ._device import Device
    from ._hooks import RemovableHandle
    from ._tensor_methods import TensorMethods
else:
    TensorMethods = object


class Size(tuple):
    """A tensor's shape: a tuple of ints with ``numel()``, printed like PyTorch's."""

    __slots__ = ()

    def numel(self) -> int:
        """The number of elements a tensor of this shape holds."""
        n = 1
        for size in self:
            n *= size
        return n

    def __repr__(self) -> str:
        return f"flambeau.Size({list(self)})"


class Tensor(TensorMethods):
    """A multi-dimensional array on a device, with optional gradient tracking.

    Create tensors with :func:`flambeau.tensor`, :func:`flambeau.zeros`, ... ;
    ``Tensor(data)`` is PyTorch's legacy constructor and makes a float32 tensor.

    >>> import flambeau
    >>> x = flambeau.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([[2., 4.],
            [6., 8.]])
    """

    # ``_strides``: ``None`` for a tensor laid out in C order; else the element strides it
    # would have in PyTorch (a permuted, expanded or strided-sliced view, or a view of
    # one), so that ``view()`` refuses what PyTorch refuses (backends keep their own layout).
    # A stride of 0 on a dimension longer than 1 (an ``expand``) means elements share
    # memory: see :func:`shares_elements`.
    __slots__ = ("__weakref__", "_acc", "_base", "_data", "_device", "_grad", "_k",
                 "_strides", "_version", "grad_fn", "requires_grad")
    requires_grad: bool
    grad_fn: _engine.Node | None  # the operation that made this tensor (None for leaves)
    _data: Any  # the backend's device array
    _device: Device
    _k: Any  # the device's kernel set
    _grad: Tensor | None
    _version: list[int] | tuple[int, int]  # shared with views: see autograd's bump_version
    _acc: _engine.AccumulateGrad | None
    _base: Tensor | None  # the tensor whose storage a view or alias shares
    _strides: tuple[int, ...] | None
    # numpy must hand ``ndarray * tensor`` to Tensor.__rmul__ instead of looping over it.
    __array_ufunc__ = None

    def __init__(self, data: Any = (), *, device: Any = None) -> None:
        from ._creation import tensor

        _copy_state(self, tensor(data, dtype=_dtypes.DEFAULT_FLOAT, device=device))

    # --- state --------------------------------------------------------------------------

    @property
    def shape(self) -> Size:
        """The size of each dimension."""
        return Size(self._data.shape)

    @property
    def dtype(self) -> np.dtype:
        """The element type (a ``numpy.dtype``, e.g. ``flambeau.float32``)."""
        return self._data.dtype

    @property
    def device(self) -> Device:
        """The device holding the data."""
        return self._device

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self._data.shape)

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by a recorded operation."""
        return self.grad_fn is None

    @property
    def data(self) -> Tensor:
        """A detached alias sharing this tensor's storage; in-place edits go to both."""
        alias = _wrap(self._data, self._device, self._k)
        alias._base = self
        alias._strides = self._strides
        return alias

    @data.setter
    def data(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(value).__name__}")
        self._data, self._device, self._k = value._data, value._device, value._k
        self._strides = value._strides

    @property
    def grad(self) -> Tensor | None:
        """The accumulated gradient (``None`` until a backward reaches this tensor)."""
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if value is not None and self._device is not None:  # (a lazy parameter has none)
            _check_assigned_grad(self, value)
        self._grad = value

    @property
    def is_cuda(self) -> bool:
        """True when the tensor lives on a CUDA device."""
        return self._device.type == "cuda"

    def dim(self) -> int:
        """Number of dimensions."""
        return len(self._data.shape)

    def size(self, dim: int | None = None) -> Size | int:
        """The shape, or the size of dimension ``dim``."""
        if dim is None:
            return Size(self._data.shape)
        from .backends import normalize_axis

        return self._data.shape[normalize_axis(dim, self.ndim)]

    def numel(self) -> int:
        """The number of elements."""
        return Size(self._data.shape).numel()

    nelement = numel

    def is_contiguous(self) -> bool:
        """True when the elements are laid out in C order, each its own (PyTorch's strides;
        see ``view()``)."""
        return self._strides is None

    def element_size(self) -> int:
        """Bytes per element."""
        return self.dtype.itemsize

    def __len__(self) -> int:
        if not self._data.shape:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if not self._data.shape:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __hash__(self) -> int:
        return id(self)

    # --- autograd -----------------------------------------------------------------------

    def detach(self) -> Tensor:
        """A new tensor sharing storage (and version counter) but outside the graph."""
        out = _wrap(self._data, self._device, self._k)
        out._version = _engine.shared_version(self)
        out._base = self
        out._strides = self._strides
        return out

    def detach_(self) -> Tensor:
        """Remove this tensor from the graph in place."""
        self.grad_fn = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` of a leaf tensor in place; returns ``self``."""
        if not self.is_leaf and not requires_grad:
            raise _engine.AutogradError(
                "requires_grad_(False) on a non-leaf tensor; use detach() to leave the graph"
            )
        if requires_grad and not _dtypes.is_floating(self.dtype):
            raise DTypeError(
                f"only floating-point tensors can require gradients, got dtype {self.dtype}"
            )
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` of this non-leaf tensor after backward."""
        import weakref

        if self.grad_fn is None:
            if not self.requires_grad:
                raise _engine.AutogradError("retain_grad() on a tensor that does not require "
                                            "grad")
            return
        _engine.hooks_of(self.grad_fn).retained = weakref.ref(self)

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        """Call ``hook(grad)`` each time the gradient of this tensor is computed; a tensor it
        returns replaces the gradient (for the rest of the backward and for ``.grad``).

        On a leaf the hook runs before the gradient is accumulated into ``.grad``; on a
        non-leaf once its gradient is complete (before ``retain_grad`` keeps it). Hooks run
        in the order registered. Returns a handle: ``handle.remove()`` unregisters it.

        >>> import flambeau
        >>> x = flambeau.tensor([1.0, 2.0], requires_grad=True)
        >>> handle = x.register_hook(lambda grad: grad * 10)
        >>> (x * x).sum().backward()
        >>> x.grad
        tensor([20., 40.])
        >>> handle.remove()
        """
        from ._hooks import RemovableHandle

        if not self.requires_grad:
            raise _engine.AutogradError(
                "cannot register a hook on a tensor that doesn't require gradient; call "
                "requires_grad_() on the leaf first")
        table = _engine.hooks_of(_engine.edge_of(self)).tensor
        handle = RemovableHandle(table)
        table[handle.id] = hook
        return handle

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]
                                           ) -> RemovableHandle:
        """Call ``hook(tensor)`` once per backward, after this leaf's ``.grad`` has been
        updated with everything that backward accumulated into it (optimizers and
        distributed data parallel step or communicate from there).

        >>> import flambeau
        >>> w = flambeau.tensor([1.0, 2.0], requires_grad=True)
        >>> handle = w.register_post_accumulate_grad_hook(lambda t: print(t.grad))
        >>> (w * w).sum().backward()
        tensor([2., 4.])
        """
        from ._hooks import RemovableHandle

        if not self.requires_grad:
            raise _engine.AutogradError(
                "cannot register a hook on a tensor that doesn't require gradient; call "
                "requires_grad_() on the leaf first")
        if self.grad_fn is not None:
            raise _engine.AutogradError(
                "post accumulate grad hooks cannot be registered on non-leaf tensors (this "
                f"one is the output of {self.grad_fn.name()}); use register_hook() instead")
        table = _engine.hooks_of(_engine.edge_of(self)).post_accumulate
        handle = RemovableHandle(table)
        table[handle.id] = hook
        return handle

    def backward(self, gradient: Tensor | None = None, retain_graph: bool | None = None,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into each leaf's ``.grad``.

        See :func:`flambeau.autograd.backward`.
        """
        if gradient is None and self.requires_grad and _prod(self._data.shape) == 1:
            # loss.backward(), one scalar output: what autograd.backward's general path would
            # start the engine with, without its argument handling (1.5 us of a tiny step's 10)
            _engine.run_backward((self,), (_engine.implicit_grad(self),),
                                 create_graph if retain_graph is None else retain_graph,
                                 create_graph, None, True)
            return
        _autograd_backward(self, gradient, retain_graph, create_graph)

    # --- conversions --------------------------------------------------------------------

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The values as a numpy array sharing the tensor's memory where the device's memory
        is host memory (the cpu: its ``to_numpy_shared`` kernel), as in PyTorch; a copy
        from other devices.

        Raises:
            FlambeauError: if the tensor requires grad (call ``detach()`` first) unless
                ``force``.
        """
        if self.requires_grad and not force:
            raise FlambeauError(
                "can't call numpy() on a tensor that requires grad; use "
                "tensor.detach().numpy() instead"
            )
        shared = getattr(self._k, "to_numpy_shared", None)
        return self._k.to_numpy(self._data) if shared is None else shared(self._data)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        host = self._k.to_numpy(self._data)
        return host if dtype is None else host.astype(dtype)

    def item(self) -> bool | int | float:
        """The single value of a one-element tensor as a Python number."""
        if self.numel() != 1:
            raise ShapeError(
                f"a Tensor with {self.numel()} elements cannot be converted to a Python "
                "scalar; item() needs exactly one element"
            )
        return self._k.to_numpy(self._data).reshape(()).item()

    def tolist(self) -> Any:
        """The values as (nested) Python lists."""
        return self._k.to_numpy(self._data).tolist()

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise ShapeError(
                f"the truth value of a tensor with {self.numel()} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iu" or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __format__(self, spec: str) -> str:
        if self.ndim == 0 and spec:
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __dlpack__(self, **kwargs: Any) -> Any:
        if _dtypes.is_bfloat16(self.dtype):
            raise DTypeError("DLPack export of bfloat16 is not supported (numpy, which the "
                             "host path uses, has no DLPack bfloat16); convert with .float()")
        export = getattr(self._k, "to_dlpack", None)  # stream-ordered export
        if export is not None:
            return export(self._data, **kwargs)
        dlpack = getattr(self._data, "__dlpack__", None)
        source = self._data if dlpack is not None else self._k.to_numpy(self._data)
        return source.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        device_of = getattr(self._data, "__dlpack_device__", None)
        return device_of() if device_of is not None else (1, 0)  # kDLCPU

    def __repr__(self) -> str:
        from ._printing import tensor_repr

        return tensor_repr(self)

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        # Pickling copies through the host; flambeau's own files never use pickle.
        return (_rebuild, (self.numpy(force=True), str(self._device), self.requires_grad))

    def __deepcopy__(self, memo: dict) -> Tensor:
        if not self.is_leaf:
            raise _engine.AutogradError(
                "only leaf tensors can be deep-copied; detach() the tensor first"
            )
        out = type(self).__new__(type(self))
        _copy_state(out, _wrap(self._k.copy(self._data), self._device, self._k))
        out.requires_grad = self.requires_grad
        if self.grad is not None:
            out.grad = self.grad.__deepcopy__(memo)
        memo[id(self)] = out
        for key, value in getattr(self, "__dict__", {}).items():
            import copy

            setattr(out, key, copy.deepcopy(value, memo))
        return out


def _wrap(data: Any, device: _device.Device, kernels: Any) -> Tensor:
    """A new tensor around device array ``data`` (no copy, no graph)."""
    t = object.__new__(Tensor)
    t._data = data
    t._device = device
    t._k = kernels
    t.requires_grad = False
    t._grad = None
    t.grad_fn = None
    t._version = _engine.UNWRITTEN
    t._acc = None
    t._base = None
    t._strides = None
    return t


_engine._wrap = _wrap


def _check_assigned_grad(tensor: Tensor, grad: Any) -> None:
    """PyTorch's checks on ``tensor.grad = grad``: a tensor of the same device, shape and
    dtype, so that optimizers and accumulation never meet a mismatch later."""
    if not isinstance(grad, Tensor):
        raise TypeError(f"assigned grad expected to be a Tensor or None, got "
                        f"{type(grad).__name__}")
    if grad._device != tensor._device:
        raise DeviceMismatchError(
            f"assigned grad is on device {grad._device}, but the tensor is on "
            f"{tensor._device}; move it first with .to({str(tensor._device)!r})")
    if grad._data.shape != tensor._data.shape:
        raise ShapeError(f"assigned grad has shape {list(grad.shape)}, but the tensor has "
                         f"shape {list(tensor.shape)}; they must match")
    if grad._data.dtype != tensor._data.dtype:
        raise DTypeError(f"assigned grad has dtype {grad.dtype}, but the tensor has dtype "
                         f"{tensor.dtype}; convert it first with .to({tensor.dtype})")


def _rebuild(host: np.ndarray, device: str, requires_grad: bool) -> Tensor:
    from ._creation import tensor

    return tensor(host, dtype=host.dtype, device=device, requires_grad=requires_grad)


def shares_elements(t: Tensor) -> bool:
    """Whether some elements of ``t`` share one memory location (an ``expand`` result or a
    view of one): in-place writes are refused and ``contiguous()`` copies."""
    strides = t._strides
    return strides is not None and any(
        stride == 0 and size > 1 for stride, size in zip(strides, t._data.shape))


def _copy_state(target: Tensor, source: Tensor) -> None:
    for slot in ("_data", "_device", "_k", "requires_grad", "_grad", "grad_fn", "_version",
                 "_acc", "_base", "_strides"):
        setattr(target, slot, getattr(source, slot))
