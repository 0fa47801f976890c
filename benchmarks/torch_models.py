"""The PyTorch baselines, built here from the manual model's weights.

Each returns a function doing one forward and backward pass (the loss and the gradients of
every weight, of x and of h0, the same set the manual RNN.loss_and_grads returns), so that
the manual pass and these do the same work on the same numbers.

nn.RNNCell and nn.RNN offer only tanh and relu hidden units, so the comparison uses tanh.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from rnn_manual import RNN

Pass = Callable[[], object]


def _tensors(
    model: RNN, x: np.ndarray, y: np.ndarray, device: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.nn.Linear]:
    """x, y and a zero h0 as tensors on `device` (x and h0 need gradients), and the output layer."""
    B = x.shape[1]
    xt = torch.from_numpy(x).to(device).requires_grad_()
    yt = torch.from_numpy(y).to(device)
    h0 = torch.zeros(B, model.hidden_size, dtype=xt.dtype, device=device, requires_grad=True)
    out = torch.nn.Linear(model.hidden_size, model.output_size, bias=False, **_made_as(xt))
    with torch.no_grad():
        out.weight.copy_(torch.from_numpy(model.params["W_hy"].T.copy()))  # (O, H)
    return xt, yt, h0, out


def _made_as(t: torch.Tensor) -> dict:
    """Module factory arguments: made directly in t's dtype and device, so that weights copied
    in are not first rounded through torch's default float32."""
    return {"dtype": t.dtype, "device": t.device}


def _copy_recurrent(module: torch.nn.Module, model: RNN, suffix: str = "") -> None:
    """Copy W_xh and W_hh into an nn.RNN / nn.RNNCell (which store their transposes)."""
    with torch.no_grad():
        getattr(module, "weight_ih" + suffix).copy_(torch.from_numpy(model.params["W_xh"].T.copy()))
        getattr(module, "weight_hh" + suffix).copy_(torch.from_numpy(model.params["W_hh"].T.copy()))


def _mse(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The manual model's "mse": 0.5 * sum((p - y)**2) / B."""
    return 0.5 * ((p - y) ** 2).sum() / p.shape[1]


def cell_loop(model: RNN, x: np.ndarray, y: np.ndarray, device: str = "cpu") -> Pass:
    """A Python loop over nn.RNNCell (tanh, no bias), autograd for the backward pass.

    The loop walks x.unbind(0): indexing x[t] instead would make backward allocate a
    full-size zero gradient for every step.
    """
    assert model.activation == "tanh" and not model.bias
    xt, yt, h0, out = _tensors(model, x, y, device)
    cell = torch.nn.RNNCell(
        model.input_size, model.hidden_size, bias=False, nonlinearity="tanh", **_made_as(xt)
    )
    _copy_recurrent(cell, model)
    wrt = [cell.weight_ih, cell.weight_hh, out.weight, xt, h0]

    def one_pass() -> tuple[torch.Tensor, ...]:
        h, hs = h0, []
        for x_t in xt.unbind(0):
            h = cell(x_t, h)
            hs.append(h)
        loss = _mse(torch.sigmoid(out(torch.stack(hs))), yt)
        return (loss, *torch.autograd.grad(loss, wrt))

    return one_pass


def fused_rnn(model: RNN, x: np.ndarray, y: np.ndarray, device: str = "cpu") -> Pass:
    """torch.nn.RNN (tanh, no bias; cuDNN on a GPU), autograd for the backward pass."""
    assert model.activation == "tanh" and not model.bias
    xt, yt, h0, out = _tensors(model, x, y, device)
    rnn = torch.nn.RNN(
        model.input_size, model.hidden_size, bias=False, nonlinearity="tanh", **_made_as(xt)
    )
    _copy_recurrent(rnn, model, "_l0")
    wrt = [rnn.weight_ih_l0, rnn.weight_hh_l0, out.weight, xt, h0]

    def one_pass() -> tuple[torch.Tensor, ...]:
        hs, _ = rnn(xt, h0[None])
        loss = _mse(torch.sigmoid(out(hs)), yt)
        return (loss, *torch.autograd.grad(loss, wrt))

    return one_pass


def synchronized(one_pass: Pass) -> Pass:
    """The pass followed by a wait for the GPU, so that timing it times the work."""

    def waited() -> object:
        result = one_pass()
        torch.cuda.synchronize()
        return result

    return waited


def as_manual_grads(result: tuple[torch.Tensor, ...]) -> tuple[float, dict[str, np.ndarray]]:
    """A pass's (loss, grads) in the manual model's names and layouts, for checking."""
    loss, g_ih, g_hh, g_out, g_x, g_h0 = (t.detach().cpu().numpy() for t in result)
    grads = {"W_xh": g_ih.T, "W_hh": g_hh.T, "W_hy": g_out.T, "x": g_x, "h0": g_h0}
    return float(loss), grads
