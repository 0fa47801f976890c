"""The exercises (exercises/*.py): run as they are, each gives a clean "not implemented yet"
report; filled in from rnn_manual/reference.py, each passes the diagnosis.

A stub's backward pass mirrors the reference's: each TODO is a statement `target = TODO(...)`
(or `+=`), filled with the reference's statement in the same place (exercise_answers.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from exercise_answers import ROOT, STUBS, filled

from rnn_torch.diagnose import diagnose


@pytest.mark.parametrize("cell", STUBS)
def test_stub_as_it_is_reports_not_implemented(cell: str) -> None:
    report = diagnose(STUBS[cell], cell)
    assert report.exit_code == 2
    assert report.errors == [
        "not implemented yet: 1. dh = dL/dh_t: what reaches h_t from its output z_t, plus "
        "dh_next (on every probe)"
    ]
    assert "NOT RUN" in report.text()


@pytest.mark.parametrize("cell", STUBS)
def test_stub_filled_from_the_reference_passes(cell: str, tmp_path: Path) -> None:
    source = filled(STUBS[cell])
    assert "TODO(" not in source.split("def TODO", 1)[1].split("\n", 3)[-1]
    path = tmp_path / f"{cell}.py"
    path.write_text(source)
    report = diagnose(path, cell)
    assert report.exit_code == 0, report.text()
    assert report.errors == [] and report.notes == [] and report.likely_bugs == []


def test_a_wrong_answer_in_a_stub_is_caught(tmp_path: Path) -> None:
    """The fill test can fail: one answer changed (h_t for h_{t-1} in dW_hh) is named."""
    source = filled(STUBS["rnn"])
    wrong = source.replace("grads['W_hh'] += h[t].T @ da", "grads['W_hh'] += h[t + 1].T @ da")
    assert wrong != source
    path = tmp_path / "rnn.py"
    path.write_text(wrong)
    report = diagnose(path, "rnn")
    assert report.exit_code == 1
    assert report.likely_bugs == ["rnn: h_t for h_{t-1} in dW_hh"]


@pytest.mark.parametrize("cell", STUBS)
def test_readme_names_the_check_command(cell: str) -> None:
    readme = (ROOT / "exercises/README.md").read_text()
    assert f"python -m rnn_torch diagnose exercises/{cell}.py" in readme
