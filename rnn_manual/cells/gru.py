"""A GRU with an output layer, batched, with backpropagation through time by hand.

Read `rnn_manual/reference.py` first: it holds the same math as plain NumPy loops, one
name per quantity. The cell below is that math made fast and portable (stacked gates,
`out=` buffers, the array-API namespace), and the tests check it against the reference
and against PyTorch autograd. The checks and wrappers around the equations are base.Cell's.

Equations (one time step, batch rows side by side; exactly PyTorch's nn.GRUCell):

    r_t = sigmoid(x_t @ W_xr + h_{t-1} @ W_hr + b_r)                 reset gate    (B, H)
    u_t = sigmoid(x_t @ W_xu + h_{t-1} @ W_hu + b_u)                 update gate   (B, H)
    n_t = tanh(x_t @ W_xn + b_xn + r_t * (h_{t-1} @ W_hn + b_hn))    candidate     (B, H)
    h_t = (1 - u_t) * n_t + u_t * h_{t-1}                            hidden state  (B, H)
    z_t = h_t @ W_hy + b_y                                           output logit  (B, O)
    p_t = sigmoid(z_t) or softmax(z_t)                               probability   (B, O)

PyTorch calls the update gate z; here it is u, since z is the output logit throughout.
The reset gate multiplies the whole recurrent term h_{t-1} @ W_hn + b_hn, bias included,
so the candidate needs two biases, b_xn outside the product and b_hn inside it; the reset
and update gates need one each. Arrays are time-major: x is (T, B, I). The code stacks the
gates side by side in PyTorch's order r, u, n so that one matmul per step serves them all.
As the RNN, it runs on NumPy, PyTorch or CuPy arrays (see rnn.py and core/backend.py).

Mapping to PyTorch (nn.GRUCell / nn.GRU layer 0), where [A, B] stacks along the gate axis:

    weight_ih = [W_xr, W_xu, W_xn].T       (3H, I)
    weight_hh = [W_hr, W_hu, W_hn].T       (3H, H)
    bias_ih   = [b_r, b_u, b_xn]           (3H,)
    bias_hh   = [0, 0, b_hn]               (3H,)  (PyTorch's b_hr, b_hz only add to b_ir, b_iz)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..core import backend
from .activations import sigmoid, sigmoid_derivative, tanh, tanh_derivative
from .base import Cell, Shapes, split_gates
from .truncation import ends_chunk

Array = NDArray[np.floating]
Grads = dict[str, Array]

#: PyTorch's gate order along the stacked axis (PyTorch's z is u here).
GATES = ("r", "u", "n")


@dataclass
class GRUTrace:
    """What the forward pass keeps so that the backward pass need not recompute it."""

    x: Array  # (T, B, I) inputs
    h: Array  # (T+1, B, H) hidden states; h[0] is the initial state h_{-1}
    gates: Array  # (T, B, 3H) gate values r, u, n side by side
    hn: Array  # (T, B, H) the recurrent candidate term h_{t-1} @ W_hn + b_hn
    z: Array  # (T, B, O) output logits
    p: Array  # (T, B, O) output probabilities, sigmoid(z) or softmax(z)


def param_shapes(input_size: int, hidden_size: int, output_size: int, bias: bool) -> Shapes:
    """The name and shape of every parameter of a GRU of these sizes."""
    I, H, O = input_size, hidden_size, output_size
    shapes: Shapes = {}
    shapes.update({f"W_x{gate}": (I, H) for gate in GATES})
    shapes.update({f"W_h{gate}": (H, H) for gate in GATES})
    if bias:
        shapes.update(b_r=(H,), b_u=(H,), b_xn=(H,), b_hn=(H,))
    shapes["W_hy"] = (H, O)
    if bias:
        shapes["b_y"] = (O,)
    return shapes


class GRU(Cell):
    """A one-layer GRU with a sigmoid or softmax output layer and hand-written BPTT.

    params: per gate q in r, u, n: "W_xq" (I, H), "W_hq" (H, H); with bias=True "b_r",
    "b_u", "b_xn", "b_hn" (H,); the output layer "W_hy" (H, O) and with bias=True "b_y" (O,).
    Writing into these arrays changes the model. Weights start as the RNN's; biases at zero.
    """

    name = "gru"
    gates = GATES
    width = 3
    param_shapes = staticmethod(param_shapes)

    def _stacked(self, names: list[str]) -> Array:
        """The named parameters side by side along their last axis."""
        stack = [self.params[name] for name in names]
        return backend.namespace(*stack).concat(stack, axis=-1)

    def run_unchecked(self, x: Array, h0: Array) -> GRUTrace:
        """run's equations alone, on inputs it has checked: x (T, B, I) and the initial
        state h0 (B, H), arrays of the model's library, dtype and device. Nothing here
        waits for the device, so that a GPU pass can be captured as a CUDA graph
        (rnn_torch.graphs).
        """
        T, B, _ = x.shape
        H = self.hidden_size
        W_h = self._stacked(["W_hr", "W_hu", "W_hn"])  # (H, 3H)
        xp, device = backend.namespace(W_h), backend.device(W_h)

        # The input side x_t @ W_x + [b_r, b_u, b_xn] for every step at once: one matmul.
        ax = x @ self._stacked(["W_xr", "W_xu", "W_xn"])  # (T, B, 3H)
        if self.bias:
            ax += self._stacked(["b_r", "b_u", "b_xn"])

        h = xp.empty((T + 1, B, H), dtype=x.dtype, device=device)  # h[0] = h_{-1}, given as h0
        h[0] = h0
        gates = xp.empty((T, B, 3 * H), dtype=x.dtype, device=device)
        hn = xp.empty((T, B, H), dtype=x.dtype, device=device)
        for t in range(T):
            ah = h[t] @ W_h  # (B, 3H) the recurrent side h_{t-1} @ W_h
            r, u, n = split_gates(gates[t], 3)  # views: writing them fills gates[t]
            # r_t = sigmoid(x_t @ W_xr + h_{t-1} @ W_hr + b_r) and likewise u_t: both gates'
            # blocks, side by side, in one call.
            sigmoid(ax[t, :, : 2 * H] + ah[:, : 2 * H], out=gates[t, :, : 2 * H])
            ax_n, ah_n = ax[t, :, 2 * H :], ah[:, 2 * H :]
            hn[t] = ah_n  # h_{t-1} @ W_hn + b_hn
            if self.bias:
                hn[t] += self.params["b_hn"]
            tanh(ax_n + r * hn[t], out=n)  # n_t = tanh(x_t @ W_xn + b_xn + r_t * hn_t)
            h[t + 1] = n + u * (h[t] - n)  # h_t = (1 - u_t) * n_t + u_t * h_{t-1}

        # z_t = h_t @ W_hy + b_y, p_t = sigmoid(z_t), for every step at once.
        z = h[1:] @ self.params["W_hy"]  # (T, B, O)
        if self.bias:
            z += self.params["b_y"]
        return GRUTrace(x=x, h=h, gates=gates, hn=hn, z=z, p=self.probabilities(z))

    def backward_unchecked(self, trace: GRUTrace, dz: Array, truncate: int | None) -> Grads:
        """Backpropagation through time: gradients of every parameter, of x and of h0.

        dz: (T, B, O) is dL/dz_t, the loss gradient at each output logit, as base.Cell.backward
        has checked it and put it where the model is, in its dtype. truncate: K for
        truncated BPTT (cells/truncation.py), None for full BPTT.
        """
        x, h, gates, hn = trace.x, trace.h, trace.gates, trace.hn
        T, B, _ = x.shape
        H, O = self.hidden_size, self.output_size
        W_x = self._stacked(["W_xr", "W_xu", "W_xn"])
        W_h = self._stacked(["W_hr", "W_hu", "W_hn"])
        xp, device = backend.namespace(W_h), backend.device(W_h)

        # dL/dh_t through the output layer, every step at once: dz_t @ W_hy^T.
        dh_out = dz @ self.params["W_hy"].T  # (T, B, H)

        # a_r, a_u, a_n are the gates' pre-activations (the arguments of sigmoid, sigmoid,
        # tanh). The local derivatives, fixed by the forward pass, for every step at once (a
        # few large operations instead of a dozen small ones at each step of the loop below):
        r, u, n = split_gates(gates, 3)  # (T, B, H) each
        dh_da = xp.empty((T, B, 2, H), dtype=x.dtype, device=device)  # for a_u, a_n
        dh_da[:, :, 0] = (h[:-1] - n) * sigmoid_derivative(u)  # dh_t/da_u = (h_{t-1} - n_t) σ'
        dh_da[:, :, 1] = (1.0 - u) * tanh_derivative(n)  # dh_t/da_n = (1 - u_t) tanh'(a_n)
        dan_dar = hn * sigmoid_derivative(r)  # da_n/da_r = hn_t * σ'(a_r)

        # Walk back in time carrying dL/dh_t that arrives from step t+1. The input side and
        # the recurrent side get separate gradients since r_t scales only the recurrent side
        # of a_n: a_n = x_t @ W_xn + b_xn + r_t * hn_t.
        dax = xp.empty((T, B, 3, H), dtype=x.dtype, device=device)  # dL/d(x_t @ W_x + b_x)
        dah = xp.empty((T, B, 3, H), dtype=x.dtype, device=device)  # dL/d(h_{t-1} @ W_h + b_h)
        dh_next = xp.zeros((B, H), dtype=x.dtype, device=device)
        for t in reversed(range(T)):
            if ends_chunk(t, truncate):  # truncated BPTT: nothing from step t + 1
                dh_next = xp.zeros_like(dh_next)
            dh = dh_out[t] + dh_next  # dL/dh_t: its own output plus the future
            dax[t, :, 1:] = dh[:, None, :] * dh_da[t]  # dL/da_q = dL/dh_t * dh_t/da_q, q = u, n
            dax[t, :, 0] = dax[t, :, 2] * dan_dar[t]  # dL/da_r = dL/da_n * da_n/da_r
            dah[t, :, :2] = dax[t, :, :2]  # a_r and a_u are plain sums of both sides
            dah[t, :, 2] = dax[t, :, 2] * r[t]  # dL/dhn_t = dL/da_n * r_t
            dh_next = dh * u[t] + dah[t].reshape(B, 3 * H) @ W_h.T  # dL/dh_{t-1}: via u_t, W_h
        dax = dax.reshape(T, B, 3 * H)  # the gates side by side, as in W_x and W_h
        dah = dah.reshape(T, B, 3 * H)

        # Weight gradients sum over every step and sequence, one matmul each:
        #   dL/dW_x = sum_t x_t^T dax_t,  dL/dW_h = sum_t h_{t-1}^T dah_t
        dW_x = x.reshape(T * B, -1).T @ dax.reshape(T * B, 3 * H)
        dW_h = h[:-1].reshape(T * B, H).T @ dah.reshape(T * B, 3 * H)
        grads: Grads = {}
        grads.update(zip(["W_xr", "W_xu", "W_xn"], split_gates(dW_x, 3), strict=True))
        grads.update(zip(["W_hr", "W_hu", "W_hn"], split_gates(dW_h, 3), strict=True))
        if self.bias:
            db_r, db_u, db_xn = split_gates(dax.sum(axis=(0, 1)), 3)  # dL/db = sum_t dax_t
            grads.update(b_r=db_r, b_u=db_u, b_xn=db_xn)
            grads["b_hn"] = dah[:, :, 2 * H :].sum(axis=(0, 1))  # dL/db_hn = sum_t dL/dhn_t
        grads["W_hy"] = h[1:].reshape(T * B, H).T @ dz.reshape(T * B, O)  # sum_t h_t^T dz_t
        if self.bias:
            grads["b_y"] = dz.sum(axis=(0, 1))  # dL/db_y = sum_t dz_t
        grads["x"] = dax @ W_x.T  # dL/dx_t = dax_t @ W_x^T
        grads["h0"] = dh_next  # dL/dh_{-1}, what reached the start
        return grads
