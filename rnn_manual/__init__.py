"""Backpropagation through time by hand, in NumPy: a recurrent network that learns to add."""

from .bits import add_bits, addition_examples, all_pairs, decode, encode, random_addition_batch
from .gru import GRU
from .losses import bce, mse
from .lstm import LSTM
from .optim import SGD, Adam
from .rnn import RNN, Trace

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "SGD",
    "Adam",
    "Trace",
    "add_bits",
    "addition_examples",
    "all_pairs",
    "bce",
    "decode",
    "encode",
    "mse",
    "random_addition_batch",
]
