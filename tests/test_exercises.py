"""The exercises (exercises/*.py): run as they are, each gives a clean "not implemented yet"
report; filled in from rnn_manual/reference.py, each passes the diagnosis.

A stub's backward pass mirrors the reference's: each TODO is a statement `target = TODO(...)`
(or `+=`), filled with the reference's statement in the same place (see `filled`).
"""

from __future__ import annotations

import ast
import inspect
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from rnn_manual import reference
from rnn_torch.diagnose import diagnose

ROOT = Path(__file__).resolve().parents[1]
STUBS = {"rnn": ROOT / "exercises/rnn.py", "lstm": ROOT / "exercises/lstm.py"}
STUBS["gru"] = ROOT / "exercises/gru.py"


Context = tuple[str, ...]


def statements(node: ast.AST, context: Context = ()) -> Iterator[tuple[ast.stmt, Context]]:
    """Every statement under node, at any depth, in source order, with its context: the
    headers of the loops and branches it sits in (so that `dh_next = ...` in the loop and
    under an `if` of the reference's own are told apart)."""
    header = ast.dump(getattr(node, "test", None) or getattr(node, "iter", ast.Pass()))
    for field in ("body", "orelse", "finalbody"):
        inner = (*context, f"{type(node).__name__} {field} {header}")
        for child in getattr(node, field, []):
            if isinstance(child, ast.stmt):
                yield child, inner
                yield from statements(child, inner)


def is_todo(statement: ast.stmt) -> bool:
    value = getattr(statement, "value", None)
    return (
        isinstance(statement, (ast.Assign, ast.AugAssign))
        and isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "TODO"
    )


def slot(statement: ast.stmt) -> str:
    """What a statement assigns, and how (= or +=): the key a TODO and its answer share."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        return f"= {ast.dump(statement.targets[0])}"
    if isinstance(statement, ast.AugAssign):
        return f"+= {ast.dump(statement.target)}"
    return ""


def filled(stub: Path) -> str:
    """The stub with every TODO replaced by the reference's statement for the same slot: the
    k-th statement of a stub function that assigns a target (a TODO or not) in a context
    answers to the k-th one of the reference's function of the same name that assigns the
    same target in the same context."""
    tree = ast.parse(stub.read_text())
    answers = {
        node.name: node
        for node in ast.parse(inspect.getsource(reference)).body
        if isinstance(node, ast.FunctionDef)
    }
    replacement: dict[int, ast.stmt] = {}
    for function in tree.body:
        if not isinstance(function, ast.FunctionDef):
            continue
        if not any(is_todo(s) for s, _ in statements(function)):
            continue
        pool = [(s, c) for s, c in statements(answers[function.name]) if slot(s)]
        seen: Counter[tuple[str, Context]] = Counter()
        for statement, context in statements(function):
            key = (slot(statement), context)
            if not key[0]:
                continue
            if is_todo(statement):
                matches = [s for s, c in pool if (slot(s), c) == key]
                assert seen[key] < len(matches), f"no answer for {ast.unparse(statement)}"
                replacement[id(statement)] = matches[seen[key]]
            seen[key] += 1
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if isinstance(block, list):
                setattr(node, field, [replacement.get(id(s), s) for s in block])
    assert len(replacement) == sum(is_todo(s) for s, _ in statements(ast.parse(stub.read_text())))
    return ast.unparse(tree)


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
