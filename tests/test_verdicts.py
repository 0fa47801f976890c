"""diagnose says OK only for what it judged: every probe, every gradient at its exact shape,
with an error that cannot overflow (issue 26, items 1-3).

- Gradients of 1e154 or more once made the norm overflow, the relative error NaN, and the
  probe silently dropped: such files, every cell, through a file and through the Python
  API, are now judged wrong wherever they are wrong.
- The probes with the loss on one step only (which localize) count toward the verdict:
  random gradients on exactly those probes are wrong.
- The parent checks the shapes of the answers itself: a file that replaces the child's
  checks and hands back arrays of another shape is never judged right.
- relative_error never overflows and is never NaN; a report is OK only when every probe was
  judged, and it says on how many.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnn_manual import reference
from rnn_manual.core.gradcheck import relative_error
from rnn_torch.diagnose import diagnose
from rnn_torch.diagnose.answers import Answer, Run
from rnn_torch.diagnose.diagnosis import Settings, probes_for, report_on
from rnn_torch.diagnose.probes import UPSTREAM

CELLS = ["rnn", "lstm", "gru"]

#: Right on every tenth call, right times `scale` on the others (the loss too).
SCALED = """
from rnn_manual.reference import loss_and_grads as right

calls = [0]


def loss_and_grads(params, x, y, **keywords):
    loss, grads = right(params, x, y, **keywords)
    calls[0] += 1
    if calls[0] % 10 == 0:
        return loss, grads
    return loss * {scale}, {{k: g * {scale} for k, g in grads.items()}}
"""

#: Right, but random gradients wherever the targets equal the outputs at every step but one:
#: exactly the one-step-loss probes.
ONE_STEP = """
import numpy as np
from rnn_manual.reference import cell_of, gru_forward, loss_and_grads as right, lstm_forward
from rnn_manual.reference import rnn_forward


def outputs(params, x, keywords):
    h0 = keywords.get("h0")
    if h0 is None:
        h0 = np.zeros((x.shape[1], params["W_hy"].shape[0]))
    cell = cell_of(params)
    if cell == "rnn":
        return rnn_forward(params, x, h0, keywords.get("activation", "sigmoid"))["p"]
    if cell == "lstm":
        c0 = keywords.get("c0")
        return lstm_forward(params, x, h0, np.zeros_like(h0) if c0 is None else c0)["p"]
    return gru_forward(params, x, h0)["p"]


def loss_and_grads(params, x, y, **keywords):
    loss, grads = right(params, x, y, **keywords)
    same = np.all(np.abs(outputs(params, x, keywords) - y) < 1e-12, axis=(1, 2))
    if len(y) > 1 and same.sum() == len(y) - 1:
        rng = np.random.default_rng(0)
        return loss, {k: rng.normal(size=g.shape) for k, g in grads.items()}
    return loss, grads
"""

#: Replaces the child's own checks (the child runs as __main__, in the learner's
#: interpreter) to hand the parent arrays of another shape: `reshape` of the right one.
RESHAPED = """
import sys

import numpy as np
from rnn_manual.reference import loss_and_grads as right

main = sys.modules.get("__main__")
if main is not None and hasattr(main, "check"):

    def check(result, expected):
        loss, grads = result
        arrays = {{"loss": np.asarray(float(loss)).reshape(())}}
        for key, shape in expected.items():
            arrays[f"grad:{{key}}"] = {reshape}
        return {{"status": "ok", "problems": []}}, arrays

    main.check = check


def loss_and_grads(params, x, y, **keywords):
    return right(params, x, y, **keywords)
"""


def file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "learner.py"
    path.write_text(text)
    return path


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("scale", ["1e154", "1e200", "1e300"])
def test_huge_finite_gradients_are_wrong_not_dropped(cell: str, scale: str, tmp_path: Path) -> None:
    report = diagnose(file(tmp_path, SCALED.format(scale=scale)), cell)
    assert report.exit_code == 1, report.text()
    assert set(report.wrong()) == {"loss", *report.gradients}, report.text()
    assert "OK" not in report.text().splitlines()[-1]


@pytest.mark.parametrize("cell", CELLS)
def test_huge_gradients_through_the_python_api(cell: str) -> None:
    """The same, with the function given in-process, every answer 1e200 times too large."""

    def loss_and_grads(params, x, y, **keywords):  # type: ignore[no-untyped-def]
        loss, grads = reference.loss_and_grads(params, x, y, **keywords)
        return loss * 1e200, {k: g * 1e200 for k, g in grads.items()}

    report = diagnose(loss_and_grads, cell)
    assert report.exit_code == 1
    assert set(report.wrong()) == {"loss", *report.gradients}
    assert all(
        v.relative_error is not None and math.isfinite(v.relative_error)
        for v in [report.loss, *report.gradients.values()]
    )


@pytest.mark.parametrize("cell", CELLS)
def test_the_one_step_loss_probes_count_toward_the_verdict(cell: str, tmp_path: Path) -> None:
    report = diagnose(file(tmp_path, ONE_STEP), cell, loss="mse")
    assert report.exit_code == 1, report.text()
    assert report.loss.ok
    assert set(report.wrong()) == set(report.gradients), report.text()
    # right at every length with targets at every step: the lengths cannot say where
    assert all(v.first_bad_length is None for v in report.gradients.values())


@pytest.mark.parametrize(
    "reshape",
    [
        "np.zeros((0, *shape))",  # no gradient at all: broadcasts to an empty array
        "np.ones((1, *shape))",  # an extra leading axis of one
        "np.ones(shape).T.copy()",  # transposed
        "np.ones(shape).ravel()",  # flattened
    ],
)
def test_answers_of_another_shape_are_never_judged_right(reshape: str, tmp_path: Path) -> None:
    report = diagnose(file(tmp_path, RESHAPED.format(reshape=reshape)), "rnn", loss="mse")
    assert report.exit_code == 1, report.text()
    assert not any(v.ok for v in report.gradients.values()), report.text()
    assert any("has shape" in line for line in report.errors), report.errors
    # a square weight's transpose keeps its shape: there the values are judged, and wrong
    assert report.judged < report.probes or report.wrong()


def test_ok_says_how_many_probes_were_judged(tmp_path: Path) -> None:
    report = diagnose(file(tmp_path, "from rnn_manual.reference import loss_and_grads\n"), "rnn")
    assert report.exit_code == 0
    assert report.judged == report.probes
    assert f"equal autograd's on all {report.probes} probes" in report.text()
    assert report.to_json()["judged_probes"] == report.probes


def test_a_probe_left_unanswered_keeps_the_report_from_ok() -> None:
    """Every answer right but one probe's missing: not OK, and the verdict says how many."""
    settings = Settings("rnn", (UPSTREAM,))
    probes, truths = probes_for(settings)
    answers: list[Answer | None] = [
        Answer("ok", loss=float(loss), grads={k: g.copy() for k, g in grads.items()})
        for loss, grads in truths
    ]
    answers[-1] = None
    report = report_on(settings, "f", probes, truths, Run(answers))
    assert report.exit_code == 1
    assert report.judged == len(probes) - 1
    assert (
        report.text()
        .splitlines()[-1]
        .endswith(f"judged on {len(probes) - 1} of {len(probes)} probes")
    )


finite = st.floats(-1e308, 1e308, allow_nan=False)


@given(
    st.lists(finite, min_size=1, max_size=6),
    st.lists(finite, min_size=1, max_size=6),
    st.integers(-300, 300),
)
def test_relative_error_is_scale_free_and_never_nan(a: list[float], b: list[float], k: int) -> None:
    n = min(len(a), len(b))
    x, y = np.array(a[:n]), np.array(b[:n])
    error = relative_error(x, y)
    assert math.isfinite(error) and 0 <= error <= 2
    with np.errstate(over="ignore", under="ignore"):
        xs, ys = np.ldexp(x, k), np.ldexp(y, k)  # times 2**k: exact unless out of range
    exact = np.all(np.ldexp(xs, -k) == x) and np.all(np.ldexp(ys, -k) == y)
    if exact and np.all(np.isfinite(xs)) and np.all(np.isfinite(ys)):
        assert relative_error(xs, ys) == pytest.approx(error, rel=1e-12, abs=1e-300)


def test_relative_error_refuses_what_cannot_be_compared() -> None:
    assert relative_error([1.0, np.nan], [1.0, 2.0]) == math.inf
    assert relative_error([1.0, np.inf], [1.0, np.inf]) == math.inf
    assert relative_error(np.zeros((0, 3)), np.zeros(3)) == math.inf  # broadcastable shapes
    assert relative_error(np.full(4, 1e200), np.full(4, 1e200)) == 0.0
    assert relative_error(np.full(4, 1e200), np.full(4, 3e200)) == pytest.approx(2 / 3)


def test_a_syntax_error_without_a_line_says_no_line(tmp_path: Path) -> None:
    """A SyntaxError the file raises itself may carry no line number: no 'line None'."""
    path = file(tmp_path, "def loss_and_grads(params, x, y, **k):\n    raise SyntaxError('x')\n")
    report = diagnose(path, "rnn", activation="sigmoid", loss="mse", bias=True)
    assert report.errors and "(learner.py)" in report.errors[0], report.errors
    assert "line None" not in report.text()


def test_a_newline_in_a_file_name_cannot_make_a_line_of_the_report(tmp_path: Path) -> None:
    folder = tmp_path / "odd\nfolder"
    folder.mkdir()
    path = folder / "bad\nfile.py"
    path.write_text("def loss_and_grads(params, x, y, **k):\n    raise ValueError('x')\n")
    report = diagnose(path, "rnn", activation="sigmoid", loss="mse", bias=True)
    lines = report.text().splitlines()
    assert lines[0].startswith("diagnose ") and "odd\\nfolder/bad\\nfile.py" in lines[0]
    assert "(bad\\nfile.py line 2)" in report.errors[0]
    assert not any(line.startswith(("folder", "file.py")) for line in lines)


def test_a_newline_in_the_name_of_a_file_that_cannot_load_is_escaped(tmp_path: Path) -> None:
    path = tmp_path / "bad\nfile.py"
    path.write_text("raise ValueError('at import')\n")
    report = diagnose(path, "rnn", activation="sigmoid", loss="mse", bias=True)
    assert report.exit_code == 2
    assert any("bad\\nfile.py cannot be loaded" in line for line in report.errors), report.errors
    assert all("\n" not in line for line in report.errors)
