"""The `plot` command and the numbers behind its figures, the walkthrough's included.

The model is trained in-process (a fraction of a second) and plotted into a temporary
folder; the carry unit the command reports is checked against a correlation computed
here from Python integers, not by the plotting code. Each of the walkthrough's figures
(docfigures.py) is checked to be written, and what it claims is checked on the numbers it
plots: those tests train an RNN, an LSTM and a GRU once (tens of seconds: marked slow).
"""

from __future__ import annotations

import itertools
import math
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image, ImageSequence

from rnn_manual import LSTM, RNN, reference
from rnn_manual.app import docfigures, docruns, draw, figures, measures, plot
from rnn_manual.app.cli import main
from rnn_manual.app.measures import carry_bits, correlations, gradient_norms
from rnn_manual.app.plot import FIGURES
from rnn_manual.files import modelfile
from rnn_manual.training.bits import addition_examples, encode, random_addition_batch
from rnn_manual.training.loop import train
from rnn_manual.training.state import History, TrainConfig

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


def test_a_figure_that_cannot_be_written_is_one_line(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder where a figure should go: refused by the atomic writer (files/atomic.py)."""
    (tmp_path / "carry_unit.png").mkdir()
    code = main(["plot", "--model", str(model_file), "--out", str(tmp_path)])
    assert_one_line_error(code, capsys.readouterr().err, "carry_unit.png: cannot write")
    assert (tmp_path / "carry_unit.png").is_dir()


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
        "import rnn_manual, rnn_manual.app.cli, rnn_manual.app.figures\n"
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


def test_gradient_norms_hold_the_lstm_cell_state_fixed() -> None:
    """For the LSTM, the norm is of dz_last/dh_t with c_t held: checked the same way."""
    model = LSTM(hidden_size=3, bias=True, seed=2)
    x = np.random.default_rng(6).integers(0, 2, size=(5, 2, 2)).astype(np.float64)
    norms = gradient_norms(model, x)
    trace = model.run(x)
    eps, t = 1e-6, 2
    jacobian = np.empty((2, 3))
    for j in range(3):
        step = np.zeros((2, 3))
        step[:, j] = eps
        up = model.run(x[t:], h0=trace.h[t] + step, c0=trace.c[t]).z[-1, :, 0]
        down = model.run(x[t:], h0=trace.h[t] - step, c0=trace.c[t]).z[-1, :, 0]
        jacobian[:, j] = (up - down) / (2 * eps)
    np.testing.assert_allclose(norms[t], np.linalg.norm(jacobian, axis=1), rtol=1e-7)


# ---------------------------------------------------------------------------------------
# The figures' files, and the polish of plot's four figures.


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_figures_get_the_mode_of_any_new_file_and_keep_it_when_redrawn(
    model_file: Path, tmp_path: Path, umask_022: None
) -> None:
    """0o666 less the umask, as model files and open() get (not mkstemp's 0o600), also for
    a committed 0o644 file drawn again."""
    (tmp_path / "carry_unit.png").write_bytes(b"old")
    os.chmod(tmp_path / "carry_unit.png", 0o644)
    assert main(["plot", "--model", str(model_file), "--out", str(tmp_path)]) == 0
    for name in FIGURES:
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    path = tmp_path / "gif_like.png"
    os.umask(0o027)
    draw.save_png(draw.figure(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def drawn(fig: Figure) -> Figure:
    """fig laid out and drawn, as when saved, so that texts have their places and sizes."""
    FigureCanvasAgg(fig).draw()
    return fig


def overlapping_labels(ax: Axes, axis: str) -> list[tuple[str, str]]:
    labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    boxes = [(t.get_text(), t.get_window_extent()) for t in labels if t.get_text()]
    return [(a, b) for (a, box_a), (b, box_b) in itertools.pairwise(boxes) if box_a.overlaps(box_b)]


@pytest.mark.parametrize("hidden", [16, 32, 64])
def test_carry_unit_figure_fits_a_tanh_unit_and_its_labels_do_not_collide(hidden: int) -> None:
    """A tanh unit runs to -1 (issue 16, item 21): the right panel shows every value; the
    unit labels under the bars never overlap, and the carry unit's is there."""
    model = RNN(hidden_size=hidden, activation="tanh", bias=True, seed=3)
    model.params["W_xh"] *= 6.0  # saturated units: values near -1 and +1
    x, _ = random_addition_batch(np.random.default_rng(0), 200, 16)
    found = measures.find_carry_unit(model, x)
    fig = drawn(plot.plot_carry_unit(model, found, *plot.EXAMPLE))
    bars_ax, line_ax = fig.axes[:2]
    values = np.concatenate([line.get_ydata() for line in line_ax.get_lines()])
    assert values.min() < -0.9  # the case of the issue: near -1
    low, high = line_ax.get_ylim()
    assert low < values.min() and values.max() < high
    assert line_ax.get_ylabel()  # the right panel's axis says what it holds
    assert overlapping_labels(bars_ax, "x") == []
    assert str(found.unit) in [t.get_text() for t in bars_ax.get_xticklabels()]


@pytest.mark.parametrize("hidden", [16, 32])
def test_hidden_heatmap_labels_every_unit_and_frames_the_carry_unit(hidden: int) -> None:
    model = RNN(hidden_size=hidden, bias=True, seed=4)
    x, _ = random_addition_batch(np.random.default_rng(0), 200, 16)
    found = measures.find_carry_unit(model, x)
    fig = drawn(plot.plot_hidden_heatmap(model, found, *plot.EXAMPLE))
    bits_ax, heat_ax = fig.axes[:2]
    labels = {t.get_text(): t for t in heat_ax.get_yticklabels()}
    assert list(labels) == [str(j) for j in range(hidden)]
    assert overlapping_labels(heat_ax, "y") == []
    assert labels[str(found.unit)].get_color() == "tab:red"
    (frame,) = heat_ax.patches  # the carry unit's row, framed
    assert isinstance(frame, Rectangle)
    assert frame.get_y() == found.unit - 0.5 and frame.get_height() == 1
    # The digits of the bit rows: white on the dark cells of 1, black on the light of 0.
    for text in bits_ax.texts:
        assert text.get_color() == ("white" if text.get_text() == "1" else "black")


def test_chance_loss_is_the_loss_of_answering_one_half_everywhere() -> None:
    assert measures.chance_loss(TrainConfig(loss="mse")) == pytest.approx(8 / 8)  # 8 x 0.5 (1/2)^2
    assert measures.chance_loss(TrainConfig(bits=16, loss="bce")) == pytest.approx(16 * math.log(2))


def test_the_training_curve_marks_the_plateau_where_the_loss_sits_at_chance() -> None:
    """Before the adder learns, its loss is that of answering 0.5 at every bit: the line
    drawn, over the stretch shaded."""
    config = TrainConfig()
    result = train(config, log=None)
    chance = measures.chance_loss(config)
    end = measures.plateau_end(np.asarray(result.history.loss), chance)
    assert end >= 30  # a long plateau: a quarter of the run or more
    plateau = np.asarray(result.history.loss[5:end])  # past the first steps' spikes
    assert np.median(plateau) == pytest.approx(chance, rel=0.03)
    assert np.all(np.asarray(result.history.batch_accuracy[:end]) < 0.5)
    fig = plot.plot_training_curve(result.history, config)
    loss_ax = fig.axes[0]
    assert any(np.array_equal(line.get_ydata(), [chance, chance]) for line in loss_ax.get_lines())
    assert measures.plateau_end(np.array([1.0, 0.5]), 2.0) == 0


# ---------------------------------------------------------------------------------------
# The walkthrough's figures.


@pytest.fixture(scope="module")
def adder() -> RNN:
    """The walkthrough's adder: what `python -m rnn_manual train --loss mse --long-bits 0
    --save adder.npz` makes."""
    model = train(docruns.ADDER, log=None).model
    assert isinstance(model, RNN)
    return model


@pytest.fixture(scope="module")
def docs(adder: RNN, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, figures.DocData]:
    out = tmp_path_factory.mktemp("docs")
    run = docruns.rerun_adder(adder)
    return out, figures.write_doc_figures(adder, run, out, log=lambda line: None)


@pytest.mark.slow
def test_the_walkthroughs_figures_are_written_and_small(
    docs: tuple[Path, figures.DocData],
) -> None:
    out, data = docs
    assert sorted(p.name for p in out.iterdir()) == sorted(docfigures.DOC_FIGURES)
    for name in docfigures.DOC_FIGURES:
        content = (out / name).read_bytes()
        signature = b"GIF89a" if name.endswith(".gif") else PNG_SIGNATURE
        assert content.startswith(signature), name
        assert 20_000 < len(content) < 1_000_000, name  # drawn, and small enough to commit
    with Image.open(out / "backward.gif") as gif:
        shown = [frame.info["duration"] for frame in ImageSequence.Iterator(gif)]
    # A frame a step (the very first may come twice, as Pillow encodes it), all of them
    # on screen for as long as GIF_SECONDS_PER_STEP at least.
    assert len(shown) in (len(data.backward), len(data.backward) + 1)
    assert sum(shown) >= 1000 * docfigures.GIF_SECONDS_PER_STEP * len(data.backward)


def test_the_unrolled_network_names_what_travels_back() -> None:
    fig = docfigures.plot_unrolled(T=4)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("W_hh") == texts.count("W_xh") == texts.count("W_hy") == 4
    for maths, ours, tutorials in docfigures.BACKWARD_NAMES:
        assert {maths, ours, tutorials} <= set(texts)
    names = " ".join(texts)
    for name in ("layer_2_delta", "future_layer_1_delta", "synapse_h", "dh_next", "dL/da_t"):
        assert name in names
    assert sum("partial h_" in t for t in texts) == 4  # a backward arrow out of every step


@pytest.mark.slow
def test_the_animated_backward_pass_splits_dl_dh_by_source_and_sums_dw_hh(
    adder: RNN, docs: tuple[Path, figures.DocData]
) -> None:
    """Recomputed here from the forward pass with the derivatives written out: what each
    frame shows, and its last dL/dW_hh against the plain reference BPTT."""
    _, data = docs
    a, b = docfigures.BACKWARD_EXAMPLE
    x, y = addition_examples(encode([a], 8), encode([b], 8))
    params = adder.params
    h = adder.run(x).h[:, 0]  # (T+1, H): h[t + 1] is h_t
    p = adder.forward(x)[:, 0]  # (T, 1)
    dz = (p - y[:, 0]) * p * (1 - p)  # mse: dL/dz_t = (p_t - y_t) p_t (1 - p_t)
    assert [step.t for step in data.backward] == list(range(7, -1, -1))
    later = None
    for step in data.backward:
        t = step.t
        np.testing.assert_allclose(step.own, dz[t] @ params["W_hy"].T, rtol=1e-12)
        if later is None:  # the last step: nothing from the future
            assert not step.future.any()
        else:  # dL/dh_t from t + 1 = (dL/dh_{t+1} * f'(a_{t+1})) W_hh^T, f' = h (1 - h)
            da_later = later.dh * h[t + 2] * (1 - h[t + 2])
            np.testing.assert_allclose(step.future, da_later @ params["W_hh"].T, rtol=1e-10)
        da = step.dh * h[t + 1] * (1 - h[t + 1])
        before = 0.0 if later is None else later.dW_hh
        np.testing.assert_allclose(step.dW_hh - before, np.outer(h[t], da), atol=1e-14)
        later = step
    _, grads = reference.loss_and_grads(params, x, y, activation="sigmoid", loss="mse")
    np.testing.assert_allclose(data.backward[-1].dW_hh, grads["W_hh"], rtol=1e-12)


@pytest.mark.slow
def test_gated_cells_carry_the_gradient_further_and_the_rnn_stays_under_its_bound(
    docs: tuple[Path, figures.DocData],
) -> None:
    _, data = docs
    flow = data.flow
    assert set(flow.norms) == {"rnn", "lstm", "gru"}
    assert all("NOT" not in label for label in flow.labels.values())  # all three trained
    median = {name: np.median(norms, axis=1) for name, norms in flow.norms.items()}
    far = flow.back >= 8  # eight steps back and further
    for gated in ("lstm", "gru"):
        assert np.all(median[gated][far] > median["rnn"][far])
        # At the far end, many orders of magnitude apart.
        assert median[gated][0] > 1e6 * median["rnn"][0]
    # The bound holds for every sequence at every distance (rounding aside) ...
    assert np.all(flow.norms["rnn"] <= flow.bound[:, None] * (1 + 1e-9))
    # ... and it is as the annotation says: ||W_hh|| > 4, so it grows, and the units'
    # slopes average far below the sigmoid's 1/4.
    assert flow.W_hh_norm > 4 and np.all(np.diff(flow.bound[::-1]) > 0)
    assert flow.mean_slope < 0.1


@pytest.mark.slow
def test_the_carry_unit_emerges_during_training(
    adder: RNN, docs: tuple[Path, figures.DocData]
) -> None:
    run = docs[1].run
    assert run.steps[0] == 0 and run.steps[-1] == run.result.steps
    assert np.all(np.diff(run.steps) > 0) and np.all(np.diff(run.steps)[:-1] == 2)
    r = np.abs(run.r_all[:, run.carry_unit])
    assert r[0] < 0.6 and r[-1] > 0.9  # weak at the start, the carry's at the end
    assert r[-1] - r.min() > 0.5
    # The same unit that plot's carry figure finds in the saved model, on its own sums.
    x, _ = random_addition_batch(np.random.default_rng(0), 1000, 16)
    assert measures.find_carry_unit(adder, x).unit == run.carry_unit
    # It emerges as the loss leaves its plateau: still weak on the plateau.
    end = measures.plateau_end(
        np.asarray(run.result.history.loss), measures.chance_loss(docruns.ADDER)
    )
    assert r[run.steps <= end // 2].max() < 0.6


def test_docs_refuse_a_model_other_than_the_walkthroughs_adder() -> None:
    with pytest.raises(
        docruns.NotTheAdder, match=re.escape("train --loss mse --long-bits 0 --save adder.npz")
    ):
        docruns.rerun_adder(RNN(seed=1))


def test_write_figures_with_docs_checks_the_model_and_adds_the_walkthroughs_figures(
    adder: RNN, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wiring alone (the figures themselves are checked above): the adder is checked,
    its training curve gets the plateau line, and write_doc_figures is called."""
    calls = []
    monkeypatch.setattr(figures, "write_doc_figures", lambda *args, **kwargs: calls.append(args))
    history = History()
    history.loss.extend([1.0, 0.5])
    history.batch_accuracy.extend([0.0, 1.0])
    figures.write_figures(adder, history, tmp_path, log=lambda line: None, docs=True)
    assert len(calls) == 1 and calls[0][0] is adder and calls[0][2] == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FIGURES)
    with pytest.raises(docruns.NotTheAdder):
        figures.write_figures(RNN(seed=1), history, tmp_path, docs=True)


def text_numbers(text: docruns.TextRuns) -> str:
    """Section 15's paragraph of numbers, as the runs give them."""
    end = {name: float(held[-1]) for name, held in text.held_out.items()}
    best = {name: int(np.argmin(held)) for name, held in text.held_out.items()}
    train = {name: float(np.mean(losses[-50:])) for name, losses in text.losses.items()}
    V = round(math.exp(text.uniform))
    lstm, gru = (
        f"{text.held_out[name][best[name]]:.2f}, at step {text.evaluated[best[name]]}"
        for name in ("lstm", "gru")
    )
    return (
        f"After {text.config.steps} steps the held-out loss is {end['rnn']:.2f} nats per "
        f"character for the RNN, {end['lstm']:.2f} for the LSTM and {end['gru']:.2f} for the "
        f"GRU, against log {V} = {text.uniform:.2f} for the uniform guess. The LSTM was at "
        f"its best, {lstm} and the GRU, {gru}, while their training losses went on down to "
        f"{train['lstm']:.2f} and {train['gru']:.2f} (the RNN's: {train['rnn']:.2f}; each the "
        "mean of the last 50 steps)."
    )


@pytest.mark.slow
def test_the_walkthroughs_text_numbers_are_the_runs(docs: tuple[Path, figures.DocData]) -> None:
    """Section 15 quotes the three cells' runs on the default text: the numbers are these
    runs' (rerun here), and the story they tell holds: every cell well below log V, the gated
    cells best early and then above their best, the RNN still improving."""
    text = docs[1].text
    walkthrough = " ".join(
        (Path(__file__).parents[1] / "docs" / "walkthrough.md").read_text().split()
    )
    assert text_numbers(text) in walkthrough, text_numbers(text)
    for name, held in text.held_out.items():
        assert held[-1] < text.uniform - 1.5, name
    for gated in ("lstm", "gru"):
        held = text.held_out[gated]
        assert held.min() < text.held_out["rnn"].min() - 0.2
        assert held[-1] > held.min() + 0.05  # past their best: learning the text by heart
    assert np.argmin(text.held_out["rnn"]) >= len(text.evaluated) - 3
