"""A manual model's gradients against autograd's, one row per gradient, judged by
rnn_torch.compare.judge: the one check path for every cell.

Used by `python -m rnn_torch check` and by the property tests, so that both judge alike.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray

from rnn_manual.cells import Cell
from rnn_manual.cells.losses import LOSSES
from rnn_manual.core.backend import to_numpy

from .compare import Grads, Row, judge
from .twin import Twin, manual_upstream_grads

Array = NDArray[np.floating]

#: What the gradients are of: a manual loss ("mse", "bce", "ce"), or "upstream", sum(V * p)
#: for random V, which sends a different signed gradient back from every output, through
#: the model's output layer.
OBJECTIVES = (*LOSSES, "upstream")


def manual_gradients(
    model: Cell,
    x: Array,
    target: Array,
    objective: str,
    *,
    h0: Array | None = None,
    c0: Array | None = None,
) -> Grads:
    """The manual model's gradients of `objective`, as NumPy arrays; a loss rides along as
    "loss"."""
    if objective == "upstream":
        return manual_upstream_grads(model, x, target, h0=h0, c0=c0)
    loss, grads = model.loss_and_grads(x, target, objective, h0, c0)
    manual = {name: to_numpy(g) for name, g in grads.items()}  # from whatever library
    manual["loss"] = np.array(loss, dtype=manual["x"].dtype)
    return manual


def autograd_gradients(
    twin: Twin,
    x: Array,
    target: Array,
    objective: str,
    *,
    h0: Array | None = None,
    c0: Array | None = None,
) -> Grads:
    """The twin's gradients of `objective`, by autograd; a loss rides along as "loss"."""
    if objective == "upstream":
        return twin.upstream_grads(x, target, h0=h0, c0=c0)
    loss, auto = twin.loss_and_grads(x, target, loss=objective, h0=h0, c0=c0)
    auto["loss"] = np.array(loss, dtype=auto["x"].dtype)
    return auto


def gradient_rows(
    model: Cell,
    x: Array,
    target: Array,
    objective: str = "mse",
    *,
    h0: Array | None = None,
    c0: Array | None = None,
    fused: bool = False,
) -> list[Row]:
    """Every gradient of `objective` (params, "x", "h0", "c0" for the LSTM, and a loss) by
    hand and by autograd (on the device where the model's parameters are: the twin is made
    there), judged by rnn_torch.compare.judge; in float32 against the float64 truth,
    autograd in float64 on the same weights.

    target: y (T, B, O) for a loss, V (T, B, O) for "upstream". h0, c0: the initial states
    (None: zeros; c0 the LSTM's only, refused for the others as the manual model refuses it).
    fused: judge by the whole-sequence torch layer (nn.RNN, nn.LSTM, nn.GRU).
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    x, target = to_numpy(x), to_numpy(target)  # the judges take NumPy inputs
    h0 = None if h0 is None else to_numpy(h0)
    c0 = None if c0 is None else to_numpy(c0)
    manual = manual_gradients(model, x, target, objective, h0=h0, c0=c0)
    twin = Twin.from_manual(model, fused)
    auto = autograd_gradients(twin, x, target, objective, h0=h0, c0=c0)
    truth = None
    if model.dtype != np.float64:
        twin64 = Twin.from_manual(model, fused, dtype=torch.float64)
        x64, target64 = x.astype(np.float64), target.astype(np.float64)
        h0_64, c0_64 = (None if s is None else s.astype(np.float64) for s in (h0, c0))
        truth = autograd_gradients(twin64, x64, target64, objective, h0=h0_64, c0=c0_64)
    T, B, _ = x.shape
    width = model.input_size + model.hidden_size + model.output_size
    return judge(manual, auto, truth, T, width, B)
