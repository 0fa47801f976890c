"""The vanilla RNN of the tutorial, batched, with backpropagation through time by hand.

Read `rnn_manual/reference.py` first: it holds the same math as plain NumPy loops, one
name per quantity. The cell below is that math made fast and portable (stacked gates,
`out=` buffers, the array-API namespace), and the tests check it against the reference
and against PyTorch autograd. The checks and wrappers around the equations are base.Cell's.

Equations (one time step, batch rows side by side):

    a_t = x_t @ W_xh + h_{t-1} @ W_hh + b_h     pre-activation       (B, H)
    h_t = f(a_t)                                hidden state         (B, H)
    z_t = h_t @ W_hy + b_y                      output logit         (B, O)
    p_t = sigmoid(z_t) or softmax(z_t)          output probability   (B, O), outputs.py

Arrays are time-major: x is (T, B, I), time step t holding bit t (least significant first).
The code runs on NumPy arrays, or on PyTorch or CuPy ones after `model.to(torch)`: every
array operation goes through `xp`, the namespace of the model's parameters (core/backend.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ..core import backend
from ..core.validate import check_choice
from .activations import ACTIVATIONS
from .base import Cell, Shapes
from .truncation import ends_chunk

Array = NDArray[np.floating]
Grads = dict[str, Array]


@dataclass
class Trace:
    """What the forward pass keeps so that the backward pass need not recompute it."""

    x: Array  # (T, B, I) inputs
    h: Array  # (T+1, B, H) hidden states; h[0] is the initial state h_{-1}
    z: Array  # (T, B, O) output logits
    p: Array  # (T, B, O) output probabilities, sigmoid(z) or softmax(z)


def param_shapes(input_size: int, hidden_size: int, output_size: int, bias: bool) -> Shapes:
    """The name and shape of every parameter of an RNN of these sizes."""
    I, H, O = input_size, hidden_size, output_size
    shapes: Shapes = {
        "W_xh": (I, H),  # the tutorial's synapse_0
        "W_hh": (H, H),  # synapse_h
        "W_hy": (H, O),  # synapse_1
    }
    if bias:
        shapes.update(b_h=(H,), b_y=(O,))
    return shapes


class RNN(Cell):
    """A one-layer RNN with a sigmoid or softmax output layer and hand-written BPTT.

    params: "W_xh" (I, H), "W_hh" (H, H), "W_hy" (H, O), and with bias=True
    "b_h" (H,), "b_y" (O,). Weights start as base.init_params makes them; biases at zero.
    run, forward, loss_and_grads and to are the shared ones of base.Cell.
    With NumPy, backward reuses a work array between calls, one per thread.
    """

    name = "rnn"
    activation: str
    gates = ()
    activations = tuple(ACTIVATIONS)
    width = 1
    param_shapes = staticmethod(param_shapes)

    def __init__(
        self,
        input_size: int = 2,
        hidden_size: int = 16,
        output_size: int = 1,
        activation: str = "sigmoid",
        bias: bool = False,
        dtype: DTypeLike = np.float64,
        seed: int | np.random.Generator | None = 0,
        output: str = "sigmoid",
    ) -> None:
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self._buffers: dict[int, Array] = {}  # reused by backward, see _scratch
        super().__init__(input_size, hidden_size, output_size, bias, dtype, seed, output)

    def to(self, library: Any, device: Any = None) -> RNN:
        """base.Cell.to, dropping backward's work array (it belongs to the old library)."""
        self._buffers = {}
        super().to(library, device)
        return self

    def _scratch(self, rows: int, cols: int, like: Array) -> Array:
        """A (rows, cols) work array like `like`, kept between calls with NumPy (one per
        thread: a large batch runs in parts on several, core/threads.py); other libraries'
        allocators cache memory themselves."""
        if not backend.is_numpy(like):
            xp = backend.namespace(like)
            return xp.empty((rows, cols), dtype=like.dtype, device=backend.device(like))
        thread = threading.get_ident()
        buffer = self._buffers.get(thread)
        if buffer is None or buffer.shape != (rows, cols):
            buffer = self._buffers[thread] = np.empty((rows, cols), dtype=like.dtype)
        return buffer

    def run_unchecked(self, x: Array, h0: Array) -> Trace:
        """run's equations alone, on inputs it has checked: x (T, B, I) and the initial
        state h0 (B, H), arrays of the model's library, dtype and device. Nothing here
        waits for the device, so that a GPU pass can be captured as a CUDA graph
        (rnn_torch.graphs).
        """
        f, _ = ACTIVATIONS[self.activation]
        W_xh, W_hh, W_hy = self.params["W_xh"], self.params["W_hh"], self.params["W_hy"]
        xp, device = backend.namespace(W_hh), backend.device(W_hh)
        T, B, _ = x.shape

        h = xp.empty(
            (T + 1, B, self.hidden_size), dtype=x.dtype, device=device
        )  # h[0] = h_{-1}, given as h0
        h[0] = h0
        # The input projection x_t @ W_xh + b_h for every step at once, one matmul, written
        # straight into h[1:]: each h[t + 1] holds its step's pre-activation until the loop
        # below completes it and applies f in place.
        xp.matmul(x, W_xh, out=h[1:])
        if self.bias:
            h[1:] += self.params["b_h"]
        hW = xp.empty((B, self.hidden_size), dtype=x.dtype, device=device)  # h_{t-1} @ W_hh
        # An overflow is left as inf or NaN, silently: forward and loss_and_grads refuse it.
        with np.errstate(over="ignore", invalid="ignore"):
            for t in range(T):
                a_t = h[t + 1]
                a_t += xp.matmul(h[t], W_hh, out=hW)  # a_t = x_t @ W_xh + b_h + h_{t-1} @ W_hh
                f(a_t, out=a_t)  # h_t = f(a_t)

            # z_t = h_t @ W_hy + b_y, p_t = sigmoid(z_t), for every step at once.
            z = h[1:] @ W_hy  # (T, B, O)
            if self.bias:
                z += self.params["b_y"]
        return Trace(x=x, h=h, z=z, p=self.probabilities(z))

    def backward_unchecked(self, trace: Trace, dz: Array, truncate: int | None) -> Grads:
        """Backpropagation through time: gradients of every parameter, of x and of h0.

        dz: (T, B, O) is dL/dz_t, the loss gradient at each output logit, as base.Cell.backward
        has checked it and put it where the model is, in its dtype. truncate: K for
        truncated BPTT, no gradient crossing from one chunk of K steps into the one before
        (reference.loss_and_grads says how); None for full BPTT.
        """
        _, df = ACTIVATIONS[self.activation]
        W_xh, W_hh, W_hy = self.params["W_xh"], self.params["W_hh"], self.params["W_hy"]
        xp, device = backend.namespace(W_hh), backend.device(W_hh)
        x, h = trace.x, trace.h
        T, B, _ = x.shape
        H, O = self.hidden_size, self.output_size

        # dL/dh_t through the output layer, every step at once: dz_t @ W_hy^T.
        # The loop below adds what arrives from step t+1 and turns it into dL/da_t, in place.
        # (The result goes into a buffer the model keeps between calls, since a fresh
        # (T, B, H) array each call costs the allocator more than this arithmetic; nothing
        # returned points into it. In NumPy, np.dot: np.matmul leaves BLAS for this outer
        # product, whose inner size is O = 1, and is several times slower.)
        da_flat = self._scratch(T * B, H, like=W_hh)  # (T * B, H)
        matmul = np.dot if xp is np else xp.matmul
        matmul(dz.reshape(T * B, O), W_hy.T, out=da_flat)
        da = da_flat.reshape(T, B, H)  # (T, B, H), a view: writing da writes da_flat

        # Walk back in time. dh_next is dL/dh_t arriving from step t + 1 through W_hh (the
        # tutorial's future_layer_1_delta @ synapse_h.T, negated); none after the last step.
        dh_next = xp.zeros((B, H), dtype=x.dtype, device=device)
        df_t = xp.empty((B, H), dtype=x.dtype, device=device)  # f'(a_t)
        for t in reversed(range(T)):
            if ends_chunk(t, truncate):  # truncated BPTT: nothing from step t + 1
                dh_next = xp.zeros_like(dh_next)
            da[t] += dh_next  # dL/dh_t: its own output's share plus the future's
            da[t] *= df(h[t + 1], out=df_t)  # dL/da_t = dL/dh_t * f'(a_t)
            xp.matmul(da[t], W_hh.T, out=dh_next)  # dL/dh_{t-1} = dL/da_t @ W_hh^T

        # Weight gradients sum over every step and sequence, one matmul each:
        #   dL/dW_xh = sum_t x_t^T da_t
        #   dL/dW_hh = sum_t h_{t-1}^T da_t
        #   dL/dW_hy = sum_t h_t^T dz_t
        grads: Grads = {
            "W_xh": x.reshape(T * B, -1).T @ da.reshape(T * B, H),
            "W_hh": h[:-1].reshape(T * B, H).T @ da.reshape(T * B, H),
            "W_hy": h[1:].reshape(T * B, H).T @ dz.reshape(T * B, O),
        }
        if self.bias:
            grads["b_h"] = da.sum(axis=(0, 1))  # dL/db_h = sum_t da_t
            grads["b_y"] = dz.sum(axis=(0, 1))  # dL/db_y = sum_t dz_t
        grads["x"] = da @ W_xh.T  # dL/dx_t = da_t @ W_xh^T
        grads["h0"] = dh_next  # dL/dh_{-1}, what reached the start
        return grads
