"""The equations, made fast: the RNN, LSTM and GRU cells, their activations and losses.

Each cell is the math of `rnn_manual/reference.py` (read that one first) with `out=`
buffers, stacked gates and the array-API namespace, so that it runs fast on NumPy and
unchanged on PyTorch or CuPy. The tests check every cell against the reference and
against PyTorch autograd.
"""
