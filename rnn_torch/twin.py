"""The manual RNN, LSTM or GRU rebuilt in PyTorch with the same weights, for autograd to judge.

One class for every cell. A twin holds one torch leaf tensor per manual parameter, named and
laid out as in the manual model (`params`). Each pass stacks them into the layout of
PyTorch's own modules (`torch_weights`) and runs the real module with them
(torch.func.functional_call): nn.RNNCell (tanh, relu) or `SigmoidRNNCell` (the same cell with
a sigmoid), nn.LSTMCell, nn.GRUCell, one call per step; or, with fused=True, the
whole-sequence nn.RNN, nn.LSTM or nn.GRU. The output layer is z_t = h_t @ W_hy + b_y (torch's
F.linear) and p_t = sigmoid(z_t) or softmax(z_t), as the manual model's `output` says.
Autograd carries the gradients back through the stacking to the manual names, so
`gradients` reads them out keyed as the manual model's, and torch.optim trains the twin on
exactly the manual parameters.

PyTorch's layout (see the docstrings of rnn_manual.cells.rnn, lstm and gru), where [A, B]
stacks along the gate axis and torch stores each weight as (out, in):

    weight_ih = [W_xq for each block q].T      weight_hh = [W_hq for each block q].T
    bias_ih, bias_hh = as TORCH_BIASES says

Where torch has two biases for a block and only ever adds them, the manual cell has one:
it goes into bias_ih, and bias_hh holds zeros there (both would get the same gradient).

The blocks are the gates in PyTorch's order (i, f, g, o; r, z, n with z the manual u), and
the RNN's one block, h (W_xh, W_hh, b_h).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike, NDArray
from torch import Tensor, nn
from torch.func import functional_call

from rnn_manual.cells import Cell
from rnn_manual.cells.outputs import OUTPUTS
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
#: Each cell's biases as PyTorch stacks them, block by block: bias_ih, then bias_hh (None:
#: held at zero). The RNN and the LSTM have one bias per block; the GRU's candidate n has
#: two, b_xn outside the reset product and b_hn inside it, where torch's bias_hh puts it.
TORCH_BIASES: dict[str, tuple[list[str], list[str | None]]] = {
    "rnn": (["b_h"], [None]),
    "lstm": (["b_i", "b_f", "b_g", "b_o"], [None, None, None, None]),
    "gru": (["b_r", "b_u", "b_xn"], [None, None, "b_hn"]),
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


#: The manual output layers (rnn_manual.cells.outputs) in torch: z (T, B, O) -> p.
TORCH_OUTPUTS: dict[str, Callable[[Tensor], Tensor]] = {
    "sigmoid": torch.sigmoid,
    "softmax": lambda z: torch.softmax(z, dim=-1),
}


def torch_loss(name: str, z: Tensor, p: Tensor, y: Tensor) -> Tensor:
    """The manual losses in torch: summed over time and outputs, averaged over the batch."""
    batch = z.shape[1]
    if name == "mse":
        return 0.5 * ((p - y) ** 2).sum() / batch  # 0.5 * sum((p - y)^2) / B
    if name == "bce":
        # sum(softplus(z) - y * z) / B, from the logits as the manual bce
        return F.binary_cross_entropy_with_logits(z, y, reduction="sum") / batch
    if name == "ce":
        # -sum(y * log softmax(z)) / B over every step: torch's cross_entropy takes the
        # classes on axis 1, so the T * B rows are laid side by side
        classes = z.shape[-1]
        rows, targets = z.reshape(-1, classes), y.reshape(-1, classes)
        return F.cross_entropy(rows, targets, reduction="sum") / batch
    raise ValueError(f"loss must be 'mse', 'bce' or 'ce', got {name!r}")


def blocks(model: Cell) -> tuple[str, ...]:
    """The blocks stacked along torch's gate axis: the gates, or the RNN's one block h."""
    return model.gates or ("h",)


def torch_weights(model: Cell, params: dict[str, Tensor]) -> dict[str, Tensor]:
    """The manual parameters `params` (tensors, keyed as model.params) in PyTorch's stacked
    layout: weight_ih, weight_hh and, with biases, bias_ih and bias_hh."""
    weights = {
        "weight_ih": torch.cat([params[f"W_x{q}"] for q in blocks(model)], dim=1).T,
        "weight_hh": torch.cat([params[f"W_h{q}"] for q in blocks(model)], dim=1).T,
    }
    if model.bias:
        x_side, h_side = TORCH_BIASES[model.name]
        zeros = torch.zeros_like(params[x_side[0]])
        weights["bias_ih"] = torch.cat([params[name] for name in x_side])
        weights["bias_hh"] = torch.cat([zeros if n is None else params[n] for n in h_side])
    return weights


def torch_module(model: Cell, fused: bool, dtype: torch.dtype, device: torch.device) -> nn.Module:
    """PyTorch's module for the model's cell: the one-step cell, or the fused layer (which
    has no sigmoid RNN)."""
    I, H = model.input_size, model.hidden_size
    cell, layer = TORCH_MODULES[model.name]
    options: dict[str, object] = {"bias": model.bias, "dtype": dtype, "device": device}
    if model.activation == "sigmoid":
        if fused:
            raise ValueError("torch.nn.RNN has no sigmoid; use fused=False")
        return SigmoidRNNCell(I, H, **options)  # type: ignore[arg-type]
    if model.activation is not None:
        options["nonlinearity"] = model.activation
    return (layer if fused else cell)(I, H, **options)


class Twin:
    """A manual model rebuilt in torch with a copy of its weights, in its dtype unless given
    one, on the device where its parameters are (the CPU for NumPy). Made by `from_manual`."""

    def __init__(self, model: Cell, fused: bool, dtype: torch.dtype | None) -> None:
        self.model = model  # its cell, sizes and options (its weights are copied, not shared)
        self.fused = fused
        self.dtype = dtype or TORCH_DTYPES[model.dtype]
        self.device = torch_device(model.params["W_hy"])
        self.params = {
            name: self._tensor(to_numpy(w)).requires_grad_(True) for name, w in model.params.items()
        }
        self.module = torch_module(model, fused, self.dtype, self.device)
        self.module.requires_grad_(False)  # its own weights are never used: params are

    @classmethod
    def from_manual(
        cls, model: Cell, fused: bool = False, dtype: torch.dtype | None = None
    ) -> Twin:
        """The twin of `model` (an RNN, LSTM or GRU): its torch cell, or with fused=True its
        whole-sequence torch layer."""
        return cls(model, fused, dtype)

    def _tensor(self, value: ArrayLike) -> Tensor:
        return torch.tensor(np.asarray(value), dtype=self.dtype, device=self.device)

    def manual_params(self) -> dict[str, Array]:
        """Copies of the parameters as NumPy arrays, keyed and laid out as the manual model's."""
        return {name: to_numpy(w).copy() for name, w in self.params.items()}

    def load_manual(self, params: dict[str, Array]) -> None:
        """Copy manual parameters in (of any array library)."""
        with torch.no_grad():
            for name, w in self.params.items():
                w.copy_(self._tensor(to_numpy(params[name])))

    def run(
        self,
        x: Tensor,
        h0: Tensor | None = None,
        c0: Tensor | None = None,
        truncate: int | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Hidden states h: (T+1, B, H) with h[0] = h0 (zeros for None; c0 likewise, the
        LSTM's), logits z and probabilities p: (T, B, O). truncate: K detaches the state at
        the start of every chunk of K steps but the first (truncated BPTT, as `h =
        h.detach()` between chunks); the fused layer cannot, so it refuses one."""
        self.model.refuse_other_states({"c0": c0})  # as the manual model refuses it
        B, H = x.shape[1], self.model.hidden_size
        zeros = x.new_zeros(B, H)
        state = [zeros if h0 is None else h0]
        if "c0" in self.model.states:
            state.append(zeros if c0 is None else c0)
        weights = torch_weights(self.model, self.params)
        if self.fused:
            if truncate is not None:
                raise ValueError("truncated BPTT needs the cell twin (fused=False)")
            named = {f"{name}_l0": w for name, w in weights.items()}
            layered = tuple(s.unsqueeze(0) for s in state)  # (1, B, H): one layer
            out, _ = functional_call(self.module, named, (x, _packed(layered)))
            h = torch.cat([state[0].unsqueeze(0), out])  # out: (T, B, H), h_1 .. h_T
        else:
            hs = [state[0]]
            for t, x_t in enumerate(x.unbind(0)):
                if truncate and t > 0 and t % truncate == 0:  # a chunk starts: cut the graph
                    state = [s.detach() for s in state]
                new = functional_call(self.module, weights, (x_t, _packed(state)))
                state = [new] if len(state) == 1 else list(new)  # h_t (and c_t)
                hs.append(state[0])
            h = torch.stack(hs)
        z = F.linear(h[1:], self.params["W_hy"].T, self.params.get("b_y"))  # h_t W_hy + b_y
        return h, z, TORCH_OUTPUTS[self.model.output](z)  # p_t = sigmoid(z_t) or softmax(z_t)

    def gradients(
        self,
        x: ArrayLike,
        objective: Objective,
        *,
        h0: ArrayLike | None = None,
        c0: ArrayLike | None = None,
        truncate: int | None = None,
    ) -> tuple[float, Grads]:
        """objective(z, p) and its autograd gradients, as NumPy arrays keyed and laid out as
        the manual model's: every parameter, "x", "h0" (and "c0" for the LSTM)."""
        self.model.refuse_other_states({"c0": c0})
        B, H = np.shape(x)[1], self.model.hidden_size
        inputs = {"x": self._tensor(x), "h0": self._tensor(np.zeros((B, H)) if h0 is None else h0)}
        if "c0" in self.model.states:
            inputs["c0"] = self._tensor(np.zeros((B, H)) if c0 is None else c0)
        for tensor in inputs.values():
            tensor.requires_grad_(True)
        _, z, p = self.run(inputs["x"], inputs["h0"], inputs.get("c0"), truncate)
        value = objective(z, p)
        leaves = {**self.params, **inputs}
        found = torch.autograd.grad(value, list(leaves.values()))
        grads = {name: to_numpy(g) for name, g in zip(leaves, found, strict=True)}
        return float(value.detach()), grads

    def loss_and_grads(
        self,
        x: ArrayLike,
        y: ArrayLike,
        *,
        loss: str,
        h0: ArrayLike | None = None,
        c0: ArrayLike | None = None,
        truncate: int | None = None,
    ) -> tuple[float, Grads]:
        """As the manual model's loss_and_grads: the loss on targets y and its gradients, by
        autograd."""
        y_t = self._tensor(y)

        def objective(z: Tensor, p: Tensor) -> Tensor:
            return torch_loss(loss, z, p, y_t)

        return self.gradients(x, objective, h0=h0, c0=c0, truncate=truncate)

    def upstream_grads(
        self,
        x: ArrayLike,
        v: ArrayLike,
        *,
        h0: ArrayLike | None = None,
        c0: ArrayLike | None = None,
    ) -> Grads:
        """Gradients of sum(v * p) for upstream weights v: (T, B, O), by autograd."""
        v_t = self._tensor(v)
        return self.gradients(x, lambda z, p: (v_t * p).sum(), h0=h0, c0=c0)[1]


def _packed(state: list[Tensor] | tuple[Tensor, ...]) -> Tensor | tuple[Tensor, ...]:
    """A state as torch's modules take it: h alone, or the LSTM's (h, c)."""
    return state[0] if len(state) == 1 else tuple(state)


def torch_device(array: object) -> torch.device:
    """The torch device of a manual model's parameter: its own for a torch tensor, the CPU for
    a NumPy array, the same GPU for a CuPy array."""
    if isinstance(array, Tensor):
        return array.device
    gpu = getattr(array, "device", None)
    if gpu is not None and hasattr(gpu, "id"):  # a CuPy array: its device is a cupy Device
        return torch.device("cuda", gpu.id)
    return torch.device("cpu")


def manual_upstream_grads(
    model: Cell,
    x: ArrayLike,
    v: ArrayLike,
    *,
    h0: ArrayLike | None = None,
    c0: ArrayLike | None = None,
) -> Grads:
    """The manual model's gradients of sum(v * p): its backward from dz = dL/dz, v sent back
    through its output layer (outputs.py), as NumPy arrays whatever library the model runs on."""
    trace = model.run(x, h0, c0)
    p = trace.p
    upstream = backend.namespace(p).asarray(v, dtype=p.dtype, device=backend.device(p))
    dz = OUTPUTS[model.output].backward(p, upstream)  # dL/dz = v * dp/dz
    return {name: to_numpy(g) for name, g in model.backward(trace, dz).items()}
