"""Smoke test of the benchmark harness: `python -m benchmarks --quick` produces its outputs;
and its torch baselines compute the manual models' gradients, for every cell.

No timing is asserted; only that every output is written, complete and consistent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("torch")
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
        assert set(r["samples_per_s"]) >= {"manual NumPy", *names[r["cell"]]}
        assert all(rate > 0 for rate in r["samples_per_s"].values())
        median, low, high = r["speedup_vs_fastest_cpu"]
        assert 0 < low <= median <= high
        assert r["max_grad_rel_error"] < (1e-12 if r["dtype"] == "float64" else 1e-4)
    solve = results["solve"]
    assert solve["train"]["runs"][0]["solved"]
    assert solve["torch autograd train"]["runs"][0]["solved"]
    assert solve["tutorial script"]["median_seconds"] > 0

    table = (tmp_path / "results.md").read_text()
    assert table in done.stdout
    rows = [line.split(" | ") for line in table.splitlines() if " | float" in line]
    assert [row[0].strip("| ") for row in rows] == [r["cell"] for r in grid]
    # The targets are the RNN's: a gated row shows none.
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
