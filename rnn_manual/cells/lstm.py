"""An LSTM with an output layer, batched, with backpropagation through time by hand.

Read `rnn_manual/reference.py` first: it holds the same math as plain NumPy loops, one
name per quantity. The cell below is that math made fast and portable (stacked gates,
`out=` buffers, the array-API namespace), and the tests check it against the reference
and against PyTorch autograd. The checks and wrappers around the equations are base.Cell's.

Equations (one time step, batch rows side by side; exactly PyTorch's nn.LSTMCell):

    i_t = sigmoid(x_t @ W_xi + h_{t-1} @ W_hi + b_i)    input gate           (B, H)
    f_t = sigmoid(x_t @ W_xf + h_{t-1} @ W_hf + b_f)    forget gate          (B, H)
    g_t = tanh(x_t @ W_xg + h_{t-1} @ W_hg + b_g)       candidate cell       (B, H)
    o_t = sigmoid(x_t @ W_xo + h_{t-1} @ W_ho + b_o)    output gate          (B, H)
    c_t = f_t * c_{t-1} + i_t * g_t                     cell state           (B, H)
    h_t = o_t * tanh(c_t)                               hidden state         (B, H)
    z_t = h_t @ W_hy + b_y                              output logit         (B, O)
    p_t = sigmoid(z_t) or softmax(z_t)                  output probability   (B, O), outputs.py

Arrays are time-major: x is (T, B, I). The code stacks the four gates side by side in
PyTorch's order i, f, g, o, so one matmul per step serves them all. As the RNN, it runs on
NumPy, PyTorch or CuPy arrays (see rnn.py and core/backend.py).

Mapping to PyTorch (nn.LSTMCell / nn.LSTM layer 0), where [A, B] stacks along the gate axis:

    weight_ih = [W_xi, W_xf, W_xg, W_xo].T         (4H, I)
    weight_hh = [W_hi, W_hf, W_hg, W_ho].T         (4H, H)
    bias_ih + bias_hh = [b_i, b_f, b_g, b_o]       (4H,)  PyTorch's two biases are only ever
                                                          added, so one vector per gate suffices:
                                                          bias_ih = [b_i, ...], bias_hh = 0.
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

#: PyTorch's gate order along the stacked axis.
GATES = ("i", "f", "g", "o")


@dataclass
class LSTMTrace:
    """What the forward pass keeps so that the backward pass need not recompute it."""

    x: Array  # (T, B, I) inputs
    h: Array  # (T+1, B, H) hidden states; h[0] is the initial state h_{-1}
    c: Array  # (T+1, B, H) cell states; c[0] is the initial state c_{-1}
    gates: Array  # (T, B, 4H) gate values i, f, g, o side by side
    tanh_c: Array  # (T, B, H) tanh(c_t)
    z: Array  # (T, B, O) output logits
    p: Array  # (T, B, O) output probabilities, sigmoid(z) or softmax(z)


def param_shapes(input_size: int, hidden_size: int, output_size: int, bias: bool) -> Shapes:
    """The name and shape of every parameter of an LSTM of these sizes."""
    I, H, O = input_size, hidden_size, output_size
    shapes: Shapes = {}
    shapes.update({f"W_x{gate}": (I, H) for gate in GATES})
    shapes.update({f"W_h{gate}": (H, H) for gate in GATES})
    if bias:
        shapes.update({f"b_{gate}": (H,) for gate in GATES})
    shapes["W_hy"] = (H, O)
    if bias:
        shapes["b_y"] = (O,)
    return shapes


class LSTM(Cell):
    """A one-layer LSTM with a sigmoid or softmax output layer and hand-written BPTT.

    params: per gate q in i, f, g, o: "W_xq" (I, H), "W_hq" (H, H), and with bias=True
    "b_q" (H,); the output layer "W_hy" (H, O) and with bias=True "b_y" (O,).
    Writing into these arrays changes the model. Weights start as the RNN's; biases at zero.
    """

    name = "lstm"
    gates = GATES
    states = ("h0", "c0")
    width = 4
    param_shapes = staticmethod(param_shapes)

    def _stacked(self, prefix: str) -> Array:
        """The four gates' parameters named prefix + gate, side by side: (..., 4H)."""
        stack = [self.params[prefix + gate] for gate in GATES]
        return backend.namespace(*stack).concat(stack, axis=-1)

    def run_unchecked(self, x: Array, h0: Array, c0: Array) -> LSTMTrace:
        """run's equations alone, on inputs it has checked: x (T, B, I) and the initial
        states h0 and c0 (B, H), arrays of the model's library, dtype and device. Nothing here
        waits for the device, so that a GPU pass can be captured as a CUDA graph
        (rnn_torch.graphs).
        """
        T, B, _ = x.shape
        H = self.hidden_size
        W_h = self._stacked("W_h")  # (H, 4H)
        xp, device = backend.namespace(W_h), backend.device(W_h)

        # The input projection x_t @ W_x + b for every step at once: one matmul.
        a = x @ self._stacked("W_x")  # (T, B, 4H) gate pre-activations, completed below
        if self.bias:
            a += self._stacked("b_")

        h = xp.empty((T + 1, B, H), dtype=x.dtype, device=device)  # h[0] = h_{-1}, given as h0
        c = xp.empty((T + 1, B, H), dtype=x.dtype, device=device)  # c[0] = c_{-1}, given as c0
        h[0], c[0] = h0, c0
        gates = xp.empty((T, B, 4 * H), dtype=x.dtype, device=device)
        tanh_c = xp.empty((T, B, H), dtype=x.dtype, device=device)
        for t in range(T):
            a[t] += h[t] @ W_h  # a_t = x_t @ W_x + h_{t-1} @ W_h + b
            i, f, g, o = split_gates(gates[t], 4)  # views into gates[t]
            a_g = a[t, :, 2 * H : 3 * H]  # g's block of a_t
            # i_t, f_t, o_t = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o): one call over the whole
            # row, g's block included, which g_t = tanh(a_g) then overwrites.
            sigmoid(a[t], out=gates[t])
            tanh(a_g, out=g)
            c[t + 1] = f * c[t] + i * g  # c_t = f_t * c_{t-1} + i_t * g_t
            tanh(c[t + 1], out=tanh_c[t])
            xp.multiply(o, tanh_c[t], out=h[t + 1])  # h_t = o_t * tanh(c_t)

        # z_t = h_t @ W_hy + b_y, p_t = sigmoid(z_t), for every step at once.
        z = h[1:] @ self.params["W_hy"]  # (T, B, O)
        if self.bias:
            z += self.params["b_y"]
        return LSTMTrace(x=x, h=h, c=c, gates=gates, tanh_c=tanh_c, z=z, p=self.probabilities(z))

    def backward_unchecked(self, trace: LSTMTrace, dz: Array, truncate: int | None) -> Grads:
        """Backpropagation through time: gradients of every parameter, of x, h0 and c0.

        dz: (T, B, O) is dL/dz_t, the loss gradient at each output logit, as base.Cell.backward
        has checked it and put it where the model is, in its dtype. truncate: K for
        truncated BPTT (cells/truncation.py), None for full BPTT.
        """
        x, h, c, gates, tanh_c = trace.x, trace.h, trace.c, trace.gates, trace.tanh_c
        T, B, _ = x.shape
        H, O = self.hidden_size, self.output_size
        W_x, W_h, W_hy = self._stacked("W_x"), self._stacked("W_h"), self.params["W_hy"]
        xp, device = backend.namespace(W_h), backend.device(W_h)

        # dL/dh_t through the output layer, every step at once: dz_t @ W_hy^T.
        dh_out = dz @ W_hy.T  # (T, B, H)

        # The local derivatives, fixed by the forward pass, for every step at once (a few
        # large operations instead of a dozen small ones at each step of the loop below):
        i, f, g, o = split_gates(gates, 4)  # (T, B, H) each
        dc_da = xp.empty((T, B, 3, H), dtype=x.dtype, device=device)  # q = i, f, g side by side
        dc_da[:, :, 0] = g * sigmoid_derivative(i)  # dc_t/da_i = g_t * σ'(a_i)
        dc_da[:, :, 1] = c[:-1] * sigmoid_derivative(f)  # dc_t/da_f = c_{t-1} * σ'(a_f)
        dc_da[:, :, 2] = i * tanh_derivative(g)  # dc_t/da_g = i_t * tanh'(a_g)
        dh_da_o = tanh_c * sigmoid_derivative(o)  # dh_t/da_o = tanh(c_t) * σ'(a_o)
        dh_dc = o * tanh_derivative(tanh_c)  # dh_t/dc_t = o_t * tanh'(c_t)

        # Walk back in time carrying dL/dh_{t} and dL/dc_{t} that arrive from step t+1.
        da = xp.empty((T, B, 4, H), dtype=x.dtype, device=device)  # dL/da_t, by gate
        dh_next = xp.zeros((B, H), dtype=x.dtype, device=device)
        dc_next = xp.zeros((B, H), dtype=x.dtype, device=device)
        for t in reversed(range(T)):
            if ends_chunk(t, truncate):  # truncated BPTT: nothing from step t + 1
                dh_next = xp.zeros_like(dh_next)
                dc_next = xp.zeros_like(dc_next)
            dh = dh_out[t] + dh_next  # dL/dh_t: its own output plus the future
            dc = dc_next + dh * dh_dc[t]  # dL/dc_t: from c_{t+1}, and through h_t
            da[t, :, :3] = dc[:, None, :] * dc_da[t]  # dL/da_q = dL/dc_t * dc_t/da_q, q = i, f, g
            da[t, :, 3] = dh * dh_da_o[t]  # dL/da_o = dL/dh_t * dh_t/da_o
            dc_next = dc * f[t]  # dL/dc_{t-1} = dL/dc_t * f_t
            dh_next = da[t].reshape(B, 4 * H) @ W_h.T  # dL/dh_{t-1} = dL/da_t @ W_h^T
        da = da.reshape(T, B, 4 * H)  # the gates side by side, as in W_x and W_h

        # Weight gradients sum over every step and sequence, one matmul each:
        #   dL/dW_x = sum_t x_t^T da_t,  dL/dW_h = sum_t h_{t-1}^T da_t
        dW_x = x.reshape(T * B, -1).T @ da.reshape(T * B, 4 * H)
        dW_h = h[:-1].reshape(T * B, H).T @ da.reshape(T * B, 4 * H)
        grads: Grads = {}
        grads.update(zip([f"W_x{q}" for q in GATES], split_gates(dW_x, 4), strict=True))
        grads.update(zip([f"W_h{q}" for q in GATES], split_gates(dW_h, 4), strict=True))
        if self.bias:
            db = da.sum(axis=(0, 1))  # dL/db = sum_t da_t
            grads.update(zip([f"b_{q}" for q in GATES], split_gates(db, 4), strict=True))
        grads["W_hy"] = h[1:].reshape(T * B, H).T @ dz.reshape(T * B, O)  # sum_t h_t^T dz_t
        if self.bias:
            grads["b_y"] = dz.sum(axis=(0, 1))  # dL/db_y = sum_t dz_t
        grads["x"] = da @ W_x.T  # dL/dx_t = da_t @ W_x^T
        grads["h0"] = dh_next  # dL/dh_{-1}, what reached the start
        grads["c0"] = dc_next  # dL/dc_{-1}
        return grads
