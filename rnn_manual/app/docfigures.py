"""The walkthrough's figures: the network unrolled, one backward pass animated, the gradient
through time in the RNN, the LSTM and the GRU, and the carry unit emerging during training.

`python -m rnn_manual plot --docs --out DIR` draws them into DIR beside plot.py's four
(figures.write_figures; the walkthrough shows those in docs/img/). What they show is
computed first: the runs by docruns.py, the measures by measures.py.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..cells import Cell
from ..files import atomic
from ..training.state import TrainConfig
from .docruns import ADDER, SIGMOID_MAX_SLOPE, AdderRun, CellsFlow
from .draw import arrow, band, box, figure
from .measures import BackwardStep, chance_loss

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Array = NDArray[np.floating]

DOC_FIGURES = (
    "unrolled.png",
    "backward.gif",
    "gradient_flow_cells.png",
    "carry_emerging.png",
    "text_cells.png",  # textfigure.py
)
#: The sum whose backward pass is animated: 8 bits, operands below 2**7 as in the tutorial,
#: with a carry out of six of its eight bits.
BACKWARD_EXAMPLE = (73, 59)
#: The animation's resolution, kept small (a few hundred kilobytes), and each step's seconds.
GIF_DPI, GIF_SECONDS_PER_STEP = 80, 2
#: The colours of the three shared weights in the unrolled network, and of the backward pass.
WEIGHT_COLORS = {"W_xh": "tab:blue", "W_hh": "tab:orange", "W_hy": "tab:green"}
BACKWARD_COLOR = "tab:red"


def badge(ax: Axes, xy: tuple[float, float], name: str) -> None:
    """A shared weight's name on a filled label in its own colour."""
    ax.text(
        *xy,
        name,
        ha="center",
        va="center",
        fontsize=9,
        color="white",
        fontweight="bold",
        bbox={"boxstyle": "round,pad=0.25", "fc": WEIGHT_COLORS[name], "ec": "none"},
        zorder=4,
    )


#: The backward quantities of the unrolled figure: the maths, the name in
#: rnn_manual/reference.py's rnn_backward, and the tutorial's name (its deltas are minus
#: our gradients: it adds its updates).
BACKWARD_NAMES = (
    ("dL/dz_t = (p_t - y_t) p_t (1 - p_t)  (mse)", "dz[t]", "-layer_2_delta"),
    (
        "dL/dh_t from its own output: dL/dz_t W_hy^T",
        "dz[t] @ W_hy.T",
        "-layer_2_delta.dot(synapse_1.T)",
    ),
    (
        "dL/dh_t from the future: dL/da_{t+1} W_hh^T",
        "dh_next",
        "-future_layer_1_delta.dot(synapse_h.T)",
    ),
    (
        "dL/da_t = dL/dh_t * f'(a_t)  (both parts)",
        "da",
        "-layer_1_delta (at step t-1: -future_layer_1_delta)",
    ),
    ("dL/dW_hh = sum_t h_{t-1}^T dL/da_t", 'grads["W_hh"]', "-synapse_h_update"),
)


def plot_unrolled(T: int = 4) -> Figure:
    """The RNN unrolled over T steps: one set of weights at every step, the forward arrows,
    and the backward arrows with the names of what travels along them."""
    fig = figure(figsize=(11, 7.2))
    ax = fig.subplots()
    ax.set_axis_off()
    gap, rows = 3.0, {"x": 0.0, "h": 2.4, "z": 4.8}

    def at(t: int) -> float:  # the column of step t; t = -1 is the initial state
        return gap * (t + 1)

    box(ax, (at(-1), rows["h"]), "$h_{-1}$\n(h0)")
    for t in range(T):
        X = at(t)
        box(ax, (X, rows["x"]), f"$x_{t}$\nbit {t} of\neach operand")
        box(ax, (X, rows["h"]), f"$a_{t}$ $\\to$ $h_{t}$")
        box(ax, (X, rows["z"]), f"$z_{t}$ $\\to$ $p_{t}$\nvs $y_{t}$")
        # Forward, black: x_t and h_{t-1} into a_t, h_t into z_t.
        arrow(ax, (X - 0.15, rows["x"] + 0.55), (X - 0.15, rows["h"] - 0.5), "black")
        arrow(ax, (X - 0.15, rows["h"] + 0.45), (X - 0.15, rows["z"] - 0.6), "black")
        arrow(ax, (at(t - 1) + 0.8, rows["h"] + 0.15), (X - 0.85, rows["h"] + 0.15), "black")
        badge(ax, (X - 0.15, (rows["x"] + rows["h"]) / 2), "W_xh")
        badge(ax, (X - 0.15, (rows["h"] + rows["z"]) / 2 - 0.1), "W_hy")
        badge(ax, ((at(t - 1) + X) / 2, rows["h"] + 0.5), "W_hh")
        # Backward, red and dashed: dL/dz_t down into h_t, dL/dh_{t-1} back to step t-1.
        arrow(ax, (X + 0.3, rows["z"] - 0.6), (X + 0.3, rows["h"] + 0.45), BACKWARD_COLOR, True)
        ax.text(
            X + 0.4,
            rows["h"] + 1.45,
            f"$\\partial L/\\partial z_{t}$",
            color=BACKWARD_COLOR,
            fontsize=10,
        )
        ax.text(
            X + 0.1,
            rows["h"] - 0.85,
            f"$\\partial L/\\partial a_{t}$",
            ha="left",
            color=BACKWARD_COLOR,
            fontsize=10,
        )
        arrow(
            ax,
            (X - 0.85, rows["h"] - 0.25),
            (at(t - 1) + 0.8, rows["h"] - 0.25),
            BACKWARD_COLOR,
            True,
        )
        ax.text(
            (at(t - 1) + X) / 2,
            rows["h"] - 0.62,
            f"$\\partial L/\\partial h_{{{t - 1}}}$",
            ha="center",
            color=BACKWARD_COLOR,
            fontsize=10,
        )
    # The legend of names: the maths, ours, the tutorial's.
    top = -1.1
    for column, (x0, head) in enumerate(
        ((-0.8, "backward (red, dashed)"), (3.45, "reference.py"), (5.2, "the tutorial's name"))
    ):
        ax.text(x0, top, head, fontsize=10, fontweight="bold")
        for i, names in enumerate(BACKWARD_NAMES):
            ax.text(
                x0,
                top - 0.42 * (i + 1),
                names[column],
                fontsize=9,
                family="monospace" if column else None,
                color=BACKWARD_COLOR if column == 0 else "black",
            )
    ax.set_xlim(-1.0, at(T - 1) + 1.0)
    ax.set_ylim(top - 0.42 * (len(BACKWARD_NAMES) + 0.8), rows["z"] + 0.9)
    ax.set_title(
        f"The RNN unrolled over T = {T} steps: the same W_xh, W_hh and W_hy at every step\n"
        "(black: the forward pass; red: BPTT, from the last step back to the first)",
        fontsize=11,
    )
    return fig


def draw_backward_frame(
    axes: tuple[Axes, Axes, Axes],
    steps: list[BackwardStep],
    frame: int,
    x: Array,
    y: Array,
    limits: tuple[float, float, float],
) -> None:
    """Frame `frame` of the animation: steps[:frame + 1] done, steps[frame] the current one.

    axes: the time strip (||dL/dh_s|| of every step done, by source), dL/dh_t unit by unit,
    and dL/dW_hh so far. limits: each panel's scale, the same in every frame.
    """
    strip_ax, dh_ax, dW_ax = axes
    for ax in axes:
        ax.cla()
    step, T, H = steps[frame], x.shape[0], steps[0].own.shape[0]
    own_color, future_color = "tab:blue", "tab:orange"
    # Time strip: one pair of bars per step walked so far.
    for done in steps[: frame + 1]:
        first = done is steps[0]  # the legend names the first pair of bars
        strip_ax.bar(
            done.t - 0.2,
            np.linalg.norm(done.own),
            0.4,
            color=own_color,
            label="from its own output z_t" if first else None,
        )
        strip_ax.bar(
            done.t + 0.2,
            np.linalg.norm(done.future),
            0.4,
            color=future_color,
            label="from the future: dh_next" if first else None,
        )
    strip_ax.legend(fontsize=8, loc="upper right", ncols=2, title="dL/dh_t", title_fontsize=8)
    strip_ax.axvspan(step.t - 0.5, step.t + 0.5, color=BACKWARD_COLOR, alpha=0.12)
    strip_ax.set_xlim(-0.5, T - 0.5)
    strip_ax.set_ylim(0, limits[0])
    strip_ax.set_xticks(
        range(T),
        [f"t={s}\n{x[s, 0, 0]:.0f} + {x[s, 0, 1]:.0f}: {y[s, 0, 0]:.0f}" for s in range(T)],
        fontsize=8,
    )
    strip_ax.set_ylabel("||dL/dh_t||", fontsize=9)
    strip_ax.set_title(
        f"the walk goes from t = {T - 1} back to t = 0; under each step its two operand bits"
        " and the sum bit wanted",
        fontsize=9,
    )
    # dL/dh_t unit by unit: the two sources side by side, their sum as a dot.
    units = np.arange(H)
    dh_ax.bar(units - 0.2, step.own, 0.4, color=own_color)
    dh_ax.bar(units + 0.2, step.future, 0.4, color=future_color)
    dh_ax.plot(units, step.dh, "k.", label="dL/dh_t, the sum of both")
    dh_ax.axhline(0, color="black", lw=0.6)
    dh_ax.set_ylim(-limits[1], limits[1])
    dh_ax.set_xticks(units[:: max(1, H // 8)])
    dh_ax.set_xlabel("hidden unit j", fontsize=9)
    dh_ax.set_title(f"dL/dh_t at t = {step.t}, unit by unit", fontsize=10)
    dh_ax.legend(fontsize=7, loc="upper right")
    # dL/dW_hh accumulating: sum over the steps done of h_{s-1}^T dL/da_s.
    dW_ax.imshow(step.dW_hh, cmap="RdBu_r", vmin=-limits[2], vmax=limits[2], aspect="auto")
    dW_ax.set_xticks(units[:: max(1, H // 8)])
    dW_ax.set_yticks(units[:: max(1, H // 8)])
    dW_ax.set_title(f"dL/dW_hh, summed over s = {step.t} .. {T - 1}", fontsize=10)
    dW_ax.set_xlabel("to unit j (column)", fontsize=9)
    dW_ax.set_ylabel("from unit i (row)", fontsize=9)
    dW_ax.tick_params(labelsize=7)


def animate_backward(
    model: Cell, steps: list[BackwardStep], x: Array, y: Array, path: Path
) -> None:
    """Write the backward pass `steps` over the sum x as an animated GIF, one frame a step
    (the last held for three)."""
    from matplotlib.animation import FuncAnimation, PillowWriter
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig = figure(figsize=(9, 6))
    grid = fig.add_gridspec(2, 2, height_ratios=(1, 1.3), width_ratios=(1.35, 1))
    axes = (fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1]))
    own = max(float(np.linalg.norm(s.own)) for s in steps)
    future = max(float(np.linalg.norm(s.future)) for s in steps)
    spread = max(float(np.abs(np.concatenate([s.own, s.future, s.dh])).max()) for s in steps)
    weight = max(float(np.abs(s.dW_hh).max()) for s in steps)
    limits = (1.5 * max(own, future), 1.1 * spread, weight)  # room for the strip's legend
    colors = ScalarMappable(Normalize(-weight, weight), "RdBu_r")
    fig.colorbar(colors, ax=axes[2], shrink=0.8, label="h_{s-1}[i] dL/da_s[j], summed")
    a, b = BACKWARD_EXAMPLE
    right = "right" if np.array_equal(model.forward(x) > 0.5, y > 0.5) else "WRONG"
    fig.suptitle(f"One backward pass of the trained adder: {a} + {b} = {a + b} (network: {right})")
    # One frame a second, each step's repeated (Pillow merges repeats into one longer frame),
    # the last one longer still.
    frames = [i for i in range(len(steps)) for _ in range(GIF_SECONDS_PER_STEP)]
    frames += [len(steps) - 1] * 2 * GIF_SECONDS_PER_STEP

    def draw(frame: int) -> None:
        draw_backward_frame(axes, steps, frame, x, y, limits)

    # Every frame holds the same texts at the same sizes (fixed limits and ticks), so the
    # layout, made afresh for each, stays put once it has settled: lay out one frame first.
    draw(0)
    fig.draw_without_rendering()
    animation = FuncAnimation(fig, draw, frames=frames, repeat=False)
    with tempfile.TemporaryDirectory() as folder:  # the writer wants a file name ending .gif
        gif = Path(folder) / path.name
        animation.save(gif, writer=PillowWriter(fps=1), dpi=GIF_DPI)

        def copy(f: IO[bytes]) -> None:
            f.write(gif.read_bytes())

        atomic.write(path, copy)


def plot_gradient_flow_cells(flow: CellsFlow) -> Figure:
    """||dz_last / dh_t|| against the steps back, for the three cells, and the RNN's bound."""
    fig = figure(figsize=(7.5, 4.8))
    ax = fig.subplots()
    colors = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
    for name, norms in flow.norms.items():
        band(ax, flow.back, norms, flow.labels[name], colors[name], spread_label=False)
    ax.plot(
        flow.back,
        flow.bound,
        ls="--",
        color=colors["rnn"],
        label=f"RNN's bound ||W_hy|| (||W_hh|| / 4)^k = {flow.W_hy_norm:.1f} x "
        f"{SIGMOID_MAX_SLOPE * flow.W_hh_norm:.1f}^k",
    )
    k = int(flow.back[len(flow.back) // 2])
    ax.annotate(
        f"||W_hh|| (its largest singular value) = {flow.W_hh_norm:.1f} > 4: the bound grows,\n"
        "and still the RNN's gradient vanishes: its units saturate, their slope\n"
        f"f'(a_t) = h_t (1 - h_t) is {flow.mean_slope:.3f} on average, far below 1/4",
        xy=(k, flow.bound[len(flow.back) // 2]),
        xytext=(0.03, 0.97),
        textcoords="axes fraction",
        va="top",
        fontsize=8,
        arrowprops={"arrowstyle": "->", "color": colors["rnn"]},
    )
    ax.set_yscale("log")
    ax.set_xlabel("k: steps back in time from the last output")
    ax.set_ylabel("gradient norm ||dz_last / dh_t||")
    T, B = next(iter(flow.norms.values())).shape
    ax.set_title(
        f"The gradient through time in three trained cells, {T}-bit sums\n"
        f"(lines: the median of {B} random sums; shaded: 10-90% of them)",
        fontsize=10,
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower left")
    return fig


def plot_carry_emerging(run: AdderRun, task: TrainConfig = ADDER) -> Figure:
    """The training loss, and under it the carry unit's |r| as the adder learns."""
    fig = figure(figsize=(7.5, 5))
    loss_ax, r_ax = fig.subplots(2, 1, sharex=True)
    history = run.result.history
    loss_ax.plot(np.arange(1, len(history.loss) + 1), history.loss, color="tab:blue", lw=1)
    chance = chance_loss(task)
    loss_ax.axhline(
        chance, color="tab:gray", ls="--", lw=1, label=f"p = 0.5 at every bit: loss {chance:.2f}"
    )
    loss_ax.set_ylabel("training loss")
    loss_ax.set_title("The carry unit emerges as the loss leaves its plateau")
    loss_ax.legend(fontsize=8)
    unit = run.carry_unit
    best = np.abs(run.r_all).max(axis=1)
    r_ax.plot(
        run.steps, best, ".", color="tab:gray", ms=4, label="|r| of the best unit at that step"
    )
    r_ax.plot(
        run.steps,
        np.abs(run.r_all[:, unit]),
        color="tab:red",
        label=f"|r| of unit {unit}, the carry unit at the end",
    )
    r_ax.set_ylim(0, 1.02)
    r_ax.set_ylabel("|r| with the carry")
    r_ax.set_xlabel("training step")
    r_ax.legend(fontsize=8, loc="lower right")
    for ax in (loss_ax, r_ax):
        ax.grid(alpha=0.3)
    return fig
