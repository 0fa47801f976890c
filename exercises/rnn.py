"""Exercise: backpropagation through time for the RNN, by hand.

The forward pass, the loss and the loop are written; the backward pass is a list of
numbered TODOs, each naming the quantity to compute. Replace each `TODO("...")` by the
expression for that quantity, in order, and check your work with

    python -m rnn_torch diagnose exercises/rnn.py

which runs this file on random networks, compares every gradient with PyTorch autograd and
says which gradient is wrong, from which sequence length and time step, and which known
bug it equals. Run as it is, it stops at the first TODO ("not implemented yet: 1. ...").
Work on a copy if you want to keep the blank one.

The network (docs/walkthrough.md, sections 2 and 3), with f the activation:

    a_t = x_t @ W_xh + h_{t-1} @ W_hh + b_h      h_t = f(a_t)         (B, H)
    z_t = h_t @ W_hy + b_y                       p_t = sigmoid(z_t)   (B, O)

x (T, B, I) and y (T, B, O) are time-major; h[0] is h_{-1} and h[t + 1] is h_t. The backward
pass receives dz = dL/dz_t (T, B, O) from the loss and returns dL/d(every parameter), dL/dx
and dL/dh_{-1}, keyed like params plus "x" and "h0". The TODOs come in the order of the
derivation, and each names the step of the walkthrough's section 4 that derives it (§4,
step 2: docs/walkthrough.md, section 4, the list item "2."). Derive each term there first and
write it here; the lines of rnn_manual/reference.py are folded after the section's
"Exercise:" pointer, for when you are done.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnn_manual.cells.activations import ACTIVATIONS, sigmoid
from rnn_manual.cells.losses import LOSSES

# ruff: noqa: F841 - until the TODOs are written, the names they will use look unused


def TODO(what: str) -> Any:
    """Stands for code you write: replace the call by the quantity it names."""
    raise NotImplementedError(what)


def rnn_forward(params: dict, x: np.ndarray, h0: np.ndarray, activation: str) -> dict:
    """The RNN over x (T, B, I) from h_{-1} = h0 (B, H): x, h (T+1, B, H), z and p (T, B, O)."""
    f = ACTIVATIONS[activation][0]  # sigmoid, tanh or relu
    W_xh, W_hh, W_hy = params["W_xh"], params["W_hh"], params["W_hy"]
    b_h, b_y = params.get("b_h", 0.0), params.get("b_y", 0.0)  # 0.0: no biases
    T, B, _ = x.shape
    H, O = W_hy.shape
    h = np.zeros((T + 1, B, H), dtype=W_hy.dtype)  # h[0] is h_{-1}, h[t + 1] is h_t
    z = np.zeros((T, B, O), dtype=W_hy.dtype)  # z[t] is z_t
    h[0] = h0
    for t in range(T):
        a = x[t] @ W_xh + h[t] @ W_hh + b_h  # a_t (B, H)
        h[t + 1] = f(a)  # h_t = f(a_t)
        z[t] = h[t + 1] @ W_hy + b_y  # z_t = h_t @ W_hy + b_y
    p = sigmoid(z)  # p_t = sigmoid(z_t)
    return {"x": x, "h": h, "z": z, "p": p}


def rnn_backward(params: dict, cache: dict, dz: np.ndarray, activation: str) -> dict:
    """BPTT from dz (T, B, O) = dL/dz_t: every parameter's, x's and h0's gradient."""
    W_xh, W_hh, W_hy = params["W_xh"], params["W_hh"], params["W_hy"]
    x, h = cache["x"], cache["h"]
    bias = "b_y" in params
    grads = {name: np.zeros_like(w) for name, w in params.items()}  # sums over t, below
    dx = np.zeros_like(x)  # (T, B, I) dL/dx_t
    dh_next = np.zeros_like(h[0])  # (B, H) dL/dh_t from step t + 1: none after the last
    for t in reversed(range(len(x))):
        dh = TODO("1. dh = dL/dh_t: from its output z_t, plus dh_next (walkthrough §4, step 1)")
        if activation == "sigmoid":
            da = TODO("2. da = dL/da_t: dh through the sigmoid, from h_t (walkthrough §4, step 2)")
        elif activation == "tanh":
            da = TODO("3. da = dL/da_t: dh through tanh, from h_t (walkthrough §4, step 2)")
        else:
            da = TODO("4. da = dL/da_t: dh through relu, from h_t (walkthrough §4, step 2)")
        grads["W_xh"] += TODO("5. step t's share of dL/dW_xh (walkthrough §4, step 3)")
        grads["W_hh"] += TODO("6. step t's share of dL/dW_hh (walkthrough §4, step 3)")
        grads["W_hy"] += TODO("7. step t's share of dL/dW_hy (walkthrough §4, step 3)")
        if bias:
            grads["b_h"] += TODO("8. step t's share of dL/db_h (walkthrough §4, step 3)")
            grads["b_y"] += TODO("9. step t's share of dL/db_y (walkthrough §4, step 3)")
        dx[t] = TODO("10. dL/dx_t: what reaches x_t through a_t (walkthrough §4, step 4)")
        dh_next = TODO("11. dh_next = dL/dh_{t-1}: what step t sends back (walkthrough §4, step 4)")
    grads["x"] = dx
    grads["h0"] = TODO("12. dL/dh_{-1}: what is left after the loop (walkthrough §4, step 4)")
    return grads


def loss_and_grads(
    params: dict,
    x: np.ndarray,
    y: np.ndarray,
    *,
    activation: str = "sigmoid",
    loss: str = "mse",
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
) -> tuple[float, dict]:
    """The loss on targets y and its gradients: rnn_manual.reference.loss_and_grads's
    signature, for the RNN (c0 is the LSTM's, unused here)."""
    B, H = x.shape[1], params["W_hy"].shape[0]
    if h0 is None:
        h0 = np.zeros((B, H), dtype=params["W_hy"].dtype)  # h_{-1} = 0
    cache = rnn_forward(params, x, h0, activation)
    value, dz = LOSSES[loss](cache["z"], cache["p"], y)  # L, and dz_t = dL/dz_t (T, B, O)
    return float(value), rnn_backward(params, cache, dz, activation)
