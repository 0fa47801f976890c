"""PyTorch twins of the manual LSTM and GRU, on nn.LSTMCell / nn.GRUCell, for autograd to judge.

A twin holds one torch leaf tensor per manual parameter, named and shaped as in the manual
model. Each step stacks them into PyTorch's own layout (weight_ih, weight_hh, bias_ih,
bias_hh; see the docstrings of rnn_manual.cells.lstm and rnn_manual.cells.gru) and runs the real
nn.LSTMCell or nn.GRUCell with them, so autograd carries the gradients back through the
stacking to the manual names, and torch optimizers can train the twin exactly as the manual
optimizers train the manual model.

`fused_forward` runs the same weights through the fused nn.LSTM / nn.GRU instead.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import nn
from torch.func import functional_call

from rnn_manual.cells.gru import GRU
from rnn_manual.cells.lstm import LSTM
from rnn_manual.core.backend import to_numpy
from rnn_manual.core.gradcheck import relative_error

from .check import Row
from .compare import FLOAT64_BOUND, float32_allowed, float32_bound, max_abs_error
from .twin import TORCH_DTYPES, torch_device, torch_loss

Array = NDArray[np.floating]


def torch_weights(model: LSTM | GRU, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The manual parameters in PyTorch's stacked layout: weight_ih, weight_hh, bias_ih, bias_hh."""
    if isinstance(model, LSTM):  # gate order i, f, g, o
        x_side = ["W_xi", "W_xf", "W_xg", "W_xo"]
        h_side = ["W_hi", "W_hf", "W_hg", "W_ho"]
    else:  # gate order r, z, n (z is the manual update gate u)
        x_side = ["W_xr", "W_xu", "W_xn"]
        h_side = ["W_hr", "W_hu", "W_hn"]
    weights = {
        "weight_ih": torch.cat([params[name] for name in x_side], dim=1).T,
        "weight_hh": torch.cat([params[name] for name in h_side], dim=1).T,
    }
    if model.bias:
        if isinstance(model, LSTM):
            bias_ih = torch.cat([params[name] for name in ["b_i", "b_f", "b_g", "b_o"]])
            bias_hh = torch.zeros_like(bias_ih)
        else:
            bias_ih = torch.cat([params["b_r"], params["b_u"], params["b_xn"]])
            zeros = torch.zeros_like(params["b_hn"])
            bias_hh = torch.cat([zeros, zeros, params["b_hn"]])
        weights.update(bias_ih=bias_ih, bias_hh=bias_hh)
    return weights


class GatedTwin:
    """A manual LSTM or GRU rebuilt in torch with the same weights (copied, not shared)."""

    def __init__(self, model: LSTM | GRU) -> None:
        self.model = model
        self.dtype = TORCH_DTYPES[model.dtype]
        self.device = torch_device(next(iter(model.params.values())))  # where the model runs
        self.params = {
            name: self._tensor(to_numpy(w)).clone().requires_grad_(True)
            for name, w in model.params.items()
        }
        I, H = model.input_size, model.hidden_size
        cell_type = nn.LSTMCell if isinstance(model, LSTM) else nn.GRUCell
        self.cell = cell_type(I, H, bias=model.bias, dtype=self.dtype, device=self.device)
        self.cell.requires_grad_(False)

    def _tensor(self, value: ArrayLike) -> torch.Tensor:
        return torch.as_tensor(np.asarray(value), dtype=self.dtype, device=self.device)

    def logits(
        self, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Output logits (T, B, O), one nn.LSTMCell / nn.GRUCell call per step."""
        weights = torch_weights(self.model, self.params)
        h, c = h0, c0
        outputs = []
        for x_t in x.unbind(0):
            if c is not None:
                h, c = functional_call(self.cell, weights, (x_t, (h, c)))
            else:
                h = functional_call(self.cell, weights, (x_t, h))
            outputs.append(h)
        z = torch.stack(outputs) @ self.params["W_hy"]
        if self.model.bias:
            z = z + self.params["b_y"]
        return z

    def loss_and_grads(
        self,
        x: ArrayLike,
        y: ArrayLike,
        loss: str = "mse",
        h0: ArrayLike | None = None,
        c0: ArrayLike | None = None,
    ) -> tuple[float, dict[str, Array]]:
        """The loss and its autograd gradients, keyed as the manual model's loss_and_grads."""
        x_t = self._tensor(x).requires_grad_(True)
        B, H = x_t.shape[1], self.model.hidden_size
        h0_t = self._tensor(np.zeros((B, H))) if h0 is None else self._tensor(h0)
        h0_t.requires_grad_(True)
        inputs = {"x": x_t, "h0": h0_t}
        c0_t = None
        if isinstance(self.model, LSTM):
            c0_t = self._tensor(np.zeros((B, H))) if c0 is None else self._tensor(c0)
            inputs["c0"] = c0_t.requires_grad_(True)
        for w in self.params.values():
            w.grad = None
        z = self.logits(x_t, h0_t, c0_t)
        value = torch_loss(loss, z, torch.sigmoid(z), self._tensor(y))
        leaves = {**self.params, **inputs}
        grads = torch.autograd.grad(value, list(leaves.values()))
        return float(value.detach()), {
            name: to_numpy(g) for name, g in zip(leaves, grads, strict=True)
        }


def fused_forward(
    model: LSTM | GRU, x: ArrayLike, h0: ArrayLike | None = None, c0: ArrayLike | None = None
) -> Array:
    """Output probabilities (T, B, O) from the fused nn.LSTM / nn.GRU holding model's weights."""
    dtype = TORCH_DTYPES[model.dtype]
    I, H = model.input_size, model.hidden_size
    params = {name: torch.as_tensor(to_numpy(w), dtype=dtype) for name, w in model.params.items()}
    layer_type = nn.LSTM if isinstance(model, LSTM) else nn.GRU
    layer = layer_type(I, H, bias=model.bias, dtype=dtype)
    weights = {f"{k}_l0": w for k, w in torch_weights(model, params).items()}
    x_t = torch.as_tensor(np.asarray(x), dtype=dtype)
    B = x_t.shape[1]
    h0_t = (
        torch.zeros(1, B, H, dtype=dtype) if h0 is None else torch.as_tensor(h0, dtype=dtype)[None]
    )
    with torch.no_grad():
        if isinstance(model, LSTM):
            c0_t = (
                torch.zeros(1, B, H, dtype=dtype)
                if c0 is None
                else torch.as_tensor(c0, dtype=dtype)[None]
            )
            out, _ = functional_call(layer, weights, (x_t, (h0_t, c0_t)))
        else:
            out, _ = functional_call(layer, weights, (x_t, h0_t))
        z = out @ params["W_hy"]
        if model.bias:
            z = z + params["b_y"]
        return torch.sigmoid(z).numpy()


def gradient_rows(
    model: LSTM | GRU,
    x: Array,
    y: Array,
    loss: str = "mse",
    h0: Array | None = None,
    c0: Array | None = None,
) -> list[Row]:
    """Every gradient of `loss` (params, "x", "h0", "c0" for the LSTM, and the loss itself) by
    hand and by autograd on the cell twin, judged as rnn_torch.check.gradient_rows judges the
    RNN's: float64 within FLOAT64_BOUND, float32 within float32_allowed of the float64 truth."""
    states = {"h0": h0, "c0": c0} if isinstance(model, LSTM) else {"h0": h0}
    manual_loss, grads = model.loss_and_grads(x, y, loss, **states)
    manual = {name: to_numpy(g) for name, g in grads.items()}  # from whatever library
    auto_loss, auto = GatedTwin(model).loss_and_grads(x, y, loss, **states)
    manual["loss"], auto["loss"] = np.array(manual_loss), np.array(auto_loss)
    truth = None
    if model.dtype != np.float64:
        model64 = type(model)(
            model.input_size, model.hidden_size, model.output_size, model.bias, np.float64
        )
        for name, w in model.params.items():
            model64.params[name][...] = to_numpy(w)
        truth_loss, truth = GatedTwin(model64).loss_and_grads(x, y, loss, **states)
        truth["loss"] = np.array(truth_loss)
    T, B, _ = np.shape(x)
    width = model.input_size + model.hidden_size + model.output_size
    rows = []
    for name, a in auto.items():
        m = manual[name]
        relative = relative_error(m, a)
        if truth is None:
            limit, passed = FLOAT64_BOUND, relative <= FLOAT64_BOUND
        else:
            exact = truth[name]
            norm = float(np.linalg.norm(exact))
            allowed = float32_allowed(float(np.linalg.norm(a - exact)), norm, T, width, B)
            passed = float(np.linalg.norm(m - exact)) <= allowed
            limit = allowed / norm if norm else float32_bound(T, width, B)
        rows.append(Row(name, a.shape, max_abs_error(m, a), relative, limit, passed))
    return rows
