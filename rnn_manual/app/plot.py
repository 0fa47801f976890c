"""Figures of a trained adder: how it learned, what its hidden units hold, how gradients fade.

matplotlib is an optional extra (`pip install 'rnn-manual[plot]'`). It is imported only
when a figure is drawn, so the rest of the package needs NumPy alone. Figures are drawn
with matplotlib's object interface (no pyplot, no global backend) and written as PNG.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..cells.rnn import RNN
from ..training.bits import addition_examples, encode, random_addition_batch
from ..training.train import History, exact_match

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Array = NDArray[np.floating]

#: The addition drawn in the heatmap and beside the carry unit: 15-bit operands whose
#: carries come in runs of one to four bits.
EXAMPLE = (8017, 15443)
#: Random 16-bit sums on which each hidden unit is compared with the carry.
CARRY_SUMS, CARRY_BITS = 1000, 16
#: Sums, and their length, along which the gradient is followed back through time.
GRADIENT_SUMS, GRADIENT_BITS = 64, 128

FIGURES = ("training_curve.png", "hidden_heatmap.png", "carry_unit.png", "gradient_flow.png")


class MatplotlibMissing(ImportError):
    """matplotlib, needed only for figures, is not installed."""


def figure(**kwargs: object) -> Figure:
    """A new matplotlib Figure, or MatplotlibMissing saying how to install it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MatplotlibMissing(
            "plotting needs matplotlib: pip install 'rnn-manual[plot]'"
        ) from None
    return Figure(layout="constrained", **kwargs)  # type: ignore[arg-type]


def save_png(fig: Figure, path: Path) -> None:
    """Write `fig` to `path` as PNG, whole or not at all (temporary file, then rename)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=110)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------------------
# What the figures show, computed with NumPy alone.


def carry_bits(x: Array) -> NDArray[np.uint8]:
    """The carry out of every bit position of the sums whose operand bits are x: (T, B, 2).

    Returns (T, B): carry[t] = 1 when at least two of a_t, b_t and carry[t-1] are 1.
    """
    a, b = (x[..., 0] > 0.5).astype(np.uint8), (x[..., 1] > 0.5).astype(np.uint8)
    carry = np.zeros(a.shape, dtype=np.uint8)  # (T, B)
    c = np.zeros(a.shape[1], dtype=np.uint8)
    for t in range(a.shape[0]):
        c = (a[t] + b[t] + c) >> 1  # c_t = (a_t + b_t + c_{t-1}) // 2
        carry[t] = c
    return carry


def correlations(h: Array, target: NDArray[np.generic]) -> NDArray[np.float64]:
    """Pearson r of each hidden unit with `target`, over every step and sequence.

    h: (T, B, H) hidden states, target: (T, B). A unit that never changes gets r = 0.
    """
    units = h.reshape(-1, h.shape[-1]).astype(np.float64)  # (T*B, H)
    values = target.reshape(-1).astype(np.float64)  # (T*B,)
    du, dv = units - units.mean(axis=0), values - values.mean()
    spread = np.sqrt((du * du).sum(axis=0) * (dv @ dv))  # (H,)
    return np.divide(du.T @ dv, spread, out=np.zeros(h.shape[-1]), where=spread > 0)


@dataclass
class CarryUnit:
    """The hidden unit that best tracks the carry bit, and how well."""

    unit: int  # index into the hidden state h_t
    r: float  # its Pearson correlation with the carry out of bit t
    r_all: NDArray[np.float64]  # (H,) every unit's correlation
    readout_r: float  # correlation of the best linear read-out of all units together


def find_carry_unit(model: RNN, x: Array) -> CarryUnit:
    """Compare every hidden unit h_t[j] with the carry out of bit t, over the sums x."""
    h = model.run(x).h[1:]  # (T, B, H): h_t after reading bit t
    carry = carry_bits(x)  # (T, B)
    r_all = correlations(h, carry)
    unit = int(np.argmax(np.abs(r_all)))
    # Least squares: carry ~ h_t @ w + c, the best any linear read-out of h_t can do.
    design = np.column_stack([h.reshape(-1, h.shape[-1]), np.ones(h.shape[0] * h.shape[1])])
    w, *_ = np.linalg.lstsq(design.astype(np.float64), carry.reshape(-1), rcond=None)
    fitted = (design @ w).reshape(*carry.shape, 1)  # (T, B, 1)
    readout_r = float(correlations(fitted, carry)[0])
    return CarryUnit(unit, float(r_all[unit]), r_all, readout_r)


def gradient_norms(model: RNN, x: Array) -> NDArray[np.float64]:
    """||dz_last / dh_t|| for every t, per sequence: how much the last output hears of h_t.

    Returns (T, B); row t is for h[t], the state before bit t (h[0] = h0). The gradient is
    what RNN.backward hands back as "h0" when the model reruns x[t:] from h[t] with
    dL/dz = 1 at the last step and 0 elsewhere.
    """
    trace = model.run(x)
    norms = np.empty(x.shape[:2])  # (T, B)
    for t in range(x.shape[0]):
        tail = model.run(x[t:], h0=trace.h[t])
        dz = np.zeros_like(tail.z)  # (T - t, B, O)
        dz[-1] = 1.0
        norms[t] = np.linalg.norm(model.backward(tail, dz)["h0"], axis=1)
    return norms


# ---------------------------------------------------------------------------------------
# The figures.


def plot_training_curve(history: History) -> Figure:
    """Loss and exact-match batch accuracy against training step."""
    fig = figure(figsize=(7, 4.5))
    loss_ax, acc_ax = fig.subplots(2, 1, sharex=True)
    steps = np.arange(1, len(history.loss) + 1)
    loss_ax.plot(steps, history.loss, color="tab:blue", lw=1)
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("training loss")
    loss_ax.set_title(f"Training: {len(steps)} steps")
    acc_ax.plot(steps, np.asarray(history.batch_accuracy) * 100, color="tab:green", lw=1)
    acc_ax.set_ylim(-5, 105)
    acc_ax.set_ylabel("sums exactly right\nin the batch (%)")
    acc_ax.set_xlabel("step")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
    return fig


def plot_hidden_heatmap(model: RNN, a: int, b: int) -> Figure:
    """Every hidden unit at every bit position of one addition, under the bits themselves."""
    width = max(a.bit_length(), b.bit_length()) + 1
    x, y = addition_examples(encode([a], width), encode([b], width), model.dtype)
    trace = model.run(x)  # x: (T, 1, 2)
    rows = {
        "a": x[:, 0, 0],
        "b": x[:, 0, 1],
        "carry": carry_bits(x)[:, 0],
        "a + b": y[:, 0, 0],
        "network": (trace.p[:, 0, 0] > 0.5).astype(float),
    }
    fig = figure(figsize=(8, 6.5))
    bits_ax, heat_ax = fig.subplots(2, 1, sharex=True, height_ratios=(len(rows), model.hidden_size))
    bits_ax.imshow(np.array(list(rows.values())), cmap="Greys", vmin=-0.3, vmax=1.6, aspect="auto")
    for i, values in enumerate(rows.values()):
        for t, v in enumerate(values):
            bits_ax.text(t, i, int(v), ha="center", va="center", fontsize=8, color="tab:red")
    bits_ax.set_yticks(range(len(rows)), list(rows))
    right = "right" if bool(exact_match(trace.p, y)[0]) else "WRONG"
    bits_ax.set_title(f"{a} + {b} = {a + b} (network: {right}), bit 0 first")
    image = heat_ax.imshow(trace.h[1:, 0, :].T, cmap="viridis", aspect="auto")
    heat_ax.set_ylabel("hidden unit j")
    heat_ax.set_xlabel("bit position t (time step)")
    heat_ax.set_xticks(range(width))
    fig.colorbar(image, ax=heat_ax, label="h_t[j]")
    return fig


def plot_carry_unit(model: RNN, found: CarryUnit, a: int, b: int) -> Figure:
    """Each unit's correlation with the carry, and the best unit beside the carry of one sum."""
    width = max(a.bit_length(), b.bit_length()) + 1
    x, _ = addition_examples(encode([a], width), encode([b], width), model.dtype)
    h = model.run(x).h[1:, 0, found.unit]  # (T,)
    fig = figure(figsize=(10, 3.8))
    bars_ax, line_ax = fig.subplots(1, 2, width_ratios=(1, 1.4))
    colors = ["tab:gray"] * len(found.r_all)
    colors[found.unit] = "tab:red"
    bars_ax.bar(range(len(found.r_all)), found.r_all, color=colors)
    bars_ax.axhline(0, color="black", lw=0.8)
    bars_ax.set_ylim(-1, 1)
    if len(found.r_all) <= 32:  # a label per unit while they fit
        bars_ax.set_xticks(range(len(found.r_all)))
    bars_ax.set_xlabel("hidden unit j")
    bars_ax.set_ylabel("correlation r with the carry")
    bars_ax.set_title(
        f"unit {found.unit}: r = {found.r:+.3f}; all units read out: {found.readout_r:.3f}"
    )
    positions = np.arange(width)
    line_ax.step(
        positions, carry_bits(x)[:, 0], where="mid", color="black", label="carry out of bit t"
    )
    line_ax.plot(positions, h, "o-", color="tab:red", label=f"unit {found.unit}: h_t[{found.unit}]")
    line_ax.set_xlabel("bit position t")
    line_ax.set_xticks(positions)
    line_ax.set_title(f"{a} + {b}")
    line_ax.set_ylim(-0.1, 1.35)
    line_ax.legend(loc="upper center", ncols=2, fontsize=8)
    return fig


def plot_gradient_flow(trained: NDArray[np.float64], untrained: NDArray[np.float64]) -> Figure:
    """||dz_last / dh_t|| against the number of steps between h_t and the last output."""
    fig = figure(figsize=(7, 4.2))
    ax = fig.subplots()
    T = trained.shape[0]
    back = T - np.arange(T)  # row t of the norms is T - t steps before the last output
    for norms, label, color in (
        (trained, "trained", "tab:red"),
        (untrained, "at initialisation", "tab:blue"),
    ):
        low, mid, high = np.quantile(norms, (0.1, 0.5, 0.9), axis=1)
        ax.plot(back, mid, color=color, label=f"{label} (median)")
        ax.fill_between(back, low, high, color=color, alpha=0.2, label=f"{label} (10-90%)")
    ax.set_yscale("log")
    ax.set_xlabel("steps back in time from the last output")
    ax.set_ylabel("gradient norm ||dz_last / dh_t||")
    ax.set_title(f"The gradient through time, {T}-bit sums ({trained.shape[1]} random)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig


def write_figures(
    model: RNN, history: History | None, out: Path, log: Callable[[str], None] = print
) -> CarryUnit:
    """Write every figure (the training curve only when there is a history) into `out`."""
    figure()  # fail early, before any work, when matplotlib is missing
    rng = np.random.default_rng(0)
    a, b = EXAMPLE

    def write(name: str, fig: Figure) -> None:
        save_png(fig, out / name)
        log(f"wrote {out / name}")

    if history is None or not history.loss:
        log("no training history in the model file: training curve skipped")
    else:
        write("training_curve.png", plot_training_curve(history))
    write("hidden_heatmap.png", plot_hidden_heatmap(model, a, b))
    x, _ = random_addition_batch(rng, CARRY_SUMS, CARRY_BITS, model.dtype)
    found = find_carry_unit(model, x)
    write("carry_unit.png", plot_carry_unit(model, found, a, b))
    x, _ = random_addition_batch(rng, GRADIENT_SUMS, GRADIENT_BITS, model.dtype)
    sizes = (model.input_size, model.hidden_size, model.output_size)
    fresh = RNN(*sizes, model.activation, model.bias, model.dtype, seed=0)  # same init
    write(
        "gradient_flow.png", plot_gradient_flow(gradient_norms(model, x), gradient_norms(fresh, x))
    )
    return found
