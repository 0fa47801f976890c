"""Figures of a trained adder: how it learned, what its hidden units hold, how gradients fade.

matplotlib is an optional extra (`pip install 'rnn-manual[plot]'`). It is imported only
when a figure is drawn, so the rest of the package needs NumPy alone. Figures are drawn
with matplotlib's object interface (no pyplot, no global backend) and written as PNG, whole
or not at all and with the permissions any new file gets, as model files (files/atomic.py).
The walkthrough's own figures (the unrolled network, an animated backward pass, the three
cells compared, the carry unit emerging) are in docfigures.py; `write_figures(...,
docs=True)` adds them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..cells import Cell
from ..cells.losses import LOSSES
from ..cells.rnn import RNN
from ..files import atomic
from ..training.bits import addition_examples, encode, random_addition_batch
from ..training.train import History, TrainConfig, exact_match

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

Array = NDArray[np.floating]

#: The addition drawn in the heatmap and beside the carry unit: 13- and 14-bit operands
#: (a 15-step sequence, the sum's top bit included) whose carries come in runs of one to
#: four bits.
EXAMPLE = (8017, 15443)
#: Random 16-bit sums on which each hidden unit is compared with the carry.
CARRY_SUMS, CARRY_BITS = 1000, 16
#: Sums, and their length, along which the gradient is followed back through time.
GRADIENT_SUMS, GRADIENT_BITS = 64, 128

FIGURES = ("training_curve.png", "hidden_heatmap.png", "carry_unit.png", "gradient_flow.png")
#: Resolution of the PNG files: modest, so that the committed figures stay small.
DPI = 110
#: Most steps the training curve draws; a longer history is drawn one step in so many.
CURVE_POINTS = 20_000


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
    """Write `fig` to `path` as PNG, whole or not at all, with the mode any new file gets
    (files.atomic.write, as model files): atomic.WriteError if the system refuses."""
    atomic.write(path, lambda f: fig.savefig(f, format="png", dpi=DPI))


def unit_ticks(ax: Axes, axis: str, units: int, highlight: int, most: int) -> None:
    """A tick for every hidden unit on ax's `axis` ("x" or "y"), labelled while at most
    `most` labels are needed (beyond, every k-th unit and always the highlighted one),
    the highlighted unit's label in bold red."""
    every = -(-units // most)  # ceil(units / most)
    shown = [j for j in range(units) if j % every == 0 and abs(j - highlight) >= every]
    shown = sorted([*shown, highlight])
    labels = [f"{j}" for j in shown]
    if axis == "x":
        ax.set_xticks(range(units), minor=True)
        ax.set_xticks(shown, labels)
        ticks = ax.get_xticklabels()
    else:
        ax.set_yticks(range(units), minor=True)
        ax.set_yticks(shown, labels)
        ticks = ax.get_yticklabels()
    for tick in ticks:
        if tick.get_text() == f"{highlight}":
            tick.set_color("tab:red")
            tick.set_fontweight("bold")


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


def find_carry_unit(model: Cell, x: Array) -> CarryUnit:
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


def gradient_norms(model: Cell, x: Array) -> NDArray[np.float64]:
    """||dz_last / dh_t|| for every t, per sequence: how much the last output hears of h_t.

    Returns (T, B); row t is for h[t], the state before bit t (h[0] = h0). The gradient is
    what the cell's backward hands back as "h0" when the model reruns x[t:] from its state
    at t (h[t], and c[t] for the LSTM, which is held fixed) with dL/dz = 1 at the last step
    and 0 elsewhere. Any cell: the RNN, the LSTM, the GRU.
    """
    trace = model.run(x)
    norms = np.empty(x.shape[:2])  # (T, B)
    for t in range(x.shape[0]):
        state = {name: getattr(trace, name[0])[t] for name in model.states}  # h0=h[t], c0=c[t]
        tail = model.run(x[t:], **state)
        dz = np.zeros_like(tail.z)  # (T - t, B, O)
        dz[-1] = 1.0
        norms[t] = np.linalg.norm(model.backward(tail, dz)["h0"], axis=1)
    return norms


def chance_loss(config: TrainConfig) -> float:
    """The loss of a network that answers p = 0.5 at every bit, on config's sums.

    The same whatever the targets: 0.5 (0.5 - y)^2 = 1/8 per bit for mse, ln 2 for bce; so
    bits x ln 2 for the defaults. Training starts near it (small weights: p near 0.5) and stays
    on a plateau there until the network begins to add.
    """
    z = np.zeros((config.bits, 1, 1))  # (T, B, O) logits 0: p = sigmoid(0) = 0.5
    p = np.full_like(z, 0.5)
    return float(LOSSES[config.loss](z, p, np.zeros_like(z))[0])


# ---------------------------------------------------------------------------------------
# The figures.


def plateau_end(loss: NDArray[np.float64], chance: float) -> int:
    """The last training step (1-based) whose loss is no better than 5% below `chance`:
    where the plateau at the start of training ends. 0 if there is none."""
    within = np.flatnonzero(np.asarray(loss) >= 0.95 * chance)
    return int(within[-1]) + 1 if len(within) else 0


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


def plot_hidden_heatmap(model: RNN, found: CarryUnit, a: int, b: int) -> Figure:
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


def rect(corner: tuple[float, float], width: float, height: float, color: str) -> Rectangle:
    """An unfilled rectangle, to frame a row or a cell of an image."""
    from matplotlib.patches import Rectangle

    return Rectangle(corner, width, height, fill=False, edgecolor=color, lw=2.2)


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


def band(
    ax: Axes,
    back: NDArray[np.int_],
    norms: NDArray[np.float64],
    label: str,
    color: str,
    spread_label: bool = True,
) -> None:
    """The median of norms (T, B) over the sequences as a line, their 10-90% as a band."""
    low, mid, high = np.quantile(norms, (0.1, 0.5, 0.9), axis=1)
    ax.plot(back, mid, color=color, label=f"{label} (median)" if spread_label else label)
    spread = f"{label} (10-90%)" if spread_label else None
    ax.fill_between(back, low, high, color=color, alpha=0.2, label=spread)


def write_figures(
    model: RNN,
    history: History | None,
    out: Path,
    log: Callable[[str], None] = print,
    *,
    config: TrainConfig | None = None,
    docs: bool = False,
) -> CarryUnit:
    """Write every figure (the training curve only when there is a history) into `out`.

    config: the config the model was trained with, when known: the training curve then
    marks the loss of answering 0.5 everywhere. docs: the model is the walkthrough's adder
    (`train --save adder.npz`); also write the walkthrough's figures (docfigures.py), which
    retrains it to check that and to watch the carry unit emerge (docfigures.NotTheAdder
    otherwise), and trains an RNN, an LSTM and a GRU to compare.
    """
    figure()  # fail early, before any work, when matplotlib is missing
    rng = np.random.default_rng(0)
    a, b = EXAMPLE

    def write(name: str, fig: Figure) -> None:
        save_png(fig, out / name)
        log(f"wrote {out / name}")

    run = None
    if docs:
        from . import docfigures  # it imports this module: imported here, when asked for

        run = docfigures.rerun_adder(model)  # NotTheAdder unless model is the walkthrough's
        config = docfigures.ADDER
    if history is None or not len(history.loss):
        log("no training history in the model file: training curve skipped")
    else:
        write("training_curve.png", plot_training_curve(history, config))
    x, _ = random_addition_batch(rng, CARRY_SUMS, CARRY_BITS, model.dtype)
    found = find_carry_unit(model, x)
    write("hidden_heatmap.png", plot_hidden_heatmap(model, found, a, b))
    write("carry_unit.png", plot_carry_unit(model, found, a, b))
    x, _ = random_addition_batch(rng, GRADIENT_SUMS, GRADIENT_BITS, model.dtype)
    sizes = (model.input_size, model.hidden_size, model.output_size)
    fresh = RNN(*sizes, model.activation, model.bias, model.dtype, seed=0)  # same init
    write(
        "gradient_flow.png", plot_gradient_flow(gradient_norms(model, x), gradient_norms(fresh, x))
    )
    if run is not None:
        docfigures.write_doc_figures(model, run, out, log)
    return found
