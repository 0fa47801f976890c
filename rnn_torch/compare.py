"""How far apart two sets of gradients are, and how far apart they may honestly be.

Errors are normwise: ||a - b|| / max(||a||, ||b||) over a whole gradient array, the
measure that does not blow up on the entries that happen to be near zero.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike, NDArray

Array = NDArray[np.floating]

U32 = float(np.finfo(np.float32).eps) / 2  # float32 unit roundoff, 2**-24 ~ 6e-8

#: float64 bound on the normwise relative error between manual and autograd gradients.
#: Rounding alone: both sides evaluate the same sums in different orders; a dot product of
#: n terms is off by at most ~n u (Higham; u = 2**-53 ~ 1.1e-16), BPTT chains T such steps
#: (n = I + H + O) and the weight gradients sum T * B terms. With the recurrence's gain near
#: 1 the per-step errors add rather than multiply, so at the largest tested size (T 64,
#: n + B <= 88) the worst case is ~T (n + B) u ~ 6e-13, and typically ~1e-15. 1e-10 leaves
#: a factor of ~100 for cancellation in those sums, and is ~1e9 times smaller than the
#: error of a wrong term (a dropped or shifted term is O(1) relative).
FLOAT64_BOUND = 1e-10


def float32_bound(bits: int, width: int, batch: int) -> float:
    """Normwise relative bound for float32 results without cancellation (hidden states,
    outputs, trained weights): the worst case T (n + B) u of FLOAT64_BOUND's argument with
    u = 2**-24, times 2 (both sides round) and 8 (the sigmoid/tanh of two libraries, each a
    few ulps). T 8, n 19, B 4 (the tutorial's adder): 1.4e-4; T 64, n 72, B 16: 5e-3."""
    return 16 * bits * (width + batch) * U32


def float32_allowed(
    torch_error: float, total_norm: float, bits: int, width: int, batch: int
) -> float:
    """How far (in norm) one float32 manual gradient may be from the float64 truth.

    total_norm: the norm of all the true gradients together (every parameter, x and h0).
    A gradient that is a sum of nearly cancelling terms (b_h = sum_t da_t, T * B terms,
    can be 1e-4 of them) keeps only the absolute accuracy of its terms, u times their size,
    not a relative one; so float32 rounding is measured against the whole gradient, whose
    size the terms share: float32_bound * total_norm. How much a given sum cancels depends
    on the problem, not on the code, and PyTorch's float32 gradient suffers it equally, so 16
    times torch's own distance from the truth, torch_error, is allowed on top.
    """
    return float32_bound(bits, width, batch) * total_norm + 16 * torch_error


def bound(dtype: DTypeLike, bits: int, width: int, batch: int) -> float:
    """The normwise relative error allowed between results computed in `dtype`, where
    no sum cancels (for gradients in float32 see float32_allowed)."""
    if np.dtype(dtype) == np.float64:
        return FLOAT64_BOUND
    return float32_bound(bits, width, batch)


def max_abs_error(a: Array, b: Array) -> float:
    """The largest entrywise |a - b|, in float64."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(np.abs(diff).max(initial=0.0))
