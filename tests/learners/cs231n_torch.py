"""The vanilla RNN of EECS 498-007 assignment 5, as a learner completes it: the CS231n
layer functions on PyTorch tensors, batch first, with the gradients written by hand."""

import torch


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """One tanh RNN step: x (N, D), prev_h (N, H), Wx (D, H), Wh (H, H), b (H,).

    Returns next_h (N, H) and a cache for rnn_step_backward.
    """
    next_h, cache = None, None
    # Replace "pass" statement with your code
    next_h = torch.tanh(x.mm(Wx) + prev_h.mm(Wh) + b)
    cache = (x, prev_h, Wx, Wh, next_h)
    # END OF YOUR CODE
    return next_h, cache


def rnn_step_backward(dnext_h, cache):
    """Backward of one step: returns dx, dprev_h, dWx, dWh, db."""
    dx, dprev_h, dWx, dWh, db = None, None, None, None, None
    # Replace "pass" statement with your code
    x, prev_h, Wx, Wh, next_h = cache
    dtanh = dnext_h * (1 - next_h**2)
    dx = dtanh.mm(Wx.t())
    dprev_h = dtanh.mm(Wh.t())
    dWx = x.t().mm(dtanh)
    dWh = prev_h.t().mm(dtanh)
    db = dtanh.sum(dim=0)
    # END OF YOUR CODE
    return dx, dprev_h, dWx, dWh, db


def rnn_forward(x, h0, Wx, Wh, b):
    """The RNN over whole sequences: x (N, T, D), h0 (N, H) -> h (N, T, H), cache."""
    h, cache = None, None
    # Replace "pass" statement with your code
    N, T, D = x.shape
    H = h0.shape[1]
    h = x.new_zeros((N, T, H))
    cache = []
    prev_h = h0
    for t in range(T):
        prev_h, cache_t = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)
        h[:, t] = prev_h
        cache.append(cache_t)
    # END OF YOUR CODE
    return h, cache


def rnn_backward(dh, cache):
    """Backward of rnn_forward; dh (N, T, H) is the upstream gradient of every h.

    Returns dx (N, T, D), dh0 (N, H), dWx (D, H), dWh (H, H), db (H,).
    """
    dx, dh0, dWx, dWh, db = None, None, None, None, None
    # Replace "pass" statement with your code
    N, T, H = dh.shape
    D = cache[0][0].shape[1]
    dx = dh.new_zeros((N, T, D))
    dWx = dh.new_zeros((D, H))
    dWh = dh.new_zeros((H, H))
    db = dh.new_zeros((H,))
    dprev_h = torch.zeros_like(dh[:, 0])
    for t in reversed(range(T)):
        dx_t, dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t] + dprev_h, cache[t])
        dx[:, t] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    dh0 = dprev_h
    # END OF YOUR CODE
    return dx, dh0, dWx, dWh, db
