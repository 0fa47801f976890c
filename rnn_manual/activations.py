"""Hidden-layer nonlinearities, each with its derivative taken from its output.

Backpropagation only ever needs f'(a) at pre-activations a whose output h = f(a) it
has already stored, so every derivative here is written in terms of h, as in the
tutorial's ``sigmoid_output_to_derivative``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]


def sigmoid(a: Array, out: Array | None = None) -> Array:
    """sigmoid(a) = 1 / (1 + exp(-a)), finite and silent for every finite a.

    For a < -709 (float64) exp(-a) overflows to inf and the result is exactly 0, the
    correctly rounded answer; likewise exp(-a) underflows to 0 for large a and the
    result is 1. Neither is worth a warning.
    """
    with np.errstate(over="ignore", under="ignore"):
        e = np.exp(np.negative(a, out=out), out=out)  # exp(-a), inf allowed
    e += 1.0
    return np.reciprocal(e, out=e)  # 1 / (1 + exp(-a))


def sigmoid_derivative(h: Array, out: Array | None = None) -> Array:
    """sigmoid'(a) = h * (1 - h), where h = sigmoid(a)."""
    d = np.subtract(1.0, h, out=out)  # 1 - h
    d *= h
    return d


def tanh(a: Array, out: Array | None = None) -> Array:
    """tanh(a); bounded, never overflows."""
    return np.tanh(a, out=out)


def tanh_derivative(h: Array, out: Array | None = None) -> Array:
    """tanh'(a) = 1 - h**2, where h = tanh(a)."""
    d = np.multiply(h, h, out=out)  # h**2
    return np.subtract(1.0, d, out=d)


def relu(a: Array, out: Array | None = None) -> Array:
    """relu(a) = max(a, 0)."""
    return np.maximum(a, 0.0, out=out)


def relu_derivative(h: Array, out: Array | None = None) -> Array:
    """relu'(a) = 1 where h > 0, else 0 (also 0 at the kink a = 0, as PyTorch)."""
    return np.heaviside(h, 0.0, out=out)  # 1 for h > 0, the second argument at h = 0


Activation = tuple[Callable[..., Array], Callable[..., Array]]

#: name -> (f, f' from f's output); both write into `out` when it is given
ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": (sigmoid, sigmoid_derivative),
    "tanh": (tanh, tanh_derivative),
    "relu": (relu, relu_derivative),
}
