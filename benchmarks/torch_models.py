"""The PyTorch baselines, built here from the manual model's weights.

Each returns a function doing one forward and backward pass (the loss and the gradients of
every weight, of x, of h0 and for the LSTM of c0: the same set the manual loss_and_grads
returns), so that the manual pass and these do the same work on the same numbers.

Two baselines per cell: a Python loop over the cell module (nn.RNNCell, nn.LSTMCell,
nn.GRUCell) and the fused layer (nn.RNN, nn.LSTM, nn.GRU). All without biases, like the
manual models they copy: for the GRU this also drops torch's b_hn, the bias inside the reset
product, exactly as the manual GRU with bias=False has none. nn.RNNCell and nn.RNN offer only
tanh and relu hidden units, so the RNN comparison uses tanh.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch

from rnn_manual.cells import Cell
from rnn_torch.twin import torch_module, torch_weights

Pass = Callable[[], tuple[torch.Tensor, ...]]
R = TypeVar("R")


def _tensors(
    model: Cell, x: np.ndarray, y: np.ndarray, device: str
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], torch.nn.Linear]:
    """x, y, the zero initial states [h0] ([h0, c0] for the LSTM) as tensors on `device` (x and
    the states need gradients), and the output layer."""
    B, H = x.shape[1], model.hidden_size
    xt = torch.from_numpy(x).to(device).requires_grad_()
    yt = torch.from_numpy(y).to(device)
    states = [
        torch.zeros(B, H, dtype=xt.dtype, device=device, requires_grad=True) for _ in model.states
    ]
    out = torch.nn.Linear(H, model.output_size, bias=False, **_made_as(xt))
    with torch.no_grad():
        out.weight.copy_(torch.from_numpy(model.params["W_hy"].T.copy()))  # (O, H)
    return xt, yt, states, out


def _made_as(t: torch.Tensor) -> dict:
    """Module factory arguments: made directly in t's dtype and device, so that weights copied
    in are not first rounded through torch's default float32."""
    return {"dtype": t.dtype, "device": t.device}


def _torch_module(model: Cell, fused: bool, like: torch.Tensor) -> torch.nn.Module:
    """The cell (fused=False) or the one-layer fused module for model's cell, without biases,
    holding model's recurrent weights (gates stacked, transposed: weight_ih, weight_hh)."""
    assert not model.bias and model.activation in (None, "tanh")
    module = torch_module(model, fused, like.dtype, like.device)  # the twins' own choice
    params = {name: torch.from_numpy(w) for name, w in model.params.items()}
    weights = torch_weights(model, params)  # (gates * H, I) and (gates * H, H)
    suffix = "_l0" if fused else ""
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh"):
            getattr(module, name + suffix).copy_(weights[name])
    return module


def _mse(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The manual model's "mse": 0.5 * sum((p - y)**2) / B."""
    return 0.5 * ((p - y) ** 2).sum() / p.shape[1]


def cell_loop(model: Cell, x: np.ndarray, y: np.ndarray, device: str = "cpu") -> Pass:
    """A Python loop over nn.RNNCell / nn.LSTMCell / nn.GRUCell, autograd for the backward pass.

    The loop walks x.unbind(0): indexing x[t] instead would make backward allocate a
    full-size zero gradient for every step.
    """
    xt, yt, states, out = _tensors(model, x, y, device)
    cell = _torch_module(model, fused=False, like=xt)
    weights = [cell.get_parameter("weight_ih"), cell.get_parameter("weight_hh")]
    wrt = [*weights, out.weight, xt, *states]
    is_lstm = "c0" in model.states  # the cell takes and returns (h, c)

    def one_pass() -> tuple[torch.Tensor, ...]:
        h, c, hs = states[0], states[-1], []
        for x_t in xt.unbind(0):
            if is_lstm:
                h, c = cell(x_t, (h, c))
            else:
                h = cell(x_t, h)
            hs.append(h)
        loss = _mse(torch.sigmoid(out(torch.stack(hs))), yt)
        return (loss, *torch.autograd.grad(loss, wrt))

    return one_pass


def fused(model: Cell, x: np.ndarray, y: np.ndarray, device: str = "cpu") -> Pass:
    """The fused nn.RNN / nn.LSTM / nn.GRU (cuDNN on a GPU), autograd for the backward pass."""
    xt, yt, states, out = _tensors(model, x, y, device)
    layer = _torch_module(model, fused=True, like=xt)
    weights = [layer.get_parameter("weight_ih_l0"), layer.get_parameter("weight_hh_l0")]
    wrt = [*weights, out.weight, xt, *states]
    # The layer takes (1, B, H) states: one layer, one direction.
    first = tuple(s[None] for s in states) if len(states) > 1 else states[0][None]

    def one_pass() -> tuple[torch.Tensor, ...]:
        hs, _ = layer(xt, first)
        loss = _mse(torch.sigmoid(out(hs)), yt)
        return (loss, *torch.autograd.grad(loss, wrt))

    return one_pass


def synchronized(one_pass: Callable[[], R]) -> Callable[[], R]:
    """The pass (a torch baseline or a manual pass on torch) followed by a wait for the GPU,
    so that timing it times the work."""

    def waited() -> R:
        result = one_pass()
        torch.cuda.synchronize()
        return result

    return waited


def as_manual_grads(
    model: Cell, result: tuple[torch.Tensor, ...]
) -> tuple[float, dict[str, np.ndarray]]:
    """A pass's (loss, grads) in the manual model's names and layouts, for checking: the stacked
    weight_ih / weight_hh gradients transposed and split gate by gate."""
    loss, g_ih, g_hh, g_out, g_x, *g_states = (t.detach().cpu().numpy() for t in result)
    gates = model.gates
    if not gates:  # the RNN
        grads = {"W_xh": g_ih.T, "W_hh": g_hh.T}
    else:
        grads = dict(zip([f"W_x{q}" for q in gates], np.split(g_ih.T, len(gates), 1), strict=True))
        grads.update(zip([f"W_h{q}" for q in gates], np.split(g_hh.T, len(gates), 1), strict=True))
    grads.update(W_hy=g_out.T, x=g_x)
    grads.update(zip(["h0", "c0"], g_states, strict=False))
    return float(loss), grads
