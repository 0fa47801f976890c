"""diagnose on the BPTT learners write: CS231n's rnn_layers.py (NumPy, and EECS 498's torch
tensors), the Coursera notebook's step by step, min-char-rnn's lossFun.

- a correct file in each course's own idiom (tests/learners/) passes, every unit judged;
- each bug variant of those files (tests/learners/variants.py, bugs seen in learners' code)
  is flagged, in the learner's own names, and localized to exactly the gradients it changes
  (found here by running the variant against the correct file, not by autograd);
- the style is read from names and signatures; options of the native protocol are refused
  for a course file; a Python 2 file is one line, exit 2;
- arrays a function changes in place are a finding of their own, in every style;
- min-char-rnn's module-level training loop never runs, and its clip is reported as a clip.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import cache
from itertools import combinations
from pathlib import Path

import manual
import numpy as np
import pytest
from learners.variants import CS231N, DLS, HERE, MINCHAR, names, variant
from numpy.typing import NDArray

from rnn_manual import reference
from rnn_manual.core.gradcheck import relative_error
from rnn_torch.diagnose import StyleReport, catalogue, diagnose, main
from rnn_torch.diagnose.answers import Answer
from rnn_torch.diagnose.courses import probes_of
from rnn_torch.diagnose.detect import SIGNATURES, detect
from rnn_torch.diagnose.diagnosis import Settings, probes_for, value
from rnn_torch.diagnose.report import Report
from rnn_torch.diagnose.sandbox import run_file
from rnn_torch.diagnose.styles import STYLES, UNITS
from rnn_torch.diagnose.styles import unit as unit_named

ROOT = Path(__file__).resolve().parents[1]
Array = NDArray[np.floating]
TORCH = "cs231n_torch.py"


def style_report(path: Path, **options: object) -> StyleReport:
    report = diagnose(path, **options)  # type: ignore[arg-type]
    assert isinstance(report, StyleReport)
    return report


@pytest.mark.parametrize(
    ("file", "style", "judged"),
    [
        (CS231N, "cs231n", 7),
        (TORCH, "cs231n", 2),
        (DLS, "dls", 4),
    ],
)
def test_a_correct_file_in_its_course_idiom_passes(file: str, style: str, judged: int) -> None:
    report = style_report(HERE / file)
    assert report.style == style
    assert [j.name for j in report.judged] == [
        u.name for u in UNITS[style] if u.name in {j.name for j in report.judged}
    ]
    assert len(report.judged) == judged
    assert report.exit_code == 0, report.text()
    for j in report.judged:
        assert j.report.probes > 0 and not j.report.changed_inputs
    assert f"diagnose {HERE / file}: {style} style" in report.text().splitlines()[0]


def localized(report: StyleReport) -> dict[str, set[str]]:
    """function -> the keys judged wrong on the ordinary probes (min-char-rnn as copied is
    also wrong, in every key, where its naive softmax overflows: a finding apart)."""
    found = {j.name: set(j.report.wrong()) - set(j.report.unstable) for j in report.judged}
    return {name: keys for name, keys in found.items() if keys}


def wrong_keys(path: Path) -> dict[str, set[str]]:
    return localized(style_report(path))


@cache
def correct_answers(file: str, unit_name: str) -> list[Answer | None]:
    """The correct file's answers to a unit's probes (the same for every variant)."""
    style = detect((HERE / file).read_text(), file).style
    found = unit_named(style, unit_name)
    probes, _ = probes_of(found, 0)
    return run_file(HERE / file, probes, 60.0, unit=found).answers


def changed_against_correct(file: str, bug: str, tmp_path: Path) -> dict[str, set[str]]:
    """unit -> the keys (ours, and "loss") the variant's answers differ in from the correct
    file's, on the diagnosis's own probes: what the bug changes, without autograd."""
    path = tmp_path / file
    path.write_text(variant(file, bug), encoding="utf-8")
    style = detect(path.read_text(), file).style
    found: dict[str, set[str]] = {}
    for unit in UNITS[style]:
        probes, _ = probes_of(unit, 0)
        mine = run_file(path, probes, 60.0, unit=unit).answers
        right = correct_answers(file, unit.name)
        keys = ["loss", *probes[0].expected()]
        differ = set()
        for m, r, probe in zip(mine, right, probes, strict=True):
            if probe.factors.get("logits") == "large":
                continue  # the stability probe: judged apart (both files overflow there)
            for key in keys:
                a, b = value(m, key), value(r, key)
                # relative_error is inf where the shapes differ
                if b is not None and (a is None or relative_error(a, b) > 1e-10):
                    differ.add(key)
        if differ:
            found[unit.name] = differ
    return found


VARIANT_CASES = [
    (file, bug)
    for file in (CS231N, DLS, MINCHAR)
    for bug in names(file)
    # one raises a broadcasting error, one changes its argument alone: each has a test of
    # its own below
    if bug not in ("dba_not_summed_over_m", "dh_written_in_place")
]


@pytest.mark.parametrize(("file", "bug"), VARIANT_CASES)
def test_a_learner_bug_is_flagged_and_localized_exactly(
    file: str, bug: str, tmp_path: Path
) -> None:
    """Held out of nothing: the catalogue names what it can, but the keys listed wrong must
    be exactly those the bug changes, in every unit it reaches and in no other."""
    expected = changed_against_correct(file, bug, tmp_path)
    assert expected, f"{bug} changes nothing on the probes"
    path = tmp_path / file
    report = style_report(path)
    assert report.exit_code == 1
    assert wrong_keys(path) == expected


def test_the_loop_writing_into_the_callers_dh_is_named_by_its_argument(tmp_path: Path) -> None:
    path = tmp_path / CS231N
    path.write_text(variant(CS231N, "dh_written_in_place"))
    report = style_report(path)
    assert report.exit_code == 1
    by_name = {j.name: j.report for j in report.judged}
    # every probe but T = 1, and the one with G on step 0 alone: there nothing is carried
    # back into dh
    assert by_name["rnn_backward"].changed_inputs == ["rnn_backward: dh (on 12 of 14 probes)"]
    assert by_name["rnn_backward"].wrong() == []  # its gradients are right
    others = [j for j in report.judged if j.name != "rnn_backward"]
    assert all(j.report.ok for j in others)
    text = report.text()
    assert "changed in place: rnn_backward: dh" in text and "MISMATCH in rnn_backward" in text
    assert report.to_json()["findings"] == [
        {"kind": "changed in place", "function": "rnn_backward", "array": "dh", "probes": 12}
    ]


def test_a_native_loss_and_grads_that_updates_its_params_is_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "learner.py"
    path.write_text(
        "from rnn_manual.reference import loss_and_grads as right\n"
        "def loss_and_grads(params, x, y, **kw):\n"
        "    loss, grads = right(params, x, y, **kw)\n"
        "    params['W_hh'] -= 0.1 * grads['W_hh']  # a training step, in place\n"
        "    return loss, grads\n"
    )
    report = diagnose(path, "rnn", activation="tanh", loss="mse", bias=True)
    assert isinstance(report, Report)
    assert report.changed_inputs == ["loss_and_grads: params['W_hh'] (on every probe)"]
    assert report.exit_code == 1 and report.wrong() == []


def test_a_failing_step_function_is_reported_as_an_error(tmp_path: Path) -> None:
    path = tmp_path / DLS
    path.write_text(variant(DLS, "dba_not_summed_over_m"))
    report = style_report(path)
    assert report.exit_code == 1
    errors = {j.name: j.report.errors for j in report.judged}
    assert errors["rnn_cell_backward"] == [
        "grads['b_h'] has shape (5, 4), expected (5,) (on 13 of 14 probes)"  # but B = 1
    ]
    assert errors["rnn_backward"][0].startswith("rnn_forward or rnn_backward raised ValueError")
    assert "dba (db_h) has shape (5, 4)" in report.text() and "(dba (" not in report.text()
    assert errors["lstm_cell_backward"] == errors["lstm_backward"] == []


def test_the_torch_tensor_functions_fail_as_the_numpy_ones_do(tmp_path: Path) -> None:
    text = (HERE / TORCH).read_text()
    old = "dh[:, t] + dprev_h"
    assert text.count(old) == 1
    path = tmp_path / TORCH
    path.write_text(text.replace(old, "dh[:, t]"))  # dprev_h not carried
    assert wrong_keys(path) == {"rnn_backward": {"W_xh", "W_hh", "b_h", "x", "h0"}}
    report = style_report(path)
    assert report.judged[1].report.likely_bugs == ["rnn: recurrent term of dL/dh_t dropped"]


def test_a_step_right_and_a_sequence_wrong_are_told_apart(tmp_path: Path) -> None:
    path = tmp_path / CS231N
    path.write_text(variant(CS231N, "lstm_dnext_c_not_carried"))
    report = style_report(path)
    verdicts = {j.name: j.report.ok for j in report.judged}
    assert verdicts == {
        "rnn_step_backward": True,
        "rnn_backward": True,
        "lstm_step_backward": True,
        "lstm_backward": False,
        "word_embedding_backward": True,
        "temporal_affine_backward": True,
        "temporal_softmax_loss": True,
    }
    lstm = report.judged[3].report
    assert lstm.gradients["W_xi"].first_bad_length == 2  # the carry starts at T = 2
    assert "dWx[:, H:2H] (dW_xf)" in report.text()


def test_a_wrong_forward_is_reported_as_the_loss(tmp_path: Path) -> None:
    path = tmp_path / CS231N
    path.write_text(variant(CS231N, "lstm_no_tanh_on_cell"))  # h = o * c, both passes
    entry = "lstm: tanh(c_t) dropped from h_t (h_t = o_t c_t)"
    lstm = {j.name: j.report for j in style_report(path).judged}["lstm_backward"]
    assert lstm.loss.wrong and lstm.likely_bugs == [entry]
    held = style_report(path, hold_out=(entry,))  # as an unknown forward bug
    lstm = {j.name: j.report for j in held.judged}["lstm_backward"]
    assert lstm.loss.wrong and lstm.likely_bugs == []
    assert "the forward function's hidden states h_t" in "\n".join(lstm.findings)


def test_the_gates_in_pytorchs_order_name_themselves(tmp_path: Path) -> None:
    """The catalogue's entry swaps g and o on the way into the reference's one pass, so
    under the upstream objective too it is what a CS231n file in PyTorch's order gives."""
    path = tmp_path / CS231N
    path.write_text(variant(CS231N, "lstm_gates_pytorch_order"))
    report = style_report(path)
    for name in ("lstm_step_backward", "lstm_backward"):
        lstm = {j.name: j.report for j in report.judged}[name]
        assert lstm.loss.wrong
        assert lstm.likely_bugs == ["lstm: gates g and o swapped (CS231n's order i, f, o, g)"]


NAIVE_SOFTMAX = "ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))"
STABLE_SOFTMAX = "ps[t] = np.exp(ys[t] - ys[t].max()) / np.sum(np.exp(ys[t] - ys[t].max()))"


def stable_minchar(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """min-char-rnn as copied, but with the softmax's max subtracted (and `edits`)."""
    text = (HERE / MINCHAR).read_text()
    for old, new in [(NAIVE_SOFTMAX, STABLE_SOFTMAX), *edits]:
        assert text.count(old) == 1
        text = text.replace(old, new)
    path = tmp_path / MINCHAR
    path.write_text(text)
    return path


def test_min_char_rnn_as_copied_is_right_but_for_its_softmax(tmp_path: Path) -> None:
    """Its exp(ys) / sum(exp(ys)) overflows for logits around 800, where the true loss and
    gradients are finite: every value is right on the ordinary probes and wrong there, which
    is a finding of its own, and nothing else is; with the max subtracted it passes."""
    report = style_report(HERE / MINCHAR)
    loss_fun = report.judged[0].report
    assert report.exit_code == 1 and loss_fun.errors == []
    assert loss_fun.unstable == ["loss", "W_xh", "W_hh", "W_hy", "b_h", "b_y"]
    assert set(loss_fun.wrong()) == set(loss_fun.unstable)
    assert loss_fun.likely_bugs == [] and loss_fun.closest_bug is None
    unstable = [f for f in loss_fun.findings if f.startswith("numerically unstable")]
    assert len(unstable) == 1 and "lossFun gives the loss, dW_xh" in unstable[0]
    assert "logits around 800" in unstable[0] and "subtract max(z)" in unstable[0]
    assert "NUMERICALLY UNSTABLE in loss, dWxh (dW_xh)" in report.text()
    assert style_report(stable_minchar(tmp_path)).exit_code == 0


def test_a_naive_bce_is_numerically_unstable_and_nothing_else() -> None:
    """The reference's gradients with a loss computed as -(y log p + (1 - y) log(1 - p)):
    right on every ordinary probe, infinite where sigmoid(z) rounds to 1 (z around 45)."""

    def naive(params: dict[str, Array], x: Array, y: Array, **options: object) -> object:
        value, grads = reference.loss_and_grads(params, x, y, **options)  # type: ignore[arg-type]
        h0 = options.get("h0")
        start = np.zeros((x.shape[1], params["W_hh"].shape[0])) if h0 is None else h0
        p = reference.rnn_forward(params, x, start, str(options["activation"]))["p"]
        with np.errstate(divide="ignore", invalid="ignore"):
            value = -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)) / x.shape[1]
        return value, grads

    report = diagnose(naive, "rnn", loss="bce")
    assert isinstance(report, Report)
    assert report.unstable == ["loss"] and report.wrong() == ["loss"] and report.errors == []
    assert report.first_bad_distance is None and report.loss.first_bad_length is None
    assert any("log(1 - p) or log(p) is log 0" in f for f in report.findings)
    right = diagnose(reference.loss_and_grads, "rnn", loss="bce")
    assert right.exit_code == 0


def test_min_char_rnn_is_checked_without_running_its_training_loop(tmp_path: Path) -> None:
    """Its module level opens input.txt (absent here) and trains forever."""
    report = style_report(stable_minchar(tmp_path), timeout=20.0)
    assert report.exit_code == 0 and report.seconds < 20
    notes = report.judged[0].report.notes
    assert len(notes) == 1 and "clips the gradients it returns to [-5, 5]" in notes[0]
    assert "the clip shows where the true dby reaches" in notes[0]


def test_without_the_clip_min_char_rnn_is_judged_against_autograd_itself(tmp_path: Path) -> None:
    path = stable_minchar(tmp_path, ("np.clip(dparam, -5, 5, out=dparam)", "pass"))
    report = style_report(path)
    assert report.exit_code == 0 and report.judged[0].report.notes == []


def test_a_clip_at_another_bound_is_wrong(tmp_path: Path) -> None:
    path = stable_minchar(tmp_path, ("np.clip(dparam, -5, 5,", "np.clip(dparam, -3, 3,"))
    report = style_report(path)
    assert report.exit_code == 1 and not report.judged[0].report.notes


def test_python_2_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(HERE / "minchar_py2.py")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is Python 2 (print statements)" in err


def test_the_styles_detected_are_the_styles_adapted() -> None:
    assert tuple(SIGNATURES) == STYLES == tuple(UNITS)


def test_the_style_is_read_from_signatures_not_names_alone() -> None:
    cs231n = "def rnn_forward(x, h0, Wx, Wh, b): pass\ndef rnn_backward(dh, cache): pass\n"
    dls = "def rnn_forward(x, a0, parameters): pass\ndef rnn_backward(da, caches): pass\n"
    assert detect(cs231n, "f.py").style == "cs231n"
    assert detect(dls, "f.py").style == "dls"
    other = "def rnn_forward(x, h0, params): pass\n"
    assert detect(other, "f.py").style == "native"  # nothing of any course: loss_and_grads?
    forced = detect(other, "f.py", style="cs231n")
    assert forced.functions == [] and forced.other_signature == ["rnn_forward"]


def test_options_of_the_native_protocol_are_refused_for_a_course_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([str(HERE / CS231N), "--cell", "lstm"]) == 2
    err = capsys.readouterr().err
    assert "cell: for loss_and_grads files; cs231n_rnn_layers.py is in the cs231n style" in err
    with pytest.raises(ValueError, match="a function is judged as loss_and_grads"):
        diagnose(lambda *a, **k: None, style="minchar")


def test_json_names_each_function_and_gradient_as_the_learner_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([str(HERE / DLS), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["style"] == "dls" and data["exit_code"] == 0 and data["findings"] == []
    lstm = data["functions"]["lstm_backward"]
    assert lstm["with"] == "lstm_forward" and lstm["ok"] is True
    assert lstm["gradients"]["dWc[:, n_a:]"]["ours"] == "dW_xg"
    assert lstm["outputs"]["loss"]["ok"] is True
    assert set(data["functions"]) == {
        "rnn_cell_backward",
        "rnn_backward",
        "lstm_cell_backward",
        "lstm_backward",
    }


def test_the_command_end_to_end_on_a_course_file() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rnn_torch", "diagnose", str(HERE / TORCH)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "not defined in the file (not judged): lstm_step_forward" in done.stdout
    assert done.stdout.strip().endswith("(rnn_step_backward, rnn_backward)")


def test_the_unit_tables_cover_every_gradient_they_return() -> None:
    """Each unit names every key its probes expect, in the learner's words."""
    for units in UNITS.values():
        for unit in units:
            probes, _ = probes_of(unit, 0)
            assert set(probes[0].expected()) == set(unit.names), unit.name
            assert np.all([p.loss == unit.objective for p in probes])


def test_python_3_with_a_python_2_shim_is_read_and_methods_are_not_functions() -> None:
    shim = "try:\n    xrange\nexcept NameError:\n    xrange = range\n"
    cs231n = "def rnn_step_forward(x, prev_h, Wx, Wh, b): pass\n"
    assert detect(shim + cs231n, "f.py").style == "cs231n"
    method = "class Net:\n    def loss_and_grads(self, params, x, y): pass\n"
    assert detect(method + cs231n, "f.py").style == "cs231n"


def test_constants_and_helpers_at_module_level_are_kept(tmp_path: Path) -> None:
    """Only what calls something is left out at module level (opening input.txt, training);
    constants, lambdas and definitions inside if blocks stay."""
    text = (HERE / CS231N).read_text()
    old = "def rnn_step_forward("
    helper = "GAIN = 1.0\nscale = lambda a: GAIN * a\nif True:\n    def unused(): pass\n\n\n"
    path = tmp_path / CS231N
    text = text.replace(old, helper + old, 1)
    text = text.replace("next_h = np.tanh(affine)", "next_h = scale(np.tanh(affine))")
    path.write_text(text)
    assert style_report(path).exit_code == 0


def test_the_readme_runs_are_what_the_command_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each block of the README and its pages marked `styles-run: NAME BUG` is a run of the
    command on the learner file with that bug (or none), shortened where `...` stands: every
    other line is printed, in order, timings aside."""
    marked = r"<!-- styles-run: (\S+) (\S+) -->\n```\n(.*?)\n```"
    runs = [run for page in manual.pages() for run in re.findall(marked, page.read_text(), re.S)]
    assert len(runs) == 5  # the README's, and docs/diagnose.md's four
    monkeypatch.chdir(tmp_path)
    files = {"rnn_layers.py": CS231N, "rnn_step_by_step.py": DLS, "min_char_rnn.py": MINCHAR}
    native = catalogue.source(catalogue.BY_NAME["rnn: recurrent term of dL/dh_t dropped"])
    for name, bug, block in runs:
        if name == "my_rnn.py":
            text = native  # ours: the gradient from t + 1 forgotten
        elif bug == "correct":
            text = (HERE / files[name]).read_text()
        else:
            text = variant(files[name], bug)
        (tmp_path / name).write_text(text)
        main([name])
        printed = iter(untimed(capsys.readouterr().out).splitlines())
        for line in untimed(block).splitlines():
            if line != "...":
                assert line in printed, f"{name}: {line!r} not printed (in this order)"


def untimed(text: str) -> str:
    return re.sub(r"\d+\.\d s\)", "s)", text)  # "(1.1 s)", "(168 probes, 1.0 s)"


def test_a_catalogue_name_is_quoted_as_it_is_and_the_learners_names_around_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / MINCHAR
    path.write_text(variant(MINCHAR, "dWhy_uses_previous_h"))
    text = style_report(path).text()
    assert "your dWhy (dW_hy) equals what you get when" in text
    assert "likely bug 'rnn: h_{t-1} for h_t in dW_hy'" in text


def test_only_the_state_left_after_the_loop_wrong_points_there(tmp_path: Path) -> None:
    path = tmp_path / DLS
    path.write_text(variant(DLS, "da0_is_the_upstream"))
    report = style_report(path)
    rnn = {j.name: j.report for j in report.judged}["rnn_backward"]
    assert rnn.wrong() == ["h0"]
    findings = [rnn.in_their_names(line) for line in rnn.findings]
    assert any(
        "only da0 (dh0) is wrong, and every weight's gradient is right: what is carried back "
        "through time is right, and the error is in the line that computes it" in line
        for line in findings
    )
    assert any(line.startswith("no known bug gives these; look at da0 (dh0)") for line in findings)
    assert not any("sums for the weights" in line for line in findings)


def test_two_catalogue_bugs_at_once_are_named_as_a_pair() -> None:
    """Neither entry alone gives the gradients of both planted together (they interact on
    the same keys); held out, the pair is not named, and a lone entry of it is no near miss
    either (its gradients differ everywhere)."""
    pair = ("lstm: recurrent term dh_next dropped", "lstm: cell path dropped")
    function = catalogue.mutant(*pair)
    report = diagnose(function, "lstm", loss="mse", bias=True)
    assert isinstance(report, Report)
    assert report.likely_bugs == list(pair)
    assert all(v.explained_by == list(pair) for v in report.gradients.values() if v.wrong)
    text = report.text()
    assert "equal what you get with two known bugs at once" in text
    held = diagnose(function, "lstm", loss="mse", bias=True, hold_out=pair[:1])
    assert isinstance(held, Report) and held.likely_bugs == []


def test_a_near_miss_names_the_closest_entry_and_what_still_differs(tmp_path: Path) -> None:
    """dWx alone kept from the last step (= for += in its sum only): the catalogue's entry
    does it to dWx, dWh and db."""
    path = tmp_path / CS231N
    path.write_text(variant(CS231N, "dWx_assigned_not_summed"))
    rnn = {j.name: j.report for j in style_report(path).judged}["rnn_backward"]
    assert rnn.likely_bugs == []
    assert rnn.closest_bug == {
        "names": ["rnn: gradients not summed over time (= for +=)"],
        "equal_in": ["W_xh"],
        "differs_in": ["W_hh", "b_h"],
    }
    line = next(f for f in rnn.findings if f.startswith("closest known bug"))
    assert "your dW_xh equal what it gives, but dW_hh and db_h still differ" in line


def test_the_notebooks_own_wrong_lstm_loop_is_said_in_words(tmp_path: Path) -> None:
    path = tmp_path / DLS
    path.write_text(variant(DLS, "lstm_backward_no_carry"))
    lstm = {j.name: j.report for j in style_report(path).judged}["lstm_backward"]
    assert lstm.closest_bug is not None and set(lstm.closest_bug["names"]) == {
        "lstm: recurrent term dh_next dropped",
        "lstm: cell path dropped",
    }
    assert lstm.closest_bug["differs_in"] == ["h0"]  # da0: step 0's da_prev, not carried
    assert any("the notebook's own expected output for lstm_backward" in f for f in lstm.findings)
    right = {j.name: j.report for j in style_report(HERE / DLS).judged}["lstm_backward"]
    assert not any("expected output" in f for f in right.findings)


def test_pairs_combined_from_their_namespaces_equal_pairs_planted_together() -> None:
    """catalogue.planted builds a pair of entries that edit different functions from their
    own namespaces; it must give what planting both in one source gives, bit for bit (every
    tenth such pair of every cell, on one probe each)."""
    tried = 0
    for cell, losses in (("rnn", ("bce",)), ("lstm", ("mse",)), ("gru", ("ce",))):
        probe = probes_for(Settings(cell, losses, (True,), ("tanh",)))[0][0]
        names = [bug.name for bug in catalogue.for_cell(cell)]
        pairs = [
            (a, b)
            for a, b in combinations(names, 2)
            if not catalogue.edited(catalogue.BY_NAME[a]) & catalogue.edited(catalogue.BY_NAME[b])
        ]
        for a, b in pairs[::10]:
            together: dict[str, object] = {"__name__": "together"}
            tree = catalogue.planted_tree(catalogue.BY_NAME[a], catalogue.BY_NAME[b])
            exec(compile(tree, "<together>", "exec"), together)
            results = [
                function(
                    {k: w.copy() for k, w in probe.params.items()},
                    probe.x,
                    probe.y,
                    **probe.keywords(),
                )  # type: ignore[operator]
                for function in (catalogue.mutant(a, b), together["loss_and_grads"])
            ]
            (v1, g1), (v2, g2) = results
            assert np.array_equal(v1, v2, equal_nan=True), (a, b)
            assert g1.keys() == g2.keys()
            assert all(np.array_equal(g1[k], g2[k], equal_nan=True) for k in g2), (a, b)
            tried += 1
    assert tried >= 30


AUTOGRADER = ROOT / "exercises" / "autograder"


def graded(tmp_path: Path, name: str, text: str | None, style: str = "") -> dict[str, object]:
    """exercises/autograder/run_autograder on one submission, in a folder standing in for
    /autograder: the results.json it wrote."""
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    if text is not None:
        (root / "submission" / name).write_text(text)
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "PYTHON": sys.executable, "STYLE": style}
    done = subprocess.run(
        ["bash", str(AUTOGRADER / "run_autograder")], env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0
    result: dict[str, object] = json.loads((root / "results" / "results.json").read_text())
    return result


def test_the_gradescope_example_grades_a_correct_and_a_buggy_submission(tmp_path: Path) -> None:
    right = graded(tmp_path / "right", "rnn_layers.py", (HERE / CS231N).read_text())
    tests = right["tests"]
    assert isinstance(tests, list)
    assert [(t["name"], t["score"], t["max_score"], t["status"]) for t in tests] == [
        (backward if forward == backward else f"{backward} (with {forward})", 1.0, 1.0, "passed")
        for forward, backward in [u.functions for u in UNITS["cs231n"]]
    ]
    assert "not judged" not in str(right["output"])
    buggy = graded(tmp_path / "buggy", "rnn_layers.py", variant(CS231N, "dprev_h_not_carried"))
    scores = {t["name"]: t["score"] for t in buggy["tests"]}  # type: ignore[attr-defined]
    assert scores == {
        "rnn_step_backward (with rnn_step_forward)": 1.0,
        "rnn_backward (with rnn_forward)": 0.0,
        "lstm_step_backward (with lstm_step_forward)": 1.0,
        "lstm_backward (with lstm_forward)": 1.0,
        "word_embedding_backward (with word_embedding_forward)": 1.0,
        "temporal_affine_backward (with temporal_affine_forward)": 1.0,
        "temporal_softmax_loss": 1.0,
    }
    failed = next(t for t in buggy["tests"] if t["score"] == 0.0)  # type: ignore[attr-defined]
    assert "likely bug 'rnn: recurrent term of dL/dh_t dropped'" in failed["output"]


def test_the_gradescope_example_scores_0_what_cannot_be_judged(tmp_path: Path) -> None:
    python2 = graded(tmp_path / "py2", "min_char_rnn.py", (HERE / "minchar_py2.py").read_text())
    assert python2 == {
        "score": 0.0,
        "output": "min_char_rnn.py is Python 2 (print statements): port it to Python 3 "
        "(print(...), range) to diagnose it",
        "tests": [],
    }
    nothing = graded(tmp_path / "none", "", None)
    assert nothing["score"] == 0.0 and "no such file" in str(nothing["output"])
    other = graded(tmp_path / "style", "f.py", (HERE / MINCHAR).read_text(), style="cs231n")
    assert other["score"] == 0.0 and other["tests"] == []


def test_the_gradescope_setup_script_is_valid_bash() -> None:
    done = subprocess.run(["bash", "-n", str(AUTOGRADER / "setup.sh")], capture_output=True)
    assert done.returncode == 0, done.stderr


def test_only_dx_wrong_points_at_its_line_not_at_the_path_back(tmp_path: Path) -> None:
    path = tmp_path / CS231N
    path.write_text(variant(CS231N, "dx_from_dnext_h"))
    for unit in style_report(path).judged[:2]:  # rnn_step_backward, and rnn_backward with it
        report = unit.report
        assert report.wrong() == ["x"]
        assert (
            "only dx is wrong, and every weight's gradient is right: what is carried back "
            "through time is right, and the error is in the line that computes it"
        ) in report.findings
        assert not any("distance" in f or "path named above" in f for f in report.findings)
        assert any(
            f.startswith("no known bug gives these; look at dx: dL/dx_t") for f in report.findings
        )


def test_cs231ns_layers_around_the_rnn_are_judged_and_point_at_their_formula(
    tmp_path: Path,
) -> None:
    path = tmp_path / CS231N
    path.write_text(variant(CS231N, "softmax_dx_unmasked"))
    report = {j.name: j.report for j in style_report(path).judged}
    loss = report["temporal_softmax_loss"]
    assert loss.wrong() == ["x"]
    assert loss.findings[-1] == "look at dx: dx = mask * (softmax(x) - onehot(y)) / N"
    assert all(r.ok for name, r in report.items() if name != "temporal_softmax_loss")
    path.write_text(variant(CS231N, "embedding_fancy_index_add"))
    embedding = {j.name: j.report for j in style_report(path).judged}["word_embedding_backward"]
    assert embedding.wrong() == ["W"]  # a word twice in the batch adds once with dW[x] +=
    assert "np.add.at" in embedding.findings[-1]


def test_min_char_rnns_forgotten_minus_one_names_itself_under_the_clip(tmp_path: Path) -> None:
    """min-char-rnn's most asked line, dy[targets[t]] -= 1, forgotten: the catalogue's entry
    for it, clipped as lossFun clips (no right gradient of this file passes 5, so the clip is
    seen only in what the file returns)."""
    path = tmp_path / MINCHAR
    path.write_text(variant(MINCHAR, "dy_minus_one_forgotten"))
    loss_fun = style_report(path).judged[0].report
    assert loss_fun.likely_bugs == ["loss: ce's dL/dz without the -1 at the target"]


def test_min_char_rnns_bugs_are_localized_apart_from_its_unstable_softmax(
    tmp_path: Path,
) -> None:
    """The faithful file overflows in every key on the stability probe; a bug in dWhh is
    still dWhh alone, found so by comparing with the correct file, and by the diagnosis."""
    expected = changed_against_correct(MINCHAR, "dWhh_uses_hs_t", tmp_path)
    assert expected == {"lossFun": {"W_hh"}}
    assert wrong_keys(tmp_path / MINCHAR) == expected
