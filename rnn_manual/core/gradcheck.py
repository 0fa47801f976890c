"""Checking hand-written gradients: central finite differences, and how far apart two are.

    dL/dw_i ~ (L(w + eps e_i) - L(w - eps e_i)) / (2 eps)

The error of a central difference is about eps**2 |L'''| (truncation) plus
machine_eps |L| / eps (rounding of the two losses), so eps = 1e-6 gives some 1e-10 in
float64: close enough to catch any wrong term in a gradient, far too coarse to judge
rounding. For that the tests compare with PyTorch autograd instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.floating]


def numeric_gradient(loss: Callable[[], float], w: Array, eps: float = 1e-6) -> Array:
    """The central-difference gradient of loss() with respect to the array w.

    Each entry of w is moved by +eps and -eps in place, and put back. w may be an array
    of any library the models run on; the gradient is a NumPy array.
    """
    grad = np.empty(tuple(w.shape), dtype=np.float64)
    for i in np.ndindex(*w.shape):
        saved = float(w[i])  # a number, not a view of the entry (PyTorch's w[i] is one)
        w[i] = saved + eps
        up = loss()
        w[i] = saved - eps
        down = loss()
        w[i] = saved
        grad[i] = (up - down) / (2 * eps)
    return grad


def relative_error(a: ArrayLike, b: ArrayLike) -> float:
    """Normwise ||a - b|| / max(||a||, ||b||), in float64; 0 when both are zero, inf when
    either holds a NaN or an inf, or their shapes differ.

    Both are divided by their largest entry first: the ratio is unchanged, and the norms
    cannot overflow (a norm of entries near 1e154 or more would be inf, and inf / inf NaN,
    an error no bound rejects)."""
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a64.shape != b64.shape or not (np.all(np.isfinite(a64)) and np.all(np.isfinite(b64))):
        return math.inf
    largest = max(float(np.max(np.abs(a64), initial=0.0)), float(np.max(np.abs(b64), initial=0.0)))
    if largest == 0:
        return 0.0
    a64, b64 = a64 / largest, b64 / largest
    return float(np.linalg.norm(a64 - b64) / max(np.linalg.norm(a64), np.linalg.norm(b64)))
