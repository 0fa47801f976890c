"""The results as a markdown table, a JSON file and a plot."""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from .run import MANUAL, fused_name, loop_name


def target(r: dict) -> tuple[str, str]:
    """The speed-up over the fastest torch CPU variant the issue asks for here, and met or not;
    "-" for the gated cells, which have no target."""
    if r["cell"] != "rnn":
        return "-", "-"
    needed = 2.0 if r["H"] <= 64 else 1.0
    return f">= {needed:g}x", "yes" if r["speedup_vs_fastest_cpu"][0] >= needed else "**no**"


def _x(spread: list[float] | tuple[float, ...]) -> str:
    median, low, high = spread
    return f"{median:.2f}x ({low:.2f}-{high:.2f})"


def grid_table(results: list[dict]) -> str:
    """One row per grid point: throughputs, the manual speed-up, GFLOP/s and target."""
    gpu = any(loop_name(r["cell"], "cuda") in r["samples_per_s"] for r in results)
    head = ["cell", "dtype", "T", "B", "H", "manual k/s", "cell loop k/s", "fused k/s"]
    head += ["cell loop (CUDA) k/s", "fused (cuDNN) k/s"] if gpu else []
    head += ["manual / fastest torch CPU, median (min-max)", "target", "met"]
    head += ["manual GFLOP/s", "of peak, median (min-max)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        rate, cell = r["samples_per_s"], r["cell"]
        names = [MANUAL, loop_name(cell), fused_name(cell)]
        names += [loop_name(cell, "cuda"), fused_name(cell, "cuda")] if gpu else []
        cells = [cell, r["dtype"], r["T"], r["B"], r["H"]]
        cells += [f"{rate[n] / 1e3:.3g}" for n in names]
        cells += [_x(r["speedup_vs_fastest_cpu"]), *target(r)]
        cells.append(f"{r['manual_gflops']:.3g}")
        if "fraction_of_peak" in r:
            median, low, high = r["fraction_of_peak"]
            cells.append(f"{median:.0%} ({low:.0%}-{high:.0%})")
        else:
            cells.append("")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def solve_table(solve: dict) -> str:
    """Time to solve 8-bit addition, each contender against the tutorial's script."""
    tutorial = solve.get("tutorial script", {}).get("median_seconds")
    startup = solve.get("python + numpy start-up", {}).get("median_seconds", 0.0)
    lines = [
        "| contender | median s | tutorial / this (net of start-up) | median steps | solved |",
        "|---|---|---|---|---|",
    ]
    for name, s in solve.items():
        runs = s["runs"]
        steps = sorted(r["steps"] for r in runs if "steps" in r)
        solved = [r["solved"] for r in runs if "solved" in r]
        seconds = s["median_seconds"]
        ratio = ""
        if tutorial and name != "python + numpy start-up":
            ratio = f"{tutorial / seconds:.1f}x ({(tutorial - startup) / seconds:.1f}x)"
        cells = [
            name,
            f"{seconds:.3f}",
            ratio,
            str(steps[len(steps) // 2]) if steps else "",
            f"{sum(solved)}/{len(solved)}" if solved else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(meta: dict, results: list[dict], solve: dict | None) -> str:
    peak = ", ".join(f"{d} {g:.0f}" for d, g in meta["matmul_peak_gflops"].items())
    parts = [
        f"Machine: {meta['machine']}; threads: NumPy BLAS {meta['blas_threads']}, "
        f"torch {meta['torch_threads']}; NumPy {meta['numpy']}, torch {meta['torch']}.",
        f"2048 x 2048 matmul peak (best of 5), GFLOP/s: {peak}.",
        "",
        "One forward + backward pass (loss and every gradient), thousands of sequences per "
        "second (k/s), median over interleaved rounds. Cell loop: a Python loop over "
        "nn.RNNCell (tanh), nn.LSTMCell or nn.GRUCell; fused: nn.RNN, nn.LSTM or nn.GRU. "
        "The issue's targets are for the RNN; the gated cells have none (-).",
        "",
        grid_table(results),
    ]
    if solve is not None:
        parts += ["", "Time to solve 8-bit addition (all 128 x 128 pairs right):", ""]
        if "tutorial script" not in solve:
            parts += [f"(The tutorial's script was not timed: {meta['tutorial_script']}.)", ""]
        parts.append(solve_table(solve))
    return "\n".join(parts) + "\n"


def write_whole(path: Path, text: str) -> None:
    """Write text to path all at once: a temporary file renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    write_whole(path, json.dumps(data, indent=1) + "\n")


def plot(results: list[dict], path: Path) -> None:
    """Throughput of the RNN against batch (T 8, H 16) and against hidden size (B 256, one
    panel per T), and of each gated cell against batch (T 8, H 16)."""
    rnn = [r for r in results if r["cell"] == "rnn"]
    lengths = sorted({r["T"] for r in rnn if r["B"] == 256})
    gated = [c for c in ("lstm", "gru") if any(r["cell"] == c for r in results)]
    panels = [("B", [r for r in rnn if r["T"] == 8 and r["H"] == 16], "RNN: batch B (T 8, H 16)")]
    panels += [
        ("H", [r for r in rnn if r["T"] == T and r["B"] == 256], f"RNN: hidden H (B 256, T {T})")
        for T in lengths
    ]
    panels += [
        (
            "B",
            [r for r in results if r["cell"] == c and r["T"] == 8 and r["H"] == 16],
            f"{c.upper()}: batch B (T 8, H 16)",
        )
        for c in gated
    ]
    panels = [panel for panel in panels if panel[1]]  # an empty panel would have no legend
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False)
    for ax, (key, rows, label) in zip(axes[0], panels, strict=True):
        names = sorted({n for r in rows for n in r["samples_per_s"]})
        for dtype, style in (("float64", "--"), ("float32", "-")):
            line = sorted((r for r in rows if r["dtype"] == dtype), key=lambda r: r[key])
            for i, name in enumerate(names):
                ax.plot(
                    [r[key] for r in line],
                    [r["samples_per_s"][name] for r in line],
                    style,
                    marker="o",
                    color=f"C{i}",
                    label=f"{name}, {dtype}",
                )
        ax.set(xscale="log", yscale="log", xlabel=label, ylabel="sequences / s (fwd + bwd)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def replace_readme_table(readme: Path, text: str) -> None:
    """Put text between the README's results markers, replacing what was there."""
    begin, end = "<!-- results: begin -->", "<!-- results: end -->"
    old = readme.read_text()
    head, rest = old.split(begin, 1)
    _, tail = rest.split(end, 1)
    write_whole(readme, f"{head}{begin}\n{text}{end}{tail}")
