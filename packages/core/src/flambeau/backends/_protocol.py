"""The backend and kernel protocols, and the table of kernels a backend provides.

A *device array* is whatever object the backend uses for memory on its device (a numpy
ndarray, a cupy ndarray, a wrapper around an OpenCL buffer...). The core reads only its
``.shape`` (a tuple of ints) and ``.dtype`` (a ``numpy.dtype``); everything else it does
by handing the array back to kernels of the same backend and device.

Conventions for every kernel:

* ``shape`` is a tuple of non-negative ints; ``dtype`` a ``numpy.dtype`` from
  :data:`~flambeau.backends.DTYPES`; ``axes`` a tuple of non-negative ints, already
  normalised by the core (see :func:`~flambeau.backends.normalize_axes`).
* Binary kernels get operands of the **same dtype** (the core promotes first); the second
  operand may also be a Python scalar, to be treated as a value of the first's dtype.
  Shapes broadcast like numpy (:func:`~flambeau.backends.broadcast_shape`).
* Array arguments are always device arrays of the **same device** as the kernel set
  (index arrays included); the core moves data between devices itself, through
  ``to_numpy``/``from_numpy``. Scalar arguments are plain Python ``bool``/``int``/``float``.
* Results are new arrays unless the kernel is marked in-place, and are arrays even when
  0-d (never host scalars). ``reshape``, ``permute`` and ``broadcast_to`` may return views;
  the core never writes into those. ``getitem`` **must** return a view: writing into it
  (``assign``, ``setitem``, ``out=``) writes into the array it was sliced from, as with
  numpy and cupy, because tensor views (``x[0].add_(1)``) rely on it.
* Zero-size arrays are legal everywhere and must not crash.
* A failed allocation raises :func:`~flambeau.backends.out_of_memory`'s
  ``OutOfMemoryError`` (device, bytes asked, bytes free), not the library's own error,
  and leaves every existing array intact.
* Optional kernels are found with ``getattr(kernels, name, None)``: a kernel set must not
  answer unknown names through a catch-all ``__getattr__``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

#: The version of this contract. A backend declares the version it implements as
#: ``contract_version``; the core refuses a backend whose version differs. Version 2: the
#: random stream is Philox4x64-10 (it was Philox4x32-10).
CONTRACT_VERSION = 2

DeviceArray = Any
"""A backend's own array object; the core reads only ``.shape`` and ``.dtype``."""

Scalar = bool | int | float
Index = tuple[int | slice, ...]


@dataclass(frozen=True)
class DeviceInfo:
    """What a backend reports about one of its devices.

    Attributes:
        name: Human-readable name, e.g. ``"NVIDIA H100"`` or ``"numpy on x86_64"``.
        memory_bytes: Total device memory, or ``None`` when unknown.
        dtypes: The dtypes this device supports: a subset of ``DTYPES``, and bfloat16
            (``ml_dtypes.bfloat16``) where the device computes it; the core refuses to make
            bfloat16 tensors on a device that does not list it.
        vendor: Vendor name, may be empty.
        extra: Free-form details worth printing (compute capability, driver...).
    """

    name: str
    memory_bytes: int | None
    dtypes: tuple[np.dtype, ...]
    vendor: str = ""
    extra: dict[str, str] = field(default_factory=dict)


UNARY_OPS: dict[str, str] = {
    "neg": "-x",
    "abs": "|x|",
    "sign": "-1, 0 or 1 (0 for 0; NaN for NaN); bool not allowed",
    "exp": "e**x",
    "expm1": "e**x - 1",
    "log": "natural log",
    "log1p": "log(1 + x)",
    "sqrt": "square root",
    "sin": "sine",
    "cos": "cosine",
    "tanh": "hyperbolic tangent",
    "erf": "error function",
    "floor": "round down (integers unchanged)",
    "ceil": "round up (integers unchanged)",
    "round": "round half to even",
    "logical_not": "x == 0, result bool",
}
"""Elementwise unary kernels: ``unary(op, x, out=None)``. Float ops get float inputs."""

BINARY_OPS: dict[str, str] = {
    "add": "a + b",
    "sub": "a - b",
    "mul": "a * b",
    "div": "a / b (true division; float inputs)",
    "floordiv": "floor(a / b) (Python semantics; integer b == 0 is undefined)",
    "mod": "a - floor(a / b) * b (sign of b, Python semantics)",
    "pow": "a ** b",
    "maximum": "larger of a, b (NaN propagates)",
    "minimum": "smaller of a, b (NaN propagates)",
    "eq": "a == b, result bool",
    "ne": "a != b, result bool",
    "lt": "a < b, result bool",
    "le": "a <= b, result bool",
    "gt": "a > b, result bool",
    "ge": "a >= b, result bool",
    "logical_and": "a and b, result bool",
    "logical_or": "a or b, result bool",
    "logical_xor": "a xor b, result bool",
}
"""Elementwise binary kernels: ``binary(op, a, b, out=None)``."""

REDUCE_OPS: dict[str, str] = {
    "sum": "sum, dtype of x",
    "prod": "product, dtype of x",
    "max": "maximum (NaN propagates); empty reduction is an error raised by the core",
    "min": "minimum (NaN propagates); empty reduction is an error raised by the core",
    "all": "every element non-zero, result bool",
    "any": "some element non-zero, result bool",
}
"""Reductions: ``reduce(op, x, axes, keepdims)``."""

ARG_REDUCE_OPS: dict[str, str] = {
    "argmax": "index of the first maximum, int64",
    "argmin": "index of the first minimum, int64",
}
"""Index reductions: ``arg_reduce(op, x, axis, keepdims)``; ``axis=None`` flattens."""

REQUIRED_KERNELS: dict[str, str] = {
    # memory
    "empty": "empty(shape, dtype) -> uninitialised array",
    "full": "full(shape, value, dtype) -> array filled with value",
    "from_numpy": "from_numpy(host: numpy.ndarray) -> copy on the device, same dtype/shape",
    "to_numpy": "to_numpy(x) -> C-contiguous numpy copy; waits for pending work on x",
    "copy": "copy(x) -> new array with the same values (never a view; a broadcast view "
    "becomes an array of its own elements)",
    "assign": "assign(dst, src) in-place dst[...] = src (src array or scalar, broadcast)",
    # random numbers
    "random_bits": "random_bits(n, seed, offset) -> uint32[n]: Philox4x64-10 stream "
    "elements offset..offset+n-1 (see flambeau.backends.philox)",
    # elementwise
    "unary": "unary(op, x, out=None): op from UNARY_OPS",
    "binary": "binary(op, a, b, out=None): op from BINARY_OPS; b may be a scalar",
    "where": "where(cond: bool array, a, b) -> broadcast select; a, b same dtype",
    "cast": "cast(x, dtype) -> new array (float->int truncates toward zero)",
    # reductions
    "reduce": "reduce(op, x, axes: tuple | None, keepdims) : op from REDUCE_OPS",
    "arg_reduce": "arg_reduce(op, x, axis: int | None, keepdims): op from ARG_REDUCE_OPS",
    # linear algebra
    "matmul": "matmul(a, b): (..., m, k) @ (..., k, n), batch dims broadcast, ndim >= 2",
    # movement
    "reshape": "reshape(x, shape) -> same elements in C order (may be a view)",
    "permute": "permute(x, axes) -> axes reordered (may be a view)",
    "broadcast_to": "broadcast_to(x, shape) -> read-only broadcast (may be a view)",
    "getitem": "getitem(x, index) -> basic slice: index is a tuple of ints and slices "
    "(steps may be negative), at most x.ndim long (may be a view)",
    "setitem": "setitem(x, index, value) in-place x[index] = value (array or scalar)",
    "concatenate": "concatenate(arrays, axis) -> joined along axis",
    "pad": "pad(x, widths: ((before, after), ...) per axis, value) -> constant padding",
    "gather": "gather(x, axis, index) -> numpy.take_along_axis; index int64, same ndim",
    "take": "take(x, index, axis) -> numpy.take; index int64 of any shape",
    "scatter_add": "scatter_add(dst, axis, index, src) in-place: for every position p of "
    "src, dst[p with p[axis] replaced by index[p]] += src[p]; index int64 shaped like src",
}
"""Every kernel a backend must provide, with its signature and meaning."""

OPTIONAL_KERNELS: dict[str, str] = {
    # Zero-copy host memory, for backends whose device memory *is* host memory (the cpu
    # backend). flambeau.load uses them to adopt the arrays it reads (or, with mmap=True,
    # file mappings) without a copy, flambeau.save to write tensors without one;
    # from_numpy, from_dlpack and Tensor.numpy() share memory with the user through them.
    # References: from_numpy / to_numpy.
    "from_numpy_shared": "from_numpy_shared(host: numpy.ndarray) -> device array using "
    "host's memory, no copy (writes to one show in the other); host is writable (possibly "
    "a copy-on-write file mapping), aligned, native byte order, of a DTYPES dtype (any "
    "strides, none negative); flambeau.from_numpy shares the user's array this way, as "
    "PyTorch's does",
    "to_numpy_shared": "to_numpy_shared(x) -> numpy array viewing x's memory, no copy (any "
    "strides; waits for pending work on x); writable where x is: the core reads it, and "
    "writes a collective's result into it (flambeau.distributed)",
    "lend_host": "lend_host(x) -> (writable numpy view of x's memory, release) or None: "
    "lends contiguous x's device memory to the host for a while (a collective of "
    "flambeau.distributed's host engine), for devices whose memory is host memory (an "
    "OpenCL CPU device: a buffer map). Waits for the work queued before; the host's "
    "writes are visible to work queued after release(), which ends the loan (call it "
    "once; the view must not be used after). None where it cannot lend x (then the core "
    "copies). Reference: to_numpy / from_numpy",
    # Device memory shared with other libraries (DLPack) and copied between devices of one
    # backend without the host. References: through the host with to_numpy / from_numpy.
    "from_dlpack": "from_dlpack(obj) -> device array viewing the memory of obj, a DLPack "
    "producer on this kernel set's device (see Backend.dlpack_index), no copy",
    "to_dlpack": "to_dlpack(x, **kwargs) -> x.__dlpack__(**kwargs), ordered after the work "
    "queued on x (for backends that queue work on streams of their own)",
    "from_peer": "from_peer(x) -> a copy on this device of x, an array of another device of "
    "the same backend (a GPU peer copy)",
    # Random floats. Reference: flambeau._random._uniform_array.
    "random_uniform": "random_uniform(out, seed, offset, low, high) in place: element j of "
    "float32 out (any layout, C order) gets float32(e >> 8) * float32((high - low) * "
    "2**-24), plus float32(low) when low != 0 (float32 roundings, no fused multiply-add), "
    "e = stream element offset + j of seed",
    # Softmax and cross entropy take float32 or float64 arrays. References in
    # flambeau._ops.softmax and flambeau._ops.loss.
    "softmax": "softmax(x, axis) -> exp(x) / sum(exp(x), axis), x of ndim >= 1. "
    "Reference: softmax_reference",
    "log_softmax": "log_softmax(x, axis) -> x - logsumexp(x, axis), x of ndim >= 1. "
    "Reference: log_softmax_reference",
    "cross_entropy": "cross_entropy(logits (N, C), target int64 (N,) in [0, C)) -> per-row "
    "loss (N,): logsumexp(logits[n]) - logits[n, target[n]]. Reference: "
    "cross_entropy_reference",
    "cross_entropy_grad": "cross_entropy_grad(logits (N, C), target int64 (N,) in [0, C), "
    "grad (N,) or ()) -> (softmax(logits, 1) - one_hot(target, C)) * grad[:, None] (grad "
    "broadcast when 0-d): cross_entropy's gradient. Reference: cross_entropy_grad_reference",
    # Convolution and pooling take NCHW arrays of one float dtype; kernel, stride, padding
    # and dilation are (h, w) pairs of ints (padding: on both sides); window o of an axis
    # reads o*stride - padding + i*dilation, and window counts follow
    # flambeau.backends.window_count. The references are in flambeau._ops.conv and
    # flambeau._ops.pooling.
    "conv2d": "conv2d(x, w, stride, padding, dilation, groups) -> y: PyTorch's conv2d "
    "(cross-correlation, zero padding, no bias) of x (N, C, H, W) with w "
    "(O, C // groups, kh, kw); y (N, O, Ho, Wo)",
    "conv2d_grad_input": "conv2d_grad_input(grad, w, x_shape, stride, padding, dilation, "
    "groups) -> dx of shape x_shape: the gradient of conv2d's x given grad (N, O, Ho, Wo), "
    "whose windows are the first Ho x Wo over x_shape padded (x positions no window reads "
    "get 0); it is also conv_transpose2d",
    "conv2d_grad_weight": "conv2d_grad_weight(grad, x, w_shape, stride, padding, dilation, "
    "groups) -> dw of shape w_shape: the gradient of conv2d's w (windows as above)",
    "max_pool2d": "max_pool2d(x, kernel, stride, padding, dilation, ceil_mode) -> (y, "
    "indices): window maxima over x padded with -inf (a NaN wins, else the first maximum "
    "in row-major window order); indices int64 like y, flat positions h * W + w in x",
    "max_pool2d_grad": "max_pool2d_grad(grad, indices, x_shape, kernel, stride, padding, "
    "dilation, ceil_mode) -> dx of shape x_shape: grad summed into the positions indices "
    "(from max_pool2d with the same arguments) name",
    "avg_pool2d": "avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, "
    "divisor_override) -> y: window sums over x zero-padded, divided by divisor_override "
    "(an int) or else by flambeau.backends.avg_pool_divisors",
    "avg_pool2d_grad": "avg_pool2d_grad(grad, x_shape, kernel, stride, padding, ceil_mode, "
    "count_include_pad, divisor_override) -> dx of shape x_shape, avg_pool2d's gradient",
    # Normalisation takes float arrays of one dtype; weight, bias, mean and var are None or
    # arrays that broadcast against x; axes are normalised and sorted. The references are
    # flambeau._ops.normalization.layer_norm_reference and batch_norm_reference.
    "layer_norm": "layer_norm(x, weight, bias, axes, eps) -> (y, mean, var): mean and "
    "biased variance of x over axes (kept as size-1 dimensions) and y = (x - mean) / "
    "sqrt(var + eps) * weight + bias (either may be None); layer, group and training-mode "
    "batch norm use it",
    "batch_norm": "batch_norm(x, weight, bias, mean, var, eps) -> y = (x - mean) / "
    "sqrt(var + eps) * weight + bias with the given statistics (eval-mode batch norm)",
    # Fused optimizer steps update lists of same-device arrays in place (params, buffers;
    # grads are read only); scalars are keyword arguments. The references are
    # flambeau._ops.optim_steps (sgd_step, adam_step).
    "sgd_step": "sgd_step(params, grads, bufs, *, lr, momentum, dampening, weight_decay, "
    "nesterov, maximize): g = ±grad + weight_decay*p; with bufs (None if no momentum) "
    "buf = momentum*buf + (1-dampening)*g, g = g + momentum*buf if nesterov else buf; "
    "p -= lr*g",
    "adam_step": "adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, *, step, "
    "lr, beta1, beta2, eps, weight_decay, decoupled, maximize): Adam/AdamW at step number "
    "step (>= 1, shared by the call); max_exp_avg_sqs is None unless AMSGrad",
}
"""Fused kernels a backend *may* provide. The core composes each one from required
kernels when a backend lacks it, and that composition is the reference the
conformance kit compares a fused kernel against."""


@runtime_checkable
class Kernels(Protocol):
    """The kernel set bound to one device. See :data:`REQUIRED_KERNELS`."""

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> DeviceArray: ...
    def full(self, shape: tuple[int, ...], value: Scalar, dtype: np.dtype) -> DeviceArray: ...
    def from_numpy(self, host: np.ndarray) -> DeviceArray: ...
    def to_numpy(self, x: DeviceArray) -> np.ndarray: ...
    def copy(self, x: DeviceArray) -> DeviceArray: ...
    def assign(self, dst: DeviceArray, src: DeviceArray | Scalar) -> None: ...
    def random_bits(self, n: int, seed: int, offset: int) -> DeviceArray: ...
    def unary(self, op: str, x: DeviceArray, out: DeviceArray | None = None) -> DeviceArray: ...
    def binary(
        self, op: str, a: DeviceArray, b: DeviceArray | Scalar, out: DeviceArray | None = None
    ) -> DeviceArray: ...
    def where(self, cond: DeviceArray, a: DeviceArray, b: DeviceArray) -> DeviceArray: ...
    def cast(self, x: DeviceArray, dtype: np.dtype) -> DeviceArray: ...
    def reduce(
        self, op: str, x: DeviceArray, axes: tuple[int, ...] | None, keepdims: bool
    ) -> DeviceArray: ...
    def arg_reduce(
        self, op: str, x: DeviceArray, axis: int | None, keepdims: bool
    ) -> DeviceArray: ...
    def matmul(self, a: DeviceArray, b: DeviceArray) -> DeviceArray: ...
    def reshape(self, x: DeviceArray, shape: tuple[int, ...]) -> DeviceArray: ...
    def permute(self, x: DeviceArray, axes: tuple[int, ...]) -> DeviceArray: ...
    def broadcast_to(self, x: DeviceArray, shape: tuple[int, ...]) -> DeviceArray: ...
    def getitem(self, x: DeviceArray, index: Index) -> DeviceArray: ...
    def setitem(self, x: DeviceArray, index: Index, value: DeviceArray | Scalar) -> None: ...
    def concatenate(self, arrays: Sequence[DeviceArray], axis: int) -> DeviceArray: ...
    def pad(
        self, x: DeviceArray, widths: tuple[tuple[int, int], ...], value: Scalar
    ) -> DeviceArray: ...
    def gather(self, x: DeviceArray, axis: int, index: DeviceArray) -> DeviceArray: ...
    def take(self, x: DeviceArray, index: DeviceArray, axis: int) -> DeviceArray: ...
    def scatter_add(
        self, dst: DeviceArray, axis: int, index: DeviceArray, src: DeviceArray
    ) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """A device type. One object per installed backend, returned by the plugin hook.

    Attributes:
        name: The device-type prefix users type (``"cpu"``, ``"cuda"``, ...): lower-case
            letters, digits and underscores, starting with a letter.
        contract_version: The :data:`CONTRACT_VERSION` this backend implements.

    Optional members, found with ``getattr``:

    * ``unavailable_reason() -> str | None``: why ``device_count()`` is 0 (no driver, a
      missing library, no hardware); ``flambeau devices`` and device errors show it.
    * ``dlpack_index(device_type, device_id) -> int | None``: the index of the device that
      a DLPack device (an object's ``__dlpack_device__()``) names, or ``None``; with the
      ``from_dlpack`` kernel, ``flambeau.from_dlpack`` then keeps such memory in place.
    * ``empty_cache(index: int | None = None) -> None``: hand the memory a caching
      allocator holds but no array uses back to the driver, on device ``index`` (``None``:
      every device); existing arrays stay valid, and a device with nothing cached is left
      alone. For backends that cache device memory (``torch.cuda.empty_cache()``); the
      packages' ``flambeau_cuda.empty_cache()`` and ``flambeau_opencl.empty_cache()`` call
      it, and so does ``flambeau.cuda.empty_cache()`` (``flambeau.opencl``...).
    * ``memory_allocated(index: int) -> int``: bytes held by live arrays on device
      ``index`` (as a caching allocator counts them); ``flambeau.cuda.memory_allocated()``
      and the like report it, 0 for a backend without it.
    * ``collectives(index, group) -> CollectiveEngine | None``: a collective engine of the
      backend's own for device ``index`` (NCCL for cuda), or ``None`` to let the core's
      host engine (MPI, staging through numpy) serve the device. ``flambeau.distributed``
      calls it on every rank at once, on the first collective on that device; ``group`` is
      a :class:`ProcessGroupInfo`. See :class:`CollectiveEngine`.
    """

    name: str
    contract_version: int

    def device_count(self) -> int:
        """How many devices of this type are usable now (0 is fine)."""
        ...

    def device_info(self, index: int) -> DeviceInfo:
        """Describe device ``index`` (``0 <= index < device_count()``)."""
        ...

    def synchronize(self, index: int) -> None:
        """Block until all work queued on device ``index`` has finished."""
        ...

    def kernels(self, index: int) -> Kernels:
        """The kernel set bound to device ``index``; called once per device and cached."""
        ...


COLLECTIVE_OPS: dict[str, str] = {
    "sum": "elementwise sum over the ranks",
    "avg": "sum divided by the number of ranks (integers: truncated toward zero)",
    "product": "elementwise product over the ranks",
    "min": "elementwise minimum over the ranks",
    "max": "elementwise maximum over the ranks",
}
"""Reductions a :class:`CollectiveEngine` takes (``flambeau.distributed.ReduceOp`` values).
Bool arrays take ``sum``/``max`` (any rank true) and ``product``/``min`` (every rank)."""


@runtime_checkable
class CollectiveWork(Protocol):
    """A collective in flight, returned by every :class:`CollectiveEngine` method."""

    def wait(self) -> None:
        """Order later work on the device after the collective: work queued next reads its
        result (a stream-ordered engine may return before it has finished)."""
        ...

    def is_completed(self) -> bool:
        """True once the collective has finished (non-blocking)."""
        ...


@runtime_checkable
class ProcessGroupInfo(Protocol):
    """What ``collectives(index, group)`` is told about the processes taking part.

    Attributes:
        rank: This process's rank, ``0 <= rank < size``.
        size: The number of processes.
        local_rank: This process's rank among those on its machine.
    """

    rank: int
    size: int
    local_rank: int

    def broadcast_bytes(self, data: bytes | None, root: int) -> bytes:
        """``root``'s ``data``, on every rank, over the host engine (to share an engine's
        unique id, say); every rank calls it, ranks other than ``root`` with ``None``."""
        ...


@runtime_checkable
class CollectiveEngine(Protocol):
    """Collectives over one device's own arrays: a backend's optional ``collectives``.

    Every method queues the collective after the work already queued on its arrays (in
    stream order) and returns a :class:`CollectiveWork`; every rank calls the same methods
    in the same order with arrays of the same shapes and dtype (a ``DTYPES`` dtype). Arrays
    may be views of any layout; results are written in place. Results of ``all_reduce``
    must be bitwise identical on every rank.

    Attributes:
        name: The engine's name, as users select it: ``init_process_group("cuda:nccl")``.
    """

    name: str

    def all_reduce(self, x: DeviceArray, op: str) -> CollectiveWork:
        """Reduce ``x`` over the ranks, in place; ``op`` from :data:`COLLECTIVE_OPS`."""
        ...

    def broadcast(self, x: DeviceArray, root: int) -> CollectiveWork:
        """Copy rank ``root``'s ``x`` into ``x`` on every rank."""
        ...

    def all_gather(self, out: DeviceArray, x: DeviceArray) -> CollectiveWork:
        """Write every rank's ``x`` into ``out`` (``size * x.size`` elements, C order):
        rank ``r``'s values are elements ``r * x.size`` to ``(r + 1) * x.size - 1``."""
        ...

    def reduce_scatter(self, out: DeviceArray, x: DeviceArray, op: str) -> CollectiveWork:
        """Reduce ``x`` (``size * out.size`` elements) over the ranks and write chunk
        ``rank`` of the result (elements ``rank * out.size`` on, C order) into ``out``."""
        ...
