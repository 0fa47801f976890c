"""The exercises' answers, taken from rnn_manual/reference.py: for test_exercises.py, which
fills the stubs with them, and test_anchors.py, which marks where they are taken from.

A stub's backward pass mirrors the reference's: each TODO is a statement `target = TODO(...)`
(or `+=`), and its answer is the reference's statement in the same slot: the k-th statement
of a stub function that assigns a target (a TODO or not) in a context (the headers of the
loops and branches it sits in) answers to the k-th one of the reference's function of the
same name that assigns the same target in the same context.
"""

from __future__ import annotations

import ast
import inspect
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rnn_manual import reference

ROOT = Path(__file__).resolve().parents[1]
STUBS = {cell: ROOT / "exercises" / f"{cell}.py" for cell in ("rnn", "lstm", "gru")}

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


@dataclass(frozen=True)
class Answer:
    """One TODO of a stub and the reference's statement that answers it (None: none does)."""

    stub: Path
    function: str  # the stub's function, and the reference's of the same name
    todo: ast.stmt
    answer: ast.stmt | None

    @property
    def label(self) -> str:
        """Where the TODO is and what it asks, e.g. "exercises/rnn.py, TODO 1. dh = ..."."""
        call = getattr(self.todo, "value", None)
        text = call.args[0].value if isinstance(call, ast.Call) and call.args else "?"
        return f"{self.stub.relative_to(ROOT)}, TODO {text.split(':')[0]}"


def answers(stub: Path, reference_source: str | None = None) -> list[Answer]:
    """Every TODO of `stub` with its answer, from reference.py (or `reference_source`, an
    edited copy of it)."""
    source = inspect.getsource(reference) if reference_source is None else reference_source
    functions = {
        node.name: node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)
    }
    found = []
    for function in ast.parse(stub.read_text()).body:
        if not isinstance(function, ast.FunctionDef):
            continue
        reference_function = functions.get(function.name)
        pool = []
        if reference_function is not None:
            pool = [(s, c) for s, c in statements(reference_function) if slot(s)]
        seen: Counter[tuple[str, Context]] = Counter()
        for statement, context in statements(function):
            key = (slot(statement), context)
            if not key[0]:
                continue
            if is_todo(statement):
                matches = [s for s, c in pool if (slot(s), c) == key]
                answer = matches[seen[key]] if seen[key] < len(matches) else None
                found.append(Answer(stub, function.name, statement, answer))
            seen[key] += 1
    return found


def filled(stub: Path) -> str:
    """The stub with every TODO replaced by its answer from the reference."""
    tree = ast.parse(stub.read_text())
    replacement: dict[str, ast.stmt] = {}
    for found in answers(stub):
        assert found.answer is not None, f"no answer for {found.label}"
        replacement[ast.dump(found.todo)] = found.answer  # each TODO's text is its own
    assert len(replacement) == sum(is_todo(s) for s, _ in statements(tree))
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if isinstance(block, list):
                setattr(node, field, [replacement.get(ast.dump(s), s) for s in block])
    return ast.unparse(tree)
