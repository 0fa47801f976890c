"""Manual gradients against autograd's, one row per gradient, each judged by its bound.

Used by `python -m rnn_torch check` and by the property tests, so that both judge alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from rnn_manual import RNN
from rnn_manual.core.backend import to_numpy
from rnn_manual.core.gradcheck import relative_error

from .compare import FLOAT64_BOUND, float32_allowed, max_abs_error
from .twin import Grads, Twin, manual_upstream_grads

Array = NDArray[np.floating]

#: What the gradients are of: a manual loss ("mse", "bce"), or "upstream", sum(V * p) for
#: random V, which sends a different signed gradient back from every output.
OBJECTIVES = ("mse", "bce", "upstream")


@dataclass
class Row:
    """One gradient (or the loss) compared: manual against torch in the same dtype."""

    name: str
    shape: tuple[int, ...]
    max_abs: float  # max |manual - torch|
    relative: float  # ||manual - torch|| / max(||manual||, ||torch||)
    limit: float  # the relative error allowed (float32: from the float64 truth)
    passed: bool


def both_gradients(
    model: RNN, twin: Twin, x: Array, target: Array, objective: str, h0: Array | None
) -> tuple[Grads, Grads]:
    """(manual, autograd) gradients of `objective`; a loss's value rides along as "loss"."""
    if objective == "upstream":
        return manual_upstream_grads(model, x, target, h0), twin.upstream_grads(x, target, h0)
    manual_loss, grads = model.loss_and_grads(x, target, objective, h0)
    manual = {name: to_numpy(g) for name, g in grads.items()}  # from whatever library
    auto_loss, auto = twin.loss_and_grads(x, target, objective, h0)
    dtype = manual["x"].dtype
    manual["loss"] = np.array(manual_loss, dtype=dtype)
    auto["loss"] = np.array(auto_loss, dtype=dtype)
    return manual, auto


def gradient_rows(
    model: RNN,
    x: Array,
    target: Array,
    objective: str = "mse",
    h0: Array | None = None,
    fused: bool = False,
) -> list[Row]:
    """Every gradient of `objective` (params, "x", "h0", and the loss) by hand and by autograd
    (on the device where the model's parameters are: the twin is made there).

    target: y (T, B, O) for a loss, V (T, B, O) for "upstream". fused: judge by torch.nn.RNN.
    float64 rows pass within FLOAT64_BOUND; float32 rows pass when the manual gradient is
    within float32_allowed of the float64 truth (autograd in float64 on the same weights);
    their limit is that allowance relative to the gradient's own norm.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    x, target = to_numpy(x), to_numpy(target)  # the judges take NumPy inputs
    h0 = None if h0 is None else to_numpy(h0)
    manual, auto = both_gradients(model, Twin.from_manual(model, fused), x, target, objective, h0)
    if model.dtype == np.float64:
        truth = None
    else:
        twin64 = Twin.from_manual(model, fused, dtype=torch.float64)
        x64, target64 = x.astype(np.float64), target.astype(np.float64)
        h0_64 = None if h0 is None else h0.astype(np.float64)
        _, truth = both_gradients(model, twin64, x64, target64, objective, h0_64)
    T, B, _ = x.shape
    width = model.input_size + model.hidden_size + model.output_size
    if truth is not None:
        total_norm = float(np.sqrt(sum(np.sum(g**2) for k, g in truth.items() if k != "loss")))
    rows = []
    for name, a in auto.items():
        m = manual[name]
        if m.shape != a.shape:
            raise ValueError(f"{name}: manual shape {m.shape}, torch shape {a.shape}")
        relative = relative_error(m, a)
        if truth is None:
            limit, passed = FLOAT64_BOUND, relative <= FLOAT64_BOUND
        else:
            exact = truth[name]  # (float64)
            norm = total_norm if name != "loss" else abs(float(exact))
            torch_error = float(np.linalg.norm(a - exact))
            allowed = float32_allowed(torch_error, norm, T, width, B)
            passed = float(np.linalg.norm(m - exact)) <= allowed
            limit = allowed / max(float(np.linalg.norm(exact)), np.finfo(np.float64).tiny)
        rows.append(Row(name, a.shape, max_abs_error(m, a), relative, limit, passed))
    return rows
