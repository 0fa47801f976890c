"""The walkthrough's figure of the three cells learning the default text: the training loss
and the held-out loss against the steps, in nats per character, and the uniform guess log V
(docruns.text_runs trains them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .docruns import TextRuns
from .draw import figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Steps averaged into each point of the curves: one step's loss is one chunk's, noisy.
SMOOTHING = 50
COLORS = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}


def plot_text_cells(runs: TextRuns) -> Figure:
    """Each cell's training loss (the mean of every SMOOTHING steps, solid) and held-out loss
    (dashed) against the steps."""
    fig = figure(figsize=(7.5, 4.5))
    ax = fig.subplots()
    for name, losses in runs.losses.items():
        blocks = len(losses) // SMOOTHING
        means = losses[: blocks * SMOOTHING].reshape(blocks, SMOOTHING).mean(axis=1)
        steps = SMOOTHING * (np.arange(blocks) + 1)
        held_out = runs.held_out[name]
        best = int(np.argmin(held_out))
        ax.plot(steps, means, color=COLORS[name], label=f"{name.upper()}, training")
        ax.plot(
            runs.evaluated,
            held_out,
            ls="--",
            color=COLORS[name],
            label=f"{name.upper()}, held out: {held_out[-1]:.2f} at the end, "
            f"{held_out[best]:.2f} at step {runs.evaluated[best]}",
        )
    ax.axhline(
        runs.uniform, ls="--", color="gray", label=f"uniform guess, log V = {runs.uniform:.2f}"
    )
    config = runs.config
    ax.set_xlabel("training step")
    ax.set_ylabel("loss, nats per character")
    ax.set_title(
        f"Three cells learn the default text: hidden {config.hidden}, {config.seq} steps per "
        f"chunk,\n{config.batch} streams, {config.optimizer} at {config.learning_rate:g} "
        f"(the mean of every {SMOOTHING} steps)",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
