"""`python -m rnn_torch diagnose`: a learner's loss_and_grads judged, localized and named.

- the reference passes with no finding, for each cell;
- every catalogue bug, run through the protocol as a learner's file, is flagged (exit 1),
  the wrong gradients listed are exactly those the bug changes (found here by comparing the
  bug with the reference, not with autograd), and the bug names itself and nothing else;
  held out of the name-matching, it is still flagged and localized, with no name at all;
- hostile files each give one line and their documented exit code, within the time limit;
- the command line: options, exit codes, --json, usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import numpy as np
import pytest

from rnn_manual import reference
from rnn_manual.core.gradcheck import relative_error
from rnn_torch.compare import FLOAT64_BOUND
from rnn_torch.diagnose import Report, add_parser, catalogue, diagnose, main, run
from rnn_torch.diagnose.diagnosis import Settings, bug_answers, probes_for, report_on
from rnn_torch.diagnose.findings import derivative, distance_finding
from rnn_torch.diagnose.probes import LOSS_NAMES
from rnn_torch.diagnose.sandbox import run_file

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 120  # a hang fails the test instead of stalling CI (no timing is asserted)
REFERENCE = "from rnn_manual.reference import loss_and_grads\n"


@contextmanager
def no_hang() -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"no answer within {SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def write(tmp_path: Path) -> Iterator[object]:
    def to_file(text: str, name: str = "learner.py") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    yield to_file


# ---- the reference -------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_reference_passes_with_no_finding(cell: str, tmp_path: Path) -> None:
    path = tmp_path / "reference.py"
    path.write_text(REFERENCE)
    with no_hang():
        report = diagnose(path, cell)
    assert report.exit_code == 0, report.text()
    assert report.ok and report.errors == [] and report.notes == [] and report.likely_bugs == []
    assert report.findings == [
        f"the loss and every gradient equal autograd's on all {report.probes} probes"
    ]
    assert report.first_bad_distance is None and report.wrong_gates == []
    for verdict in [report.loss, *report.gradients.values()]:
        assert verdict.ok and verdict.relative_error is not None
        assert verdict.relative_error <= FLOAT64_BOUND
        assert verdict.first_bad_length is None and verdict.depends_on == []
    assert report.text().endswith("OK: every gradient and the loss equal autograd's")


def test_a_function_is_judged_in_this_process() -> None:
    assert diagnose(reference.loss_and_grads, "gru").exit_code == 0
    report = diagnose(catalogue.mutant("gru: reset gate left out of dhn"), "gru")
    assert report.likely_bugs == ["gru: reset gate left out of dhn"]


# ---- the catalogue -------------------------------------------------------------------


def cell_of(bug: catalogue.Bug) -> str:
    return "rnn" if bug.cell == "any" else bug.cell


def changed_by(bug: catalogue.Bug, settings: Settings) -> set[str]:
    """The keys ("loss" too) where the bug differs from the reference on some probe."""
    probes, _ = probes_for(settings)
    changed = set()
    for probe, result in zip(probes, bug_answers(settings)[bug.name], strict=True):
        if probe.factors["target"] != "all":
            continue
        params = {k: w.copy() for k, w in probe.params.items()}
        loss, grads = reference.loss_and_grads(params, probe.x, probe.y, **probe.keywords())
        if relative_error(result[0], loss) > FLOAT64_BOUND:
            changed.add("loss")
        changed |= {k for k, g in grads.items() if relative_error(result[1][k], g) > FLOAT64_BOUND}
    return changed


#: Localization expected of some bugs, held out of the name-matching: report field -> value.
LOCALIZED: dict[str, dict[str, object]] = {
    "rnn: recurrent term of dL/dh_t dropped": {
        "first_bad_distance": 1,
        "first_bad_length": ("W_hh", 2),
    },
    "rnn: h_t for h_{t-1} in dW_hh": {"first_bad_distance": None, "first_bad_length": ("W_hh", 1)},
    "rnn: activation derivative dropped": {"first_bad_distance": 0},
    "rnn: activation derivative at the pre-activation": {"depends_on": ("W_xh", ["activation"])},
    "rnn: W_hh for W_hh^T": {"first_bad_distance": 1, "first_bad_length": ("W_xh", 2)},
    "loss: batch mean forgotten (mse)": {
        "first_bad_distance": 0,
        "depends_on": ("W_hy", ["loss", "batch"]),
    },
    "loss: batch mean forgotten (every loss)": {"depends_on": ("W_hy", ["batch"])},
    "state: h0 ignored": {"depends_on": ("W_hy", ["initial_state"])},
    "rnn: forward without b_h": {"depends_on": ("loss", ["bias"])},
    "gru: b_hn left out of dr": {"depends_on": ("W_xr", ["bias"])},
    "lstm: cell path dropped": {"first_bad_distance": 1, "wrong_gates": ["i", "f", "g", "o"]},
    "lstm: h_t for h_{t-1} in dW_h": {"first_bad_distance": None},
    "gru: direct path u_t * dh dropped": {"first_bad_distance": 1},
    "lstm: sigmoid' for tanh' at g": {
        "first_bad_distance": 0,
        "finding": "at T = 1, only the parameters of gate g are wrong",
    },
}


@pytest.mark.parametrize("bug", catalogue.BUGS, ids=lambda bug: bug.name)
def test_a_catalogue_bug_is_flagged_localized_and_named(bug: catalogue.Bug, tmp_path: Path) -> None:
    cell = cell_of(bug)
    settings = Settings(cell, LOSS_NAMES)  # every loss: the cross-entropy's bugs too
    probes, truths = probes_for(settings)
    path = tmp_path / "learner.py"
    path.write_text(catalogue.source(bug))
    with no_hang():
        ran = run_file(path, probes, 60.0)
    changed = changed_by(bug, settings)
    assert changed, f"{bug.name} changes nothing on the probes"
    for hold_out in [(), (bug.name,)]:
        report = report_on(settings, str(path), probes, truths, ran, hold_out)
        assert report.exit_code == 1, report.text()
        assert report.errors == [] and report.notes == []
        assert set(report.wrong()) == changed
        assert report.likely_bugs == ([] if hold_out else [bug.name])
        assert report.findings[0].startswith("wrong: ")
        if hold_out:  # no name, but a pointer to the derivative to look at
            assert any("look" in line for line in report.findings), report.text()
        else:
            assert any(f"likely bug {bug.name!r}" in line for line in report.findings)
    expected = LOCALIZED.get(bug.name, {})
    for field, value in expected.items():
        if field in ("first_bad_length", "depends_on"):
            key, wanted = value  # type: ignore[misc]
            verdict = report.loss if key == "loss" else report.gradients[key]
            assert getattr(verdict, field) == wanted, report.text()
        elif field == "finding":
            assert any(str(value) in line for line in report.findings), report.text()
        else:
            assert getattr(report, field) == value, report.text()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_catalogue_bugs_differ_from_each_other_on_the_probes(cell: str) -> None:
    """Else one could not be told from another, and a learner's bug would get two names."""
    settings = Settings(cell, LOSS_NAMES)
    probes, _ = probes_for(settings)
    judged = [i for i, p in enumerate(probes) if p.factors["target"] == "all"]
    answers = bug_answers(settings)
    names = list(answers)
    for a, name in enumerate(names):
        for other in names[a + 1 :]:
            differ = any(
                relative_error(answers[name][i][0], answers[other][i][0]) > FLOAT64_BOUND
                or any(
                    relative_error(g, answers[other][i][1][k]) > FLOAT64_BOUND
                    for k, g in answers[name][i][1].items()
                )
                for i in judged
            )
            assert differ, f"{name!r} and {other!r} give the same results"


def test_an_edit_that_does_not_apply_fails_loudly() -> None:
    missing = catalogue.Bug(
        "test: nowhere", "rnn", "-", "-", (catalogue.edit("rnn_backward", "dh = 0 * dh", "pass"),)
    )
    with pytest.raises(
        catalogue.CatalogueError,
        match=r"reference\.py, 'dh = 0 \* dh' occurs 0 times in rnn_backward",
    ):
        catalogue.source(missing)
    nameless = catalogue.Bug(
        "test: no function", "rnn", "-", "-", (catalogue.edit("nope", "pass", "pass"),)
    )
    with pytest.raises(catalogue.CatalogueError, match="0 definitions named nope"):
        catalogue.source(nameless)


def test_the_walkthrough_places_cited_exist() -> None:
    """Every heading and every quoted phrase a pointer cites is in the walkthrough, so that a
    rewrite of it cannot leave the diagnosis pointing at nothing."""
    text = (ROOT / catalogue.WALKTHROUGH).read_text()
    for number, heading in catalogue.SECTIONS.items():
        assert f"\n## {number}. {heading}\n" in text, heading
    pointers = {bug.see for bug in catalogue.BUGS}
    pointers |= {derivative(cell, key) for cell in ("rnn", "lstm", "gru") for key in KEYS[cell]}
    pointers |= {
        distance_finding(cell, k, False) for cell in ("rnn", "lstm", "gru") for k in (0, 1)
    }
    for pointer in pointers:
        for phrase in re.findall(r'"([^"]+)"', pointer):
            assert phrase in text, f"{phrase!r} (in {pointer!r}) is not in the walkthrough"


#: Every gradient key of each cell, with biases.
KEYS = {
    cell: ["loss", *probes_for(Settings(cell, ("mse",), (True,), ("sigmoid",)))[0][0].expected()]
    for cell in ("rnn", "lstm", "gru")
}


# ---- hostile files -------------------------------------------------------------------

WRAP = "from rnn_manual.reference import loss_and_grads as reference\n\n\n"
CALL = "def loss_and_grads(params, x, y, **kw):\n"
#: A learner's file that calls the reference, then changes its answer by `line`.
CHANGE = (
    WRAP
    + CALL
    + "    loss, grads = reference(params, x, y, **kw)\n    {}\n    return loss, grads\n"
)

#: name -> (file, exit status, the one error line (a regex), or a note when exit is 0)
HOSTILE: dict[str, tuple[str, int, str]] = {
    "syntax error": (
        "def loss_and_grads(params, x, y)\n    return 0\n",
        2,
        r"cannot be loaded: it raised SyntaxError: .* \(learner.py line 1\)",
    ),
    "exception while loading": (
        "import numpy\nnumpy.zeros(-1)\n",
        2,
        r"cannot be loaded: it raised ValueError: .*\(learner.py line 2\) while loading",
    ),
    "exception": (
        CALL + "    return params['W_xh'] @ params['W_xh'], {}\n",
        2,
        r"loss_and_grads raised ValueError: .* \(learner.py line 2\) \(on every probe\)",
    ),
    "infinite loop": (
        CALL + "    while True:\n        pass\n",
        2,
        r"stopped after 2 s: loss_and_grads had answered 0 of \d+ probes",
    ),
    "infinite loop while loading": (
        "while True:\n    pass\n",
        2,
        r"loading learner.py took longer than 2 s",
    ),
    "wrong shapes": (
        CHANGE.format("grads['W_xh'] = grads['W_xh'].T"),
        1,
        r"grads\['W_xh'\] has shape \(5, 3\), expected \(3, 5\) \(on every probe\)",
    ),
    "NaN": (
        CHANGE.format("grads['W_hh'] = grads['W_hh'] * float('nan')"),
        1,
        r"grads\['W_hh'\] has NaN or inf \(on every probe\)",
    ),
    "missing keys": (
        CHANGE.format("del grads['h0']"),
        1,
        r"grads has no 'h0' \(on every probe\)",
    ),
    "returns nothing": (
        CALL + "    pass\n",
        2,
        r"loss_and_grads returned None, not \(loss, grads\) \(on every probe\)",
    ),
    "returns a list for grads": (
        CALL + "    return 0.0, [1, 2]\n",
        2,
        r"returned grads as a list of 2, not a dict",
    ),
    "prints megabytes": (
        WRAP + CALL + "    print('x' * 1_000_000)\n    return reference(params, x, y, **kw)\n",
        0,
        r"learner.py printed \d+\.\d MB to stdout",
    ),
    "writes files": (
        WRAP
        + CALL
        + "    open('debug.txt', 'a').write('x')\n    return reference(params, x, y, **kw)\n",
        0,
        r"wrote files in the folder it ran in .*: debug.txt",
    ),
    "calls sys.exit": (
        "import sys\n\n\n" + CALL + "    sys.exit(3)\n",
        2,
        r"loss_and_grads called sys.exit\(3\) \(on every probe\)",
    ),
    "calls sys.exit while loading": (
        "import sys\nsys.exit(0)\n",
        2,
        r"it called sys.exit\(0\) while loading",
    ),
    "calls os._exit": (
        "import os\n\n\n" + CALL + "    os._exit(5)\n",
        2,
        r"ended \(status 5\) after answering 0 of \d+ probes, without an exception",
    ),
    "defines no loss_and_grads": ("x = 1\n", 2, r"the file defines no function loss_and_grads"),
    "not implemented": (
        CALL + "    raise NotImplementedError('3. dL/dW_hh')\n",
        2,
        r"^not implemented yet: 3. dL/dW_hh \(on every probe\)$",
    ),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_file_is_one_line_and_its_exit_status(name: str, tmp_path: Path) -> None:
    text, status, pattern = HOSTILE[name]
    path = tmp_path / "learner.py"
    path.write_text(text)
    with no_hang():  # a learner's endless loop is cut at the time limit, 2 s here
        report = diagnose(path, "rnn", activation="sigmoid", loss="mse", bias=True, timeout=2)
    assert report.exit_code == status, report.text()
    lines = report.notes if status == 0 else report.errors
    assert len(lines) == 1 and "\n" not in lines[0], report.text()
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in report.text()
    assert not (tmp_path / "debug.txt").exists()  # written in a scratch folder, not here


def test_an_edit_is_seen_at_once(tmp_path: Path) -> None:
    """The file is compiled from its text on every run: an edit of the same length within
    the same second (which a cached .pyc would hide) changes the verdict."""
    path = tmp_path / "learner.py"
    first, second = (
        catalogue.BY_NAME[f"loss: batch mean forgotten ({loss})"] for loss in ("mse", "bce")
    )
    reports = []
    for bug in (first, second):
        path.write_text(catalogue.source(bug))
        if bug is first:
            stamp = path.stat().st_mtime_ns
        os.utime(path, ns=(stamp, stamp))  # as if both were written within one second
        reports.append(diagnose(path, "rnn", activation="sigmoid", bias=False))
    assert [r.likely_bugs for r in reports] == [[first.name], [second.name]]
    assert list(tmp_path.iterdir()) == [path]  # no __pycache__ beside it


def test_a_missing_file_cannot_be_run(tmp_path: Path) -> None:
    report = diagnose(tmp_path / "nope.py", "rnn")
    assert report.exit_code == 2 and report.errors == [f"no such file: {tmp_path / 'nope.py'}"]


def test_a_file_for_another_cell_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "lstm.py"
    path.write_text(REFERENCE)
    report = diagnose(catalogue.mutant("lstm: cell path dropped"), "lstm")
    assert report.exit_code == 1
    path.write_text(CALL + "    return params['W_xi'], {}\n")
    report = diagnose(path, "rnn", activation="tanh", loss="bce", bias=False)
    assert report.exit_code == 2
    assert report.notes == ["the file looks up 'W_xi', the lstm's: is it for --cell lstm?"]


def test_wrong_options_raise_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="for the rnn only"):
        diagnose(tmp_path / "x.py", "lstm", activation="tanh")
    with pytest.raises(ValueError, match="cell must be one of"):
        diagnose(tmp_path / "x.py", "transformer")


# ---- the command line ----------------------------------------------------------------


def test_json_holds_the_verdicts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "learner.py"
    path.write_text(catalogue.source(catalogue.BY_NAME["rnn: W_hh for W_hh^T"]))
    assert main([str(path), "--json", "--activation", "tanh", "--no-bias"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert found["ok"] is False and found["exit_code"] == 1
    assert found["likely_bugs"] == ["rnn: W_hh for W_hh^T"]
    assert found["first_bad_distance"] == 1 and found["errors"] == []
    assert set(found["gradients"]) == {"W_xh", "W_hh", "W_hy", "x", "h0"}
    for name, verdict in found["gradients"].items():
        assert set(verdict) >= {"ok", "relative_error", "first_bad_length", "depends_on"}
        assert verdict["ok"] == (name == "W_hy")
    assert found["gradients"]["W_hh"]["first_bad_length"] == 2


def test_the_subcommand_plugs_into_a_parser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `python -m rnn_torch` does with add_parser and run."""
    path = tmp_path / "learner.py"
    path.write_text(REFERENCE)
    parser = argparse.ArgumentParser(prog="python -m rnn_torch")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["diagnose", str(path), "--cell", "gru", "--loss", "bce", "--bias"])
    assert run(args) == 0
    assert (
        capsys.readouterr().out.splitlines()[-1]
        == "OK: every gradient and the loss equal autograd's"
    )
    args = parser.parse_args(["diagnose", str(path), "--cell", "gru", "--activation", "tanh"])
    assert run(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m rnn_torch diagnose: error: --activation is for --cell rnn")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "argv", [["--loss", "hinge"], ["--seed", "-1"], ["--timeout", "0"], ["--bias", "--no-bias"]]
)
def test_bad_options_are_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["learner.py", *argv])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m rnn_torch diagnose: error: ") and err.count("\n") == 1


def test_the_command_end_to_end(tmp_path: Path) -> None:
    """As a learner runs it: a broken file is a report and exit 2, never a traceback."""
    bad = tmp_path / "bad.py"
    bad.write_text("def loss_and_grads(:\n")
    with no_hang():
        done = subprocess.run(
            [sys.executable, "-m", "rnn_torch", "diagnose", str(bad), "--cell", "gru"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    assert done.returncode == 2 and done.stderr == ""
    assert "error: bad.py cannot be loaded: it raised SyntaxError" in done.stdout
    assert "Traceback" not in done.stdout


def test_a_report_is_plain_json() -> None:
    report = diagnose(catalogue.mutant("loss: mse without its 0.5"), "lstm", loss="mse")
    assert isinstance(report, Report)
    text = json.dumps(report.to_json())  # no NumPy numbers, no NaN
    assert "NaN" not in text and json.loads(text)["likely_bugs"] == ["loss: mse without its 0.5"]
    assert np.isfinite(report.loss.relative_error or 0)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_an_unnamed_cross_entropy_bug_points_at_where_ce_is_derived(cell: str) -> None:
    """A wrong dL/dz of ce that no catalogue entry names (one held out) is pointed at the
    walkthrough's derivation of ce (section 15), not at mse's and bce's (section 3); with the
    sigmoid's losses probed the pointer stays section 3."""
    bug = "loss: ce's dL/dz through a sigmoid's derivative"
    report = diagnose(catalogue.mutant(bug), cell, loss="ce", hold_out=(bug,))
    pointer = report.findings[-1]
    assert report.exit_code == 1 and "look first at dL/dz_t" in pointer, report.text()
    assert 'section 15 "From bits to characters' in pointer and "section 3" not in pointer
    mse_bug = "loss: mse's dL/dz with 2 (p - y)"
    report = diagnose(catalogue.mutant(mse_bug), cell, loss="mse", hold_out=(mse_bug,))
    assert 'section 3 "The loss"' in report.findings[-1], report.text()
