"""The exercises (exercises/*.py): run as they are, each gives a clean "not implemented yet"
report; filled in from rnn_manual/reference.py, each passes the diagnosis; and the table of
exercises/README.md quotes what the diagnosis really says of each mistake it lists.

A stub's backward pass mirrors the reference's: each TODO is a statement `target = TODO(...)`
(or `+=`), filled with the reference's statement in the same place (exercise_answers.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from exercise_answers import ROOT, STUBS, answers, filled

from rnn_torch.diagnose import diagnose

README = ROOT / "exercises" / "README.md"


def heading_id(heading: str) -> str:
    """The id GitHub gives a heading, which a link's #fragment names: lower case,
    punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def first_todo(cell: str) -> str:
    """The message of a stub's first TODO: what the blank stub stops at."""
    call = getattr(answers(STUBS[cell])[0].todo, "value", None)
    assert call is not None and call.args, cell
    return str(call.args[0].value)


@pytest.mark.parametrize("cell", STUBS)
def test_stub_as_it_is_reports_not_implemented(cell: str) -> None:
    """The blank stub loads and fails on every probe at its TODO 1: nothing can be judged,
    which is exit status 2 ("NOT RUN"), as the README says."""
    report = diagnose(STUBS[cell], cell)
    assert report.exit_code == 2
    assert first_todo(cell).startswith("1. ")
    assert report.errors == [f"not implemented yet: {first_todo(cell)} (on every probe)"]
    assert "NOT RUN" in report.text()


def test_readme_quotes_what_the_blank_stub_says() -> None:
    readme = README.read_text()
    assert f"error: not implemented yet: {first_todo('rnn')} (on every probe)\n" in readme
    assert "NOT RUN: nothing could be judged" in readme
    assert "fails on every probe, as the blank stub does" in readme  # the exit status 2


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
    readme = README.read_text()
    assert f"python -m rnn_torch diagnose exercises/{cell}.py" in readme


#: The mistakes of the README's table "If diagnose says X, reread Y": the findings a row
#: quotes -> the mistake, planted in a stub filled from the reference (the cell, the
#: answer's statement as exercise_answers.filled writes it, the wrong one).
PLANTS: dict[tuple[str, ...], tuple[str, str, str]] = {
    ("likely bug 'rnn: recurrent term of dL/dh_t dropped'",): (
        "rnn",
        "dh = dz[t] @ W_hy.T + dh_next",
        "dh = dz[t] @ W_hy.T",
    ),
    ("dh0: wrong from T = 1", "likely bug 'rnn: W_hh for W_hh^T'"): (
        "rnn",
        "dh_next = da @ W_hh.T",
        "dh_next = da @ W_hh",
    ),
    ("wrong with tanh, right with relu and sigmoid",): (
        "rnn",
        "da = dh * (1 - h[t + 1] ** 2)",
        "da = dh * h[t + 1] * (1 - h[t + 1])",
    ),
    ("db_h: wrong from T = 1; wrong with B = 4, right with B = 1",): (
        "rnn",
        "grads['b_h'] += da.sum(axis=0)",
        "grads['b_h'] += da.mean(axis=0)",
    ),
    ("only dh0 is wrong, and every weight's gradient is right",): (
        "rnn",
        "grads['h0'] = dh_next",
        "grads['h0'] = np.zeros_like(dh_next)",
    ),
    ("dL/dx_t is wrong at steps t after s (k = s - t = -1): a gradient flows forward in time",): (
        "rnn",
        "dh = dz[t] @ W_hy.T + dh_next",
        "dh = dz[t - 1] @ W_hy.T + dh_next",
    ),
    ("likely bug 'lstm: dc carried without the forget gate'",): (
        "lstm",
        "dc_next = dc * f[t]",
        "dc_next = dc",
    ),
    ('likely bug "gru: update gate\'s derivative with the wrong sign"',): (
        "gru",
        "du = dh * (h[t] - n[t])",
        "du = dh * (n[t] - h[t])",
    ),
}


def table_rows() -> dict[tuple[str, ...], str]:
    """The README's table "If diagnose says X, reread Y": each row's quotes (the `code`
    spans of its first column) -> its last column."""
    section = README.read_text().split("## If diagnose says X, reread Y", 1)[1]
    rows = re.findall(r"^\| (.+) \| .+ \| (.+) \|$", section.split("\n## ", 1)[0], flags=re.M)
    return {tuple(re.findall(r"`([^`]+)`", says)): reread for says, reread in rows[1:]}


def test_the_table_rows_are_the_planted_mistakes() -> None:
    """Every row of the table is one of the plants (so the next test reruns it), each links
    to headings that exist in the walkthrough, and the walkthrough's section 14 quotes the
    row of the negative distance as the table does."""
    rows = table_rows()
    assert set(rows) == set(PLANTS)
    walkthrough = (ROOT / "docs" / "walkthrough.md").read_text()
    headings = {heading_id(h) for h in re.findall(r"^#+ (.+)$", walkthrough, flags=re.M)}
    for quotes, reread in rows.items():
        links = re.findall(r"\]\(\.\./docs/walkthrough\.md#([^)]+)\)", reread)
        assert links and set(links) <= headings, (quotes, reread)
    section14 = walkthrough.split("\n## 14. ", 1)[1].split("\n## ", 1)[0]
    negative = next(q for q in PLANTS if "k = s - t = -1" in q[0])
    assert f'diagnose then says "{negative[0]}"' in " ".join(section14.split())


def test_every_link_of_the_readme_into_the_walkthrough_has_its_heading() -> None:
    walkthrough = (ROOT / "docs" / "walkthrough.md").read_text()
    headings = {heading_id(h) for h in re.findall(r"^#+ (.+)$", walkthrough, flags=re.M)}
    links = re.findall(r"\]\(\.\./docs/walkthrough\.md#([^)]+)\)", README.read_text())
    assert len(links) >= 10 and set(links) <= headings, set(links) - headings


@pytest.mark.parametrize("quotes", PLANTS, ids=[q[0][:40] for q in PLANTS])
def test_each_row_quotes_what_diagnose_says_of_its_mistake(
    quotes: tuple[str, ...], tmp_path: Path
) -> None:
    cell, right, wrong = PLANTS[quotes]
    source = filled(STUBS[cell])
    assert source.count(right) == 1, right
    path = tmp_path / f"{cell}.py"
    path.write_text(source.replace(right, wrong))
    report = diagnose(path, cell)
    assert report.exit_code == 1
    text = report.text()
    for quote in quotes:
        assert quote in text, f"diagnose no longer says {quote!r}:\n{text}"
