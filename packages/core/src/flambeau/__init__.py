"""flambeau: a small deep-learning framework with device backends as plugins.

>>> import flambeau
>>> x = flambeau.arange(4.0, requires_grad=True)
>>> (x ** 2).sum().backward()
>>> x.grad
tensor([0., 2., 4., 6.])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import (
    _methods,
    autograd,
    backends,
    cuda,
    distributed,
    errors,
    linalg,
    nn,
    opencl,
    optim,
    serialization,
    utils,
)
from ._compile import compile
from ._creation import (
    BFloat16Tensor,
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
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
    finfo,
    float16,
    float32,
    float64,
    get_default_dtype,
    iinfo,
    int8,
    int16,
    int32,
    int64,
    result_type,
    set_default_dtype,
    uint8,
)
from ._dtypes import float16 as half
from ._dtypes import float32 as float
from ._dtypes import float64 as double
from ._dtypes import int16 as short
from ._dtypes import int32 as int
from ._dtypes import int64 as long
from ._ops.activation import relu, silu
from ._ops.einsum import einsum
from ._ops.elementwise import (
    abs,
    add,
    allclose,
    ceil,
    clamp,
    cos,
    div,
    eq,
    equal,
    erf,
    exp,
    expm1,
    floor,
    floor_divide,
    ge,
    gelu,
    gt,
    is_floating_point,
    isclose,
    isfinite,
    isinf,
    isnan,
    le,
    lerp,
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
    nan_to_num,
    ne,
    neg,
    pow,
    reciprocal,
    remainder,
    round,
    rsqrt,
    sigmoid,
    sign,
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
from ._ops.indexing import (
    gather,
    index_select,
    masked_fill,
    nonzero,
    repeat_interleave,
    scatter_add,
)
from ._ops.linalg import baddbmm, bmm, diag, dot, matmul, mm, mv, outer, tril, triu
from ._ops.norms import norm
from ._ops.reduction import (
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    count_nonzero,
    cumprod,
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
    roll,
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
from ._ops.softmax import log_softmax, softmax
from ._ops.sorting import argsort, bucketize, kthvalue, sort, topk, unique
from ._random import (
    Generator,
    bernoulli,
    default_generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    normal,
    rand,
    randint,
    randn,
    randperm,
    set_rng_state,
)
from ._tensor import Size, Tensor
from .autograd import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
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
    "distributed", "dot", "double", "empty", "empty_like", "enable_grad", "eq", "erf", "errors",
    "exp",
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
    "compile", "finfo", "get_default_dtype", "get_rng_state", "iinfo", "inference_mode",
    "set_default_dtype", "set_rng_state",
    "BFloat16Tensor", "BoolTensor", "ByteTensor", "CharTensor", "DoubleTensor", "FloatTensor",
    "HalfTensor", "IntTensor", "LongTensor", "ShortTensor", "allclose", "argsort", "baddbmm",
    "bfloat16", "bucketize", "cumprod", "diag", "einsum", "equal", "is_floating_point",
    "isclose", "kthvalue", "lerp", "log_softmax", "nan_to_num", "repeat_interleave", "roll",
    "softmax", "sort", "topk", "tril", "triu", "unique",
]


if TYPE_CHECKING:
    from numpy import dtype as _dtype

    bfloat16: _dtype
else:

    def __getattr__(name: str) -> object:
        # bfloat16 comes from ml_dtypes, whose import takes half a second: on first use.
        if name == "bfloat16":
            from ._dtypes import load_bfloat16

            return load_bfloat16()
        raise AttributeError(f"module 'flambeau' has no attribute {name!r}")
