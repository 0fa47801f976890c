"""The manual RNN rebuilt in PyTorch with the same weights, so that autograd can judge it.

The recurrence is a real `torch.nn.RNNCell` (tanh, relu), a `SigmoidRNNCell` (the same
cell with a sigmoid), or, with fused=True, the whole-sequence `torch.nn.RNN` (tanh, relu).
The output layer is `torch.nn.Linear` followed by a sigmoid.

Weights, manual layout -> torch layout (torch stores each weight as (out, in)):

    W_xh (I, H)  -> weight_ih (H, I) = W_xh.T
    W_hh (H, H)  -> weight_hh (H, H) = W_hh.T
    W_hy (H, O)  -> out.weight (O, H) = W_hy.T
    b_y  (O,)    -> out.bias
    b_h  (H,)    -> bias_ih = b_h and bias_hh = 0

torch's cell computes h_t = f(x_t @ weight_ih.T + bias_ih + h_{t-1} @ weight_hh.T + bias_hh):
two hidden biases where the manual model has one. They enter only through their sum, so
b_h = bias_ih + bias_hh and dL/db_h = dL/dbias_ih = dL/dbias_hh. The twin holds bias_hh at
zero and frozen (requires_grad=False), so that an optimiser moves b_h once per step, not
twice, and reports dL/db_h as the gradient of bias_ih.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import Tensor, nn

from rnn_manual import RNN
from rnn_manual.core import backend
from rnn_manual.core.backend import to_numpy

from .compare import Grads

Array = NDArray[np.floating]
#: (z, p) -> the scalar whose gradients are wanted; z, p: (T, B, O) logits and probabilities
Objective = Callable[[Tensor, Tensor], Tensor]

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
#: Each cell's PyTorch modules (rnn_manual.cells.CELLS's names): the one-step cell and the
#: fused whole-sequence layer.
TORCH_MODULES: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    "rnn": (nn.RNNCell, nn.RNN),
    "lstm": (nn.LSTMCell, nn.LSTM),
    "gru": (nn.GRUCell, nn.GRU),
}


class SigmoidRNNCell(nn.RNNCell):
    """`nn.RNNCell` with a sigmoid: the same parameters and layout, another nonlinearity."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        # nn.RNNCell accepts only tanh and relu; build it as tanh and replace forward.
        super().__init__(input_size, hidden_size, bias, "tanh", device=device, dtype=dtype)
        self.nonlinearity = "sigmoid"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        if hx is None:
            hx = input.new_zeros(input.shape[0], self.hidden_size)
        # h_t = sigmoid(x_t @ weight_ih^T + bias_ih + h_{t-1} @ weight_hh^T + bias_hh)
        a = F.linear(input, self.weight_ih, self.bias_ih)
        a = a + F.linear(hx, self.weight_hh, self.bias_hh)
        return torch.sigmoid(a)


def torch_loss(name: str, z: Tensor, p: Tensor, y: Tensor) -> Tensor:
    """The manual losses in torch: summed over time and outputs, averaged over the batch."""
    batch = z.shape[1]
    if name == "mse":
        return 0.5 * ((p - y) ** 2).sum() / batch  # 0.5 * sum((p - y)^2) / B
    if name == "bce":
        # sum(softplus(z) - y * z) / B, from the logits as the manual bce
        return F.binary_cross_entropy_with_logits(z, y, reduction="sum") / batch
    raise ValueError(f"loss must be 'mse' or 'bce', got {name!r}")


class Twin(nn.Module):
    """A torch RNN with the manual model's sizes, activation, bias, dtype and weights."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        activation: str = "sigmoid",
        bias: bool = False,
        dtype: torch.dtype = torch.float64,
        fused: bool = False,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.fused = fused
        self.recurrence: nn.Module
        if fused:
            if activation == "sigmoid":
                raise ValueError("torch.nn.RNN has no sigmoid; use fused=False")
            self.recurrence = nn.RNN(
                input_size,
                hidden_size,
                nonlinearity=activation,
                bias=bias,
                dtype=dtype,
                device=device,
            )
        elif activation == "sigmoid":
            self.recurrence = SigmoidRNNCell(
                input_size, hidden_size, bias, dtype=dtype, device=device
            )
        else:
            self.recurrence = nn.RNNCell(
                input_size,
                hidden_size,
                bias=bias,
                nonlinearity=activation,
                dtype=dtype,
                device=device,
            )
        self.out = nn.Linear(hidden_size, output_size, bias=bias, dtype=dtype, device=device)
        if bias:
            bias_hh = self.torch_params()["bias_hh"]
            with torch.no_grad():
                bias_hh.zero_()
            bias_hh.requires_grad_(False)

    @classmethod
    def from_manual(cls, model: RNN, fused: bool = False, dtype: torch.dtype | None = None) -> Twin:
        """A twin holding a copy of `model`'s current weights, in its dtype unless given one,
        on the device where the model's parameters are (the CPU for NumPy)."""
        twin = cls(
            model.input_size,
            model.hidden_size,
            model.output_size,
            model.activation,
            model.bias,
            dtype or TORCH_DTYPES[model.dtype],
            fused,
            torch_device(model.params["W_hh"]),
        )
        twin.load_manual(model.params)
        return twin

    def torch_params(self) -> dict[str, Tensor]:
        """The torch parameters by cell name: weight_ih, weight_hh, [bias_ih, bias_hh]."""
        suffix = "_l0" if self.fused else ""  # nn.RNN names its first layer's weights *_l0
        names = ["weight_ih", "weight_hh"]
        if self.out.bias is not None:
            names += ["bias_ih", "bias_hh"]
        return {name: getattr(self.recurrence, name + suffix) for name in names}

    def manual_view(self) -> dict[str, Tensor]:
        """Each manual parameter name -> the torch tensor holding it, in torch layout."""
        cell = self.torch_params()
        view = {"W_xh": cell["weight_ih"], "W_hh": cell["weight_hh"], "W_hy": self.out.weight}
        if self.out.bias is not None:
            view.update(b_h=cell["bias_ih"], b_y=self.out.bias)
        return view

    def load_manual(self, params: dict[str, Array]) -> None:
        """Copy manual parameters in: weights transposed, b_h into bias_ih (bias_hh stays 0)."""
        with torch.no_grad():
            for name, tensor in self.manual_view().items():
                value = torch.from_numpy(to_numpy(params[name]))
                tensor.copy_(value.T if name.startswith("W") else value)

    def manual_params(self) -> dict[str, Array]:
        """The parameters in the manual layout: weights transposed back, b_h = bias_ih + bias_hh."""
        params = {name: to_manual(name, tensor) for name, tensor in self.manual_view().items()}
        if "b_h" in params:
            params["b_h"] = params["b_h"] + to_numpy(self.torch_params()["bias_hh"])
        return params

    def run(
        self, x: Tensor, h0: Tensor, truncate: int | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Hidden states h: (T+1, B, H) with h[0] = h0, logits z and probabilities p: (T, B, O).
        truncate: K detaches the state at the start of every chunk of K steps but the first
        (truncated BPTT); the fused nn.RNN cannot, so it refuses one."""
        if self.fused and truncate is not None:
            raise ValueError("truncated BPTT needs the cell twin (fused=False)")
        if self.fused:
            states, _ = self.recurrence(x, h0.unsqueeze(0))  # (T, B, H): h_1 .. h_T
            h = torch.cat([h0.unsqueeze(0), states])
        else:
            hs = [h0]
            for t, x_t in enumerate(x.unbind(0)):
                h_prev = hs[-1]
                if truncate and t > 0 and t % truncate == 0:  # a chunk starts: cut the graph
                    h_prev = h_prev.detach()
                hs.append(self.recurrence(x_t, h_prev))  # h_t = f(x_t W_xh + h_{t-1} W_hh + b_h)
            h = torch.stack(hs)
        z = self.out(h[1:])  # z_t = h_t W_hy + b_y
        return h, z, torch.sigmoid(z)  # p_t = sigmoid(z_t)

    def gradients(
        self, x: Array, objective: Objective, h0: Array | None = None, truncate: int | None = None
    ) -> tuple[float, Grads]:
        """objective(z, p) and its autograd gradients, keyed and laid out as the manual model's."""
        dtype, device = self.out.weight.dtype, self.out.weight.device
        x_t = torch.tensor(x, dtype=dtype, device=device, requires_grad=True)  # (T, B, I)
        B = x_t.shape[1]
        if h0 is None:
            h0_t = torch.zeros(
                B, self.hidden_size, dtype=dtype, device=device, requires_grad=True
            )  # (B, H)
        else:
            h0_t = torch.tensor(h0, dtype=dtype, device=device, requires_grad=True)
        _, z, p = self.run(x_t, h0_t, truncate)
        value = objective(z, p)
        view = self.manual_view()
        names = [*view, "x", "h0"]
        found = torch.autograd.grad(value, [*view.values(), x_t, h0_t])
        grads = {name: to_manual(name, g) for name, g in zip(names, found, strict=True)}
        return float(value.detach()), grads

    def loss_and_grads(
        self,
        x: Array,
        y: Array,
        loss: str = "mse",
        h0: Array | None = None,
        truncate: int | None = None,
    ) -> tuple[float, Grads]:
        """As `RNN.loss_and_grads`: the loss on targets y and its gradients, by autograd."""
        y_t = torch.tensor(y, dtype=self.out.weight.dtype, device=self.out.weight.device)
        return self.gradients(x, lambda z, p: torch_loss(loss, z, p, y_t), h0, truncate)

    def upstream_grads(self, x: Array, v: Array, h0: Array | None = None) -> Grads:
        """Gradients of sum(v * p) for upstream weights v: (T, B, O), by autograd."""
        v_t = torch.tensor(v, dtype=self.out.weight.dtype, device=self.out.weight.device)
        return self.gradients(x, lambda z, p: (v_t * p).sum(), h0)[1]


def to_manual(name: str, tensor: Tensor) -> Array:
    """A torch parameter (or its gradient) as a NumPy array in the manual layout."""
    array = to_numpy(tensor)
    return array.T.copy() if name.startswith("W") else array.copy()


def torch_device(array: object) -> torch.device:
    """The torch device of a manual model's parameter: its own for a torch tensor, the CPU for
    a NumPy array, the same GPU for a CuPy array."""
    if isinstance(array, Tensor):
        return array.device
    gpu = getattr(array, "device", None)
    if gpu is not None and hasattr(gpu, "id"):  # a CuPy array: its device is a cupy Device
        return torch.device("cuda", gpu.id)
    return torch.device("cpu")


def manual_upstream_grads(model: RNN, x: Array, v: Array, h0: Array | None = None) -> Grads:
    """The manual model's gradients of sum(v * p): its backward from dz = v * p * (1 - p),
    as NumPy arrays whatever library the model runs on."""
    trace = model.run(x, h0)
    p = trace.p
    v = backend.namespace(p).asarray(v, dtype=p.dtype, device=backend.device(p))
    dz = v * p * (1.0 - p)  # dL/dz = v * dp/dz, p = sigmoid(z)
    return {name: to_numpy(g) for name, g in model.backward(trace, dz).items()}
