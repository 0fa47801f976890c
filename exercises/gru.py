"""Exercise: backpropagation through time for the GRU, by hand.

The forward pass, the loss and the loop are written; the backward pass is a list of
numbered TODOs, each naming the quantity to compute and the step of docs/walkthrough.md,
section 12, that derives it. Replace each `TODO("...")` by the expression for that
quantity, in order, and check your work with

    python -m rnn_torch diagnose exercises/gru.py --cell gru

which runs this file on random networks, compares every gradient with PyTorch autograd and
says which gradient is wrong, from which sequence length and time step, which gate's
parameters, and which known bug it equals. Run as it is, it stops at the first TODO ("not
implemented yet: 1. ..."). Work on a copy if you want to keep the blank one.

The cell is PyTorch's nn.GRUCell (its update gate z is u here, since z is the output logit):

    r_t = sigmoid(x_t @ W_xr + h_{t-1} @ W_hr + b_r)       reset gate          (B, H)
    u_t = sigmoid(x_t @ W_xu + h_{t-1} @ W_hu + b_u)       update gate         (B, H)
    hn_t = h_{t-1} @ W_hn + b_hn                           recurrent candidate (B, H)
    n_t = tanh(x_t @ W_xn + b_xn + r_t * hn_t)             candidate           (B, H)
    h_t = (1 - u_t) * n_t + u_t * h_{t-1}                  hidden state        (B, H)
    z_t = h_t @ W_hy + b_y        p_t = sigmoid(z_t)                           (B, O)

a_r, a_u and a_n are the arguments of r_t's and u_t's sigmoids and of n_t's tanh; hn_t is
the walkthrough's n̂_t.

x (T, B, I) and y (T, B, O) are time-major; h[0] is h_{-1} and h[t + 1] is h_t; r[t] is r_t.
The backward pass receives dz = dL/dz_t (T, B, O) from the loss and returns dL/d(every
parameter), dL/dx and dL/dh_{-1}, keyed like params plus "x" and "h0".

Section 12 of the walkthrough derives every term in the order of the TODOs, steps 1 to 7,
before it shows any code (with the rules of section 11): derive each one there, then write
it here. The answers are rnn_manual/reference.py's lines, folded under the section's
exercise pointer; open them to compare once yours are written, not before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnn_manual.cells.activations import sigmoid
from rnn_manual.cells.losses import LOSSES

# ruff: noqa: F841 - until the TODOs are written, the names they will use look unused


def TODO(what: str) -> Any:
    """Stands for code you write: replace the call by the quantity it names."""
    raise NotImplementedError(what)


def gru_forward(params: dict, x: np.ndarray, h0: np.ndarray) -> dict:
    """The GRU over x (T, B, I) from h_{-1} = h0 (B, H): x, h (T+1, B, H), the gates r, u, n and
    the recurrent candidate hn (T, B, H), z and p (T, B, O)."""
    W_xr, W_hr, b_r = params["W_xr"], params["W_hr"], params.get("b_r", 0.0)
    W_xu, W_hu, b_u = params["W_xu"], params["W_hu"], params.get("b_u", 0.0)
    W_xn, b_xn = params["W_xn"], params.get("b_xn", 0.0)
    W_hn, b_hn = params["W_hn"], params.get("b_hn", 0.0)
    W_hy, b_y = params["W_hy"], params.get("b_y", 0.0)  # 0.0: no biases
    T, B, _ = x.shape
    H, O = W_hy.shape
    h = np.zeros((T + 1, B, H), dtype=W_hy.dtype)  # h[0] is h_{-1}, h[t + 1] is h_t
    r = np.zeros((T, B, H), dtype=W_hy.dtype)  # r[t] is r_t; u, n, hn likewise
    u = np.zeros((T, B, H), dtype=W_hy.dtype)
    n = np.zeros((T, B, H), dtype=W_hy.dtype)
    hn = np.zeros((T, B, H), dtype=W_hy.dtype)
    z = np.zeros((T, B, O), dtype=W_hy.dtype)  # z[t] is z_t
    h[0] = h0
    for t in range(T):
        r[t] = sigmoid(x[t] @ W_xr + h[t] @ W_hr + b_r)  # r_t = sigmoid(a_r)
        u[t] = sigmoid(x[t] @ W_xu + h[t] @ W_hu + b_u)  # u_t = sigmoid(a_u)
        hn[t] = h[t] @ W_hn + b_hn  # hn_t = h_{t-1} @ W_hn + b_hn
        n[t] = np.tanh(x[t] @ W_xn + b_xn + r[t] * hn[t])  # n_t = tanh(a_n)
        h[t + 1] = (1 - u[t]) * n[t] + u[t] * h[t]  # h_t = (1 - u_t) * n_t + u_t * h_{t-1}
        z[t] = h[t + 1] @ W_hy + b_y  # z_t = h_t @ W_hy + b_y
    p = sigmoid(z)  # p_t = sigmoid(z_t)
    return {"x": x, "h": h, "r": r, "u": u, "n": n, "hn": hn, "z": z, "p": p}


def gru_backward(params: dict, cache: dict, dz: np.ndarray) -> dict:
    """BPTT from dz (T, B, O) = dL/dz_t: every parameter's, x's and h0's gradient."""
    W_xr, W_xu, W_xn = params["W_xr"], params["W_xu"], params["W_xn"]
    W_hr, W_hu, W_hn = params["W_hr"], params["W_hu"], params["W_hn"]
    W_hy = params["W_hy"]
    x, h = cache["x"], cache["h"]
    r, u, n, hn = cache["r"], cache["u"], cache["n"], cache["hn"]
    bias = "b_y" in params
    grads = {name: np.zeros_like(w) for name, w in params.items()}  # sums over t, below
    dx = np.zeros_like(x)  # (T, B, I) dL/dx_t
    dh_next = np.zeros_like(h[0])  # (B, H) dL/dh_t from step t + 1: none after the last
    for t in reversed(range(len(x))):
        dh = TODO("1. dh = dL/dh_t: from its output z_t, plus dh_next (walkthrough §12, step 1)")
        dn = TODO("2. dn = dL/dn_t (walkthrough §12, step 2)")
        du = TODO("3. du = dL/du_t (walkthrough §12, step 2)")
        da_n = TODO("4. da_n = dL/da_n: dn through the candidate's tanh (walkthrough §12, step 3)")
        da_u = TODO(
            "5. da_u = dL/da_u: du through the update gate's sigmoid (walkthrough §12, step 3)"
        )
        dr = TODO("6. dr = dL/dr_t (walkthrough §12, step 4)")
        dhn = TODO("7. dhn = dL/dhn_t (walkthrough §12, step 4)")
        da_r = TODO(
            "8. da_r = dL/da_r: dr through the reset gate's sigmoid (walkthrough §12, step 4)"
        )
        grads["W_xr"] += TODO("9. step t's share of dL/dW_xr (walkthrough §12, step 5)")
        grads["W_xu"] += TODO("10. step t's share of dL/dW_xu (walkthrough §12, step 5)")
        grads["W_xn"] += TODO("11. step t's share of dL/dW_xn (walkthrough §12, step 5)")
        grads["W_hr"] += TODO("12. step t's share of dL/dW_hr (walkthrough §12, step 5)")
        grads["W_hu"] += TODO("13. step t's share of dL/dW_hu (walkthrough §12, step 5)")
        grads["W_hn"] += TODO("14. step t's share of dL/dW_hn (walkthrough §12, step 5)")
        grads["W_hy"] += TODO("15. step t's share of dL/dW_hy (walkthrough §12, step 5)")
        if bias:
            grads["b_r"] += TODO(
                "16. step t's share of dL/db_r, summed over the batch (walkthrough §12, step 5)"
            )
            grads["b_u"] += TODO("17. step t's share of dL/db_u (walkthrough §12, step 5)")
            grads["b_xn"] += TODO("18. step t's share of dL/db_xn (walkthrough §12, step 5)")
            grads["b_hn"] += TODO("19. step t's share of dL/db_hn (walkthrough §12, step 5)")
            grads["b_y"] += TODO("20. step t's share of dL/db_y (walkthrough §12, step 5)")
        dx[t] = TODO(
            "21. dx[t] = dL/dx_t: what reaches x_t through r, u and n (walkthrough §12, step 6)"
        )
        dh_next = TODO(
            "22. dh_next = dL/dh_{t-1}: every path from step t to h_{t-1} (walkthrough §12, step 6)"
        )
    grads["x"] = dx
    grads["h0"] = TODO("23. dL/dh_{-1}: what is left after the loop (walkthrough §12, step 7)")
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
    signature, for the GRU (activation and c0 are the other cells', unused here)."""
    B, H = x.shape[1], params["W_hy"].shape[0]
    if h0 is None:
        h0 = np.zeros((B, H), dtype=params["W_hy"].dtype)  # h_{-1} = 0
    cache = gru_forward(params, x, h0)
    value, dz = LOSSES[loss](cache["z"], cache["p"], y)  # L, and dz_t = dL/dz_t (T, B, O)
    return float(value), gru_backward(params, cache, dz)
