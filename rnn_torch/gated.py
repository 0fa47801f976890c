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
from torch.func import functional_call

from rnn_manual.cells import Cell
from rnn_manual.core.backend import to_numpy

from .compare import Grads, Row, judge
from .twin import TORCH_DTYPES, TORCH_MODULES, torch_device, torch_loss

Array = NDArray[np.floating]

#: Each gated cell's biases as PyTorch stacks them, gate by gate: bias_ih, then bias_hh (None:
#: held at zero). The LSTM has one bias per gate; the GRU's candidate n has two, b_xn outside
#: the reset product and b_hn inside it, where torch's bias_hh puts it.
TORCH_BIASES: dict[str, tuple[list[str], list[str | None]]] = {
    "lstm": (["b_i", "b_f", "b_g", "b_o"], [None, None, None, None]),
    "gru": (["b_r", "b_u", "b_xn"], [None, None, "b_hn"]),
}


def torch_weights(model: Cell, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The manual parameters in PyTorch's stacked layout: weight_ih, weight_hh, bias_ih, bias_hh.

    The gates stack in model.gates's order, PyTorch's: i, f, g, o for the LSTM; r, z, n for
    the GRU (z is the manual update gate u).
    """
    weights = {
        "weight_ih": torch.cat([params[f"W_x{q}"] for q in model.gates], dim=1).T,
        "weight_hh": torch.cat([params[f"W_h{q}"] for q in model.gates], dim=1).T,
    }
    if model.bias:
        x_side, h_side = TORCH_BIASES[model.name]
        zeros = torch.zeros_like(params[x_side[0]])
        weights["bias_ih"] = torch.cat([params[name] for name in x_side])
        weights["bias_hh"] = torch.cat([zeros if n is None else params[n] for n in h_side])
    return weights


class GatedTwin:
    """A manual LSTM or GRU rebuilt in torch with the same weights (copied, not shared), in
    the model's dtype unless given one."""

    def __init__(self, model: Cell, dtype: torch.dtype | None = None) -> None:
        self.model = model
        self.dtype = dtype or TORCH_DTYPES[model.dtype]
        self.device = torch_device(next(iter(model.params.values())))  # where the model runs
        self.params = {
            name: self._tensor(to_numpy(w)).clone().requires_grad_(True)
            for name, w in model.params.items()
        }
        I, H = model.input_size, model.hidden_size
        cell_type, _ = TORCH_MODULES[model.name]
        self.cell = cell_type(I, H, bias=model.bias, dtype=self.dtype, device=self.device)
        self.cell.requires_grad_(False)

    def _tensor(self, value: ArrayLike) -> torch.Tensor:
        return torch.as_tensor(np.asarray(value), dtype=self.dtype, device=self.device)

    def logits(
        self,
        x: torch.Tensor,
        h0: torch.Tensor,
        c0: torch.Tensor | None = None,
        truncate: int | None = None,
    ) -> torch.Tensor:
        """Output logits (T, B, O), one nn.LSTMCell / nn.GRUCell call per step. truncate: K
        detaches the state at the start of every chunk of K steps but the first."""
        weights = torch_weights(self.model, self.params)
        h, c = h0, c0
        outputs = []
        for t, x_t in enumerate(x.unbind(0)):
            if truncate and t > 0 and t % truncate == 0:  # a chunk starts: cut the graph
                h = h.detach()
                c = None if c is None else c.detach()
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
        truncate: int | None = None,
    ) -> tuple[float, dict[str, Array]]:
        """The loss and its autograd gradients, keyed as the manual model's loss_and_grads
        (truncate: see logits)."""
        x_t = self._tensor(x).requires_grad_(True)
        B, H = x_t.shape[1], self.model.hidden_size
        h0_t = self._tensor(np.zeros((B, H))) if h0 is None else self._tensor(h0)
        h0_t.requires_grad_(True)
        inputs = {"x": x_t, "h0": h0_t}
        c0_t = None
        if "c0" in self.model.states:
            c0_t = self._tensor(np.zeros((B, H))) if c0 is None else self._tensor(c0)
            inputs["c0"] = c0_t.requires_grad_(True)
        for w in self.params.values():
            w.grad = None
        z = self.logits(x_t, h0_t, c0_t, truncate)
        value = torch_loss(loss, z, torch.sigmoid(z), self._tensor(y))
        leaves = {**self.params, **inputs}
        grads = torch.autograd.grad(value, list(leaves.values()))
        return float(value.detach()), {
            name: to_numpy(g) for name, g in zip(leaves, grads, strict=True)
        }


def fused_forward(
    model: Cell, x: ArrayLike, h0: ArrayLike | None = None, c0: ArrayLike | None = None
) -> Array:
    """Output probabilities (T, B, O) from the fused nn.LSTM / nn.GRU holding model's weights."""
    dtype = TORCH_DTYPES[model.dtype]
    I, H = model.input_size, model.hidden_size
    params = {name: torch.as_tensor(to_numpy(w), dtype=dtype) for name, w in model.params.items()}
    _, layer_type = TORCH_MODULES[model.name]
    layer = layer_type(I, H, bias=model.bias, dtype=dtype)
    weights = {f"{k}_l0": w for k, w in torch_weights(model, params).items()}
    x_t = torch.as_tensor(np.asarray(x), dtype=dtype)
    B = x_t.shape[1]
    h0_t = (
        torch.zeros(1, B, H, dtype=dtype) if h0 is None else torch.as_tensor(h0, dtype=dtype)[None]
    )
    with torch.no_grad():
        if "c0" in model.states:
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
    model: Cell,
    x: Array,
    y: Array,
    loss: str = "mse",
    h0: Array | None = None,
    c0: Array | None = None,
) -> list[Row]:
    """Every gradient of `loss` (params, "x", "h0", "c0" for the LSTM, and the loss itself) by
    hand and by autograd on the cell twin, judged by rnn_torch.compare.judge as
    rnn_torch.check.gradient_rows judges the RNN's; in float32 against the float64 truth,
    autograd in float64 on the same weights."""
    c0 = c0 if "c0" in model.states else None  # the LSTM's only
    manual_loss, grads = model.loss_and_grads(x, y, loss, h0, c0)
    manual = {name: to_numpy(g) for name, g in grads.items()}  # from whatever library
    manual["loss"] = np.array(manual_loss, dtype=manual["x"].dtype)
    auto = autograd_gradients(GatedTwin(model), x, y, loss, h0, c0)
    truth = None
    if model.dtype != np.float64:
        truth = autograd_gradients(GatedTwin(model, torch.float64), x, y, loss, h0, c0)
    T, B, _ = np.shape(x)
    width = model.input_size + model.hidden_size + model.output_size
    return judge(manual, auto, truth, T, width, B)


def autograd_gradients(
    twin: GatedTwin, x: Array, y: Array, loss: str, h0: Array | None, c0: Array | None
) -> Grads:
    """The twin's gradients of `loss`, by autograd, with the loss's value as "loss"."""
    value, auto = twin.loss_and_grads(x, y, loss, h0, c0)
    auto["loss"] = np.array(value, dtype=auto["x"].dtype)
    return auto
