"""The `plot` command and the numbers behind its figures.

The model is trained in-process (a fraction of a second) and plotted into a temporary
folder; the carry unit the command reports is checked against a correlation computed
here from Python integers, not by the plotting code.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnn_manual import RNN
from rnn_manual.app.cli import main
from rnn_manual.app.plot import FIGURES, carry_bits, correlations, gradient_norms
from rnn_manual.files import modelfile
from rnn_manual.training.bits import addition_examples, encode
from rnn_manual.training.train import TrainConfig, train

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained 8-bit adder saved with its history.

    With biases (and the first seed) one sigmoid unit holds the carry clearly: over seeds
    0-7 its |r| is 0.89-0.99 on random 16-bit sums, 0.95 for seed 0. Without biases a
    unit cannot set its own threshold and the carry is more spread out (0.78-0.93).
    """
    result = train(TrainConfig(bits=8, bias=True, seed=0), log=None)
    assert result.solved
    path = tmp_path_factory.mktemp("model") / "adder.npz"
    modelfile.save(path, result.model, result.history)
    return path


def carries_from_integers(a: list[int], b: list[int], width: int) -> np.ndarray:
    """(width, N): bit t is the carry out of bit t of a + b, i.e. bit t+1 of the low sum."""
    return np.array(
        [
            [
                ((x % 2 ** (t + 1)) + (y % 2 ** (t + 1))) >> (t + 1)
                for x, y in zip(a, b, strict=True)
            ]
            for t in range(width)
        ]
    )


def pearson(u: np.ndarray, v: np.ndarray) -> float:
    return float(np.corrcoef(u.ravel(), v.ravel())[0, 1])


def test_plot_writes_every_figure_and_names_the_carry_unit(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "figures" / "new"  # created, parents included
    assert main(["plot", "--model", str(model_file), "--out", str(out)]) == 0
    printed = capsys.readouterr().out

    assert sorted(p.name for p in out.iterdir()) == sorted(FIGURES)  # no temporary left over
    for name in FIGURES:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        assert len(data) > 5000, name  # a drawn figure, not an empty canvas
        assert f"wrote {out / name}" in printed

    found = re.search(r"hidden unit (\d+) tracks it best, r = ([-+]\d\.\d+)", printed)
    assert found, printed
    unit, reported_r = int(found[1]), float(found[2])

    # The carry out of every bit of fresh random 16-bit sums, from integer arithmetic.
    model, _ = modelfile.load(model_file)
    rng = np.random.default_rng(12345)
    a, b = (rng.integers(0, 2**15, size=2000).tolist() for _ in range(2))
    x, _ = addition_examples(encode(a, 16), encode(b, 16))
    h = model.run(x).h[1:]  # (16, 2000, H): the state after reading bit t
    r = pearson(h[:, :, unit], carries_from_integers(a, b, 16))
    assert abs(r) > 0.9
    assert abs(r - reported_r) < 0.02  # the same unit and the same carry, other samples


def test_plot_without_history_skips_only_the_training_curve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "untrained.npz"
    modelfile.save(path, RNN(hidden_size=4, seed=1))
    assert main(["plot", "--model", str(path), "--out", str(tmp_path / "out")]) == 0
    assert "training curve skipped" in capsys.readouterr().out
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(set(FIGURES) - {"training_curve.png"})


def assert_one_line_error(code: int, err: str, fragment: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert fragment in lines[0], lines[0]


def test_bad_model_and_unwritable_folder_are_refused(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["plot", "--model", str(tmp_path / "missing.npz"), "--out", str(tmp_path)])
    assert_one_line_error(code, capsys.readouterr().err, "no such file")

    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    code = main(["plot", "--model", str(model_file), "--out", str(a_file / "figures")])
    assert_one_line_error(code, capsys.readouterr().err, "cannot create the folder")


def test_missing_matplotlib_is_one_clear_line(
    model_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import matplotlib...` fail
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code = main(["plot", "--model", str(model_file), "--out", str(tmp_path)])
    assert_one_line_error(code, capsys.readouterr().err, "pip install 'rnn-manual[plot]'")
    assert list(tmp_path.iterdir()) == []


def test_the_numpy_core_imports_without_matplotlib() -> None:
    blocker = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import rnn_manual, rnn_manual.app.cli, rnn_manual.app.plot\n"
        "assert sys.modules['matplotlib'] is None\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", blocker], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_carry_bits_match_integer_arithmetic() -> None:
    rng = np.random.default_rng(7)
    a, b = (rng.integers(0, 2**12, size=300).tolist() for _ in range(2))
    x, _ = addition_examples(encode(a, 12), encode(b, 12))
    assert np.array_equal(carry_bits(x), carries_from_integers(a, b, 12))


def test_correlations_agree_with_numpy_and_treat_a_constant_unit_as_zero() -> None:
    rng = np.random.default_rng(3)
    target = rng.integers(0, 2, size=(5, 40))
    h = rng.random((5, 40, 3))
    h[..., 1] = 2.0 * target + 1.0  # a perfect (affine) copy of the target
    h[..., 2] = 0.25  # never changes
    r = correlations(h, target)
    assert r[0] == pytest.approx(pearson(h[..., 0], target), abs=1e-12)
    assert r[1] == pytest.approx(1.0, abs=1e-12)
    assert r[2] == 0.0


def test_gradient_norms_match_central_differences() -> None:
    """||dz_last/dh_t||, checked by nudging each component of h_t and rerunning the rest."""
    model = RNN(hidden_size=5, activation="tanh", bias=True, seed=4)
    rng = np.random.default_rng(5)
    x = rng.integers(0, 2, size=(6, 3, 2)).astype(np.float64)  # (T, B, I)
    norms = gradient_norms(model, x)  # (T, B)
    h = model.run(x).h
    eps = 1e-6
    for t in range(6):
        jacobian = np.empty((3, 5))  # (B, H): dz_last/dh_t, one row per sequence
        for j in range(5):
            step = np.zeros((3, 5))
            step[:, j] = eps
            up = model.run(x[t:], h0=h[t] + step).z[-1, :, 0]
            down = model.run(x[t:], h0=h[t] - step).z[-1, :, 0]
            jacobian[:, j] = (up - down) / (2 * eps)
        # Central differences: truncation ~eps**2, rounding ~1e-16/eps ~ 1e-10.
        np.testing.assert_allclose(norms[t], np.linalg.norm(jacobian, axis=1), rtol=1e-7)
