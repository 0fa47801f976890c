"""The results as a markdown table, a JSON file and a plot."""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from .run import CELL, FUSED, MANUAL


def target(r: dict) -> tuple[float, str]:
    """The speed-up over the fastest torch CPU variant the issue asks for here, and met or not."""
    needed = 2.0 if r["H"] <= 64 else 1.0
    return needed, "yes" if r["speedup_vs_fastest_cpu"][0] >= needed else "**no**"


def _x(spread: list[float] | tuple[float, ...]) -> str:
    median, low, high = spread
    return f"{median:.2f}x ({low:.2f}-{high:.2f})"


def grid_table(results: list[dict]) -> str:
    """One row per grid point: throughputs, the manual speed-up, GFLOP/s and target."""
    gpu = sorted({n for r in results for n in r["samples_per_s"]} - {MANUAL, CELL, FUSED})
    head = ["dtype", "T", "B", "H", "manual k/s", "RNNCell loop k/s", "nn.RNN k/s"]
    head += [f"{n} k/s" for n in gpu]
    head += ["manual / fastest torch CPU, median (min-max)", "target", "met"]
    head += ["manual GFLOP/s", "of peak, median (min-max)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        rate = r["samples_per_s"]
        needed, met = target(r)
        cells = [r["dtype"], r["T"], r["B"], r["H"]]
        cells += [f"{rate[n] / 1e3:.3g}" for n in (MANUAL, CELL, FUSED, *gpu)]
        cells += [_x(r["speedup_vs_fastest_cpu"]), f">= {needed:g}x", met]
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
        "One forward + backward pass (loss and every gradient), tanh, thousands of sequences "
        "per second (k/s), median over interleaved rounds.",
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
    """Throughput against batch (T 8, H 16) and against hidden size (B 256, one panel per T)."""
    lengths = sorted({r["T"] for r in results if r["B"] == 256})
    fig, axes = plt.subplots(1, 1 + len(lengths), figsize=(4.5 * (1 + len(lengths)), 4))
    panels = [("B", lambda r: r["T"] == 8 and r["H"] == 16, "batch B (T 8, H 16)")]
    panels += [
        ("H", lambda r, T=T: r["T"] == T and r["B"] == 256, f"hidden H (B 256, T {T})")
        for T in lengths
    ]
    names = sorted({n for r in results for n in r["samples_per_s"]})
    for ax, (key, keep, label) in zip(axes, panels, strict=True):
        for dtype, style in (("float64", "--"), ("float32", "-")):
            rows = sorted(
                (r for r in results if keep(r) and r["dtype"] == dtype), key=lambda r: r[key]
            )
            for i, name in enumerate(names):
                ax.plot(
                    [r[key] for r in rows],
                    [r["samples_per_s"][name] for r in rows],
                    style,
                    marker="o",
                    color=f"C{i}",
                    label=f"{name}, {dtype}",
                )
        ax.set(xscale="log", yscale="log", xlabel=label, ylabel="sequences / s (fwd + bwd)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
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
