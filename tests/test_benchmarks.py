"""Smoke test of the benchmark harness: `python -m benchmarks --quick` produces its outputs;
its torch baselines, and the manual pass run by torch, compute the manual models' gradients,
for every cell; and the GPU grid's whole path runs on the CPU (device="cpu").

No timing is asserted; only that every output is written, complete and consistent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")


def run_harness(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=None if env is None else {**os.environ, **env},
    )


def test_quick_run_writes_table_json_and_plot(tmp_path: Path) -> None:
    tutorial = tmp_path / "tutorial.py"  # a stand-in: the real script takes 5 s
    tutorial.write_text("print('done')\n")
    # The pool's own setting (3) must give way to --threads: like for like with BLAS and torch.
    done = run_harness(
        "--quick",
        "--threads",
        "1",
        "--out",
        str(tmp_path),
        "--tutorial",
        str(tutorial),
        env={"RNN_MANUAL_THREADS": "3"},
    )
    assert done.returncode == 0, done.stderr

    results = json.loads((tmp_path / "results.json").read_text())
    meta = results["meta"]
    assert meta["blas_threads"] == meta["torch_threads"] == meta["manual_threads"] == 1
    assert "threads: NumPy BLAS 1, torch 1, manual pass 1;" in done.stdout
    grid = results["grid"]
    assert {(r["cell"], r["T"], r["B"], r["H"], r["dtype"]) for r in grid} == {
        (cell, 8, B, H, d)
        for cell, shapes in (
            ("rnn", ((1, 16), (32, 16), (256, 16), (256, 64))),
            ("lstm", ((32, 16),)),
            ("gru", ((32, 16),)),
        )
        for B, H in shapes
        for d in ("float64", "float32")
    }
    names = {
        "rnn": {"torch RNNCell loop", "torch nn.RNN"},
        "lstm": {"torch LSTMCell loop", "torch nn.LSTM"},
        "gru": {"torch GRUCell loop", "torch nn.GRU"},
    }
    for r in grid:
        assert set(r["samples_per_s"]) >= {"manual NumPy", "manual torch CPU", *names[r["cell"]]}
        assert all(rate > 0 for rate in r["samples_per_s"].values())
        median, low, high = r["speedup_vs_fastest_cpu"]
        assert 0 < low <= median <= high
        median, low, high = r["speedup"]["manual torch CPU"]
        assert 0 < low <= median <= high
        median, low, high = r["best_vs_fastest_cpu"]
        assert 0 < low <= median <= high
        assert r["best_manual_cpu"] in {"manual NumPy", "manual torch CPU"}
        assert r["max_grad_rel_error"] < (1e-12 if r["dtype"] == "float64" else 1e-4)
    from benchmarks.solve import DEFAULT_TRAIN

    solve = results["solve"]
    for name in ("train", "torch autograd train", DEFAULT_TRAIN):
        assert solve[name]["runs"][0]["solved"], name
    assert solve["tutorial script"]["median_seconds"] > 0
    memory = results["memory"]
    assert memory["T"] == [8, 32, 128, 512]
    pairs = zip(memory["peak_bytes"], memory["state_bytes"], strict=True)
    assert all(peak >= state > 0 for peak, state in pairs)

    table = (tmp_path / "results.md").read_text()
    assert table in done.stdout
    lines = table.splitlines()
    head = next(line for line in lines if line.startswith("| cell |")).split(" | ")
    assert "manual torch CPU k/s" in head
    assert "manual / manual torch CPU, median (min-max)" in head
    targets = [i for i, label in enumerate(head) if label == "target"]
    assert len(targets) == 3  # manual NumPy, best manual, peak
    rows = [line.split(" | ") for line in lines if " | float" in line]
    assert [row[0].strip("| ") for row in rows] == [r["cell"] for r in grid]
    # The manual NumPy target is the RNN's: a gated row shows none; the best manual pass
    # has one everywhere; the peak's is at hidden 1024 only, not in the quick grid.
    assert all((row[targets[0]] == "-") == (row[0] != "| rnn") for row in rows)
    assert all(row[targets[1]] == ">= 1.5x" for row in rows)
    assert all(row[targets[2]] == "-" for row in rows)
    assert "| train | " in table and "| tutorial script |" in table
    assert "| >= 50x |" in table and "\nTargets:\n" in table

    growth = (tmp_path / "scaling.md").read_text()
    assert growth in done.stdout
    assert "| float64 | B | T 8, H 16 | 1, 32, 256 |" in growth
    assert "fitted slope against T" in growth

    for name in ("throughput.png", "scaling.png"):
        png = (tmp_path / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert not list(tmp_path.glob("*.tmp"))


def test_usage_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    for args in (
        ["--threads", "0"],
        ["--tutorial", str(tmp_path / "missing.py")],
        ["--threads", "3", "--readme"],  # the README has sections for 1 and 2 threads only
    ):
        done = run_harness("--quick", "--out", str(tmp_path), *args)
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        assert "error" in done.stderr.strip().splitlines()[-1]
    assert "no section for --threads 3" in done.stderr
    assert not list(tmp_path.iterdir())


def test_help_describes_the_harness_in_whole_sentences(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--help once stopped mid-sentence ("... before either is imported, runs")."""
    from benchmarks.__main__ import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "before NumPy or torch is imported, runs the grid and the race to solve" in text
    assert "and with --readme, the table and the scaling section into" in text
    assert "writes gpu.md and gpu.json." in text


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_baselines_give_the_manual_gradients(cell: str, dtype: str) -> None:
    """Both torch baselines pass the harness's own check against the manual loss_and_grads
    (every weight, x, h0 and the LSTM's c0); with two gates (or, for the RNN, the input and
    recurrent weights) swapped in the model they copy, both fail it."""
    from benchmarks import run, torch_models

    rng = np.random.default_rng(1)
    model = run.make_model(cell, 5, np.dtype(dtype), rng)
    x = rng.integers(0, 2, (4, 3, 2)).astype(dtype)
    y = rng.integers(0, 2, (4, 3, 1)).astype(dtype)
    manual = model.loss_and_grads(x, y, "mse")
    builds = (torch_models.cell_loop, torch_models.fused)
    for build in builds:
        result = torch_models.as_manual_grads(model, build(model, x, y)())
        assert set(result[1]) == set(manual[1])
        run.check_same(manual, result, dtype)

    # Plant a wrong weight in the model the baselines copy: W_hh transposed in the RNN, two
    # gates' recurrent weights swapped in the LSTM (forget, candidate) and GRU (reset, candidate).
    p = model.params
    if cell == "rnn":
        p["W_hh"][...] = p["W_hh"].T.copy()
    else:
        a, b = ("W_hf", "W_hg") if cell == "lstm" else ("W_hr", "W_hn")
        p[a][...], p[b][...] = p[b].copy(), p[a].copy()
    for build in builds:
        with pytest.raises(AssertionError, match="gradients differ"):
            run.check_same(manual, torch_models.as_manual_grads(model, build(model, x, y)()), dtype)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_manual_pass_on_torch_gives_the_manual_gradients(cell: str, dtype: str) -> None:
    """The manual pass run by torch on the CPU (a moved copy, fed tensors made once) passes
    the check against the NumPy pass, whose model stays NumPy; one gradient off by 1e-3 of
    its size does not pass."""
    from benchmarks import manual_backends, run

    rng = np.random.default_rng(2)
    model = run.make_model(cell, 5, np.dtype(dtype), rng)
    x = rng.integers(0, 2, (4, 3, 2)).astype(dtype)
    y = rng.integers(0, 2, (4, 3, 1)).astype(dtype)
    on_torch = manual_backends.manual_passes(model, x, y, "cpu")["manual torch CPU"]
    loss, grads = on_torch()
    assert isinstance(grads["h0"], torch.Tensor)
    assert all(isinstance(w, np.ndarray) for w in model.params.values())
    manual = model.loss_and_grads(x, y, "mse")
    result = manual_backends.as_numpy((loss, grads))
    assert set(result[1]) == set(manual[1])
    assert run.check_same(manual, result, dtype) < (1e-12 if dtype == "float64" else 1e-4)

    name = next(iter(result[1]))
    result[1][name] = result[1][name] * (1 + 1e-3)
    with pytest.raises(AssertionError, match="gradients differ"):
        run.check_same(manual, result, dtype)


def perturbed(passes: dict[str, Callable[[], tuple]]) -> dict[str, Callable[[], tuple]]:
    """The passes, each returning its "h0" gradient 1% too large."""

    def wrong(one_pass: Callable[[], tuple]) -> Callable[[], tuple]:
        def call() -> tuple:
            loss, grads = one_pass()
            return loss, {**grads, "h0": grads["h0"] * 1.01}

        return call

    return {name: wrong(p) for name, p in passes.items()}


def test_cpu_grid_refuses_a_manual_pass_that_disagrees(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import manual_backends, run

    make = manual_backends.manual_passes
    monkeypatch.setattr(manual_backends, "manual_passes", lambda *a: perturbed(make(*a)))
    with pytest.raises(AssertionError, match="gradients differ"):
        run.measure(run.Point("rnn", 3, 2, 4, "float64"), rounds=1, min_sample=0, budget=0)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """torch on one thread for the test: two threads on a busy 2-core machine crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_gpu_grid_is_the_issues_points_and_the_big_one_is_over_the_cap() -> None:
    from benchmarks import run
    from rnn_manual.core.limits import check_elements

    assert [(p.cell, p.dtype, p.T, p.B, p.H) for p in run.gpu_grid()] == [
        ("rnn", "float32", 8, 256, 16),
        ("rnn", "float32", 8, 65536, 16),
        ("rnn", "float32", 128, 256, 64),
        ("rnn", "float32", 128, 4096, 1024),
        ("rnn", "float64", 8, 256, 256),
    ]
    with pytest.raises(ValueError, match="more than the limit"):
        check_elements("a pass", 128 + 1, 4096, 1024)
    assert [run.gpu_target(p) for p in run.gpu_grid()] == [1, 3, 1, 1, 1]


def test_gpu_grid_path_runs_on_the_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_torch_thread: None
) -> None:
    """The whole --gpu path with device="cpu" and tiny points: files written after each point,
    the README's GPU section replaced and its CPU table left alone; a point over the size cap
    (lowered here) is refused with the library's reason, its baselines checked against the
    cell loop and still timed."""
    from benchmarks import run
    from benchmarks.__main__ import gpu_run
    from rnn_manual.core import limits

    monkeypatch.setattr(limits, "MAX_ELEMENTS", 2000)  # (T + 1) * B * H: 5 * 8 * 8 fits
    readme = tmp_path / "README.md"
    cpu_part = "<!-- results: begin -->\ncpu table\n<!-- results: end -->\n"
    readme.write_text(
        f"# B\n{cpu_part}<!-- gpu results: begin -->\nold\n<!-- gpu results: end -->\n"
    )
    points = [run.Point("rnn", 4, 8, 8, "float32"), run.Point("rnn", 8, 64, 16, "float64")]
    gpu_run(tmp_path, readme, log=lambda line: None, device="cpu", points=points)

    data = json.loads((tmp_path / "gpu.json").read_text())
    fits, over = data["grid"]
    assert data["meta"]["device"] == "cpu"
    graph = "manual torch graph (CPU, none)"  # the captured variant, run directly on a CPU
    assert set(fits["samples_per_s"]) == {
        "torch RNNCell loop",
        "torch nn.RNN",
        "manual torch CPU",
        graph,
    }
    assert fits["checked_against"] == "manual NumPy" and not fits["refused"]
    assert fits["max_grad_rel_error"] < 1e-4 and not fits["disagree"]
    for name in ("manual torch CPU", graph):
        median, low, high = fits["speedup_vs_fused"][name]
        assert 0 < low <= median <= high
    assert set(over["refused"]) == {"manual torch CPU", graph, "manual NumPy"}
    assert all("more than the limit of 2000" in why for why in over["refused"].values())
    assert over["checked_against"] == "torch RNNCell loop"
    assert set(over["samples_per_s"]) == {"torch RNNCell loop", "torch nn.RNN"}
    assert over["speedup_vs_fused"] == {}

    table = (tmp_path / "gpu.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| rnn |")]
    assert len(rows) == 2 and "refused" not in rows[0]
    assert rows[1].count("refused") == 5  # two throughputs, two speed-ups, met
    assert "manual torch CPU: a pass over x" in table
    text = readme.read_text()
    assert cpu_part in text and table in text and "\nold\n" not in text
    assert not list(tmp_path.glob("*.tmp"))


def test_gpu_grid_leaves_a_pass_that_disagrees_untimed(
    monkeypatch: pytest.MonkeyPatch, one_torch_thread: None
) -> None:
    from benchmarks import manual_backends, run

    make = manual_backends.manual_passes
    monkeypatch.setattr(manual_backends, "manual_passes", lambda *a: perturbed(make(*a)))
    r = run.measure_gpu(run.Point("rnn", 3, 2, 4, "float64"), 1, 0.0, 0.0, device="cpu")
    assert set(r["disagree"]) == {"manual torch CPU"}
    assert "gradients differ" in r["disagree"]["manual torch CPU"]
    assert set(r["samples_per_s"]) == {
        "torch RNNCell loop",
        "torch nn.RNN",
        "manual torch graph (CPU, none)",
    }


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA, --gpu runs the GPU grid")
def test_gpu_flag_without_cuda_exits_2_with_one_line(tmp_path: Path) -> None:
    done = run_harness("--gpu", "--out", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --gpu needs CUDA, and torch.cuda.is_available() is False"
    ]
    assert not list(tmp_path.iterdir())


def test_readme_sections_are_replaced_each_between_its_own_markers(tmp_path: Path) -> None:
    """A run writes its table and its scaling section into the sections for its thread
    count, and leaves the other thread count's (and the GPU's) as they were."""
    from benchmarks.report import has_markers, replace_readme_table, section

    def part(marker: str, body: str) -> str:
        return f"<!-- {marker}: begin -->\n{body}<!-- {marker}: end -->\n"

    readme = tmp_path / "README.md"
    others = part(section("results", 2), "two\n") + part("gpu results", "gpu\n")
    readme.write_text(
        "# B\n"
        + part(section("results", 1), "old\n")
        + others
        + part(section("scaling", 1), "old scaling\n")
        + "tail\n"
    )
    assert has_markers(readme, section("scaling", 1))
    assert not has_markers(readme, section("scaling", 2))
    replace_readme_table(readme, "| new |\n", section("results", 1))
    replace_readme_table(readme, "slopes\n", section("scaling", 1))
    assert readme.read_text() == (
        "# B\n"
        + part(section("results", 1), "| new |\n")
        + others
        + part(section("scaling", 1), "slopes\n")
        + "tail\n"
    )


def test_the_readme_has_sections_for_one_and_two_threads() -> None:
    from benchmarks.report import has_markers, section

    readme = ROOT / "benchmarks" / "README.md"
    markers = (section("results", 1), section("results", 2), section("scaling", 1), "blas")
    for marker in markers:
        assert has_markers(readme, marker), marker


def test_slopes_of_a_known_power_law() -> None:
    from benchmarks.scaling import neighbour_slopes, slope

    sizes = [8, 32, 128, 512]
    assert slope(sizes, [3e-4 * n**1.7 for n in sizes]) == pytest.approx(1.7)
    assert slope(sizes, [5.0 for _ in sizes]) == pytest.approx(0.0, abs=1e-12)
    # A fixed cost plus linear work: below 1 at small sizes, near 1 at large ones.
    times = [1.0 + 0.1 * n for n in sizes]
    local = neighbour_slopes(sizes, times)
    assert len(local) == 3 and local == sorted(local)
    assert local[0] < 0.7 and 0.9 < local[-1] < 1
    assert slope(sizes, times) == pytest.approx(np.polyfit(np.log(sizes), np.log(times), 1)[0])
    with pytest.raises(ValueError, match="two different sizes"):
        slope([8, 8], [1.0, 2.0])


def grid_row(cell: str, T: int, B: int, H: int, dtype: str = "float64", **fields: object) -> dict:
    """A synthetic grid row: the sizes, and whatever else a test gives it."""
    return {"cell": cell, "T": T, "B": B, "H": H, "dtype": dtype, **fields}


def test_series_recover_linear_t_and_b_and_quadratic_h() -> None:
    """Rows timed as T * B * H**2 (the grid's shapes): each series' fitted slope is its
    exponent, and the reading quotes them."""
    from benchmarks import scaling

    shapes = [(8, B, 16) for B in (1, 32, 256, 4096)]
    shapes += [(T, 256, H) for H in (16, 64, 256, 1024) for T in (8, 32, 128) if (T, H) != (8, 16)]
    rows = [
        grid_row(cell, T, B, H, d, seconds={"manual NumPy": [1e-9 * T * B * H**2] * 3})
        for cell in ("rnn", "lstm")
        for d in ("float64", "float32")
        for T, B, H in shapes
    ]
    found = scaling.series(rows)
    assert [(s.dtype, s.against) for s in found] == [
        (d, a) for d in ("float64", "float32") for a in ["T"] * 4 + ["B"] + ["H"] * 3
    ]  # the RNN's rows only: the LSTM's are left out
    expected = {"T": 1.0, "B": 1.0, "H": 2.0}
    for s in found:
        assert scaling.slope(s.sizes, s.seconds) == pytest.approx(expected[s.against])
    assert found[4].held == {"T": 8, "H": 16} and found[4].sizes == [1, 32, 256, 4096]
    text = scaling.explanation(found)
    assert "T 1.00 (fitted), B 1.00, H 2.00" in text


def test_peak_memory_of_a_pass_grows_linearly_in_t() -> None:
    from benchmarks.scaling import peak_memory, slope

    lengths = [8, 32, 128]
    peaks = [peak_memory(T, B=16, H=8) for T in lengths]
    for T, peak in zip(lengths, peaks, strict=True):
        assert peak >= (T + 1) * 16 * 8 * 8  # at least the trace's states
    assert 0.8 < slope(lengths, peaks) < 1.2


def test_targets_are_judged_on_the_median_of_the_rounds() -> None:
    from benchmarks import targets

    numpy, best, peak = targets.NUMPY, targets.BEST, targets.PEAK
    rows = [
        # RNN at hidden <= 64: 2x; a median short of it is missed whatever the best round.
        grid_row("rnn", 8, 256, 16, speedup_vs_fastest_cpu=(1.99, 1.5, 9.0)),
        grid_row("rnn", 8, 256, 64, speedup_vs_fastest_cpu=(2.0, 0.5, 2.1)),
        # RNN at hidden >= 256: 1.2x.
        grid_row("rnn", 8, 256, 256, speedup_vs_fastest_cpu=(1.19, 1.0, 1.5)),
        grid_row("rnn", 8, 256, 1024, speedup_vs_fastest_cpu=(1.2, 1.1, 1.3)),
        # The gated cells: no NumPy target.
        grid_row("lstm", 8, 256, 16, speedup_vs_fastest_cpu=(0.5, 0.4, 0.6)),
    ]
    assert [targets.verdict(numpy, r) for r in rows] == [
        (">= 2x", "**no**"),
        (">= 2x", "yes"),
        (">= 1.2x", "**no**"),
        (">= 1.2x", "yes"),
        ("-", "-"),
    ]
    # The best manual pass: 1.5x at every point of every cell.
    for cell in ("rnn", "lstm", "gru"):
        assert targets.verdict(best, grid_row(cell, 8, 4096, 16, best_vs_fastest_cpu=(1.5, 1, 2)))
        assert targets.met(best, grid_row(cell, 8, 1, 16, best_vs_fastest_cpu=(1.5, 1, 2)))
        assert not targets.met(best, grid_row(cell, 8, 1, 16, best_vs_fastest_cpu=(1.49, 2, 2)))
    assert targets.verdict(best, grid_row("gru", 8, 1, 16)) == (">= 1.5x", "not measured")
    # The matmul peak: 80% at hidden 1024 only.
    at_1024 = [grid_row("rnn", 8, 256, 1024, fraction_of_peak=(f, 0.7, 0.9)) for f in (0.79, 0.8)]
    assert [targets.verdict(peak, r) for r in at_1024] == [(">= 80%", "**no**"), (">= 80%", "yes")]
    at_256 = grid_row("rnn", 8, 256, 256, fraction_of_peak=(0.5, 0, 1))
    assert targets.verdict(peak, at_256) == ("-", "-")

    solve = {"train": {"median_seconds": 0.1}, "tutorial script": {"median_seconds": 4.9}}
    numpy_line, best_line, peak_line, solve_line = targets.summary(rows, solve)
    assert numpy_line.endswith(
        "met at 2 of 4 points; missed: rnn float64 T 8 B 256 H 16 (1.99x), "
        "rnn float64 T 8 B 256 H 256 (1.19x)."
    )
    assert best_line.endswith("met at 0 of 0 points; not measured at 5.")
    assert peak_line.endswith("met at 0 of 0 points; not measured at 1.")
    assert solve_line.endswith("50x faster than the tutorial's script: **not met** (49.0x).")
    solve["tutorial script"]["median_seconds"] = 5.0
    assert targets.summary(rows, solve)[-1].endswith("script: met (50.0x).")


def test_best_manual_backend_is_the_faster_by_median_against_each_rounds_fastest() -> None:
    from benchmarks.run import versus_autograd

    seconds = {
        "torch RNNCell loop": [4.0, 2.0, 6.0],
        "torch nn.RNN": [3.0, 4.0, 6.0],  # the fastest per round: 3, 2, 6
        "manual NumPy": [1.0, 1.0, 6.0],  # median 1
        "manual torch CPU": [0.5, 2.0, 1.0],  # median 1: not faster, NumPy kept
    }
    result = versus_autograd(seconds, "rnn")
    assert result["speedup_vs_fastest_cpu"] == (2.0, 1.0, 3.0)  # 3 / 1, 2 / 1, 6 / 6
    assert result["best_manual_cpu"] == "manual NumPy"
    assert result["best_vs_fastest_cpu"] == result["speedup_vs_fastest_cpu"]
    seconds["manual torch CPU"] = [1.5, 0.5, 0.6]  # median 0.6: torch is the faster backend
    result = versus_autograd(seconds, "rnn")
    assert result["best_manual_cpu"] == "manual torch CPU"
    assert result["best_vs_fastest_cpu"] == (4.0, 2.0, 10.0)  # 3 / 1.5, 2 / 0.5, 6 / 0.6


def test_the_race_trains_both_ways_to_the_same_step() -> None:
    """The race's train stops when every 8-bit pair is right, as its torch twin does; both
    take the same batches and weights, so they stop at the same step (the default run, which
    goes on to long sums, does not)."""
    from benchmarks import solve

    assert solve.race_config(0).long_bits == 0
    for seed in (0, 1):
        _, steps, solved = solve.time_train(seed)
        assert solved and solve.time_torch_train(seed)[1:] == (steps, True)
        assert solve.time_default_train(seed)[1] > steps


def test_the_table_says_where_the_manual_pass_split_its_batch(one_torch_thread: None) -> None:
    """With two threads the manual pass splits a batch of 4096 (H 16) in two, with one it
    does not; the table shows the parts where some point split."""
    from benchmarks import report, run
    from rnn_manual.core import threads

    before = threads.threads()
    try:
        rows = []
        for n in (1, 2):
            threads.set_threads(n)
            rows.append(run.measure(run.Point("rnn", 2, 4096, 16, "float64"), 1, 0.0, 0.0))
    finally:
        threads.set_threads(before)
    assert [r["manual_parts"] for r in rows] == [1, 2]
    assert "| manual parts |" not in report.grid_table(rows[:1])
    table = report.grid_table(rows).splitlines()
    column = table[0].split(" | ").index("manual parts")
    assert [line.split(" | ")[column] for line in table[2:]] == ["1", "2"]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_text_benchmarks_reference_pass_is_the_fast_cells(cell: str) -> None:
    """min-char-rnn's way composes the reference's forward, ce and backward itself (it needs
    the state a chunk ends in): on one chunk, from a carried state, it gives the fast
    cell's loss_pass gradients and final states."""
    from benchmarks import text
    from rnn_manual.cells.losses import ce
    from rnn_manual.training.corpus import read_corpus
    from rnn_manual.training.language import TextConfig, start

    corpus = read_corpus(None)
    model = start(TextConfig(cell=cell, hidden=8), corpus).model
    rng = np.random.default_rng(0)
    states = [rng.normal(0.0, 0.5, (1, 8)) for _ in model.states]
    x, y = corpus.chunk(25, 25, 1, model.dtype)
    cache = text.forward(model, model.params, x, states)
    loss, dz = ce(cache["z"], cache["p"], y)
    grads = text.backward(model, model.params, cache, dz)
    done = model.loss_pass(x, states, y, "ce")
    assert abs(float(loss) - float(done.loss)) <= 1e-12 * abs(float(loss))
    for name, g in done.grads.items():
        np.testing.assert_allclose(grads[name], g, rtol=1e-10, atol=1e-13, err_msg=name)
    ends = [cache[name][-1] for name in ("h", "c")[: len(model.states)]]
    for mine, theirs in zip(ends, model.final_states(done.trace), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)


def test_the_text_benchmark_runs_every_way_and_tables_it() -> None:
    """A tiny budget: every way trains at least a step and reaches a finite held-out loss
    (after so few steps it may still be above the uniform guess); the table has a row for
    each."""
    from benchmarks import text

    results = text.run_text(0.01, log=lambda line: None)
    outcomes = results["outcomes"]
    assert [(o["cell"], o["way"]) for o in outcomes] == [
        (cell, way) for cell in ("rnn", "lstm", "gru") for way in text.WAYS
    ]
    for o in outcomes:
        assert o["steps"] >= 1 and o["chars_per_second"] > 0
        assert np.isfinite(o["held_out"]) and o["held_out"] > 0
    meta = {"machine": "m", "blas_threads": 1, "date": "today"}
    table = text.markdown(meta, results)
    assert table.count("| 1.0x |") == 3 and len(table.splitlines()) == 2 + 2 + 9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threads", "300"], "--threads must be from 1 to 256, got 300"),
        (["--quick", "--seeds", "3", "--no-solve"], "--seeds is for the time to solve"),
        (["--text", "--seeds", "2"], "--seeds is for the time to solve"),
        (["--blas", "--gpu"], "--gpu, --text and --blas do not combine"),
    ],
)
def test_options_that_cannot_be_honoured_are_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """--threads past the pool's limit (a traceback from the pool before), and --seeds
    where no time to solve is taken (ignored without a word before), exit 2."""
    from benchmarks.__main__ import parse_args

    with pytest.raises(SystemExit) as stopped:
        parse_args(args)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_quick_takes_one_seed_unless_told_more_and_the_limits_agree() -> None:
    """--quick times one seed to solve, --quick --seeds N times N (it ignored N before);
    the harness's thread limit is the pool's."""
    from benchmarks.__main__ import MAX_THREADS, parse_args
    from rnn_manual.core import threads

    assert parse_args(["--quick"]).seeds == 1
    assert parse_args(["--quick", "--seeds", "3"]).seeds == 3
    assert parse_args([]).seeds == 5
    assert MAX_THREADS == threads.MAX_THREADS


def test_blas_runs_get_blas_at_its_default_or_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever this process was started with, a run "default" has no BLAS variable and
    no RNN_MANUAL_THREADS but the job's own, a run "pinned" OPENBLAS_NUM_THREADS=1."""
    from benchmarks import blas

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("RNN_MANUAL_THREADS", "3")
    job = blas.Job("j", ["true"], {"RNN_MANUAL_THREADS": "1"}, False)
    default, pinned = blas.environment("default", job), blas.environment("pinned", job)
    assert not set(blas.BLAS_VARIABLES) & set(default)
    assert default["RNN_MANUAL_THREADS"] == pinned["RNN_MANUAL_THREADS"] == "1"
    assert pinned["OPENBLAS_NUM_THREADS"] == "1" and "OMP_NUM_THREADS" not in pinned
    assert "RNN_MANUAL_THREADS" not in blas.environment("default", blas.jobs(True)[1])


def test_the_blas_benchmark_times_both_settings_as_found_and_busy() -> None:
    """A tiny pass, one round: each condition times it at both settings (in processes of
    their own, the busy one beside), and the table gives each ratio."""
    from benchmarks import blas

    job = blas.Job("rnn pass, B 64", blas.pass_command("rnn", 64, 0.0), {}, True)
    lines: list[str] = []
    found = blas.measure([job], 1, lines.append)
    assert list(found) == ["as found", "one core busy"]
    for by_job in found.values():
        assert list(by_job) == ["rnn pass, B 64"]
        seconds = by_job["rnn pass, B 64"]
        assert list(seconds) == ["default", "pinned"]
        assert all(len(s) == 1 and 0 < s[0] < 10 for s in seconds.values())
    meta = {"machine": "m", "numpy": "2", "avx512": True, "blas": ["openblas"], "load": (1, 2, 3)}
    table = blas.markdown({**meta, "date": "today"}, found).splitlines()
    assert table[2].startswith("| machine | job | BLAS default, s | BLAS pinned to 1, s |")
    assert table[4].startswith("| as found | rnn pass, B 64 | ")
    assert table[5].startswith("| one core busy | rnn pass, B 64 | ")
    assert len(table) == 6
    for line in table[4:]:  # the ratio of the one round: "1.03x (1.03-1.03)"
        ratio = line.split("|")[-2].strip()
        median, low_high = ratio.rstrip(")").split("x (")
        assert low_high == f"{median}-{median}"
    assert len(lines) == 2 + 2 * 2  # a heading per condition, a line per run
