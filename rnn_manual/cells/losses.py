"""Losses on an output layer (outputs.py): their value and dL/dz, z being the output logits.

mse and bce judge a sigmoid output, ce a softmax one (OUTPUT_OF). Each is fused with its
output layer: dL/dz is written in terms of p directly, not as dL/dp sent back through the
layer. All are summed over time steps and outputs and averaged over the batch, so that a
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


def ce(z: Array, p: Array, y: Array) -> tuple[Array, Array]:
    """Cross-entropy on softmax logits, L = -sum(y * log p) / B, each y_t a probability
    distribution over the O outputs (one-hot: the target's index alone).

    log p_o = z_o - logsumexp(z), logsumexp(z) = m + log(sum_k exp(z_k - m)), m = max_k z_k:
    finite for any finite z (outputs.py says why), where log(softmax(z)) underflows to
    log(0) = -inf for a logit far below the others. It is computed in float64 (the loss is
    returned in float64 anyway), so that float32 logits of any size, up to 3e38 apart, give a
    finite loss; outputs with y_o = 0 add nothing, even where log p_o is -inf.
    dL/dz = (p - y) / B   (as sum_o y_o = 1: min-char-rnn's dy[target] -= 1 for a one-hot y)
    """
    xp = namespace(z)
    batch = p.shape[1]
    logits = xp.astype(z, xp.float64)
    m = xp.max(logits, axis=-1, keepdims=True)
    with np.errstate(over="ignore", under="ignore"):  # exp(-large) -> 0 is exact enough
        log_p = logits - (m + xp.log(xp.sum(xp.exp(logits - m), axis=-1, keepdims=True)))
        loss = -xp.sum(y * xp.where(y > 0, log_p, 0.0)) / batch  # 0 * -inf never made
    dz = p - y
    dz /= batch
    return loss, dz


Loss = Callable[[Array, Array, Array], tuple[Array, Array]]

#: name -> loss function (z, p, y) -> (loss, dL/dz)
LOSSES: dict[str, Loss] = {"mse": mse, "bce": bce, "ce": ce}
#: name -> the output layer (outputs.OUTPUTS) whose probabilities p the loss judges
OUTPUT_OF: dict[str, str] = {"mse": "sigmoid", "bce": "sigmoid", "ce": "softmax"}


def losses_of(output: str) -> tuple[str, ...]:
    """The losses of an output layer, its default first: ("mse", "bce") or ("ce",)."""
    return tuple(name for name, judged in OUTPUT_OF.items() if judged == output)
