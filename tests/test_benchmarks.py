"""Smoke test of the benchmark harness: `python -m benchmarks --quick` produces its outputs;
its torch baselines, and the manual pass run by torch, compute the manual models' gradients,
for every cell; and the GPU grid's whole path runs on the CPU (device="cpu").

No timing is asserted; only that every output is written, complete and consistent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")


def run_harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_quick_run_writes_table_json_and_plot(tmp_path: Path) -> None:
    tutorial = tmp_path / "tutorial.py"  # a stand-in: the real script takes 5 s
    tutorial.write_text("print('done')\n")
    done = run_harness(
        "--quick", "--threads", "1", "--out", str(tmp_path), "--tutorial", str(tutorial)
    )
    assert done.returncode == 0, done.stderr

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["meta"]["blas_threads"] == results["meta"]["torch_threads"] == 1
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
        assert r["max_grad_rel_error"] < (1e-12 if r["dtype"] == "float64" else 1e-4)
    solve = results["solve"]
    assert solve["train"]["runs"][0]["solved"]
    assert solve["torch autograd train"]["runs"][0]["solved"]
    assert solve["tutorial script"]["median_seconds"] > 0

    table = (tmp_path / "results.md").read_text()
    assert table in done.stdout
    assert "| manual torch CPU k/s |" in table
    assert "| manual / manual torch CPU, median (min-max) |" in table
    rows = [line.split(" | ") for line in table.splitlines() if " | float" in line]
    assert [row[0].strip("| ") for row in rows] == [r["cell"] for r in grid]
    # The issue's targets are the RNN's: a gated row shows none.
    assert all((row[-4:-2] == ["-", "-"]) == (row[0] != "| rnn") for row in rows)
    assert "| train |" in table and "| tutorial script |" in table

    png = (tmp_path / "throughput.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert not list(tmp_path.glob("*.tmp"))


def test_usage_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    for args in (["--threads", "0"], ["--tutorial", str(tmp_path / "missing.py")]):
        done = run_harness("--quick", "--out", str(tmp_path), *args)
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        assert "error" in done.stderr.strip().splitlines()[-1]


def test_help_describes_the_harness_in_whole_sentences(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--help once stopped mid-sentence ("... before either is imported, runs")."""
    from benchmarks.__main__ import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "before either is imported, runs the grid and the time-to-solve race" in text
    assert "writes gpu.md and gpu.json." in text


def test_readme_table_is_replaced_between_markers(tmp_path: Path) -> None:
    from benchmarks.report import replace_readme_table

    readme = tmp_path / "README.md"
    readme.write_text("# B\n<!-- results: begin -->\nold\n<!-- results: end -->\ntail\n")
    replace_readme_table(readme, "| new |\n")
    assert (
        readme.read_text() == "# B\n<!-- results: begin -->\n| new |\n<!-- results: end -->\ntail\n"
    )


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
