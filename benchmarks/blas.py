"""BLAS threads: the main job and a large pass with NumPy's BLAS left at its default (every
core, as every user has it) and pinned to one thread (OPENBLAS_NUM_THREADS=1), on the
machine as it is ("as found") and with one more process keeping a core busy ("one core
busy").

BLAS reads its thread count when it loads, so every run is a process of its own. The runs
are interleaved: each round runs every job at both settings, in a rotating order, and a
ratio (default over pinned) is taken round by round, its median and range reported. A
ratio near 1 says that the project's threads do not depend on how BLAS was started
(rnn_manual/core/threads.py holds BLAS to the threads it chose inside every pass).

    python -m benchmarks --blas [--quick] [--readme]
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The variables through which BLAS libraries take their thread count when they load.
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: The two settings compared: BLAS as it starts by itself, and held to one thread.
SETTINGS = {"default": {}, "pinned": {"OPENBLAS_NUM_THREADS": "1"}}
#: A process that keeps one core busy for as long as it runs.
BUSY = [sys.executable, "-c", "while True: pass"]


@dataclass(frozen=True)
class Job:
    """One thing timed: a command, the seconds it reports or its wall time, and its
    environment on top of the settings'."""

    name: str
    command: list[str]
    env: dict[str, str]
    reports_seconds: bool  # the command prints its own seconds (a pass's), else wall time


def pass_command(cell: str, batch: int, seconds: float) -> list[str]:
    """The command that times one cell's training pass (loss_and_grads) at T 8, H 16."""
    return [sys.executable, "-m", "benchmarks.blas", cell, str(batch), str(seconds)]


def jobs(quick: bool) -> list[Job]:
    """The main job (`train --cell lstm`, report included), and the LSTM's pass over a batch
    of 4096, split as the project splits it and on one thread in all (RNN_MANUAL_THREADS=1)."""
    train = [sys.executable, "-m", "rnn_manual", "train", "--cell", "lstm", "--quiet"]
    if quick:
        train += ["--steps", "20", "--long-bits", "0"]
    seconds = 0.2 if quick else 1.0
    return [
        Job("train --cell lstm", train, {}, False),
        Job("lstm pass, B 4096", pass_command("lstm", 4096, seconds), {}, True),
        Job(
            "lstm pass, B 4096, RNN_MANUAL_THREADS=1",
            pass_command("lstm", 4096, seconds),
            {"RNN_MANUAL_THREADS": "1"},
            True,
        ),
    ]


def environment(setting: str, job: Job) -> dict[str, str]:
    """This process's environment without any BLAS thread variable, then the setting's and
    the job's variables."""
    env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    env.pop("RNN_MANUAL_THREADS", None)
    return {**env, **SETTINGS[setting], **job.env, "PYTHONPATH": str(ROOT)}


def run_once(job: Job, setting: str, folder: Path) -> float:
    """Seconds of one run of the job at the setting (RuntimeError if it fails)."""
    start = time.perf_counter()
    done = subprocess.run(
        job.command,
        cwd=folder,
        env=environment(setting, job),
        capture_output=True,
        text=True,
        timeout=600,
    )
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):  # train: 1 when the budget ran out (--quick)
        raise RuntimeError(f"{job.name} ({setting}) failed: {done.stderr.strip()[-300:]}")
    return float(done.stdout.split()[-1]) if job.reports_seconds else wall


def rounds_of(
    job_list: list[Job], rounds: int, folder: Path, log: Callable[[str], object]
) -> dict[str, dict[str, list[float]]]:
    """{job: {setting: seconds per round}}, every job at both settings in each round, in a
    rotating order."""
    runs = [(job, setting) for job in job_list for setting in SETTINGS]
    seconds: dict[str, dict[str, list[float]]] = {
        job.name: {s: [] for s in SETTINGS} for job in job_list
    }
    for r in range(rounds):
        for job, setting in runs[r % len(runs) :] + runs[: r % len(runs)]:
            took = run_once(job, setting, folder)
            seconds[job.name][setting].append(took)
            log(f"  round {r + 1}: {job.name}, BLAS {setting}: {took:.3f} s")
    return seconds


def measure(
    job_list: list[Job], rounds: int, log: Callable[[str], object]
) -> dict[str, dict[str, dict[str, list[float]]]]:
    """{condition: rounds_of(...)} for the machine as found and with one core kept busy;
    the jobs run in a scratch folder (train writes nothing there, but a job might)."""
    found: dict[str, dict[str, dict[str, list[float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="rnn-manual-blas-") as scratch:
        folder = Path(scratch)
        log("as found:")
        found["as found"] = rounds_of(job_list, rounds, folder, log)
        log("one core busy:")
        busy = subprocess.Popen(BUSY)
        try:
            found["one core busy"] = rounds_of(job_list, rounds, folder, log)
        finally:
            busy.kill()
            busy.wait()
    return found


def machine() -> dict[str, object]:
    """The machine and its NumPy: cores, load, SIMD extensions found, and the BLAS with the
    threads it starts with (read in a process without BLAS variables)."""
    probe = (
        "import json, numpy, threadpoolctl\n"
        "from numpy._core._multiarray_umath import __cpu_features__ as f\n"
        "blas = [i for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas']\n"
        "print(json.dumps({'numpy': numpy.__version__, 'avx512': bool(f.get('AVX512F')),"
        " 'blas': [f\"{i['internal_api']} {i['version']}, {i['num_threads']} threads\""
        " for i in blas]}))"
    )
    env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        **json.loads(done.stdout),
    }


def spread(values: list[float]) -> str:
    """ "1.02x (0.95-1.10)": the median and range of ratios."""
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def markdown(meta: dict, found: dict[str, dict[str, dict[str, list[float]]]]) -> str:
    """The table: per condition and job, median seconds at each setting and the ratio."""
    load = ", ".join(f"{x:.2f}" for x in meta["load"])
    lines = [
        f"{meta['machine']}, NumPy {meta['numpy']} (AVX-512: "
        f"{'yes' if meta['avx512'] else 'no'}), BLAS {'; '.join(meta['blas'])} by default; "
        f"load average at the start {load}; {meta['date']}.",
        "",
        "| machine | job | BLAS default, s | BLAS pinned to 1, s | default / pinned, "
        "median (min-max) |",
        "|---|---|---:|---:|---:|",
    ]
    for condition, by_job in found.items():
        for job, seconds in by_job.items():
            ratios = [d / p for d, p in zip(seconds["default"], seconds["pinned"], strict=True)]
            lines.append(
                f"| {condition} | {job} | {statistics.median(seconds['default']):.3g} | "
                f"{statistics.median(seconds['pinned']):.3g} | {spread(ratios)} |"
            )
    return "\n".join(lines) + "\n"


def time_pass(cell: str, batch: int, seconds: float) -> float:
    """Median seconds of the cell's loss_and_grads at T 8, H 16 over `batch` sums, over
    enough calls to last about `seconds` (at least 3), after one to warm up."""
    import numpy as np

    from rnn_manual.cells import CELLS
    from rnn_manual.training.bits import random_addition_batch

    model = CELLS[cell](2, 16, 1)
    x, y = random_addition_batch(np.random.default_rng(0), batch, 8)
    model.loss_and_grads(x, y)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        model.loss_and_grads(x, y)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


if __name__ == "__main__":  # a child of the benchmark: CELL BATCH SECONDS
    print(f"{time_pass(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])):.6f}")
