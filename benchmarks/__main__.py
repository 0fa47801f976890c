"""python -m benchmarks [--quick | --gpu | --text | --blas] [--threads N] [--out DIR] [--readme]

Pins NumPy's BLAS, torch and the manual pass's thread pool to the same number of threads
before NumPy or torch is imported, runs the grid and the race to solve 8-bit addition,
prints the markdown table and how cost grows, and writes results.json, throughput.png and
scaling.png (and with --readme, the table and the scaling section into benchmarks/README.md,
in the sections for that many threads). With --gpu, runs the GPU grid instead (it needs
CUDA) and writes gpu.md and gpu.json. With --text, runs the character task instead
(text.py: min-char-rnn's algorithm, the fast cells and PyTorch, for the same time each) and
writes text.md and text.json. With --blas, times the main job and a large pass with NumPy's
BLAS at its default and pinned to one thread, as found and with a core kept busy (blas.py),
and writes blas.md and blas.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: The tutorial's script, beside the repository (../shared/seed), when it is there.
TUTORIAL = HERE.parent.parent / "shared" / "seed" / "seed_rnn.py"
#: Where the files go by default: the CPU grid's in threads-N/ below, one folder per
#: thread count, so that the runs at 1 and 2 threads keep their own.
RESULTS = HERE / "results"
README = HERE / "README.md"
#: Most threads --threads takes: rnn_manual.core.threads.MAX_THREADS, which cannot be
#: imported before the BLAS variables are set (it imports NumPy); a test holds them equal.
MAX_THREADS = 256
#: Seeds timed to solve 8-bit addition: the full run's, and --quick's.
SEEDS, QUICK_SEEDS = 5, 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=" ".join(__doc__.split("\n\n")[1].split())
    )
    parser.add_argument("--quick", action="store_true", help="tiny grid, one seed: under a minute")
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="threads for NumPy's BLAS, for torch and for the manual pass's pool "
        "(default: the cores this process may use)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the files (default: benchmarks/results/threads-N, with --gpu "
        "benchmarks/results)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help=f"seeds for the time to solve (default {SEEDS}, with --quick {QUICK_SEEDS})",
    )
    parser.add_argument("--no-solve", action="store_true", help="skip the time to solve")
    parser.add_argument(
        "--tutorial",
        type=Path,
        default=None,
        help="the tutorial's seed_rnn.py (default: ../shared/seed)",
    )
    parser.add_argument("--readme", action="store_true", help="also put the table in README.md")
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="the GPU grid instead: the manual pass on CUDA against cuDNN (needs CUDA)",
    )
    parser.add_argument(
        "--text",
        action="store_true",
        help="the character task instead: chars/s and held-out loss in a fixed time per way "
        "(20 s each, 2 s with --quick)",
    )
    parser.add_argument(
        "--blas",
        action="store_true",
        help="BLAS threads instead: the main job and a large pass with NumPy's BLAS at its "
        "default and pinned to one thread, as found and with a core kept busy",
    )
    args = parser.parse_args(argv)
    if args.gpu + args.text + args.blas > 1:
        parser.error("--gpu, --text and --blas do not combine")
    if not 1 <= args.threads <= MAX_THREADS:
        parser.error(f"--threads must be from 1 to {MAX_THREADS}, got {args.threads}")
    if args.seeds is not None and (args.no_solve or args.gpu or args.text or args.blas):
        parser.error("--seeds is for the time to solve, which this run does not time")
    if args.seeds is not None and args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.seeds is None:
        args.seeds = QUICK_SEEDS if args.quick else SEEDS
    if args.gpu and args.quick:
        parser.error("--gpu and --quick do not combine: the GPU grid is short already")
    if args.out is None and args.blas:
        args.out = RESULTS / "blas"
    elif args.out is None:
        args.out = RESULTS if args.gpu else RESULTS / f"threads-{args.threads}"
    return args


def gpu_meta(device: str) -> dict[str, Any]:
    """What the GPU grid ran on: the machine, the GPU, and the libraries' versions."""
    import numpy as np
    import torch

    from .manual_backends import cupy_or_none

    cupy = cupy_or_none()
    gpu = torch.cuda.get_device_name() if device != "cpu" else "none"
    return {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"GPU {gpu}",
        "device": device,
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none",
        "cudnn": torch.backends.cudnn.version() if device != "cpu" else "none",
        "cupy": cupy.__version__ if cupy is not None else "not installed",
        "numpy": np.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def gpu_run(
    out: Path,
    readme: Path | None,
    log: Callable[[str], object],
    device: str = "cuda",
    points: list | None = None,
) -> None:
    """The GPU grid (run.gpu_grid, or `points`) on `device`: gpu.md and gpu.json in `out`,
    rewritten after every point; the table on stdout and, given `readme`, between its "gpu
    results" markers. device="cpu" runs the same path on the CPU, for the tests."""
    from . import report, run

    meta = gpu_meta(device)

    def save(results: list[dict]) -> str:
        text = report.gpu_markdown(meta, results)
        report.write_whole(out / "gpu.md", text)
        report.write_json(out / "gpu.json", {"meta": meta, "grid": results})
        return text

    # GPU timings are steady: 5 rounds of 20 ms samples, meant to keep the run well within
    # the few minutes of a borrowed GPU (not yet measured on one).
    results = run.run_gpu_grid(
        points or run.gpu_grid(),
        rounds=5,
        min_sample=0.02,
        budget=10,
        log=log,
        device=device,
        after=save,
    )
    text = save(results)
    print(text)
    if readme is not None:
        report.replace_readme_table(readme, text, "gpu results")


def text_run(args: argparse.Namespace, log: Callable[[str], object]) -> None:
    """The character task: text.md and text.json in args.out; the table on stdout and, with
    --readme, in README.md's "text, threads N" section."""
    import numpy as np
    import torch

    from . import report, text

    meta = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "blas_threads": int(os.environ["OPENBLAS_NUM_THREADS"]),
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    results = text.run_text(2.0 if args.quick else 20.0, log)
    table = text.markdown(meta, results)
    print(table)
    report.write_json(args.out / "text.json", {"meta": meta, **results})
    report.write_whole(args.out / "text.md", table)
    section = report.section("text", args.threads)
    if args.readme and report.has_markers(README, section):
        report.replace_readme_table(README, table, section)


def blas_run(args: argparse.Namespace) -> int:
    """BLAS threads (blas.py): blas.md and blas.json in args.out; the table on stdout and,
    with --readme, in README.md's "blas" section."""
    from . import blas, report

    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"error: cannot make {args.out}: {error.strerror}", file=sys.stderr)
        return 2
    meta = blas.machine()
    found = blas.measure(blas.jobs(args.quick), 1 if args.quick else 3, log)
    table = blas.markdown(meta, found)
    print(table)
    report.write_json(args.out / "blas.json", {"meta": meta, "seconds": found})
    report.write_whole(args.out / "blas.md", table)
    if args.readme:
        report.replace_readme_table(README, table, "blas")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.blas:
        return blas_run(args)
    tutorial = args.tutorial or TUTORIAL
    if args.gpu:
        tutorial = None  # the GPU grid has no time to solve
    elif not tutorial.is_file():
        if args.tutorial is not None:
            print(f"error: no tutorial script at {tutorial}", file=sys.stderr)
            return 2
        print(f"note: no tutorial script at {tutorial}; its time to solve is skipped")
        tutorial = None

    if "numpy" in sys.modules:
        print("error: run as `python -m benchmarks`, before NumPy is imported", file=sys.stderr)
        return 2
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # read by the BLAS libraries when they load

    import numpy as np
    import torch

    from rnn_manual.core import threads

    from . import report, run, scaling, solve

    torch.set_num_threads(args.threads)
    threads.set_threads(args.threads)  # the manual NumPy pass's pool: like for like
    table_section = report.section("results", args.threads)
    if args.readme and not args.gpu and not report.has_markers(README, table_section):
        print(
            f"error: {README.name} has no section for --threads {args.threads} (its markers "
            f"'<!-- {table_section}: begin -->' and '... end -->')",
            file=sys.stderr,
        )
        return 2
    if args.gpu and not torch.cuda.is_available():
        print("error: --gpu needs CUDA, and torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    # On a GPU, float32 is to mean float32, not TensorFloat-32 (cuDNN's default for RNNs).
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"error: cannot make {args.out}: {error.strerror}", file=sys.stderr)
        return 2
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.gpu:
        gpu_run(args.out, README if args.readme else None, log)
        return 0
    if args.text:
        text_run(args, log)
        return 0
    meta = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
        + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""),
        "blas_threads": int(os.environ["OPENBLAS_NUM_THREADS"]),
        "torch_threads": torch.get_num_threads(),
        # What the pool says, not what was asked: the test that --threads reaches it reads this.
        "manual_threads": threads.threads(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "quick": args.quick,
        "tutorial_script": str(tutorial) if tutorial else f"not found at {TUTORIAL}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "matmul_peak_gflops": run.peaks(),
    }
    print(report.threads_line(meta))
    if args.quick:
        results = run.run_grid(
            run.grid(quick=True), rounds=3, min_sample=0.005, budget=1.0, log=log
        )
    else:
        results = run.run_grid(run.grid(quick=False), rounds=7, min_sample=0.05, budget=40, log=log)
    solved = None
    if not args.no_solve:
        seeds = list(range(args.seeds))
        # --quick times the tutorial (5 s) only when asked to with --tutorial.
        solved = solve.time_to_solve(seeds, None if args.quick and not args.tutorial else tutorial)
    memory = scaling.memory()
    text = report.markdown(meta, results, solved)
    growth = scaling.markdown(meta, results, memory)
    print(text)
    print(growth)
    report.write_json(
        args.out / "results.json",
        {"meta": meta, "grid": results, "solve": solved, "memory": memory},
    )
    report.plot(results, args.out / "throughput.png")
    scaling.plot(results, memory, args.out / "scaling.png")
    report.write_whole(args.out / "results.md", text)
    report.write_whole(args.out / "scaling.md", growth)
    if args.readme:
        report.replace_readme_table(README, text, table_section)
        # The README shows how cost grows for the thread counts it has a section for.
        growth_section = report.section("scaling", args.threads)
        if report.has_markers(README, growth_section):
            report.replace_readme_table(README, growth, growth_section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
