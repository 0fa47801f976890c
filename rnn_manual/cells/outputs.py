"""The output layers: the probabilities p_t from the logits z_t, and back.

    sigmoid   p_t = 1 / (1 + exp(-z_t)), each of the O outputs on its own (the adder's bit)
    softmax   p_t,o = exp(z_t,o - m) / sum_k exp(z_t,k - m), m = max_k z_t,k: one choice
              among the O outputs (min-char-rnn's next character)

Subtracting m changes nothing in exact arithmetic (it cancels between the numerator and
the sum) and keeps every exp at most 1, so a softmax of any finite logits is finite: the
largest term is exp(0) = 1, and the sum is at least 1.

`backward` turns dL/dp_t into dL/dz_t (what a loss that is not fused with its output, or
the upstream objective sum(V * p), sends back):

    sigmoid   dz = dp * p * (1 - p)
    softmax   dz = p * (dp - sum_o dp_o p_o)      (dp_o/dz_k = p_o (delta_ok - p_k))

Both work on the arrays of any library the models run on (see backend.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..core.backend import namespace, one_minus
from .activations import sigmoid

Array = NDArray[np.floating]


def softmax(z: Array) -> Array:
    """softmax over the last axis (the O outputs), finite for every finite z."""
    xp = namespace(z)
    # exp(-large) -> 0 is the correctly rounded answer, and z - max z -> -inf (logits further
    # apart than the dtype's range) gives it too.
    with np.errstate(over="ignore", under="ignore"):
        e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))  # every entry in [0, 1]
    e /= xp.sum(e, axis=-1, keepdims=True)  # the sum is at least 1: no 0 / 0
    return e


def sigmoid_backward(p: Array, dp: Array) -> Array:
    """dL/dz from dL/dp through p = sigmoid(z): dp * p * (1 - p)."""
    return dp * (p * one_minus(p))


def softmax_backward(p: Array, dp: Array) -> Array:
    """dL/dz from dL/dp through p = softmax(z): p * (dp - sum_o dp_o p_o)."""
    xp = namespace(p)
    return p * (dp - xp.sum(dp * p, axis=-1, keepdims=True))


@dataclass(frozen=True)
class Output:
    """An output layer: p from z, and dL/dz from p and dL/dp."""

    forward: Callable[[Array], Array]
    backward: Callable[[Array, Array], Array]
    #: Must each y_t sum to 1 over the outputs? (A softmax's p_t does, so its targets do:
    #: a distribution over the outputs, one-hot or not.)
    distributions: bool


#: name -> output layer; a model's `output` is one of these names
OUTPUTS: dict[str, Output] = {
    "sigmoid": Output(sigmoid, sigmoid_backward, distributions=False),
    "softmax": Output(softmax, softmax_backward, distributions=True),
}
