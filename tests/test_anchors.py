"""The couplings on rnn_manual/reference.py, the file a learner reads first, made visible.

Three matchers find statements of the reference by their syntax tree: the diagnosis's
catalogue, which plants each of its bugs by editing named statements (rnn_torch/diagnose/
catalogue.py), the tests' own planted bugs (reference_plants.py), and the exercises, whose
every TODO takes its answer from the reference's statement in the same slot
(exercise_answers.py). Every statement either finds is marked with
planting.ANCHOR at the end of its line, and only those are: so the mark says, where the
statement stands, that other code leans on it. A change that loses one fails here, in one
message per loss naming the matcher and the statement.
"""

from __future__ import annotations

import ast
import inspect
from collections import defaultdict

import pytest
from exercise_answers import STUBS, answers
from reference_plants import EXTRA

from rnn_manual import reference
from rnn_torch.diagnose import catalogue
from rnn_torch.planting import ANCHOR, PlantError, definition, occurrences, target

SOURCE = inspect.getsource(reference)


def marked(line: str) -> bool:
    return line.rstrip().endswith(ANCHOR)


def code(line: str) -> str:
    """A line's code, without its indentation and comment."""
    return line.split("#", 1)[0].strip()


def problems(source: str) -> list[str]:
    """What is wrong with the anchors of `source` (reference.py's text, or an edited copy):
    a statement a matcher looks for that is not there exactly once, a found statement that is
    not marked, a mark that nothing finds."""
    tree, lines = ast.parse(source), source.splitlines()
    found: dict[int, list[str]] = defaultdict(list)  # line -> the matchers that find it there
    wrong = []
    for bug in catalogue.BUGS:
        matcher = f"rnn_torch/diagnose/catalogue.py, bug {bug.name!r}"
        for edit in bug.edits:
            where = f"reference.{edit.function}"
            try:
                function = definition(tree, edit.function)
            except PlantError:
                wrong.append(f"{matcher} edits {where}, which is not there")
                continue
            hits = occurrences(function, target(edit.old, edit.new))
            if len(hits) != 1:
                wrong.append(
                    f"{matcher} edits `{edit.old}` in {where}: found {len(hits)} times, not "
                    "once; restore the statement or update the bug's edit to it"
                )
                continue
            found[hits[0].lineno].append(matcher)
    for name, plant in EXTRA.items():
        matcher = f"tests/reference_plants.py, {name!r}"
        hits = occurrences(definition(tree, plant.function), target(plant.old, plant.new))
        if len(hits) != 1:
            wrong.append(
                f"{matcher} plants in `{plant.old}` of reference.{plant.function}: found "
                f"{len(hits)} times, not once; restore the statement or update the plant"
            )
        else:
            found[hits[0].lineno].append(matcher)
    for stub in STUBS.values():
        for todo in answers(stub, source):
            if todo.answer is None:
                wrong.append(
                    f"{todo.label} takes its answer from reference.{todo.function}, which no "
                    f"longer has a statement `{ast.unparse(todo.todo).split(' = ')[0]} = ...` "
                    "in that place; restore it or update the stub"
                )
            else:
                found[todo.answer.lineno].append(todo.label)
    for number, matchers in sorted(found.items()):
        if not marked(lines[number - 1]):
            wrong.append(
                f"reference.py line {number}, `{code(lines[number - 1])}`: found by "
                f"{'; '.join(matchers)}, but not marked {ANCHOR}"
            )
    for number, line in enumerate(lines, start=1):
        if marked(line) and number not in found:
            wrong.append(
                f"reference.py line {number}, `{code(line)}`: marked {ANCHOR}, but nothing "
                "finds it: remove the mark"
            )
    return wrong


def edited(function: str, old: str, new: str) -> str:
    """The reference's source with the one line of `function` whose code is `old` given the
    code `new`."""
    lines = SOURCE.splitlines(keepends=True)
    node = definition(ast.parse(SOURCE), function)
    span = range(node.lineno - 1, node.end_lineno or node.lineno)
    hits = [k for k in span if code(lines[k]) == old]
    assert len(hits) == 1, f"{old!r} is on {len(hits)} lines of reference.{function}"
    lines[hits[0]] = lines[hits[0]].replace(old, new, 1)
    return "".join(lines)


def test_every_statement_other_code_finds_is_marked_and_no_other() -> None:
    assert problems(SOURCE) == []
    assert sum(marked(line) for line in SOURCE.splitlines()) >= 44  # one per bug, at least


def test_a_clarifying_edit_of_a_catalogue_statement_names_the_bug_and_the_statement() -> None:
    # The same derivative, written the other way round: the catalogue no longer finds it.
    broken = edited(
        "rnn_backward", "dh = dz[t] @ W_hy.T + dh_next", "dh = dh_next + dz[t] @ W_hy.T"
    )
    assert problems(broken) == [
        f"rnn_torch/diagnose/catalogue.py, bug {name!r} edits "
        "`dh = dz[t] @ W_hy.T + dh_next` in reference.rnn_backward: found 0 times, not once; "
        "restore the statement or update the bug's edit to it"
        for name in (
            "rnn: recurrent term of dL/dh_t dropped",
            "rnn: only the last step's output term (dz_t dropped inside the loop)",
        )
    ]


def test_a_renamed_answer_names_the_exercise() -> None:
    broken = edited("rnn_backward", "dx[t] = da @ W_xh.T", "dx[t, :, :] = da @ W_xh.T")
    number = next(k for k, line in enumerate(broken.splitlines(), 1) if "dx[t, :, :]" in line)
    assert problems(broken) == [
        "exercises/rnn.py, TODO 10. dL/dx_t takes its answer from reference.rnn_backward, "
        "which no longer has a statement `dx[t] = ...` in that place; restore it or update "
        "the stub",
        f"reference.py line {number}, `dx[t, :, :] = da @ W_xh.T`: marked {ANCHOR}, but "
        "nothing finds it: remove the mark",
    ]


@pytest.mark.parametrize("statement", ["dx[t] = da @ W_xh.T", "grads['c0'] = dc_next"])
def test_a_lost_mark_and_a_stray_one_are_named(statement: str) -> None:
    line = next(x for x in SOURCE.splitlines() if code(x) == statement.replace("'", '"'))
    unmarked = SOURCE.replace(line, line.removesuffix(ANCHOR).rstrip())
    [lost] = problems(unmarked)
    assert lost.endswith(f"but not marked {ANCHOR}") and "exercises/" in lost
    stray_line = next(
        x for x in SOURCE.splitlines() if code(x) == 'B, H = x.shape[1], params["W_hy"].shape[0]'
    )
    stray = SOURCE.replace(stray_line, f"{stray_line}  # {ANCHOR}", 1)
    assert problems(stray) == [
        f"reference.py line {SOURCE.splitlines().index(stray_line) + 1}, "
        f"`{code(stray_line)}`: marked {ANCHOR}, but nothing finds it: remove the mark"
    ]
