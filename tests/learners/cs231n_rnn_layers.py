"""Recurrent layers, written as a learner completes CS231n assignment 3's rnn_layers.py.

NumPy, batch first; every layer is a forward function that returns (out, cache) and a
backward function that takes (dout, cache).
"""

import numpy as np


def sigmoid(x):
    """Logistic sigmoid that never takes exp of a large positive number."""
    out = np.empty_like(x)
    pos = x >= 0
    neg = ~pos
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[neg])
    out[neg] = ex / (1.0 + ex)
    return out


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One tanh RNN step on a minibatch.

    x (N, D), prev_h (N, H), Wx (D, H), Wh (H, H), b (H,).
    Returns next_h (N, H) and the cache the backward step needs.
    """
    next_h, cache = None, None
    # ---- my code ----
    affine = x.dot(Wx) + prev_h.dot(Wh) + b
    next_h = np.tanh(affine)
    cache = (x, prev_h, Wx, Wh, next_h)
    # ---- end of my code ----
    return next_h, cache


def rnn_step_backward(dnext_h, cache):
    """Backward of one tanh RNN step.

    dnext_h (N, H) is the gradient of next_h. Returns dx (N, D), dprev_h (N, H),
    dWx (D, H), dWh (H, H), db (H,).
    """
    dx, dprev_h, dWx, dWh, db = None, None, None, None, None
    # ---- my code ----
    x, prev_h, Wx, Wh, next_h = cache
    # d tanh(a) / da = 1 - tanh(a)^2, and next_h is tanh(a)
    dtanh = dnext_h * (1 - next_h**2)
    dx = dtanh.dot(Wx.T)
    dprev_h = dtanh.dot(Wh.T)
    dWx = x.T.dot(dtanh)
    dWh = prev_h.T.dot(dtanh)
    db = np.sum(dtanh, axis=0)
    # ---- end of my code ----
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    """The tanh RNN over a whole minibatch of sequences.

    x (N, T, D), h0 (N, H). Returns every hidden state h (N, T, H) and a cache (the list
    of the step caches).
    """
    h, cache = None, None
    # ---- my code ----
    N, T, D = x.shape
    H = h0.shape[1]
    h = np.zeros((N, T, H))
    cache = []
    prev_h = h0
    for t in range(T):
        prev_h, cache_t = rnn_step_forward(x[:, t, :], prev_h, Wx, Wh, b)
        h[:, t, :] = prev_h
        cache.append(cache_t)
    # ---- end of my code ----
    return h, cache


def rnn_backward(dh, cache):
    """Backward of rnn_forward.

    dh (N, T, H) is the gradient that arrives at each hidden state from above (the loss
    at that step), not the one passed between steps: that one is computed here.
    Returns dx (N, T, D), dh0 (N, H), dWx (D, H), dWh (H, H), db (H,).
    """
    dx, dh0, dWx, dWh, db = None, None, None, None, None
    # ---- my code ----
    N, T, H = dh.shape
    D = cache[0][0].shape[1]
    dx = np.zeros((N, T, D))
    dWx = np.zeros((D, H))
    dWh = np.zeros((H, H))
    db = np.zeros(H)
    dprev_h = np.zeros((N, H))
    for t in reversed(range(T)):
        # the hidden state at t gets gradient from the loss at t and from step t + 1
        dx_t, dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t, :] + dprev_h, cache[t])
        dx[:, t, :] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    dh0 = dprev_h
    # ---- end of my code ----
    return dx, dh0, dWx, dWh, db


def word_embedding_forward(x, W):
    """Look up the word vectors: x (N, T) ints in [0, V), W (V, D) -> out (N, T, D)."""
    out, cache = None, None
    # ---- my code ----
    out = W[x]
    cache = (x, W)
    # ---- end of my code ----
    return out, cache


def word_embedding_backward(dout, cache):
    """Gradient of the embedding matrix W (V, D) from dout (N, T, D)."""
    dW = None
    # ---- my code ----
    x, W = cache
    dW = np.zeros_like(W)
    # a word can appear several times in the batch: accumulate, do not overwrite
    np.add.at(dW, x, dout)
    # ---- end of my code ----
    return dW


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM step on a minibatch.

    x (N, D), prev_h and prev_c (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,); the four
    blocks of the pre-activation are the input, forget and output gates and the
    candidate g, in that order. Returns next_h, next_c (N, H) and the cache.
    """
    next_h, next_c, cache = None, None, None
    # ---- my code ----
    H = prev_h.shape[1]
    a = x.dot(Wx) + prev_h.dot(Wh) + b
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H : 2 * H])
    o = sigmoid(a[:, 2 * H : 3 * H])
    g = np.tanh(a[:, 3 * H :])
    next_c = f * prev_c + i * g
    next_h = o * np.tanh(next_c)
    cache = (x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c)
    # ---- end of my code ----
    return next_h, next_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward of one LSTM step.

    Returns dx (N, D), dprev_h (N, H), dprev_c (N, H), dWx (D, 4H), dWh (H, 4H),
    db (4H,).
    """
    dx, dprev_h, dprev_c, dWx, dWh, db = None, None, None, None, None, None
    # ---- my code ----
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tanh_c = np.tanh(next_c)
    do = dnext_h * tanh_c
    # the cell state gets gradient directly and through next_h = o * tanh(next_c)
    dc = dnext_c + dnext_h * o * (1 - tanh_c**2)
    di = dc * g
    df = dc * prev_c
    dg = dc * i
    dprev_c = dc * f
    # back through the nonlinearities to the pre-activations
    dai = di * i * (1 - i)
    daf = df * f * (1 - f)
    dao = do * o * (1 - o)
    dag = dg * (1 - g**2)
    da = np.hstack((dai, daf, dao, dag))
    dx = da.dot(Wx.T)
    dprev_h = da.dot(Wh.T)
    dWx = x.T.dot(da)
    dWh = prev_h.T.dot(da)
    db = np.sum(da, axis=0)
    # ---- end of my code ----
    return dx, dprev_h, dprev_c, dWx, dWh, db


def lstm_forward(x, h0, Wx, Wh, b):
    """The LSTM over a whole minibatch of sequences, starting from c0 = 0.

    x (N, T, D), h0 (N, H). Returns the hidden states h (N, T, H) (the cell states stay
    inside) and the cache.
    """
    h, cache = None, None
    # ---- my code ----
    N, T, D = x.shape
    H = h0.shape[1]
    h = np.zeros((N, T, H))
    cache = []
    next_h = h0
    next_c = np.zeros_like(h0)
    for t in range(T):
        next_h, next_c, step_cache = lstm_step_forward(x[:, t, :], next_h, next_c, Wx, Wh, b)
        h[:, t, :] = next_h
        cache.append(step_cache)
    # ---- end of my code ----
    return h, cache


def lstm_backward(dh, cache):
    """Backward of lstm_forward; dh (N, T, H) is the gradient from above at every step.

    Returns dx (N, T, D), dh0 (N, H), dWx (D, 4H), dWh (H, 4H), db (4H,).
    """
    dx, dh0, dWx, dWh, db = None, None, None, None, None
    # ---- my code ----
    N, T, H = dh.shape
    D = cache[0][0].shape[1]
    dx = np.zeros((N, T, D))
    dWx = np.zeros((D, 4 * H))
    dWh = np.zeros((H, 4 * H))
    db = np.zeros(4 * H)
    dnext_h = np.zeros((N, H))
    dnext_c = np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        dxt, dnext_h, dnext_c, dWxt, dWht, dbt = lstm_step_backward(
            dh[:, t, :] + dnext_h, dnext_c, cache[t]
        )
        dx[:, t, :] = dxt
        dWx += dWxt
        dWh += dWht
        db += dbt
    dh0 = dnext_h
    # ---- end of my code ----
    return dx, dh0, dWx, dWh, db


def temporal_affine_forward(x, w, b):
    """The same affine map at every step: x (N, T, D), w (D, M), b (M,) -> (N, T, M)."""
    N, T, D = x.shape
    M = b.shape[0]
    out = x.reshape(N * T, D).dot(w).reshape(N, T, M) + b
    cache = x, w, b, out
    return out, cache


def temporal_affine_backward(dout, cache):
    """Backward of temporal_affine_forward: returns dx (N, T, D), dw (D, M), db (M,)."""
    x, w, b, out = cache
    N, T, D = x.shape
    M = b.shape[0]
    dx = dout.reshape(N * T, M).dot(w.T).reshape(N, T, D)
    dw = x.reshape(N * T, D).T.dot(dout.reshape(N * T, M))
    db = dout.sum(axis=(0, 1))
    return dx, dw, db


def temporal_softmax_loss(x, y, mask, verbose=False):
    """Softmax cross-entropy at every step, summed over time, averaged over the batch.

    x (N, T, V) scores, y (N, T) the right word at each step, mask (N, T) bool: False
    where the step is padding and must not count. Returns the loss and dx (N, T, V).
    """
    N, T, V = x.shape

    x_flat = x.reshape(N * T, V)
    y_flat = y.reshape(N * T)
    mask_flat = mask.reshape(N * T)

    shifted = x_flat - np.max(x_flat, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    probs = np.exp(log_probs)
    loss = -np.sum(mask_flat * log_probs[np.arange(N * T), y_flat]) / N
    dx_flat = probs.copy()
    dx_flat[np.arange(N * T), y_flat] -= 1
    dx_flat /= N
    dx_flat *= mask_flat[:, None]

    if verbose:
        print("dx_flat: ", dx_flat.shape)

    dx = dx_flat.reshape(N, T, V)

    return loss, dx
