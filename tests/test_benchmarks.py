"""Smoke test of the benchmark harness: `python -m benchmarks --quick` produces its outputs.

No timing is asserted; only that every output is written, complete and consistent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    assert {(r["T"], r["B"], r["H"], r["dtype"]) for r in grid} == {
        (8, B, H, d)
        for B, H in ((1, 16), (32, 16), (256, 16), (256, 64))
        for d in ("float64", "float32")
    }
    for r in grid:
        assert set(r["samples_per_s"]) >= {"manual NumPy", "torch RNNCell loop", "torch nn.RNN"}
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
    rows = [line for line in table.splitlines() if line.startswith("| float")]
    assert len(rows) == len(grid)
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
