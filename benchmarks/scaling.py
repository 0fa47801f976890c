"""How cost grows: log-log slopes of the manual pass's time against T, B and H, from the grid
the harness has just run, and the peak memory of one training pass against T.

A slope s says time ~ size**s between the points it was fitted on: 1 is linear, 2 quadratic.
Each series is the RNN's grid points in one dtype that differ in one size only (the others
held, e.g. T 8, 32, 128 at B 256, H 64); its slope is fitted to all its points by least
squares, and given between neighbouring points too, where the overhead of each call at small
sizes shows as a slope below 1.

Memory: tracemalloc's peak over one loss_and_grads (NumPy reports every array it allocates
to tracemalloc), which holds the trace of T + 1 states and the gradients.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np

from rnn_manual.app.draw import save_png

from .report import threads_line
from .run import MANUAL, Point, prepare

SIZES = ("T", "B", "H")
#: The training passes whose peak memory is measured: these lengths at batch B, hidden H.
MEMORY_T = (8, 32, 128, 512)
MEMORY_B, MEMORY_H, MEMORY_DTYPE = 256, 64, "float64"


@dataclass(frozen=True)
class Series:
    """The median seconds of the manual pass at points that differ in one size only."""

    dtype: str
    against: str  # "T", "B" or "H"
    held: dict[str, int]  # the other two sizes
    sizes: list[int]
    seconds: list[float]


def slope(sizes: Sequence[float], values: Sequence[float]) -> float:
    """The least-squares slope of log(values) against log(sizes): values ~ sizes**slope."""
    if len(set(sizes)) < 2:
        raise ValueError("a slope needs at least two different sizes")
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


def neighbour_slopes(sizes: Sequence[float], values: Sequence[float]) -> list[float]:
    """The slope between each pair of neighbouring points (sizes in increasing order)."""
    return [
        slope([sizes[i], sizes[i + 1]], [values[i], values[i + 1]]) for i in range(len(sizes) - 1)
    ]


def series(results: list[dict], variant: str = MANUAL) -> list[Series]:
    """Every series of the RNN's grid rows: per dtype, per size, per value of the other two
    sizes, where two or more rows differ in that size alone."""
    rnn = [r for r in results if r["cell"] == "rnn" and variant in r["seconds"]]
    found = []
    for dtype in dict.fromkeys(r["dtype"] for r in rnn):
        for against in SIZES:
            others = [s for s in SIZES if s != against]
            groups: dict[tuple[int, ...], list[dict]] = {}
            for r in rnn:
                if r["dtype"] == dtype:
                    groups.setdefault(tuple(r[s] for s in others), []).append(r)
            for held, rows in groups.items():
                rows = sorted(rows, key=lambda r: r[against])
                if len({r[against] for r in rows}) < 2:
                    continue
                found.append(
                    Series(
                        dtype,
                        against,
                        dict(zip(others, held, strict=True)),
                        [r[against] for r in rows],
                        [float(np.median(r["seconds"][variant])) for r in rows],
                    )
                )
    return found


def peak_memory(T: int, B: int = MEMORY_B, H: int = MEMORY_H, dtype: str = MEMORY_DTYPE) -> int:
    """Peak bytes allocated during one loss_and_grads of the RNN at (T, B, H), beyond what
    was allocated before it (the model, x and y)."""
    model, x, y, _ = prepare(Point("rnn", T, B, H, dtype))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = model.loss_and_grads(x, y, "mse")
        peak = tracemalloc.get_traced_memory()[1] - before
        del result
    finally:
        tracemalloc.stop()
    return peak


def memory(lengths: tuple[int, ...] = MEMORY_T) -> dict:
    """Peak memory of a training pass at each length, and the bytes of one (T + 1) x B x H
    array of states (the trace holds a few such)."""
    itemsize = np.dtype(MEMORY_DTYPE).itemsize
    return {
        "B": MEMORY_B,
        "H": MEMORY_H,
        "dtype": MEMORY_DTYPE,
        "T": list(lengths),
        "peak_bytes": [peak_memory(T) for T in lengths],
        "state_bytes": [(T + 1) * MEMORY_B * MEMORY_H * itemsize for T in lengths],
    }


def _held(s: Series) -> str:
    return ", ".join(f"{k} {v}" for k, v in s.held.items())


def _range(values: list[float]) -> str:
    """ "1.02" or "0.95-1.02"."""
    low, high = min(values), max(values)
    return f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}-{high:.2f}"


def explanation(found: list[Series]) -> str:
    """The sentences that read the slopes: what the work predicts, then the slopes measured
    where the work is large and where it is small (each quoted from the series; a series
    the grid did not run is left out)."""

    def ends(against: str, end: int) -> list[float]:
        """Each series' slope between its two largest (end -1) or smallest (end 0) sizes;
        the smallest only where a series has three sizes or more."""
        return [
            neighbour_slopes(s.sizes, s.seconds)[end]
            for s in found
            if s.against == against and (end == -1 or len(s.sizes) >= 3)
        ]

    large = (
        [f"T {_range([slope(s.sizes, s.seconds) for s in found if s.against == 'T'])} (fitted)"]
        if any(s.against == "T" for s in found)
        else []
    )
    large += [f"{a} {_range(ends(a, -1))}" for a in ("B", "H") if ends(a, -1)]
    small = [f"{a} {_range(ends(a, 0))}" for a in ("B", "H") if ends(a, 0)]
    text = (
        "A pass does T x B x (H x H + a few H) multiply-adds: its work is linear in T and in "
        "B, and quadratic in H once the H x H matmuls outweigh the rest. Where the work is "
        "large, time follows it"
    )
    text += f" (slopes between the largest sizes: {', '.join(large)})." if large else "."
    text += (
        " Where it is small, each of the pass's NumPy calls costs about the same fixed time "
        "(Python and NumPy's dispatch) whatever its size, so time grows more slowly than "
        "the work: slopes below 1 in B, and below 2 in H"
    )
    text += f" (between the smallest sizes: {', '.join(small)})." if small else "."
    return text


def memory_lines(mem: dict) -> list[str]:
    """The memory table and its fitted slope."""
    lines = [
        f"Peak memory of one training pass (loss_and_grads: forward, backward and the "
        f"gradients), RNN, B {mem['B']}, H {mem['H']}, {mem['dtype']}, measured with "
        f"tracemalloc; fitted slope against T: "
        f"{slope(mem['T'], mem['peak_bytes']):.2f}. The pass keeps its trace, T + 1 states "
        "of B x H values and the steps' activations, for the backward pass: memory grows "
        "linearly in T.",
        "",
        "| T | peak MiB | peak / one (T + 1) x B x H array |",
        "|---|---|---|",
    ]
    for T, peak, state in zip(mem["T"], mem["peak_bytes"], mem["state_bytes"], strict=True):
        lines.append(f"| {T} | {peak / 2**20:.3g} | {peak / state:.2f} |")
    return lines


def markdown(meta: dict, results: list[dict], mem: dict | None) -> str:
    """The "How cost grows" section: the slopes of the manual pass's time, the sentence that
    reads them, and the memory table."""
    found = series(results)
    parts = [
        f"From the grid of the run of {meta['date']} ({threads_line(meta)}): the RNN's "
        "manual NumPy pass, median seconds per forward + backward pass; slope of log time "
        "against log size, fitted by least squares over each series and between neighbouring "
        "points.",
        "",
    ]
    if found:
        parts += [
            "| dtype | against | held | sizes | ms per pass | fitted slope | between neighbours |",
            "|---|---|---|---|---|---|---|",
        ]
        for s in found:
            cells = [
                s.dtype,
                s.against,
                _held(s),
                ", ".join(map(str, s.sizes)),
                ", ".join(f"{t * 1e3:.3g}" for t in s.seconds),
                f"{slope(s.sizes, s.seconds):.2f}",
                ", ".join(f"{v:.2f}" for v in neighbour_slopes(s.sizes, s.seconds)),
            ]
            parts.append("| " + " | ".join(cells) + " |")
        parts += ["", explanation(found)]
    else:
        parts.append("(The grid has no two points that differ in one size only.)")
    if mem is not None:
        parts += ["", *memory_lines(mem)]
    return "\n".join(parts) + "\n"


def plot(results: list[dict], mem: dict | None, path: Path) -> None:
    """Log-log: the manual pass's seconds against T, B and H (one line per series, its fitted
    slope in the legend), and the peak memory against T."""
    found = series(results)
    panels = [a for a in SIZES if any(s.against == a for s in found)]
    count = len(panels) + (mem is not None)
    if count == 0:
        return
    fig, axes = plt.subplots(1, count, figsize=(4.5 * count, 4), squeeze=False)
    for ax, against in zip(axes[0], panels, strict=False):
        for i, s in enumerate(x for x in found if x.against == against):
            ax.plot(
                s.sizes,
                s.seconds,
                "--" if s.dtype == "float64" else "-",
                marker="o",
                color=f"C{i}",
                label=f"{_held(s)}, {s.dtype}: slope {slope(s.sizes, s.seconds):.2f}",
            )
        ax.set(xscale="log", yscale="log", xlabel=against, ylabel="seconds per pass")
        ax.set_title(f"manual NumPy RNN: time against {against}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    if mem is not None:
        ax = axes[0][-1]
        ax.plot(mem["T"], np.array(mem["peak_bytes"]) / 2**20, marker="o", label="peak")
        ax.plot(mem["T"], np.array(mem["state_bytes"]) / 2**20, ":", label="one (T+1) x B x H")
        ax.set(xscale="log", yscale="log", xlabel="T", ylabel="MiB")
        ax.set_title(f"training pass memory (B {mem['B']}, H {mem['H']})", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, path)  # whole or not at all, as every figure the project writes
    plt.close(fig)
