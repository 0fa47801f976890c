"""Drawing helpers the figures share: a Figure (matplotlib imported only when one is drawn),
PNG files written whole, and small pieces of pictures (ticks, frames, bands, boxes, arrows).

matplotlib is an optional extra (`pip install 'rnn-manual[plot]'`), so the rest of the
package needs NumPy alone. Figures are drawn with matplotlib's object interface (no
pyplot, no global backend) and written as PNG, whole or not at all and with the
permissions any new file gets, as model files (files/atomic.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..files import atomic

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

#: Resolution of the PNG files: modest, so that the committed figures stay small.
DPI = 110


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


def rect(corner: tuple[float, float], width: float, height: float, color: str) -> Rectangle:
    """An unfilled rectangle, to frame a row or a cell of an image."""
    from matplotlib.patches import Rectangle

    return Rectangle(corner, width, height, fill=False, edgecolor=color, lw=2.2)


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


def box(ax: Axes, xy: tuple[float, float], text: str, color: str = "black") -> None:
    """A rounded box centred on xy, holding `text`."""
    ax.text(
        *xy,
        text,
        ha="center",
        va="center",
        fontsize=11,
        bbox={"boxstyle": "round,pad=0.45", "fc": "white", "ec": color, "lw": 1.4},
        zorder=3,
    )


def arrow(
    ax: Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    color: str,
    dashed: bool = False,
) -> None:
    """An arrow from `start` to `end`: solid for the forward pass, dashed for the backward."""
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={
            "arrowstyle": "-|>",
            "color": color,
            "lw": 1.6,
            "ls": "--" if dashed else "-",
            "shrinkA": 0,
            "shrinkB": 0,
        },
        zorder=2,
    )
