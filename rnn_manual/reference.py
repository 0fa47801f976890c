"""The RNN, LSTM and GRU with backpropagation through time, written as plainly as possible.

Read this one first. The fast cells in rnn_manual/cells/ (rnn.py, lstm.py, gru.py) are the
same math made fast and portable (gates stacked into one matmul, every step's input
projection at once, reused buffers, any array library), and the tests check them against
this module, as they check this module against PyTorch autograd.

Every cell reads a sequence x (T, B, I), time-major (x[t] is x_t, B sequences side by
side), and ends in the same output layer and loss:

    z_t = h_t @ W_hy + b_y                                 output logit        (B, O)
    p_t = sigmoid(z_t), or softmax(z_t) (cells/outputs.py) output probability  (B, O)
    L = mse or bce of a sigmoid p, ce (cross-entropy) of a softmax p, against targets
        y (T, B, O), summed over steps and outputs and averaged over the batch
        (cells/losses.py, which also gives dz_t = dL/dz_t)

RNN, with the activation f one of sigmoid, tanh, relu:

    a_t = x_t @ W_xh + h_{t-1} @ W_hh + b_h                pre-activation      (B, H)
    h_t = f(a_t)                                           hidden state        (B, H)

LSTM, PyTorch's nn.LSTMCell, gates in PyTorch's order i, f, g, o:

    i_t = sigmoid(x_t @ W_xi + h_{t-1} @ W_hi + b_i)       input gate          (B, H)
    f_t = sigmoid(x_t @ W_xf + h_{t-1} @ W_hf + b_f)       forget gate         (B, H)
    g_t = tanh(x_t @ W_xg + h_{t-1} @ W_hg + b_g)          candidate cell      (B, H)
    o_t = sigmoid(x_t @ W_xo + h_{t-1} @ W_ho + b_o)       output gate         (B, H)
    c_t = f_t * c_{t-1} + i_t * g_t                        cell state          (B, H)
    h_t = o_t * tanh(c_t)                                  hidden state        (B, H)

GRU, PyTorch's nn.GRUCell (its update gate z is u here, since z is the output logit):

    r_t = sigmoid(x_t @ W_xr + h_{t-1} @ W_hr + b_r)       reset gate          (B, H)
    u_t = sigmoid(x_t @ W_xu + h_{t-1} @ W_hu + b_u)       update gate         (B, H)
    hn_t = h_{t-1} @ W_hn + b_hn                           recurrent candidate (B, H)
    n_t = tanh(x_t @ W_xn + b_xn + r_t * hn_t)             candidate           (B, H)
    h_t = (1 - u_t) * n_t + u_t * h_{t-1}                  hidden state        (B, H)

Shapes: every W_x* is (I, H), every W_h* (H, H), W_hy (H, O); every bias (H,), but b_y (O,).
`params` is a dict with exactly the fast cells' keys; a cell made with bias=False has no b_*
keys, and here a missing bias is a zero one. Steps run t = 0 .. T-1, so the initial state
is h_{-1}, passed as h0 (c_{-1} too, passed as c0, for the LSTM; zeros unless given). State
arrays have T + 1 entries: h[0] is h_{-1} and h[t + 1] is h_t, so step t reads its h_{t-1}
from h[t]. a, i, u, ... are the arguments
of the sigmoids and tanhs: a_i is the pre-activation of i_t, and so on.

Backward, in every cell, walks t from T - 1 down to 0. dh = dL/dh_t is what reaches h_t
through its output z_t plus dh_next, what step t + 1 sent back to h_t; from dh, step t
computes dL/da for its pre-activations, adds its share to every weight's gradient (a weight
used at every step has the sum over steps as its gradient), and carries dh_next = dL/dh_{t-1}
on to step t - 1 (and dc_next = dL/dc_{t-1} in the LSTM). After the loop, dh_next is
dL/dh_{-1}, returned as grads["h0"]. Each backward line names the derivative it applies.

This module trusts its caller and checks nothing: params, x, y, h0 and c0 are NumPy arrays
of one floating dtype and the shapes above. The fast cells' loss_and_grads check their inputs.

Public: cell_of, loss_and_grads, and per cell a forward pass (params, x, initial states)
-> cache and a backward pass (params, cache, dz) -> grads: rnn_forward, rnn_backward,
lstm_forward, lstm_backward, gru_forward, gru_backward. Each backward takes `truncate` too
(truncated BPTT: see loss_and_grads).

A ⚓ at the end of a line marks a statement that other code finds by its code (its syntax
tree): the diagnosis plants the bugs of its catalogue there (rnn_torch/diagnose/catalogue.py),
the tests plant theirs (tests/reference_plants.py), and the exercises take their answers
from there (exercises/). Reword a comment freely; change the code of a marked statement and
tests/test_anchors.py names each matcher that lost it and the statement, so that the
matcher can be updated with it. (The walkthrough quotes lines of this file too;
tests/test_walkthrough.py says which quote no longer matches.)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .cells.activations import ACTIVATIONS, sigmoid
from .cells.losses import LOSSES, OUTPUT_OF
from .cells.outputs import OUTPUTS
from .cells.truncation import ends_chunk

Array = NDArray[np.floating]
Params = dict[str, Array]  # parameter name -> array, as a fast cell's `params`
Grads = dict[str, Array]  # "W_xh", ..., "x", "h0" (and "c0") -> dL/d that array
Cache = dict[str, Array]  # what a forward pass keeps for its backward pass, by name


def cell_of(params: Params) -> str:
    """The cell these parameters belong to, read from their names: "rnn", "lstm" or "gru"."""
    if "W_xh" in params:
        return "rnn"
    if "W_xi" in params:
        return "lstm"
    if "W_xr" in params:
        return "gru"
    raise KeyError(f"not an RNN's, LSTM's or GRU's parameters: {sorted(params)}")


# ---- RNN ---------------------------------------------------------------------------------


def rnn_forward(
    params: Params, x: Array, h0: Array, activation: str, output: str = "sigmoid"
) -> Cache:
    """The RNN over x (T, B, I) from h_{-1} = h0 (B, H): x, h (T+1, B, H), z and p (T, B, O).
    output: the output layer, "sigmoid" or "softmax"."""
    f = ACTIVATIONS[activation][0]  # sigmoid, tanh or relu
    W_xh, W_hh, W_hy = params["W_xh"], params["W_hh"], params["W_hy"]
    b_h, b_y = params.get("b_h", 0.0), params.get("b_y", 0.0)  # 0.0: no biases
    T, B, _ = x.shape
    H, O = W_hy.shape
    h = np.zeros((T + 1, B, H), dtype=W_hy.dtype)  # h[0] is h_{-1}, h[t + 1] is h_t
    z = np.zeros((T, B, O), dtype=W_hy.dtype)  # z[t] is z_t
    h[0] = h0
    for t in range(T):
        a = x[t] @ W_xh + h[t] @ W_hh + b_h  # a_t (B, H) ⚓
        h[t + 1] = f(a)  # h_t = f(a_t)
        z[t] = h[t + 1] @ W_hy + b_y  # z_t = h_t @ W_hy + b_y
    p = OUTPUTS[output].forward(z)  # p_t = sigmoid(z_t), or softmax(z_t) over the outputs
    return {"x": x, "h": h, "z": z, "p": p}


def rnn_backward(
    params: Params, cache: Cache, dz: Array, activation: str, truncate: int | None = None
) -> Grads:
    """BPTT through the RNN from dz (T, B, O) = dL/dz_t: every parameter's, x's and h0's
    gradient. `activation` must be the one rnn_forward ran with; `truncate`: see
    loss_and_grads."""
    W_xh, W_hh, W_hy = params["W_xh"], params["W_hh"], params["W_hy"]
    x, h = cache["x"], cache["h"]
    bias = "b_y" in params
    grads = {name: np.zeros_like(w) for name, w in params.items()}  # sums over t, below
    dx = np.zeros_like(x)  # (T, B, I) dL/dx_t
    dh_next = np.zeros_like(h[0])  # (B, H) dL/dh_t from step t + 1: none after the last
    for t in reversed(range(len(x))):
        if ends_chunk(t, truncate):  # truncated BPTT: nothing from step t + 1
            dh_next = np.zeros_like(dh_next)
        dh = dz[t] @ W_hy.T + dh_next  # dL/dh_t: dz_t/dh_t = W_hy^T, plus from step t + 1 ⚓
        if activation == "sigmoid":
            da = dh * h[t + 1] * (1 - h[t + 1])  # sigmoid'(a) = h (1 - h) ⚓
        elif activation == "tanh":
            da = dh * (1 - h[t + 1] ** 2)  # tanh'(a) = 1 - h^2 ⚓
        else:
            da = dh * (h[t + 1] > 0)  # relu'(a) = 1 where h > 0, else 0 (at the kink too) ⚓
        grads["W_xh"] += x[t].T @ da  # da_t/dW_xh: x_t^T ⚓
        grads["W_hh"] += h[t].T @ da  # da_t/dW_hh: h_{t-1}^T ⚓
        grads["W_hy"] += h[t + 1].T @ dz[t]  # dz_t/dW_hy: h_t^T ⚓
        if bias:
            grads["b_h"] += da.sum(axis=0)  # da_t/db_h = 1, summed over the batch ⚓
            grads["b_y"] += dz[t].sum(axis=0)  # dz_t/db_y = 1 ⚓
        dx[t] = da @ W_xh.T  # da_t/dx_t = W_xh^T ⚓
        dh_next = da @ W_hh.T  # dL/dh_{t-1}: da_t/dh_{t-1} = W_hh^T ⚓
    grads["x"] = dx
    grads["h0"] = dh_next  # dL/dh_{-1} ⚓
    return grads


# ---- LSTM --------------------------------------------------------------------------------


def lstm_forward(params: Params, x: Array, h0: Array, c0: Array, output: str = "sigmoid") -> Cache:
    """The LSTM over x (T, B, I) from h_{-1} = h0 and c_{-1} = c0 (B, H): x, h and c (T+1, B, H),
    the gates i, f, g, o (T, B, H), z and p (T, B, O)."""
    W_xi, W_hi, b_i = params["W_xi"], params["W_hi"], params.get("b_i", 0.0)
    W_xf, W_hf, b_f = params["W_xf"], params["W_hf"], params.get("b_f", 0.0)  # ⚓
    W_xg, W_hg, b_g = params["W_xg"], params["W_hg"], params.get("b_g", 0.0)
    W_xo, W_ho, b_o = params["W_xo"], params["W_ho"], params.get("b_o", 0.0)  # ⚓
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
        h[t + 1] = o[t] * np.tanh(c[t + 1])  # h_t = o_t * tanh(c_t) ⚓
        z[t] = h[t + 1] @ W_hy + b_y  # z_t = h_t @ W_hy + b_y
    p = OUTPUTS[output].forward(z)  # p_t = sigmoid(z_t), or softmax(z_t) over the outputs
    return {"x": x, "h": h, "c": c, "i": i, "f": f, "g": g, "o": o, "z": z, "p": p}


def lstm_backward(params: Params, cache: Cache, dz: Array, truncate: int | None = None) -> Grads:
    """BPTT through the LSTM from dz (T, B, O) = dL/dz_t: every parameter's, x's, h0's and
    c0's gradient."""
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
        if ends_chunk(t, truncate):  # truncated BPTT: nothing from step t + 1
            dh_next = np.zeros_like(dh_next)
            dc_next = np.zeros_like(dc_next)
        dh = dz[t] @ W_hy.T + dh_next  # dL/dh_t: dz_t/dh_t = W_hy^T, plus from step t + 1 ⚓
        tanh_c = np.tanh(c[t + 1])  # tanh(c_t), as in the forward pass ⚓
        dc = dc_next + dh * o[t] * (1 - tanh_c**2)  # dh_t/dc_t = o_t (1 - tanh(c_t)^2) ⚓
        do = dh * tanh_c  # dh_t/do_t = tanh(c_t) ⚓
        di = dc * g[t]  # dc_t/di_t = g_t ⚓
        df = dc * c[t]  # dc_t/df_t = c_{t-1} ⚓
        dg = dc * i[t]  # dc_t/dg_t = i_t ⚓
        da_i = di * i[t] * (1 - i[t])  # sigmoid'(a_i) = i (1 - i) ⚓
        da_f = df * f[t] * (1 - f[t])  # sigmoid'(a_f) = f (1 - f) ⚓
        da_g = dg * (1 - g[t] ** 2)  # tanh'(a_g) = 1 - g^2 ⚓
        da_o = do * o[t] * (1 - o[t])  # sigmoid'(a_o) = o (1 - o) ⚓
        grads["W_xi"] += x[t].T @ da_i  # da_q/dW_xq: x_t^T ⚓
        grads["W_xf"] += x[t].T @ da_f  # ⚓
        grads["W_xg"] += x[t].T @ da_g  # ⚓
        grads["W_xo"] += x[t].T @ da_o  # ⚓
        grads["W_hi"] += h[t].T @ da_i  # da_q/dW_hq: h_{t-1}^T ⚓
        grads["W_hf"] += h[t].T @ da_f  # ⚓
        grads["W_hg"] += h[t].T @ da_g  # ⚓
        grads["W_ho"] += h[t].T @ da_o  # ⚓
        grads["W_hy"] += h[t + 1].T @ dz[t]  # dz_t/dW_hy: h_t^T ⚓
        if bias:
            grads["b_i"] += da_i.sum(axis=0)  # da_q/db_q = 1, summed over the batch ⚓
            grads["b_f"] += da_f.sum(axis=0)  # ⚓
            grads["b_g"] += da_g.sum(axis=0)  # ⚓
            grads["b_o"] += da_o.sum(axis=0)  # ⚓
            grads["b_y"] += dz[t].sum(axis=0)  # dz_t/db_y = 1 ⚓
        # da_q/dx_t = W_xq^T and da_q/dh_{t-1} = W_hq^T, for each gate q:
        dx[t] = da_i @ W_xi.T + da_f @ W_xf.T + da_g @ W_xg.T + da_o @ W_xo.T  # ⚓
        dh_next = da_i @ W_hi.T + da_f @ W_hf.T + da_g @ W_hg.T + da_o @ W_ho.T  # dL/dh_{t-1} ⚓
        dc_next = dc * f[t]  # dL/dc_{t-1}: dc_t/dc_{t-1} = f_t ⚓
    grads["x"] = dx
    grads["h0"] = dh_next  # dL/dh_{-1} ⚓
    grads["c0"] = dc_next  # dL/dc_{-1} ⚓
    return grads


# ---- GRU ---------------------------------------------------------------------------------


def gru_forward(params: Params, x: Array, h0: Array, output: str = "sigmoid") -> Cache:
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
        hn[t] = h[t] @ W_hn + b_hn  # hn_t = h_{t-1} @ W_hn + b_hn ⚓
        n[t] = np.tanh(x[t] @ W_xn + b_xn + r[t] * hn[t])  # n_t = tanh(a_n) ⚓
        h[t + 1] = (1 - u[t]) * n[t] + u[t] * h[t]  # h_t = (1 - u_t) * n_t + u_t * h_{t-1} ⚓
        z[t] = h[t + 1] @ W_hy + b_y  # z_t = h_t @ W_hy + b_y
    p = OUTPUTS[output].forward(z)  # p_t = sigmoid(z_t), or softmax(z_t) over the outputs
    return {"x": x, "h": h, "r": r, "u": u, "n": n, "hn": hn, "z": z, "p": p}


def gru_backward(params: Params, cache: Cache, dz: Array, truncate: int | None = None) -> Grads:
    """BPTT through the GRU from dz (T, B, O) = dL/dz_t: every parameter's, x's and h0's
    gradient."""
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
        if ends_chunk(t, truncate):  # truncated BPTT: nothing from step t + 1
            dh_next = np.zeros_like(dh_next)
        dh = dz[t] @ W_hy.T + dh_next  # dL/dh_t: dz_t/dh_t = W_hy^T, plus from step t + 1 ⚓
        dn = dh * (1 - u[t])  # dh_t/dn_t = 1 - u_t ⚓
        du = dh * (h[t] - n[t])  # dh_t/du_t = h_{t-1} - n_t ⚓
        da_n = dn * (1 - n[t] ** 2)  # tanh'(a_n) = 1 - n^2 ⚓
        da_u = du * u[t] * (1 - u[t])  # sigmoid'(a_u) = u (1 - u) ⚓
        dr = da_n * hn[t]  # da_n/dr_t = hn_t ⚓
        dhn = da_n * r[t]  # da_n/dhn_t = r_t ⚓
        da_r = dr * r[t] * (1 - r[t])  # sigmoid'(a_r) = r (1 - r) ⚓
        grads["W_xr"] += x[t].T @ da_r  # da_q/dW_xq: x_t^T ⚓
        grads["W_xu"] += x[t].T @ da_u  # ⚓
        grads["W_xn"] += x[t].T @ da_n  # ⚓
        grads["W_hr"] += h[t].T @ da_r  # da_q/dW_hq: h_{t-1}^T ⚓
        grads["W_hu"] += h[t].T @ da_u  # ⚓
        grads["W_hn"] += h[t].T @ dhn  # dhn_t/dW_hn: h_{t-1}^T ⚓
        grads["W_hy"] += h[t + 1].T @ dz[t]  # dz_t/dW_hy: h_t^T ⚓
        if bias:
            grads["b_r"] += da_r.sum(axis=0)  # da_q/db_q = 1, summed over the batch ⚓
            grads["b_u"] += da_u.sum(axis=0)  # ⚓
            grads["b_xn"] += da_n.sum(axis=0)  # ⚓
            grads["b_hn"] += dhn.sum(axis=0)  # dhn_t/db_hn = 1 ⚓
            grads["b_y"] += dz[t].sum(axis=0)  # dz_t/db_y = 1 ⚓
        dx[t] = da_r @ W_xr.T + da_u @ W_xu.T + da_n @ W_xn.T  # da_q/dx_t = W_xq^T ⚓
        dh_next = dh * u[t] + da_r @ W_hr.T + da_u @ W_hu.T + dhn @ W_hn.T  # dL/dh_{t-1} ⚓
    grads["x"] = dx
    grads["h0"] = dh_next  # dL/dh_{-1} ⚓
    return grads


# ---- all three ---------------------------------------------------------------------------


def loss_and_grads(
    params: Params,
    x: Array,
    y: Array,
    *,
    activation: str = "sigmoid",
    loss: str = "mse",
    h0: Array | None = None,
    c0: Array | None = None,
    truncate: int | None = None,
) -> tuple[float, Grads]:
    """The loss on targets y (T, B, O) and its gradients, as a fast cell's loss_and_grads:
    keyed as params plus "x", "h0", and "c0" for the LSTM.

    The cell is read from params' names (cell_of). activation: the RNN's f, "sigmoid",
    "tanh" or "relu" (the gated cells ignore it); loss: "mse" or "bce" on a sigmoid output,
    "ce" on a softmax one (the loss names the output layer: losses.OUTPUT_OF; ce's targets
    y_t each sum to 1); h0, c0: the initial states (B, H), zeros when None (c0 for the LSTM
    only).

    truncate: None for full BPTT; K for truncated BPTT: the sequence is cut into chunks of
    K steps (0..K-1, K..2K-1, ...), the state runs on across the cuts, but no gradient
    crosses one, as `h = h.detach()` between chunks does in PyTorch. The loss is the same;
    each step's gradient stops at the start of its chunk. grads["h0"] is what reaches h_{-1}
    through the first chunk. truncate >= T is full BPTT.
    """
    cell = cell_of(params)  # ⚓
    B, H = x.shape[1], params["W_hy"].shape[0]
    if h0 is None:  # ⚓
        h0 = np.zeros((B, H), dtype=params["W_hy"].dtype)  # h_{-1} = 0
    if c0 is None:  # ⚓
        c0 = np.zeros((B, H), dtype=params["W_hy"].dtype)  # c_{-1} = 0
    output = OUTPUT_OF[loss]  # the output layer the loss judges: sigmoid or softmax
    if cell == "rnn":
        cache = rnn_forward(params, x, h0, activation, output)
    elif cell == "lstm":
        cache = lstm_forward(params, x, h0, c0, output)
    else:
        cache = gru_forward(params, x, h0, output)
    value, dz = LOSSES[loss](cache["z"], cache["p"], y)  # L, and dz_t = dL/dz_t (T, B, O) ⚓
    if cell == "rnn":
        grads = rnn_backward(params, cache, dz, activation, truncate)
    elif cell == "lstm":
        grads = lstm_backward(params, cache, dz, truncate)
    else:
        grads = gru_backward(params, cache, dz, truncate)
    return float(value), grads  # ⚓
