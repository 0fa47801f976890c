"""How far apart two sets of gradients are, how far apart they may honestly be, and the one
judge that applies those bounds to every cell's gradients (`judge`).

Errors are normwise: ||a - b|| / max(||a||, ||b||) over a whole gradient array, the
measure that does not blow up on the entries that happen to be near zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike, NDArray

from rnn_manual.core.gradcheck import relative_error

Array = NDArray[np.floating]
#: Gradients by the manual model's names (its parameters, "x", "h0", ...), maybe a "loss".
Grads = dict[str, Array]

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
#: A bound means something only where rounding alone moves a gradient far less than it: a
#: check judges a gradient only when ROUNDING_MARGIN times how far one ulp in every weight
#: moves it (rnn_torch.check.rounding_spread) is within its limit. The two sides round
#: differently at every step, not once; the margin covers that, and a chaotic network,
#: where an ulp moves the gradients by O(1), is refused instead of called wrong.
ROUNDING_MARGIN = 100
#: The largest float32 limit a check applies: past it a gradient a tenth off could pass for
#: rounding, and past 1 a zero gradient would. float32_allowed grows with T (n + B), so long
#: or wide float32 checks are refused; float64 judges them.
FLOAT32_LARGEST_LIMIT = 0.1


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

    total_norm: the norm of all the true gradients together (every parameter, x, h0, and c0
    for the LSTM).
    A gradient that is a sum of nearly cancelling terms (b_h = sum_t da_t, T * B terms,
    can be 1e-4 of them) keeps only the absolute accuracy of its terms, u times their size,
    not a relative one; so float32 rounding is measured against the gradients as a whole,
    whose size the terms share, not against the small sum left: float32_bound * total_norm.
    (The loss is a sum of terms of one sign, which does not cancel: `judge` passes its own
    size as total_norm.) How much a given sum cancels depends on the problem, not on the
    code, and PyTorch's float32 gradient suffers it equally, so 16 times torch's own
    distance from the truth, torch_error, is allowed on top.
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


@dataclass
class Row:
    """One gradient (or the loss) compared: manual against torch in the same dtype."""

    name: str
    shape: tuple[int, ...]
    max_abs: float  # max |manual - torch|
    relative: float  # ||manual - torch|| / max(||manual||, ||torch||)
    limit: float  # the relative error allowed (float32: from the float64 truth)
    passed: bool


def judge(
    manual: Grads, auto: Grads, truth: Grads | None, bits: int, width: int, batch: int
) -> list[Row]:
    """One row per gradient (and the loss, keyed "loss", when there is one): the manual one
    against autograd's in the same dtype. bits, width, batch: T, I + H + O and B.

    float64 (truth None): a row passes when its normwise relative error is within
    FLOAT64_BOUND. float32: truth holds autograd's float64 gradients of the same weights and
    inputs, and a row passes when ||manual - truth|| is within float32_allowed, measured
    against the norm of all the true gradients together; the loss, one sum of same-signed
    terms that does not cancel, against its own size. The row's limit is that allowance
    relative to the gradient's own norm.
    """
    if set(manual) != set(auto):
        raise ValueError(f"manual gradients {sorted(manual)}, torch gradients {sorted(auto)}")
    truth_norms = [] if truth is None else [np.sum(g**2) for k, g in truth.items() if k != "loss"]
    total_norm = float(np.sqrt(sum(truth_norms)))
    rows = []
    for name, a in auto.items():
        m = manual[name]
        if (m.shape, m.dtype) != (a.shape, a.dtype):
            raise ValueError(f"d{name}: manual {m.dtype} {m.shape}, torch {a.dtype} {a.shape}")
        relative = relative_error(m, a)
        if truth is None:
            limit, passed = FLOAT64_BOUND, relative <= FLOAT64_BOUND
        else:
            exact = truth[name]  # (float64)
            norm = abs(float(exact)) if name == "loss" else total_norm
            torch_error = float(np.linalg.norm(a - exact))
            allowed = float32_allowed(torch_error, norm, bits, width, batch)
            passed = float(np.linalg.norm(m - exact)) <= allowed
            limit = allowed / max(float(np.linalg.norm(exact)), np.finfo(np.float64).tiny)
        rows.append(Row(name, a.shape, max_abs_error(m, a), relative, limit, passed))
    return rows
