"""A manual model's gradients against autograd's, one row per gradient, judged by
rnn_torch.compare.judge: the one check path for every cell.

Used by `python -m rnn_torch check` and by the property tests, so that both judge alike.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import NDArray

from rnn_manual.cells import Cell
from rnn_manual.cells.losses import LOSSES
from rnn_manual.core.backend import to_numpy
from rnn_manual.core.gradcheck import relative_error

from .compare import FLOAT32_LARGEST_LIMIT, ROUNDING_MARGIN, Grads, Row, judge
from .twin import Twin, manual_upstream_grads

Array = NDArray[np.floating]

#: Random directions rounding_spread tries: one may by chance barely move a gradient that
#: rounding moves far more (the change's size varies tenfold between draws near where the
#: network turns chaotic); the largest of three rarely falls short.
SPREAD_DRAWS = 3
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


def float64_inputs(*arrays: Array | None) -> list[Array | None]:
    """NumPy float64 copies of arrays of any library (None stays None)."""
    return [None if a is None else to_numpy(a).astype(np.float64) for a in arrays]


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
        x64, target64, h0_64, c0_64 = float64_inputs(x, target, h0, c0)
        assert x64 is not None and target64 is not None
        truth = autograd_gradients(twin64, x64, target64, objective, h0=h0_64, c0=c0_64)
    T, B, _ = x.shape
    width = model.input_size + model.hidden_size + model.output_size
    return judge(manual, auto, truth, T, width, B)


def judged_rows(
    model: Cell,
    x: Array,
    target: Array,
    objective: str = "mse",
    *,
    h0: Array | None = None,
    c0: Array | None = None,
    fused: bool = False,
) -> tuple[list[Row], dict[str, float]]:
    """gradient_rows, and how far rounding alone moves each gradient (rounding_spread)."""
    rows = gradient_rows(model, x, target, objective, h0=h0, c0=c0, fused=fused)
    return rows, rounding_spread(model, x, target, objective, h0=h0, c0=c0)


def moved_by_an_ulp(params: dict[str, Array], draw: int) -> dict[str, Array]:
    """NumPy copies of `params`, each entry moved by one ulp of its dtype, up or down at
    random (draw: the seed, so that a check gives the same verdict every run)."""
    rng = np.random.default_rng(draw)
    moved = {}
    for name, w in params.items():
        w = to_numpy(w)
        towards = np.where(rng.random(w.shape) < 0.5, np.inf, -np.inf).astype(w.dtype)
        moved[name] = np.nextafter(w, towards)
    return moved


def rounding_spread(
    model: Cell,
    x: Array,
    target: Array,
    objective: str,
    *,
    h0: Array | None = None,
    c0: Array | None = None,
) -> dict[str, float]:
    """How far rounding alone moves each gradient (and the loss) of `model`: the largest
    normwise relative change in autograd's float64 gradients when every weight moves by one
    ulp of the model's dtype, over SPREAD_DRAWS random directions (moved_by_an_ulp); inf
    where a pass overflows. By the fused torch layer where there is one (fast; the sigmoid
    RNN has none).

    Autograd alone measures it, never the manual model: whether a network can be judged
    must not depend on the code being judged.
    """
    twin = Twin.from_manual(model, model.activation != "sigmoid", dtype=torch.float64)
    x64, target64, h0_64, c0_64 = float64_inputs(x, target, h0, c0)
    assert x64 is not None and target64 is not None
    before = autograd_gradients(twin, x64, target64, objective, h0=h0_64, c0=c0_64)
    spread = dict.fromkeys(before, 0.0)
    for draw in range(SPREAD_DRAWS):
        twin.load_manual(moved_by_an_ulp(model.params, draw))
        after = autograd_gradients(twin, x64, target64, objective, h0=h0_64, c0=c0_64)
        for name, g in before.items():
            spread[name] = max(spread[name], relative_error(after[name], g))
    return spread


def overflows(model: Cell, x: Array, *, h0: Array | None = None, c0: Array | None = None) -> bool:
    """Whether torch's forward pass over x, in the model's dtype, overflows (logits that are
    not all finite): a network too large to judge, not a wrong one. By the fused layer
    where torch has one (one call, not T), as the sigmoid RNN has not."""
    twin = Twin.from_manual(model, fused=model.activation != "sigmoid")
    x_t, h0_t, c0_t = (
        None if a is None else torch.tensor(to_numpy(a), device=twin.device) for a in (x, h0, c0)
    )
    assert x_t is not None
    with torch.no_grad():
        _, z, _ = twin.run(x_t, h0_t, c0_t)
    return not bool(torch.isfinite(z).all())


def unjudged(rows: list[Row], spread: dict[str, float]) -> str | None:
    """Why `rows` cannot be judged honestly, or None when they can: a gradient that rounding
    alone (`spread`, from rounding_spread) moves by more than its limit / ROUNDING_MARGIN
    (a wrong gradient could not be told from rounding, and a right one could be called
    wrong), or a limit past FLOAT32_LARGEST_LIMIT (the check could hardly fail)."""
    for row in rows:
        name = "the loss" if row.name == "loss" else f"d{row.name}"
        if not (math.isfinite(spread[row.name]) and math.isfinite(row.limit)):
            return f"autograd's own {name} is not finite (its pass overflows)"
        if not row.limit <= FLOAT32_LARGEST_LIMIT:
            return (
                f"in float32, rounding alone may move {name} by {share(row.limit)} of its size "
                f"(more than {share(FLOAT32_LARGEST_LIMIT)}), so a wrong gradient could pass"
            )
        if not ROUNDING_MARGIN * spread[row.name] <= row.limit:
            return (
                f"one ulp in the weights moves {name} by {share(spread[row.name])}, too near "
                f"its limit, {share(row.limit)}, to tell a wrong gradient from rounding"
            )
    return None


def share(fraction: float) -> str:
    """A relative size for a message: 180% or 3e-11."""
    return f"{fraction:.0%}" if fraction >= 0.01 else f"{fraction:.0e}"
