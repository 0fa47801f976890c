#!/usr/bin/env python
# coding: utf-8

# # Building your Recurrent Neural Network - Step by Step
#
# (exported from the notebook with "Download as .py"; markdown cells become comments)

import numpy as np
from rnn_utils import *

# ## 1 - Forward propagation for the basic Recurrent Neural Network
#
# ### 1.1 - RNN cell


# GRADED FUNCTION: rnn_cell_forward


def rnn_cell_forward(xt, a_prev, parameters):
    """
    One step of the basic RNN.

    xt -- input at timestep "t", shape (n_x, m)
    a_prev -- hidden state at timestep "t-1", shape (n_a, m)
    parameters -- python dictionary with Wax (n_a, n_x), Waa (n_a, n_a), Wya (n_y, n_a),
                  ba (n_a, 1), by (n_y, 1)

    Returns a_next (n_a, m), yt_pred (n_y, m), and cache = (a_next, a_prev, xt, parameters)
    """
    # unpack the weights
    Wax = parameters["Wax"]
    Waa = parameters["Waa"]
    Wya = parameters["Wya"]
    ba = parameters["ba"]
    by = parameters["by"]

    ### START CODE HERE ###
    a_next = np.tanh(np.dot(Wax, xt) + np.dot(Waa, a_prev) + ba)
    yt_pred = softmax(np.dot(Wya, a_next) + by)
    ### END CODE HERE ###

    # what rnn_cell_backward will need
    cache = (a_next, a_prev, xt, parameters)

    return a_next, yt_pred, cache


# ### 1.2 - RNN forward pass


# GRADED FUNCTION: rnn_forward


def rnn_forward(x, a0, parameters):
    """
    The RNN over the whole sequence.

    x -- input data for every time-step, shape (n_x, m, T_x)
    a0 -- initial hidden state, shape (n_a, m)

    Returns a (n_a, m, T_x), y_pred (n_y, m, T_x) and caches = (list of caches, x)
    """
    # one cache per time step
    caches = []

    # sizes
    n_x, m, T_x = x.shape
    n_y, n_a = parameters["Wya"].shape

    ### START CODE HERE ###
    a = np.zeros((n_a, m, T_x))
    y_pred = np.zeros((n_y, m, T_x))

    a_next = a0

    for t in range(T_x):
        xt = x[:, :, t]
        a_next, yt_pred, cache = rnn_cell_forward(xt, a_next, parameters)
        a[:, :, t] = a_next
        y_pred[:, :, t] = yt_pred
        caches.append(cache)
    ### END CODE HERE ###

    # keep x alongside the step caches
    caches = (caches, x)

    return a, y_pred, caches


# ## 2 - Long Short-Term Memory (LSTM) network
#
# ### 2.1 - LSTM cell


# GRADED FUNCTION: lstm_cell_forward


def lstm_cell_forward(xt, a_prev, c_prev, parameters):
    """
    One step of the LSTM.

    xt -- (n_x, m); a_prev, c_prev -- (n_a, m)
    parameters -- Wf, Wi, Wc, Wo (n_a, n_a + n_x), bf, bi, bc, bo (n_a, 1),
                  Wy (n_y, n_a), by (n_y, 1)

    Returns a_next, c_next (n_a, m), yt_pred (n_y, m) and
    cache = (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)
    """
    # unpack the weights
    Wf = parameters["Wf"]
    bf = parameters["bf"]
    Wi = parameters["Wi"]
    bi = parameters["bi"]
    Wc = parameters["Wc"]
    bc = parameters["bc"]
    Wo = parameters["Wo"]
    bo = parameters["bo"]
    Wy = parameters["Wy"]
    by = parameters["by"]

    # sizes
    n_x, m = xt.shape
    n_y, n_a = Wy.shape

    ### START CODE HERE ###
    # stack the previous hidden state on top of the input
    concat = np.concatenate((a_prev, xt), axis=0)

    # gates, candidate, new cell state, new hidden state
    ft = sigmoid(np.dot(Wf, concat) + bf)
    it = sigmoid(np.dot(Wi, concat) + bi)
    cct = np.tanh(np.dot(Wc, concat) + bc)
    c_next = ft * c_prev + it * cct
    ot = sigmoid(np.dot(Wo, concat) + bo)
    a_next = ot * np.tanh(c_next)

    # output of the cell
    yt_pred = softmax(np.dot(Wy, a_next) + by)
    ### END CODE HERE ###

    # what lstm_cell_backward will need
    cache = (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)

    return a_next, c_next, yt_pred, cache


# ### 2.2 - Forward pass for LSTM


# GRADED FUNCTION: lstm_forward


def lstm_forward(x, a0, parameters):
    """
    The LSTM over the whole sequence, starting from a zero cell state.

    x -- (n_x, m, T_x); a0 -- (n_a, m)

    Returns a (n_a, m, T_x), y (n_y, m, T_x), c (n_a, m, T_x) and caches = (list, x)
    """
    # one cache per time step
    caches = []

    Wy = parameters["Wy"]
    ### START CODE HERE ###
    # sizes
    n_x, m, T_x = x.shape
    n_y, n_a = Wy.shape

    # outputs of every step
    a = np.zeros((n_a, m, T_x))
    c = np.zeros((n_a, m, T_x))
    y = np.zeros((n_y, m, T_x))

    # start from a0 and a zero cell state
    a_next = a0
    c_next = np.zeros(a_next.shape)

    for t in range(T_x):
        xt = x[:, :, t]
        a_next, c_next, yt, cache = lstm_cell_forward(xt, a_next, c_next, parameters)
        a[:, :, t] = a_next
        c[:, :, t] = c_next
        y[:, :, t] = yt
        caches.append(cache)
    ### END CODE HERE ###

    # keep x alongside the step caches
    caches = (caches, x)

    return a, y, c, caches


# ## 3 - Backpropagation in recurrent neural networks (OPTIONAL / UNGRADED)
#
# ### 3.1 - Basic RNN backward pass


def rnn_cell_backward(da_next, cache):
    """
    Backward of one basic RNN step.

    da_next -- gradient of loss with respect to the next hidden state, (n_a, m)
    cache -- output of rnn_cell_forward()

    Returns gradients -- dict with dxt (n_x, m), da_prev (n_a, m), dWax (n_a, n_x),
                         dWaa (n_a, n_a), dba (n_a, 1)
    """
    (a_next, a_prev, xt, parameters) = cache

    # weights
    Wax = parameters["Wax"]
    Waa = parameters["Waa"]
    Wya = parameters["Wya"]
    ba = parameters["ba"]
    by = parameters["by"]

    ### START CODE HERE ###
    # through the tanh: d tanh(z) = 1 - tanh(z)^2
    dtanh = (1 - a_next**2) * da_next

    # input side
    dxt = np.dot(Wax.T, dtanh)
    dWax = np.dot(dtanh, xt.T)

    # recurrent side
    da_prev = np.dot(Waa.T, dtanh)
    dWaa = np.dot(dtanh, a_prev.T)

    # bias: sum over the examples
    dba = np.sum(dtanh, axis=1, keepdims=True)
    ### END CODE HERE ###

    gradients = {"dxt": dxt, "da_prev": da_prev, "dWax": dWax, "dWaa": dWaa, "dba": dba}

    return gradients


def rnn_backward(da, caches):
    """
    Backward of the RNN over the whole sequence.

    da -- upstream gradients of all hidden states, (n_a, m, T_x)
    caches -- tuple containing information from the forward pass (rnn_forward)

    Returns gradients -- dict with dx (n_x, m, T_x), da0 (n_a, m), dWax, dWaa, dba
    """
    ### START CODE HERE ###
    # unpack; the first step cache gives the sizes
    (caches, x) = caches
    (a1, a0, x1, parameters) = caches[0]

    n_a, m, T_x = da.shape
    n_x, m = x1.shape

    # accumulators
    dx = np.zeros((n_x, m, T_x))
    dWax = np.zeros((n_a, n_x))
    dWaa = np.zeros((n_a, n_a))
    dba = np.zeros((n_a, 1))
    da0 = np.zeros((n_a, m))
    da_prevt = np.zeros((n_a, m))

    # last step first
    for t in reversed(range(T_x)):
        # a_t gets da[:, :, t] from above and da_prevt from step t + 1
        gradients = rnn_cell_backward(da[:, :, t] + da_prevt, caches[t])
        dxt, da_prevt, dWaxt, dWaat, dbat = (
            gradients["dxt"],
            gradients["da_prev"],
            gradients["dWax"],
            gradients["dWaa"],
            gradients["dba"],
        )
        # the weights are shared across time: add up
        dx[:, :, t] = dxt
        dWax += dWaxt
        dWaa += dWaat
        dba += dbat

    da0 = da_prevt
    ### END CODE HERE ###

    gradients = {"dx": dx, "da0": da0, "dWax": dWax, "dWaa": dWaa, "dba": dba}

    return gradients


# ### 3.2 - LSTM backward pass


def lstm_cell_backward(da_next, dc_next, cache):
    """
    Backward of one LSTM step.

    da_next, dc_next -- gradients of the next hidden and cell states, (n_a, m)
    cache -- output of lstm_cell_forward()

    Returns gradients -- dict with dxt (n_x, m), da_prev (n_a, m), dc_prev (n_a, m),
                         dWf, dWi, dWc, dWo (n_a, n_a + n_x), dbf, dbi, dbc, dbo (n_a, 1)
    """
    (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters) = cache

    ### START CODE HERE ###
    n_x, m = xt.shape
    n_a, m = a_next.shape

    # gradients of the gates' pre-activations
    dot = da_next * np.tanh(c_next) * ot * (1 - ot)
    dcct = (dc_next * it + ot * (1 - np.tanh(c_next) ** 2) * it * da_next) * (1 - cct**2)
    dit = (dc_next * cct + ot * (1 - np.tanh(c_next) ** 2) * cct * da_next) * it * (1 - it)
    dft = (dc_next * c_prev + ot * (1 - np.tanh(c_next) ** 2) * c_prev * da_next) * ft * (1 - ft)

    # weights and biases
    concat = np.concatenate((a_prev, xt), axis=0)
    dWf = np.dot(dft, concat.T)
    dWi = np.dot(dit, concat.T)
    dWc = np.dot(dcct, concat.T)
    dWo = np.dot(dot, concat.T)
    dbf = np.sum(dft, axis=1, keepdims=True)
    dbi = np.sum(dit, axis=1, keepdims=True)
    dbc = np.sum(dcct, axis=1, keepdims=True)
    dbo = np.sum(dot, axis=1, keepdims=True)

    # back into [a_prev; xt] and c_prev
    dconcat = (
        np.dot(parameters["Wf"].T, dft)
        + np.dot(parameters["Wi"].T, dit)
        + np.dot(parameters["Wc"].T, dcct)
        + np.dot(parameters["Wo"].T, dot)
    )
    da_prev = dconcat[:n_a, :]
    dxt = dconcat[n_a:, :]
    dc_prev = dc_next * ft + ot * (1 - np.tanh(c_next) ** 2) * ft * da_next
    ### END CODE HERE ###

    gradients = {
        "dxt": dxt,
        "da_prev": da_prev,
        "dc_prev": dc_prev,
        "dWf": dWf,
        "dbf": dbf,
        "dWi": dWi,
        "dbi": dbi,
        "dWc": dWc,
        "dbc": dbc,
        "dWo": dWo,
        "dbo": dbo,
    }

    return gradients


def lstm_backward(da, caches):
    """
    Backward of the LSTM over the whole sequence.

    da -- upstream gradients of all hidden states, (n_a, m, T_x)
    caches -- cache storing information from the forward pass (lstm_forward)

    Returns gradients -- dict with dx (n_x, m, T_x), da0 (n_a, m), dWf, dWi, dWc, dWo
                         (n_a, n_a + n_x), dbf, dbi, dbc, dbo (n_a, 1)
    """
    # unpack; the first step cache gives the sizes
    (caches, x) = caches
    (a1, c1, a0, c0, f1, i1, cc1, o1, x1, parameters) = caches[0]

    ### START CODE HERE ###
    n_a, m, T_x = da.shape
    n_x, m = x1.shape

    # accumulators
    dx = np.zeros((n_x, m, T_x))
    da0 = np.zeros((n_a, m))
    da_prevt = np.zeros((n_a, m))
    dc_prevt = np.zeros((n_a, m))
    dWf = np.zeros((n_a, n_a + n_x))
    dWi = np.zeros((n_a, n_a + n_x))
    dWc = np.zeros((n_a, n_a + n_x))
    dWo = np.zeros((n_a, n_a + n_x))
    dbf = np.zeros((n_a, 1))
    dbi = np.zeros((n_a, 1))
    dbc = np.zeros((n_a, 1))
    dbo = np.zeros((n_a, 1))

    # last step first
    for t in reversed(range(T_x)):
        # carry both the hidden and the cell state gradient to the step before
        gradients = lstm_cell_backward(da[:, :, t] + da_prevt, dc_prevt, caches[t])
        da_prevt = gradients["da_prev"]
        dc_prevt = gradients["dc_prev"]
        dx[:, :, t] = gradients["dxt"]
        dWf += gradients["dWf"]
        dWi += gradients["dWi"]
        dWc += gradients["dWc"]
        dWo += gradients["dWo"]
        dbf += gradients["dbf"]
        dbi += gradients["dbi"]
        dbc += gradients["dbc"]
        dbo += gradients["dbo"]
    da0 = gradients["da_prev"]
    ### END CODE HERE ###

    gradients = {
        "dx": dx,
        "da0": da0,
        "dWf": dWf,
        "dbf": dbf,
        "dWi": dWi,
        "dbi": dbi,
        "dWc": dWc,
        "dbc": dbc,
        "dWo": dWo,
        "dbo": dbo,
    }

    return gradients


# In[ ]:


# quick look at the forward functions
np.random.seed(1)
n_x, n_a, n_y, m, T_x = 3, 5, 2, 4, 6
x_check = np.random.randn(n_x, m, T_x)
a0_check = np.random.randn(n_a, m)
params_rnn = {
    "Wax": np.random.randn(n_a, n_x),
    "Waa": np.random.randn(n_a, n_a),
    "Wya": np.random.randn(n_y, n_a),
    "ba": np.random.randn(n_a, 1),
    "by": np.random.randn(n_y, 1),
}
a_check, y_check, caches_check = rnn_forward(x_check, a0_check, params_rnn)
print("a.shape =", a_check.shape, " y_pred.shape =", y_check.shape)
print("a[1][2] =", a_check[1][2])
print("y_pred columns sum to 1:", np.allclose(y_check.sum(axis=0), 1))


# In[ ]:


# my own check of rnn_backward
da_check = np.random.randn(n_a, m, T_x)
grads_check = rnn_backward(da_check, caches_check)
for key, value in grads_check.items():
    print(key, value.shape)
print('gradients["dWaa"][1][2] =', grads_check["dWaa"][1][2])


# In[ ]:


np.random.seed(2)
params_lstm = {}
for gate in "fico":
    params_lstm["W" + gate] = np.random.randn(n_a, n_a + n_x)
    params_lstm["b" + gate] = np.random.randn(n_a, 1)
params_lstm["Wy"] = np.random.randn(n_y, n_a)
params_lstm["by"] = np.random.randn(n_y, 1)
a_check, y_check, c_check, caches_check = lstm_forward(x_check, a0_check, params_lstm)
print("a.shape =", a_check.shape, " c.shape =", c_check.shape, " y.shape =", y_check.shape)
print("c[2][1] =", c_check[2][1])


# In[ ]:


grads_check = lstm_backward(da_check, caches_check)
for key, value in grads_check.items():
    print(key, value.shape)
print('gradients["dx"][1][2] =', grads_check["dx"][1][2])
print('gradients["da0"][2][3] =', grads_check["da0"][2][3])
print('gradients["dbf"].shape =', grads_check["dbf"].shape)
