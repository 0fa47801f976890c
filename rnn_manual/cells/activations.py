"""Hidden-layer nonlinearities, each with its derivative taken from its output.

Backpropagation only ever needs f'(a) at pre-activations a whose output h = f(a) it
has already stored, so every derivative here is written in terms of h, as in the
tutorial's ``sigmoid_output_to_derivative``.

Each works on the arrays of any library the models run on (see backend.py) and writes its
result into `out` when one is given (an array of the input's shape and dtype).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from ..core.backend import namespace, one_minus

Array = NDArray[np.floating]


def sigmoid(a: Array, out: Array | None = None) -> Array:
    """sigmoid(a) = 1 / (1 + exp(-a)), finite and silent for every finite a.

    For a < -709 (float64) exp(-a) overflows to inf and the result is exactly 0, the
    correctly rounded answer; likewise exp(-a) underflows to 0 for large a and the
    result is 1. Neither is worth a warning.
    """
    xp = namespace(a)
    with np.errstate(over="ignore", under="ignore"):
        e = xp.exp(xp.negative(a, out=out), out=out)  # exp(-a), inf allowed
    e += 1.0
    return xp.reciprocal(e, out=e)  # 1 / (1 + exp(-a))


def sigmoid_derivative(h: Array, out: Array | None = None) -> Array:
    """sigmoid'(a) = h * (1 - h), where h = sigmoid(a)."""
    d = one_minus(h, out=out)  # 1 - h
    d *= h
    return d


def tanh(a: Array, out: Array | None = None) -> Array:
    """tanh(a); bounded, never overflows."""
    return namespace(a).tanh(a, out=out)


def tanh_derivative(h: Array, out: Array | None = None) -> Array:
    """tanh'(a) = 1 - h**2, where h = tanh(a)."""
    d = namespace(h).multiply(h, h, out=out)  # h**2
    return one_minus(d, out=d)  # 1 - h**2


def relu(a: Array, out: Array | None = None) -> Array:
    """relu(a) = max(a, 0), computed as a * (a > 0), which every library evaluates on its
    device without a round trip to the host (max(a, 0) can cost one in PyTorch, clip in
    CuPy through array-api-compat). Negative entries give -0.0, which equals 0."""
    return namespace(a).multiply(a, a > 0, out=out)


def relu_derivative(h: Array, out: Array | None = None) -> Array:
    """relu'(a) = 1 where h > 0, else 0 (also 0 at the kink a = 0, as PyTorch)."""
    positive = h > 0
    if out is None:
        return namespace(h).astype(positive, h.dtype)
    out[...] = positive  # True -> 1.0, False -> 0.0
    return out


Activation = tuple[Callable[..., Array], Callable[..., Array]]

#: name -> (f, f' from f's output); both write into `out` when it is given
ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": (sigmoid, sigmoid_derivative),
    "tanh": (tanh, tanh_derivative),
    "relu": (relu, relu_derivative),
}
