"""Recurrent layers: RNN, GRU, LSTM and their one-step cells (PyTorch's API and names).

Everything is composed from tensor operations (linear, sigmoid, tanh, stack...), so
gradients come from autograd and every backend runs them. The input projection of a
whole sequence is one matrix product per layer and direction; only the hidden-to-hidden
product runs step by step.

Shapes follow PyTorch: input ``(L, N, H_in)`` (``(N, L, H_in)`` with ``batch_first``, or
``(L, H_in)`` unbatched); states ``(D * num_layers, N, H_out)`` whatever ``batch_first``
says; output ``(L, N, D * H_out)``. Gate order in the stacked weights: GRU ``r, z, n``;
LSTM ``i, f, g, o``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import flambeau  # stack and cat, looked up at call time (flambeau imports nn first)

from ..._creation import empty, zeros
from ..._tensor import Tensor
from ...errors import DTypeError
from .. import functional as F
from ..init import uniform_
from ..module import LayerInputError, Module
from ..parameter import Parameter

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}


# --- one time step, given the input projection gi = x @ W_ih.T + b_ih ---------------------

# Gates and time steps are cut with chunk/unbind, whose backward costs one buffer for
# all the pieces (not one full-size gradient per piece): linear in the sequence length.

def _rnn_step(activation: Any, gi: Tensor, h: Tensor, w_hh: Tensor,
              b_hh: Tensor | None) -> Tensor:
    return activation(gi + F.linear(h, w_hh, b_hh))


def _gru_step(gi: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    i_r, i_z, i_n = gi.chunk(3, -1)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, -1)
    reset = F.sigmoid(i_r + h_r)
    update = F.sigmoid(i_z + h_z)
    new = F.tanh(i_n + reset * h_n)
    return new + update * (h - new)  # (1 - z) * n + z * h


def _lstm_step(gi: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor | None,
               w_hr: Tensor | None = None) -> tuple[Tensor, Tensor]:
    i, f, g, o = (gi + F.linear(h, w_hh, b_hh)).chunk(4, -1)
    c = F.sigmoid(f) * c + F.sigmoid(i) * F.tanh(g)
    h = F.sigmoid(o) * F.tanh(c)
    if w_hr is not None:
        h = F.linear(h, w_hr)
    return h, c


def _check_size(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be greater than zero, got {value}")


def _check_dtype(layer: Module, input: Tensor, weight: Tensor) -> None:
    if input.dtype != weight.dtype:
        raise DTypeError(f"{layer._get_name()}: input dtype {input.dtype} does not match "
                         f"weight dtype {weight.dtype}; convert the input with "
                         f"input.to({weight.dtype}) or the model with model.to({input.dtype})")


class RNNBase(Module):
    """The multi-layer recurrent network shared by :class:`RNN`, :class:`GRU` and
    :class:`LSTM`; ``mode`` is ``"RNN_TANH"``, ``"RNN_RELU"``, ``"GRU"`` or ``"LSTM"``.

    Parameters per layer ``k`` (suffix ``_reverse`` for the backward direction):
    ``weight_ih_l{k}`` (gates * hidden_size, input size of the layer),
    ``weight_hh_l{k}`` (gates * hidden_size, proj_size or hidden_size), ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` and, for an LSTM with ``proj_size``, ``weight_hr_l{k}``. All start
    as U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        if mode not in _GATES:
            raise ValueError(f"unknown RNN mode {mode!r}; expected one of {sorted(_GATES)}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            _check_size(name, value)
        for name, value in (("bias", bias), ("batch_first", batch_first),
                            ("bidirectional", bidirectional)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
                or not 0 <= dropout <= 1):
            raise ValueError(f"dropout should be a number in range [0, 1] representing the "
                             f"probability of an element being zeroed, got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          f"non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable "
                             f"projections, got {proj_size}")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size has to be smaller than hidden_size, got "
                             f"proj_size={proj_size}, hidden_size={hidden_size}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        directions = 2 if bidirectional else 1
        out_size = proj_size or hidden_size
        gate_size = _GATES[mode] * hidden_size
        self._flat_weights_names: list[str] = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else out_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = {"weight_ih": (gate_size, layer_input),
                          "weight_hh": (gate_size, out_size)}
                if bias:
                    shapes.update(bias_ih=(gate_size,), bias_hh=(gate_size,))
                if proj_size:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                for name, shape in shapes.items():
                    setattr(self, name + suffix,
                            Parameter(empty(*shape, device=device, dtype=dtype)))
                    self._flat_weights_names.append(name + suffix)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            uniform_(param, -bound, bound)

    def flatten_parameters(self) -> None:
        """Does nothing (PyTorch packs cuDNN weights here); kept for compatible code."""

    @property
    def all_weights(self) -> list[list[Parameter]]:
        """The parameters per layer and direction, in PyTorch's order."""
        per = len(self._flat_weights_names) // (self.num_layers * (2 if self.bidirectional
                                                                   else 1))
        names = self._flat_weights_names
        return [[getattr(self, n) for n in names[i:i + per]] for i in range(0, len(names), per)]

    def _weights(self, layer: int, direction: int) -> tuple[Any, ...]:
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        get = self._parameters.get
        return (get("weight_ih" + suffix), get("weight_hh" + suffix), get("bias_ih" + suffix),
                get("bias_hh" + suffix), get("weight_hr" + suffix))

    # --- forward --------------------------------------------------------------------------

    def _check_state(self, state: Any, name: str, batched: bool, expected: tuple) -> Tensor:
        if not isinstance(state, Tensor):
            raise TypeError(f"{name} must be a Tensor, got {type(state).__name__}")
        want = 3 if batched else 2
        if state.ndim != want:
            kind = "batched 3-D" if batched else "unbatched 2-D"
            raise LayerInputError(self, f"for {kind} input, {name} should also be {want}-D, "
                                        f"got shape {list(state.shape)}")
        state = state if batched else state.unsqueeze(1)
        if tuple(state.shape) != expected:
            got = list(state.shape) if batched else [state.shape[0], state.shape[2]]
            want_shape = list(expected) if batched else [expected[0], expected[2]]
            raise LayerInputError(self, f"expected {name} of shape {want_shape} ((num_layers "
                                        f"* num_directions, batch, hidden)), got {got}")
        return state

    def forward(self, input: Tensor, hx: Any = None) -> tuple[Tensor, Any]:
        """Run the sequence ``input`` from the initial state ``hx`` (zeros if ``None``;
        a pair ``(h_0, c_0)`` for an LSTM).

        Returns:
            ``(output, h_n)``, or ``(output, (h_n, c_n))`` for an LSTM: the last layer's
            hidden state at every step, and every layer's state after the last step.
        """
        lstm = self.mode == "LSTM"
        if not isinstance(input, Tensor):
            raise TypeError(f"{self._get_name()} expects a Tensor input, got "
                            f"{type(input).__name__}")
        if input.ndim not in (2, 3):
            raise LayerInputError(self, f"expected a 3-D input (sequence, batch, features) or "
                                        f"a 2-D unbatched one, got shape {list(input.shape)}")
        batched = input.ndim == 3
        if not batched:
            input = input.unsqueeze(1)
        elif self.batch_first:
            input = input.transpose(0, 1)
        steps, batch, features = input.shape
        if features != self.input_size:
            raise LayerInputError(self, f"expected input with last dimension input_size="
                                        f"{self.input_size}, got shape {list(input.shape)}"
                                  if batched else
                                  f"expected input with last dimension input_size="
                                  f"{self.input_size}, got shape "
                                  f"{[input.shape[0], input.shape[2]]}")
        if steps == 0:
            raise LayerInputError(self, "expected a sequence of length at least 1, got 0")
        _check_dtype(self, input, self.weight_ih_l0)
        directions = 2 if self.bidirectional else 1
        out_size = self.proj_size or self.hidden_size
        h_shape = (self.num_layers * directions, batch, out_size)
        c_shape = (self.num_layers * directions, batch, self.hidden_size)
        if hx is None:
            h0 = zeros(h_shape, dtype=input.dtype, device=input.device)
            c0 = zeros(c_shape, dtype=input.dtype, device=input.device) if lstm else None
        elif lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"LSTM expects hx as a pair (h_0, c_0), got "
                                f"{type(hx).__name__}")
            h0 = self._check_state(hx[0], "h_0", batched, h_shape)
            c0 = self._check_state(hx[1], "c_0", batched, c_shape)
        else:
            h0 = self._check_state(hx, "hx", batched, h_shape)
            c0 = None
        activation = F.relu if self.mode == "RNN_RELU" else F.tanh
        layer_input = input
        h_n: list[Tensor] = []
        c_n: list[Tensor] = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, direction)
                projected = F.linear(layer_input, w_ih, b_ih).unbind(0)
                order = range(steps - 1, -1, -1) if direction else range(steps)
                h = h0[index]
                c = c0[index] if lstm else None
                seen = []
                for t in order:
                    if lstm:
                        h, c = _lstm_step(projected[t], h, c, w_hh, b_hh, w_hr)
                    elif self.mode == "GRU":
                        h = _gru_step(projected[t], h, w_hh, b_hh)
                    else:
                        h = _rnn_step(activation, projected[t], h, w_hh, b_hh)
                    seen.append(h)
                if direction:
                    seen.reverse()
                outputs.append(flambeau.stack(seen, 0))
                h_n.append(h)
                if lstm:
                    c_n.append(c)
            layer_input = outputs[0] if directions == 1 else flambeau.cat(outputs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        output = layer_input
        h_last = flambeau.stack(h_n, 0)
        c_last = flambeau.stack(c_n, 0) if lstm else None
        if not batched:
            output = output.squeeze(1)
            h_last = h_last.squeeze(1)
            c_last = c_last.squeeze(1) if lstm else None
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, ((h_last, c_last) if lstm else h_last)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            text += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if self.bias is not True:
            text += f", bias={self.bias}"
        if self.batch_first is not False:
            text += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            text += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            text += f", bidirectional={self.bidirectional}"
        return text


class RNN(RNNBase):
    """Elman RNN: ``h_t = act(x_t @ W_ih.T + b_ih + h_{t-1} @ W_hh.T + b_hh)``, act tanh
    or relu, stacked ``num_layers`` deep.

    Args (PyTorch's order): input_size, hidden_size, num_layers=1, nonlinearity="tanh",
    bias=True, batch_first=False, dropout=0.0 (between layers, in training),
    bidirectional=False, device=None, dtype=None.

    >>> import flambeau
    >>> from flambeau import nn
    >>> rnn = nn.RNN(10, 20, num_layers=2)
    >>> output, h_n = rnn(flambeau.randn(5, 3, 10))
    >>> tuple(output.shape), tuple(h_n.shape)
    ((5, 3, 20), (2, 3, 20))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device: Any = None,
                 dtype: Any = None) -> None:
        modes = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}
        if nonlinearity not in modes:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__(modes[nonlinearity], input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity


class GRU(RNNBase):
    """Gated recurrent unit (Cho et al.), PyTorch's formulation::

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h

    >>> import flambeau
    >>> from flambeau import nn
    >>> gru = nn.GRU(4, 8, batch_first=True)
    >>> output, h_n = gru(flambeau.randn(2, 7, 4))
    >>> tuple(output.shape), tuple(h_n.shape)
    ((2, 7, 8), (1, 2, 8))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device: Any = None, dtype: Any = None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, device=device, dtype=dtype)


class LSTM(RNNBase):
    """Long short-term memory (Hochreiter & Schmidhuber), PyTorch's formulation::

        i, f, g, o = sigmoid, sigmoid, tanh, sigmoid of (W_i* x + b_i* + W_h* h + b_h*)
        c' = f * c + i * g
        h' = o * tanh(c')            (then h' @ W_hr.T when proj_size > 0)

    Returns ``(output, (h_n, c_n))``; ``hx`` is a pair ``(h_0, c_0)`` or ``None``.

    >>> import flambeau
    >>> from flambeau import nn
    >>> lstm = nn.LSTM(4, 8, num_layers=2, bidirectional=True)
    >>> output, (h_n, c_n) = lstm(flambeau.randn(6, 3, 4))
    >>> tuple(output.shape), tuple(h_n.shape), tuple(c_n.shape)
    ((6, 3, 16), (4, 3, 8), (4, 3, 8))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device=device, dtype=dtype)


# --- cells --------------------------------------------------------------------------------

class RNNCellBase(Module):
    """One time step of a recurrent layer: parameters ``weight_ih``, ``weight_hh``,
    ``bias_ih``, ``bias_hh``, initialised U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""

    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        _check_size("input_size", input_size)
        _check_size("hidden_size", hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        gate_size = self._gates * hidden_size
        self.weight_ih = Parameter(empty(gate_size, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(empty(gate_size, hidden_size, device=device, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(empty(gate_size, device=device, dtype=dtype))
            self.bias_hh = Parameter(empty(gate_size, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            uniform_(param, -bound, bound)

    def _prepare(self, input: Tensor, states: tuple[Any, ...],
                 names: tuple[str, ...]) -> tuple[Tensor, list[Tensor], bool]:
        """The input as (N, H_in) and each state as (N, H), zeros when missing."""
        if not isinstance(input, Tensor):
            raise TypeError(f"{self._get_name()} expects a Tensor input, got "
                            f"{type(input).__name__}")
        if input.ndim not in (1, 2):
            raise LayerInputError(self, f"expected a 2-D input (batch, features) or a 1-D "
                                        f"unbatched one, got shape {list(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise LayerInputError(self, f"expected input with last dimension input_size="
                                        f"{self.input_size}, got shape {list(input.shape)}")
        _check_dtype(self, input, self.weight_ih)
        batched = input.ndim == 2
        if not batched:
            input = input.unsqueeze(0)
        out = []
        for state, name in zip(states, names):
            if state is None:
                state = zeros(input.shape[0], self.hidden_size, dtype=input.dtype,
                              device=input.device)
            else:
                if not isinstance(state, Tensor):
                    raise TypeError(f"{name} must be a Tensor, got {type(state).__name__}")
                expected = [input.shape[0], self.hidden_size] if batched else [self.hidden_size]
                if list(state.shape) != expected:
                    raise LayerInputError(self, f"expected {name} of shape {expected}, got "
                                                f"{list(state.shape)}")
                if not batched:
                    state = state.unsqueeze(0)
            out.append(state)
        return input, out, batched

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            text += f", bias={self.bias}"
        nonlinearity = getattr(self, "nonlinearity", "tanh")
        return text if nonlinearity == "tanh" else text + f", nonlinearity={nonlinearity}"


def _unbatch(t: Tensor, batched: bool) -> Tensor:
    return t if batched else t.squeeze(0)


class RNNCell(RNNCellBase):
    """``h' = act(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh)``, act tanh or relu.

    >>> import flambeau
    >>> from flambeau import nn
    >>> cell = nn.RNNCell(4, 6)
    >>> tuple(cell(flambeau.randn(3, 4)).shape)
    (3, 6)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device: Any = None, dtype: Any = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}. Select from 'tanh' or "
                             "'relu'.")
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        input, (h,), batched = self._prepare(input, (hx,), ("hx",))
        activation = F.relu if self.nonlinearity == "relu" else F.tanh
        gi = F.linear(input, self.weight_ih, self.bias_ih)
        return _unbatch(_rnn_step(activation, gi, h, self.weight_hh, self.bias_hh), batched)


class GRUCell(RNNCellBase):
    """One step of :class:`GRU`.

    >>> import flambeau
    >>> from flambeau import nn
    >>> tuple(nn.GRUCell(4, 6)(flambeau.randn(3, 4)).shape)
    (3, 6)
    """

    _gates = 3

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        input, (h,), batched = self._prepare(input, (hx,), ("hx",))
        gi = F.linear(input, self.weight_ih, self.bias_ih)
        return _unbatch(_gru_step(gi, h, self.weight_hh, self.bias_hh), batched)


class LSTMCell(RNNCellBase):
    """One step of :class:`LSTM`: returns ``(h', c')``; ``hx`` is ``(h, c)`` or ``None``.

    >>> import flambeau
    >>> from flambeau import nn
    >>> h, c = nn.LSTMCell(4, 6)(flambeau.randn(3, 4))
    >>> tuple(h.shape), tuple(c.shape)
    ((3, 6), (3, 6))
    """

    _gates = 4

    def forward(self, input: Tensor,
                hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"LSTMCell expects hx as a pair (h, c), got {type(hx).__name__}")
        states = (None, None) if hx is None else tuple(hx)
        input, (h, c), batched = self._prepare(input, states, ("h", "c"))
        gi = F.linear(input, self.weight_ih, self.bias_ih)
        h, c = _lstm_step(gi, h, c, self.weight_hh, self.bias_hh)
        return _unbatch(h, batched), _unbatch(c, batched)


__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNBase", "RNNCell", "RNNCellBase"]
