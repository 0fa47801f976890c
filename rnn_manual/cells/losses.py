"""Losses on the sigmoid output layer: their value and dL/dz, z being the output logits.

Both are summed over time steps and outputs and averaged over the batch, so that a
batch of one sequence is exactly the tutorial's objective. They work on the arrays of any
library the models run on (see backend.py), and give the loss as a float64 scalar of that
library (a NumPy float64 is a Python float): reading it on the host is left to the caller,
so that a pass on a GPU need not wait for it (and can be captured as a CUDA graph).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from ..core.backend import namespace
from .activations import relu

Array = NDArray[np.floating]


def mse(z: Array, p: Array, y: Array) -> tuple[Array, Array]:
    """The tutorial's L = 0.5 * sum((p - y)**2) / B, with p = sigmoid(z).

    dL/dz = (p - y) * p * (1 - p) / B   (chain rule through the output sigmoid)
    """
    xp = namespace(p)
    batch = p.shape[1]
    error = p - y  # (T, B, O)
    loss = 0.5 * xp.astype(xp.sum(error * error), xp.float64) / batch
    # Grouped as the tutorial groups it: error * (p * (1 - p)).
    dz = error * (p * (1.0 - p))
    dz /= batch
    return loss, dz


def bce(z: Array, p: Array, y: Array) -> tuple[Array, Array]:
    """Binary cross-entropy on logits, L = sum(softplus(z) - y * z) / B.

    Computed as max(z, 0) + log1p(exp(-|z|)) - y * z, finite for any finite z.
    dL/dz = (sigmoid(z) - y) / B = (p - y) / B
    """
    xp = namespace(z)
    batch = p.shape[1]
    with np.errstate(under="ignore"):  # exp(-|z|) -> 0 for large |z| is exact enough
        per_element = relu(z) + xp.log1p(xp.exp(-xp.abs(z))) - y * z
    loss = xp.astype(xp.sum(per_element), xp.float64) / batch
    dz = p - y
    dz /= batch
    return loss, dz


Loss = Callable[[Array, Array, Array], tuple[Array, Array]]

#: name -> loss function (z, p, y) -> (loss, dL/dz)
LOSSES: dict[str, Loss] = {"mse": mse, "bce": bce}
