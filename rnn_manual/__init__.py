"""Backpropagation through time by hand, in NumPy: a recurrent network that learns to add."""

from . import reference
from .cells import CELLS
from .cells.gru import GRU
from .cells.losses import bce, ce, mse
from .cells.lstm import LSTM
from .cells.rnn import RNN, Trace
from .training.bits import (
    add_bits,
    addition_examples,
    all_pairs,
    decode,
    encode,
    random_addition_batch,
)
from .training.optim import SGD, Adagrad, Adam

__all__ = [
    "CELLS",
    "GRU",
    "LSTM",
    "RNN",
    "SGD",
    "Adagrad",
    "Adam",
    "Trace",
    "add_bits",
    "addition_examples",
    "all_pairs",
    "bce",
    "ce",
    "decode",
    "encode",
    "mse",
    "random_addition_batch",
    "reference",
]
