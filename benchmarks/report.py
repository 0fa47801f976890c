"""The results as a markdown table, a JSON file and a plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from rnn_manual.app.draw import save_png
from rnn_manual.files import atomic

from . import targets
from .manual_backends import MANUAL_CUPY, graph_name, torch_name
from .run import MANUAL, fused_name, gpu_target, loop_name


def _x(spread: list[float] | tuple[float, ...]) -> str:
    median, low, high = spread
    return f"{median:.2f}x ({low:.2f}-{high:.2f})"


def _columns(results: list[dict]) -> list[tuple[str, list[str]]]:
    """The throughput columns of the CPU grid's table: (label, each row's variant name). The
    CUDA and CuPy ones only where some row has them."""
    columns = [
        ("manual k/s", [MANUAL for r in results]),
        ("cell loop k/s", [loop_name(r["cell"]) for r in results]),
        ("fused k/s", [fused_name(r["cell"]) for r in results]),
        ("cell loop (CUDA) k/s", [loop_name(r["cell"], "cuda") for r in results]),
        ("fused (cuDNN) k/s", [fused_name(r["cell"], "cuda") for r in results]),
        ("manual torch CPU k/s", [torch_name("cpu") for r in results]),
        ("manual torch (CUDA) k/s", [torch_name("cuda") for r in results]),
        ("manual CuPy k/s", [MANUAL_CUPY for r in results]),
    ]
    return [
        (label, names)
        for label, names in columns
        if any(name in r["samples_per_s"] for name, r in zip(names, results, strict=True))
    ]


def _measured(target: targets.Target, r: dict) -> str:
    """A target's measured value at row r, with the backend for the best manual pass."""
    value = target.value(r)
    if value is None:
        return ""
    text = targets.show_spread(target, value)
    if target is targets.BEST:
        text += f", {BACKEND_NAMES.get(r['best_manual_cpu'], r['best_manual_cpu'])}"
    return text


#: How the best-manual column names the backend that ran it.
BACKEND_NAMES = {MANUAL: "NumPy", torch_name("cpu"): "torch"}


def grid_table(results: list[dict]) -> str:
    """One row per grid point: throughputs, the parts the manual pass split its batch into
    (where any point split), the manual pass against the manual pass on torch, its GFLOP/s,
    and each target's measured value, bound and verdict (targets.GRID_TARGETS)."""
    columns = _columns(results)
    on_torch = torch_name("cpu")
    versus_torch = any(on_torch in r["speedup"] for r in results)
    split = any(r.get("manual_parts", 1) > 1 for r in results)
    head = ["cell", "dtype", "T", "B", "H", *(label for label, _ in columns)]
    head += ["manual parts"] if split else []
    head += ["manual / manual torch CPU, median (min-max)"] if versus_torch else []
    head += ["manual GFLOP/s"]
    for target in targets.GRID_TARGETS:
        head += [target.column, "target", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(results):
        rate = r["samples_per_s"]
        cells = [r["cell"], r["dtype"], r["T"], r["B"], r["H"]]
        cells += [f"{rate[names[i]] / 1e3:.3g}" if names[i] in rate else "" for _, names in columns]
        if split:
            cells.append(r.get("manual_parts", ""))
        if versus_torch:
            cells.append(_x(r["speedup"][on_torch]) if on_torch in r["speedup"] else "")
        cells.append(f"{r['manual_gflops']:.3g}")
        for target in targets.GRID_TARGETS:
            cells += [_measured(target, r), *targets.verdict(target, r)]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def solve_table(solve: dict) -> str:
    """Time to solve 8-bit addition, each contender against the tutorial's script."""
    tutorial = solve.get("tutorial script", {}).get("median_seconds")
    startup = solve.get("python + numpy start-up", {}).get("median_seconds", 0.0)
    lines = [
        "| contender | median s | tutorial / this (net of start-up) | target | met "
        "| median steps | solved |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in solve.items():
        runs = s["runs"]
        steps = sorted(r["steps"] for r in runs if "steps" in r)
        solved = [r["solved"] for r in runs if "solved" in r]
        seconds = s["median_seconds"]
        ratio = ""
        if tutorial and name != "python + numpy start-up":
            ratio = f"{tutorial / seconds:.1f}x ({(tutorial - startup) / seconds:.1f}x)"
        bound, verdict = "", ""
        if name == "train" and tutorial:
            speedup = targets.solve_speedup(solve) or 0.0
            bound = f">= {targets.SOLVE_SPEEDUP:g}x"
            verdict = "yes" if speedup >= targets.SOLVE_SPEEDUP else "**no**"
        cells = [
            name,
            f"{seconds:.3f}",
            ratio,
            bound,
            verdict,
            str(steps[len(steps) // 2]) if steps else "",
            f"{sum(solved)}/{len(solved)}" if solved else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def threads_line(meta: dict) -> str:
    """ "threads: NumPy BLAS 2, torch 2, manual pass 2": what each library was allowed."""
    return (
        f"threads: NumPy BLAS {meta['blas_threads']}, torch {meta['torch_threads']}, "
        f"manual pass {meta['manual_threads']}"
    )


def markdown(meta: dict, results: list[dict], solve: dict | None) -> str:
    peak = ", ".join(f"{d} {g:.0f}" for d, g in meta["matmul_peak_gflops"].items())
    parts = [
        f"Machine: {meta['machine']}; {threads_line(meta)}; NumPy {meta['numpy']}, "
        f"torch {meta['torch']}; {meta['date']}.",
        f"2048 x 2048 matmul peak (best of 5), GFLOP/s: {peak}.",
        "",
        "One forward + backward pass (loss and every gradient), thousands of sequences per "
        "second (k/s), median over interleaved rounds. Manual: the hand-written BPTT on NumPy; "
        "cell loop: a Python loop over nn.RNNCell (tanh), nn.LSTMCell or nn.GRUCell; fused: "
        "nn.RNN, nn.LSTM or nn.GRU; manual torch CPU: the same hand-written BPTT run by torch "
        "on the CPU (model.to(torch)); manual parts (where some point has more than one): "
        "the parts the manual NumPy pass splits its batch into, one thread each. The torch "
        "CPU autograd variants are the cell loop and "
        "the fused layer; a speed-up over the fastest of them is taken round by round. The "
        "best manual pass is the manual one (NumPy or torch) with the smaller median time at "
        "the point. A target is met when the median of the rounds reaches it; - where it asks "
        "nothing.",
        "",
        grid_table(results),
    ]
    if solve is not None:
        parts += [
            "",
            "Time to solve 8-bit addition: train stopping when all 128 x 128 pairs are right "
            "(long_bits=0, the rule of the torch twin and the tutorial), and train's default "
            "run, which also makes random 1024-bit sums exact (not in the race):",
            "",
        ]
        if "tutorial script" not in solve:
            parts += [f"(The tutorial's script was not timed: {meta['tutorial_script']}.)", ""]
        parts.append(solve_table(solve))
    parts += ["", "Targets:", "", *targets.summary(results, solve)]
    return "\n".join(parts) + "\n"


def write_whole(path: Path, text: str) -> None:
    """Write text to path whole or not at all (files.atomic: a temporary file, renamed)."""

    def fill(f: IO[bytes]) -> None:
        f.write(text.encode())

    atomic.write(path, fill)


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
    save_png(fig, path)  # whole or not at all, as every figure the project writes
    plt.close(fig)


def section(name: str, threads: int) -> str:
    """The README's marker for a CPU run's section: "results, threads 1" (its table) or
    "scaling, threads 1" (how cost grows): each thread count has its own."""
    return f"{name}, threads {threads}"


def has_markers(readme: Path, marker: str) -> bool:
    """Whether the README holds both of the marker's lines."""
    text = readme.read_text()
    return f"<!-- {marker}: begin -->" in text and f"<!-- {marker}: end -->" in text


def replace_readme_table(readme: Path, text: str, marker: str) -> None:
    """Put text between the README's markers "<!-- {marker}: begin -->" and "... end -->",
    replacing what was there ("results, threads N": the CPU grid's table; "scaling, threads
    N": how cost grows; "gpu results": the GPU grid)."""
    begin, end = f"<!-- {marker}: begin -->", f"<!-- {marker}: end -->"
    old = readme.read_text()
    head, rest = old.split(begin, 1)
    _, tail = rest.split(end, 1)
    write_whole(readme, f"{head}{begin}\n{text}{end}{tail}")


def _gpu_names(device: str, cell: str = "rnn") -> dict[str, str]:
    """The GPU grid's variants by column: fused, cell loop, and the manual pass on torch and
    CuPy."""
    return {
        "fused": fused_name(cell, device),
        "cell loop": loop_name(cell, device),
        "manual torch": torch_name(device),
        "manual torch graph": graph_name(device),
        "manual CuPy": MANUAL_CUPY,
    }


def _gpu_cell(r: dict, name: str, value: str) -> str:
    """A table cell for variant `name`: `value` if it was timed, else why it was not."""
    if name in r["refused"]:
        return "refused"
    if name in r["disagree"]:
        return "disagrees"
    return value


def _gpu_met(r: dict, manual: list[str]) -> str:
    """Whether the faster manual pass (its median speed-up over the fused layer) meets the
    target; "refused" where every manual pass was refused."""
    medians = [r["speedup_vs_fused"][name][0] for name in manual if name in r["speedup_vs_fused"]]
    if not medians:
        return "refused" if any(name in r["refused"] for name in manual) else "-"
    return "yes" if max(medians) >= gpu_target(r) else "**no**"


def gpu_table(results: list[dict]) -> tuple[str, list[str]]:
    """The GPU grid's table (one row per point: throughputs, each manual pass's speed-up over
    the fused layer, target), and notes saying why a variant was not timed."""
    with_cupy = any(
        MANUAL_CUPY in {*r["samples_per_s"], *r["refused"], *r["disagree"]} for r in results
    )
    roles = ["fused", "cell loop", "manual torch", "manual torch graph"]
    roles += ["manual CuPy"] if with_cupy else []
    manual_roles = [role for role in roles if role.startswith("manual")]
    head = ["cell", "dtype", "T", "B", "H", *(f"{role} k/s" for role in roles)]
    head += [f"{role} / fused, median (min-max)" for role in manual_roles]
    head += ["target", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for r in results:
        names = _gpu_names(r["device"], r["cell"])
        rate, speedup = r["samples_per_s"], r["speedup_vs_fused"]
        cells = [r["cell"], r["dtype"], r["T"], r["B"], r["H"]]
        for role in roles:
            name = names[role]
            cells.append(_gpu_cell(r, name, f"{rate[name] / 1e3:.3g}" if name in rate else ""))
        for role in manual_roles:
            name = names[role]
            cells.append(_gpu_cell(r, name, _x(speedup[name]) if name in speedup else ""))
        cells += [f">= {gpu_target(r):g}x", _gpu_met(r, [names[m] for m in manual_roles])]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        where = f"{r['cell']} {r['dtype']} T {r['T']} B {r['B']} H {r['H']}"
        for name, why in {**r["refused"], **r["disagree"]}.items():
            notes.append(f"- {where}, {name}: {why}.")
        if r["checked_against"] != MANUAL:
            notes.append(f"- {where}: checked against {r['checked_against']} instead.")
    return "\n".join(lines), notes


def gpu_markdown(meta: dict, results: list[dict]) -> str:
    """The GPU grid's report: the machine, what the columns are, the table and its notes."""
    names = _gpu_names(meta["device"])
    table, notes = gpu_table(results)
    parts = [
        f"Machine: {meta['machine']}; torch {meta['torch']} (CUDA {meta['cuda']}, cuDNN "
        f"{meta['cudnn']}); CuPy {meta['cupy']}; NumPy {meta['numpy']}; {meta['date']}.",
        "",
        f"One forward + backward pass (loss and every gradient) on {meta['device']}, thousands "
        "of sequences per second (k/s), median over interleaved rounds, every pass checked "
        f"against the manual NumPy pass first. Fused: {names['fused']}; cell loop: "
        f"{names['cell loop']}; manual torch: rnn_manual's hand-written BPTT run by torch "
        f"there ({names['manual torch']}); manual torch graph: the same pass captured once "
        "as a CUDA graph and replayed (rnn_torch.graphs); manual CuPy: the same run by CuPy. "
        "A speed-up is the fused layer's time over the manual pass's, round by round. "
        "Target: the manual pass at least as fast as the fused layer, 3x at batch 65536; met "
        "by the faster of the manual passes.",
        "",
        table,
    ]
    if notes:
        parts += ["", "Not timed, or checked otherwise:", "", *notes]
    return "\n".join(parts) + "\n"
