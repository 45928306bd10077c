"""Parameters as one flat vector and back (PyTorch's ``torch.nn.utils.convert_parameters``),
for optimizers and analyses that work on a single vector."""

from __future__ import annotations

from collections.abc import Iterable

from ..._ops.shape import cat, reshape
from ..._tensor import Tensor
from ...errors import DeviceMismatchError, ShapeError


def _same_device(param: Tensor, first: Tensor | None) -> Tensor:
    """The first parameter seen; raises if ``param`` is on another device than it."""
    if first is None:
        return param
    if param.device != first.device:
        raise TypeError(f"Found two parameters on different devices, this is currently not "
                        f"supported: {first.device} and {param.device}; move them to one "
                        "device first (module.to(device))")
    return first


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All ``parameters`` flattened and concatenated into one 1-d tensor (a copy, in the
    graph: gradients flow back to the parameters).

    >>> import flambeau
    >>> from flambeau import nn
    >>> layer = nn.Linear(3, 2)
    >>> nn.utils.parameters_to_vector(layer.parameters()).shape
    flambeau.Size([8])
    """
    first = None
    flat = []
    for param in parameters:
        first = _same_device(param, first)
        flat.append(reshape(param, (-1,)))
    if not flat:
        raise ValueError("parameters_to_vector: got no parameters; torch.cat() of an empty "
                         "list is an error in PyTorch too")
    return cat(flat)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy the slices of ``vec`` into ``parameters`` (in order, each reshaped to its
    parameter's shape): the inverse of :func:`parameters_to_vector`. Each parameter's
    data becomes a view of ``vec``, as in PyTorch; elements past the last parameter are
    ignored, as in PyTorch.

    Raises:
        TypeError: ``vec`` is not a tensor, or the parameters are on different devices.
        ShapeError: ``vec`` is not 1-d or has fewer elements than the parameters.
        DeviceMismatchError: ``vec`` is on another device than the parameters.

    >>> import flambeau
    >>> from flambeau import nn
    >>> layer = nn.Linear(3, 2)
    >>> nn.utils.vector_to_parameters(flambeau.zeros(8), layer.parameters())
    >>> layer.bias
    Parameter containing:
    tensor([0., 0.], requires_grad=True)
    """
    if not isinstance(vec, Tensor):
        kind = type(vec)
        name = kind.__qualname__ if kind.__module__ == "builtins" else \
            f"{kind.__module__}.{kind.__qualname__}"
        raise TypeError(f"expected flambeau.Tensor, but got: {name}")
    if vec.ndim != 1:
        raise ShapeError(f"vector_to_parameters: vec must be 1-d (as parameters_to_vector "
                         f"makes it), got shape {list(vec.shape)}; flatten it first")
    parameters = list(parameters)
    first = None
    for param in parameters:
        first = _same_device(param, first)
    if first is not None and vec.device != first.device:
        raise DeviceMismatchError(f"vector_to_parameters: vec is on {vec.device}, the "
                                  f"parameters on {first.device}; move it first with "
                                  f".to({str(first.device)!r})")
    needed = sum(param.numel() for param in parameters)
    if vec.numel() < needed:
        raise ShapeError(f"vector_to_parameters: vec has {vec.numel()} elements, the "
                         f"parameters need {needed} ({len(parameters)} parameters); pass a "
                         "vector from parameters_to_vector of the same parameters")
    pointer = 0
    for param in parameters:
        size = param.numel()
        param.data = reshape(vec[pointer:pointer + size], tuple(param.shape)).data
        pointer += size
