"""flambeau: a small deep-learning framework with device backends as plugins.

>>> import flambeau
>>> x = flambeau.arange(4.0, requires_grad=True)
>>> (x ** 2).sum().backward()
>>> x.grad
tensor([0., 2., 4., 6.])
"""

from __future__ import annotations

from . import (
    _methods,
    autograd,
    backends,
    cuda,
    errors,
    linalg,
    nn,
    opencl,
    optim,
    serialization,
    utils,
)
from ._creation import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    tensor,
    zeros,
    zeros_like,
)
from ._device import (
    Device,
    device,
    device_count,
    devices,
    get_default_device,
    set_default_device,
    synchronize,
)
from ._dtypes import (
    bool_ as bool,
)
from ._dtypes import (
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    result_type,
    uint8,
)
from ._dtypes import float16 as half
from ._dtypes import float32 as float
from ._dtypes import float64 as double
from ._dtypes import int16 as short
from ._dtypes import int32 as int
from ._dtypes import int64 as long
from ._ops.elementwise import (
    abs,
    add,
    ceil,
    clamp,
    cos,
    div,
    eq,
    erf,
    exp,
    expm1,
    floor,
    floor_divide,
    ge,
    gelu,
    gt,
    isfinite,
    isinf,
    isnan,
    le,
    log,
    log1p,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    lt,
    maximum,
    minimum,
    mul,
    ne,
    neg,
    pow,
    reciprocal,
    relu,
    remainder,
    round,
    rsqrt,
    sigmoid,
    sign,
    silu,
    sin,
    sqrt,
    square,
    sub,
    tanh,
    trunc,
    where,
)
from ._ops.elementwise import clamp as clip
from ._ops.elementwise import div as divide
from ._ops.elementwise import mul as multiply
from ._ops.elementwise import sub as subtract
from ._ops.indexing import gather, index_select, masked_fill, nonzero, scatter_add
from ._ops.linalg import bmm, dot, matmul, mm, mv, outer
from ._ops.norms import norm
from ._ops.reduction import (
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    count_nonzero,
    cumsum,
    logsumexp,
    max,
    mean,
    min,
    prod,
    std,
    sum,
    var,
)
from ._ops.shape import (
    broadcast_tensors,
    broadcast_to,
    cat,
    chunk,
    clone,
    concat,
    expand,
    flatten,
    flip,
    movedim,
    narrow,
    pad,
    permute,
    repeat,
    reshape,
    split,
    squeeze,
    stack,
    swapaxes,
    t,
    tile,
    transpose,
    unbind,
    unflatten,
    unsqueeze,
)
from ._random import (
    Generator,
    bernoulli,
    default_generator,
    initial_seed,
    manual_seed,
    normal,
    rand,
    randint,
    randn,
    randperm,
)
from ._tensor import Size, Tensor
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .errors import FlambeauError
from .serialization import load, save

_methods.bind()

__version__ = "0.1.0"

__all__ = [
    "Device", "FlambeauError", "Generator", "Size", "Tensor", "__version__", "abs", "add",
    "all", "amax", "amin", "any", "arange", "argmax", "argmin", "as_tensor", "autograd",
    "backends", "bernoulli", "bmm", "bool", "broadcast_tensors", "broadcast_to", "cat",
    "ceil", "chunk", "clamp", "clip", "clone", "concat", "cos", "count_nonzero", "cuda",
    "cumsum", "default_generator", "device", "device_count", "devices", "div", "divide",
    "dot", "double", "empty", "empty_like", "enable_grad", "eq", "erf", "errors", "exp",
    "expand", "expm1", "eye", "flatten", "flip", "float", "float16", "float32", "float64",
    "floor", "floor_divide", "from_dlpack", "from_numpy", "full", "full_like", "gather",
    "ge", "gelu", "get_default_device", "gt", "half", "index_select", "initial_seed", "int",
    "int8", "int16", "int32", "int64", "is_grad_enabled", "isfinite", "isinf", "isnan", "le",
    "linspace", "log", "log1p", "logical_and", "logical_not", "logical_or", "logical_xor",
    "logsumexp", "long", "lt", "manual_seed", "masked_fill", "matmul", "max", "maximum",
    "mean", "min", "minimum", "mm", "movedim", "mul", "multiply", "mv", "narrow", "ne", "neg", "nn",
    "optim", "load", "save", "serialization", "linalg", "norm",
    "no_grad", "nonzero", "normal", "ones", "ones_like", "opencl", "outer", "pad", "permute",
    "pow", "prod", "rand", "randint", "randn", "randperm", "reciprocal", "relu", "remainder",
    "repeat", "reshape", "result_type", "round", "rsqrt", "scatter_add", "set_default_device",
    "set_grad_enabled", "short", "sigmoid", "sign", "silu", "sin", "split", "sqrt", "square",
    "squeeze", "stack", "std", "sub", "subtract", "sum", "swapaxes", "synchronize", "t",
    "tanh", "tensor", "tile", "transpose", "trunc", "uint8", "unbind", "unflatten",
    "unsqueeze", "utils", "var", "where", "zeros", "zeros_like",
]
