"""The figures of a trained adder that `python -m rnn_manual plot` draws: how it learned,
what its hidden units hold, how gradients fade.

The numbers come from measures.py, the drawing helpers from draw.py; figures.py decides
which figures are written where.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..cells import Cell
from ..training.bits import addition_examples, encode
from ..training.evaluation import exact_match
from ..training.state import History, TrainConfig
from .draw import band, figure, rect, unit_ticks
from .measures import CarryUnit, carry_bits, chance_loss, plateau_end

if TYPE_CHECKING:
    from matplotlib.figure import Figure

EXAMPLE = (8017, 15443)
#: Random 16-bit sums on which each hidden unit is compared with the carry.
CARRY_SUMS, CARRY_BITS = 1000, 16
#: Sums, and their length, along which the gradient is followed back through time.
GRADIENT_SUMS, GRADIENT_BITS = 64, 128

FIGURES = ("training_curve.png", "hidden_heatmap.png", "carry_unit.png", "gradient_flow.png")
#: Most steps the training curve draws; a longer history is drawn one step in so many.
CURVE_POINTS = 20_000


def plot_training_curve(history: History, config: TrainConfig | None = None) -> Figure:
    """Loss and exact-match batch accuracy against training step; with the run's config,
    the loss of answering 0.5 everywhere is drawn and the plateau there shaded."""
    fig = figure(figsize=(7, 4.5))
    loss_ax, acc_ax = fig.subplots(2, 1, sharex=True)
    # A long history is drawn every `stride`-th step: a figure cannot show more points than
    # it has pixels, and a copy of every step of a long run would cost far more memory.
    stride = max(1, len(history.loss) // CURVE_POINTS)
    loss = np.asarray(history.loss)[::stride]  # a view of the compact array: no copy
    steps = np.arange(1, len(history.loss) + 1, stride)
    loss_ax.plot(steps, loss, color="tab:blue", lw=1, label="training loss")
    if config is not None:
        chance = chance_loss(config)
        per_bit = "1/8" if config.loss == "mse" else "ln 2"
        loss_ax.axhline(
            chance,
            color="tab:gray",
            ls="--",
            lw=1,
            label=f"p = 0.5 at every bit: {config.bits} bits x {per_bit} = {chance:.2f}",
        )
        end = plateau_end(np.asarray(history.loss), chance)
        for ax in (loss_ax, acc_ax):
            ax.axvspan(0.5, end + 0.5, color="tab:gray", alpha=0.15, lw=0)
        loss_ax.text(
            end / 2,
            chance * 1.12,
            "plateau: no better than\nanswering 0.5 everywhere",
            ha="center",
            va="bottom",
            fontsize=8,
        )
        loss_ax.legend(fontsize=8, loc="lower left")
    if (loss > 0).any():  # a log axis needs a positive value to show
        loss_ax.set_yscale("log")
    loss_ax.set_ylabel("training loss")
    shown = f" (one in {stride} drawn)" if stride > 1 else ""
    loss_ax.set_title(f"Training: {len(history.loss)} steps{shown}")
    accuracy = np.asarray(history.batch_accuracy)[::stride] * 100
    acc_ax.plot(steps, accuracy, color="tab:green", lw=1)
    acc_ax.set_ylim(-5, 105)
    acc_ax.set_ylabel("sums exactly right\nin the batch (%)")
    acc_ax.set_xlabel("step")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
    return fig


def plot_hidden_heatmap(model: Cell, found: CarryUnit, a: int, b: int) -> Figure:
    """Every hidden unit at every bit position of one addition, under the bits themselves;
    the carry unit `found` framed."""
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
    H = model.hidden_size
    fig = figure(figsize=(8, 3.3 + min(8.0, max(3.2, 0.16 * H))))
    bits_ax, heat_ax = fig.subplots(2, 1, sharex=True, height_ratios=(len(rows), max(8, H)))
    # Bits as black and white cells, each with its digit in the contrasting colour.
    bits_ax.imshow(np.array(list(rows.values())), cmap="Greys", vmin=0, vmax=1.25, aspect="auto")
    wrong = rows["network"] != rows["a + b"]
    for i, values in enumerate(rows.values()):
        for t, v in enumerate(values):
            bits_ax.text(
                t, i, int(v), ha="center", va="center", fontsize=9, color="white" if v else "black"
            )
    for wrong_t in np.flatnonzero(wrong):  # the network's wrong bits, if any, framed in red
        bits_ax.add_patch(rect((wrong_t - 0.5, len(rows) - 1.5), 1, 1, "tab:red"))
    bits_ax.set_yticks(range(len(rows)), list(rows))
    right = "right" if bool(exact_match(trace.p, y)[0]) else "WRONG"
    bits_ax.set_title(f"a + b = {a} + {b} = {a + b} (network: {right}), bit 0 first")
    image = heat_ax.imshow(trace.h[1:, 0, :].T, cmap="viridis", aspect="auto")
    heat_ax.add_patch(rect((-0.5, found.unit - 0.5), width, 1, "tab:red"))
    unit_ticks(heat_ax, "y", H, found.unit, most=32)
    heat_ax.tick_params(axis="y", labelsize=8 if H <= 16 else 6)
    heat_ax.set_ylabel(
        f"hidden unit j (framed: unit {found.unit}, the carry's, r = {found.r:+.2f})"
    )
    heat_ax.set_xlabel("bit position t (time step)")
    heat_ax.set_xticks(range(width))
    fig.colorbar(image, ax=heat_ax, label="h_t[j]")
    return fig


def plot_carry_unit(model: Cell, found: CarryUnit, a: int, b: int) -> Figure:
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
    unit_ticks(bars_ax, "x", len(found.r_all), found.unit, most=16)
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
    line_ax.set_ylabel(f"carry bit (0 or 1), and h_t[{found.unit}]")
    line_ax.set_xticks(positions)
    line_ax.set_title(f"{a} + {b}")
    # Room for every value (a tanh unit runs to -1) and, above them, for the legend.
    low, high = min(0.0, float(h.min())), max(1.0, float(h.max()))
    line_ax.set_ylim(low - 0.1, high + 0.3 * (high - low))
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
        band(ax, back, norms, label, color)
    ax.set_yscale("log")
    ax.set_xlabel("steps back in time from the last output")
    ax.set_ylabel("gradient norm ||dz_last / dh_t||")
    ax.set_title(f"The gradient through time, {T}-bit sums ({trained.shape[1]} random)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return fig
