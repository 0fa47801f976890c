"""Exercise: backpropagation through time for the LSTM, by hand.

The forward pass, the loss and the loop are written; the backward pass is a list of
numbered TODOs, each naming the quantity to compute and the step of docs/walkthrough.md,
section 11, that derives it. Replace each `TODO("...")` by the expression for that
quantity, in order, and check your work with

    python -m rnn_torch diagnose exercises/lstm.py --cell lstm

which runs this file on random networks, compares every gradient with PyTorch autograd and
says which gradient is wrong, from which sequence length and time step, which gate's
parameters, and which known bug it equals. Run as it is, it stops at the first TODO ("not
implemented yet: 1. ..."). Work on a copy if you want to keep the blank one.

The cell is PyTorch's nn.LSTMCell, gates in its order i, f, g, o (a_q is the argument of
gate q's sigmoid or tanh, e.g. a_i = x_t @ W_xi + h_{t-1} @ W_hi + b_i):

    i_t = sigmoid(a_i)   f_t = sigmoid(a_f)   g_t = tanh(a_g)   o_t = sigmoid(a_o)
    c_t = f_t * c_{t-1} + i_t * g_t           h_t = o_t * tanh(c_t)            (B, H)
    z_t = h_t @ W_hy + b_y                    p_t = sigmoid(z_t)               (B, O)

x (T, B, I) and y (T, B, O) are time-major; h[0] is h_{-1} and h[t + 1] is h_t (c likewise);
i[t] is i_t. The backward pass receives dz = dL/dz_t (T, B, O) from the loss and returns
dL/d(every parameter), dL/dx, dL/dh_{-1} and dL/dc_{-1}, keyed like params plus "x", "h0", "c0".

Section 11 of the walkthrough derives every term in the order of the TODOs, steps 1 to 7,
before it shows any code: derive each one there, then write it here. The answers are
rnn_manual/reference.py's lines, folded under the section's exercise pointer; open them to
compare once yours are written, not before.
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


def lstm_forward(params: dict, x: np.ndarray, h0: np.ndarray, c0: np.ndarray) -> dict:
    """The LSTM over x (T, B, I) from h_{-1} = h0 and c_{-1} = c0 (B, H): x, h and c (T+1, B, H),
    the gates i, f, g, o (T, B, H), z and p (T, B, O)."""
    W_xi, W_hi, b_i = params["W_xi"], params["W_hi"], params.get("b_i", 0.0)
    W_xf, W_hf, b_f = params["W_xf"], params["W_hf"], params.get("b_f", 0.0)
    W_xg, W_hg, b_g = params["W_xg"], params["W_hg"], params.get("b_g", 0.0)
    W_xo, W_ho, b_o = params["W_xo"], params["W_ho"], params.get("b_o", 0.0)
    W_hy, b_y = params["W_hy"], params.get("b_y", 0.0)  # 0.0: no biases
    T, B, _ = x.shape
    H, O = W_hy.shape
    h = np.zeros((T + 1, B, H), dtype=W_hy.dtype)  # h[0] is h_{-1}, h[t + 1] is h_t
    c = np.zeros((T + 1, B, H), dtype=W_hy.dtype)  # c[0] is c_{-1}, c[t + 1] is c_t
    i = np.zeros((T, B, H), dtype=W_hy.dtype)  # i[t] is i_t; f, g, o likewise
    f = np.zeros((T, B, H), dtype=W_hy.dtype)
    g = np.zeros((T, B, H), dtype=W_hy.dtype)
    o = np.zeros((T, B, H), dtype=W_hy.dtype)
    z = np.zeros((T, B, O), dtype=W_hy.dtype)  # z[t] is z_t
    h[0] = h0
    c[0] = c0
    for t in range(T):
        i[t] = sigmoid(x[t] @ W_xi + h[t] @ W_hi + b_i)  # i_t = sigmoid(a_i)
        f[t] = sigmoid(x[t] @ W_xf + h[t] @ W_hf + b_f)  # f_t = sigmoid(a_f)
        g[t] = np.tanh(x[t] @ W_xg + h[t] @ W_hg + b_g)  # g_t = tanh(a_g)
        o[t] = sigmoid(x[t] @ W_xo + h[t] @ W_ho + b_o)  # o_t = sigmoid(a_o)
        c[t + 1] = f[t] * c[t] + i[t] * g[t]  # c_t = f_t * c_{t-1} + i_t * g_t
        h[t + 1] = o[t] * np.tanh(c[t + 1])  # h_t = o_t * tanh(c_t)
        z[t] = h[t + 1] @ W_hy + b_y  # z_t = h_t @ W_hy + b_y
    p = sigmoid(z)  # p_t = sigmoid(z_t)
    return {"x": x, "h": h, "c": c, "i": i, "f": f, "g": g, "o": o, "z": z, "p": p}


def lstm_backward(params: dict, cache: dict, dz: np.ndarray) -> dict:
    """BPTT from dz (T, B, O) = dL/dz_t: every parameter's, x's, h0's and c0's gradient."""
    W_xi, W_xf, W_xg, W_xo = params["W_xi"], params["W_xf"], params["W_xg"], params["W_xo"]
    W_hi, W_hf, W_hg, W_ho = params["W_hi"], params["W_hf"], params["W_hg"], params["W_ho"]
    W_hy = params["W_hy"]
    x, h, c = cache["x"], cache["h"], cache["c"]
    i, f, g, o = cache["i"], cache["f"], cache["g"], cache["o"]
    bias = "b_y" in params
    grads = {name: np.zeros_like(w) for name, w in params.items()}  # sums over t, below
    dx = np.zeros_like(x)  # (T, B, I) dL/dx_t
    dh_next = np.zeros_like(h[0])  # (B, H) dL/dh_t from step t + 1: none after the last
    dc_next = np.zeros_like(c[0])  # (B, H) dL/dc_t from step t + 1: none after the last
    for t in reversed(range(len(x))):
        dh = TODO("1. dh = dL/dh_t: from its output z_t, plus dh_next (walkthrough §11, step 1)")
        tanh_c = np.tanh(c[t + 1])  # tanh(c_t), as in the forward pass
        dc = TODO(
            "2. dc = dL/dc_t: what reaches c_t through h_t, plus dc_next (walkthrough §11, step 2)"
        )
        do = TODO("3. do = dL/do_t (walkthrough §11, step 3)")
        di = TODO("4. di = dL/di_t (walkthrough §11, step 3)")
        df = TODO("5. df = dL/df_t (walkthrough §11, step 3)")
        dg = TODO("6. dg = dL/dg_t (walkthrough §11, step 3)")
        da_i = TODO(
            "7. da_i = dL/da_i: di through the input gate's sigmoid (walkthrough §11, step 4)"
        )
        da_f = TODO(
            "8. da_f = dL/da_f: df through the forget gate's sigmoid (walkthrough §11, step 4)"
        )
        da_g = TODO("9. da_g = dL/da_g: dg through the candidate's tanh (walkthrough §11, step 4)")
        da_o = TODO(
            "10. da_o = dL/da_o: do through the output gate's sigmoid (walkthrough §11, step 4)"
        )
        grads["W_xi"] += TODO("11. step t's share of dL/dW_xi (walkthrough §11, step 5)")
        grads["W_xf"] += TODO("12. step t's share of dL/dW_xf (walkthrough §11, step 5)")
        grads["W_xg"] += TODO("13. step t's share of dL/dW_xg (walkthrough §11, step 5)")
        grads["W_xo"] += TODO("14. step t's share of dL/dW_xo (walkthrough §11, step 5)")
        grads["W_hi"] += TODO("15. step t's share of dL/dW_hi (walkthrough §11, step 5)")
        grads["W_hf"] += TODO("16. step t's share of dL/dW_hf (walkthrough §11, step 5)")
        grads["W_hg"] += TODO("17. step t's share of dL/dW_hg (walkthrough §11, step 5)")
        grads["W_ho"] += TODO("18. step t's share of dL/dW_ho (walkthrough §11, step 5)")
        grads["W_hy"] += TODO("19. step t's share of dL/dW_hy (walkthrough §11, step 5)")
        if bias:
            grads["b_i"] += TODO(
                "20. step t's share of dL/db_i, summed over the batch (walkthrough §11, step 5)"
            )
            grads["b_f"] += TODO("21. step t's share of dL/db_f (walkthrough §11, step 5)")
            grads["b_g"] += TODO("22. step t's share of dL/db_g (walkthrough §11, step 5)")
            grads["b_o"] += TODO("23. step t's share of dL/db_o (walkthrough §11, step 5)")
            grads["b_y"] += TODO("24. step t's share of dL/db_y (walkthrough §11, step 5)")
        dx[t] = TODO(
            "25. dx[t] = dL/dx_t: what reaches x_t through all four gates (walkthrough §11, step 6)"
        )
        dh_next = TODO(
            "26. dh_next = dL/dh_{t-1}: what step t sends back to h_{t-1} (walkthrough §11, step 6)"
        )
        dc_next = TODO(
            "27. dc_next = dL/dc_{t-1}: what step t sends back to c_{t-1} (walkthrough §11, step 6)"
        )
    grads["x"] = dx
    grads["h0"] = TODO("28. dL/dh_{-1}: what is left after the loop (walkthrough §11, step 7)")
    grads["c0"] = TODO("29. dL/dc_{-1}: what is left after the loop (walkthrough §11, step 7)")
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
    signature, for the LSTM (activation is the RNN's, unused here)."""
    B, H = x.shape[1], params["W_hy"].shape[0]
    if h0 is None:
        h0 = np.zeros((B, H), dtype=params["W_hy"].dtype)  # h_{-1} = 0
    if c0 is None:
        c0 = np.zeros((B, H), dtype=params["W_hy"].dtype)  # c_{-1} = 0
    cache = lstm_forward(params, x, h0, c0)
    value, dz = LOSSES[loss](cache["z"], cache["p"], y)  # L, and dz_t = dL/dz_t (T, B, O)
    return float(value), lstm_backward(params, cache, dz)
