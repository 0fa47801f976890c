"""The walkthrough derives, the exercises ask, the reference's code waits in a fold.

docs/walkthrough.md derives every term an exercise (exercises/*.py) asks for, as
mathematics; the reference's code for it comes after the derivation's exercise pointer, in a
folded block, so that a learner can derive first and check after. These tests keep that:

- (a) No backward line of rnn_manual/reference.py is printed outside the folds. A backward
  line is an assignment (= or +=) in one of its *_backward functions that computes
  something: not a stub's own line (the stubs print those themselves) and not a bare name, a
  number or a fresh np.zeros_like (`grads["x"] = dx`, truncation's
  `dh_next = np.zeros_like(dh_next)`: no exercise's answer). It counts as printed when its
  right-hand side appears anywhere in the text outside the folds, in a code block, an inline
  span or prose, token by token with any spacing: `dW_hh += h[t].T @ da` prints the answer
  `grads["W_hh"] += h[t].T @ da`.
- (b) Every TODO of every stub says which section (and step) derives it, as
  "(walkthrough §4, step 2)": numbered 1, 2, ... down the file, the steps it names within
  one section never going back (the order of the derivation); the section exists; the step
  is its numbered list item; and that text, outside the folds, names the quantity asked for
  in the walkthrough's notation (dL/dW_xh as $\\partial L/\\partial W_{xh}$, dL/da_t as
  $\\delta^a_t$, ...) and the activation it goes through, if the TODO names one. That is a
  necessary condition for a derivation, not a proof of one: a reader still judges the
  mathematics. And exactly one exercise pointer names each TODO.
- (c) Every fold is the form below, holds an excerpt of the reference, and follows an
  exercise pointer within its (sub)section:

      **Exercise:** `exercises/rnn.py` TODOs 1-12. ...

      <details><summary>The lines in reference.py</summary>

      ```python excerpt
      ...
      ```

      </details>
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest
from exercise_answers import ROOT, STUBS, answers

from rnn_manual import reference

WALKTHROUGH = ROOT / "docs" / "walkthrough.md"

#: A fold: the reference's lines for an exercise, after its pointer.
FOLD = re.compile(
    r"^<details><summary>The lines in reference\.py</summary>\n(.*?)^</details>$",
    flags=re.M | re.S,
)
#: A fold, for the tests that show the checks can fail.
FOLD_EXAMPLE = (
    "<details><summary>The lines in reference.py</summary>\n\n"
    "```python excerpt\n    x = 1  # $\\partial L/\\partial b_h$\n```\n\n</details>\n"
)
#: An exercise pointer: the stub and the TODOs it sets, e.g. "TODOs 1-4, 7 and 9".
POINTER = re.compile(r"^\*\*Exercise:\*\* `(exercises/\w+\.py)` TODOs? ([\d,\- and]+?)(?:\.|$)")
#: A TODO's message: its number, what it asks, where it is derived.
MESSAGE = re.compile(r"^(\d+)\. (.+) \(walkthrough §(\d+)(?:, step (\d+))?\)$")
#: The quantity a TODO asks for, as the stubs write it: dL/dW_xh, dL/dh_{t-1}, dL/da_i, ...
QUANTITY = re.compile(r"dL/d([A-Za-z]+)_(\{[^}]*\}|[A-Za-z0-9]+)")
#: The gated cells' gates: a parameter of gate i, f, ... may be written for every gate q.
GATES = {"rnn": "", "lstm": "ifgo", "gru": "run"}
#: The activations a TODO may name, and how the walkthrough writes each.
ACTIVATIONS = {"sigmoid": r"\\sigma|sigmoid", "tanh": r"tanh", "relu": r"relu"}


def text() -> str:
    return WALKTHROUGH.read_text()


def unfolded(markdown: str) -> str:
    """The text without its folds."""
    return FOLD.sub("", markdown)


def sections(markdown: str) -> dict[int, str]:
    """Each numbered section's text, from its `## N.` heading to the next `## ` heading."""
    parts = re.split(r"^(?=## )", markdown, flags=re.M)
    found = {}
    for part in parts:
        number = re.match(r"## (\d+)\. ", part)
        if number:
            found[int(number.group(1))] = part
    return found


def step(section: str, number: int) -> str | None:
    """A section's list item `number.`: its first line and every line after it up to the
    next line that starts at the margin (a Markdown list item's extent); None if none."""
    lines = section.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(f"{number}. ")]
    if len(starts) != 1:
        return None
    end = next(
        (i for i in range(starts[0] + 1, len(lines)) if lines[i][:1] not in ("", " ")),
        len(lines),
    )
    return "\n".join(lines[starts[0] : end])


# ---- (a) the reference's backward lines ------------------------------------------------


@dataclass(frozen=True)
class Line:
    """A backward line of the reference: where it is, its code, and the pattern of its
    right-hand side in any text."""

    function: str
    code: str
    pattern: re.Pattern[str]


def trivial(value: ast.expr) -> bool:
    """A right-hand side that computes nothing: a name, a number, or a fresh array of zeros."""
    if isinstance(value, (ast.Name, ast.Constant)):
        return True
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in ("zeros_like", "zeros")
    )


def token_pattern(source: str) -> re.Pattern[str]:
    """An expression's tokens, with any spacing between them and none of a longer name
    around them; a string matches with either quote."""
    tokens = [
        t
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
        if t.type in (tokenize.NAME, tokenize.OP, tokenize.NUMBER, tokenize.STRING)
    ]
    parts = [
        f"[\"']{re.escape(ast.literal_eval(t.string))}[\"']"
        if t.type == tokenize.STRING
        else re.escape(t.string)
        for t in tokens
    ]
    return re.compile(r"(?<![\w.])" + r"\s*".join(parts) + r"(?!\w)")


def stub_statements() -> set[str]:
    """Every statement of every stub, as its syntax tree: what the stubs print themselves."""
    return {
        ast.dump(node)
        for stub in STUBS.values()
        for node in ast.walk(ast.parse(stub.read_text()))
        if isinstance(node, ast.stmt)
    }


def backward_lines(source: str | None = None) -> list[Line]:
    """The backward lines of reference.py (or of `source`, an edited copy): see the
    module's docstring."""
    source = inspect.getsource(reference) if source is None else source
    given = stub_statements()
    found = []
    for function in ast.parse(source).body:
        if not (isinstance(function, ast.FunctionDef) and function.name.endswith("_backward")):
            continue
        for node in ast.walk(function):
            if not isinstance(node, (ast.Assign, ast.AugAssign)) or trivial(node.value):
                continue
            if ast.dump(node) in given:
                continue
            right = ast.get_source_segment(source, node.value)
            assert right is not None
            code = ast.get_source_segment(source, node)
            found.append(Line(function.name, str(code), token_pattern(right)))
    return found


def printed(markdown: str, lines: list[Line]) -> list[str]:
    """The backward lines whose right-hand side appears in the text outside its folds."""
    outside = unfolded(markdown)
    return [f"{line.function}: {line.code}" for line in lines if line.pattern.search(outside)]


def test_the_backward_lines_are_every_answer_that_computes_something() -> None:
    """The lines (a) keeps folded include every exercise's answer that is not a bare name."""
    lines = {ast.unparse(ast.parse(line.code)) for line in backward_lines()}
    for stub in STUBS.values():
        for found in answers(stub):
            assert found.answer is not None, found.label
            if not trivial(getattr(found.answer, "value", None) or ast.Constant(0)):
                assert ast.unparse(found.answer) in lines, found.label


def test_no_backward_line_of_the_reference_is_printed_outside_a_fold() -> None:
    found = printed(text(), backward_lines())
    assert not found, (
        f"{WALKTHROUGH.name} prints these lines of reference.py outside a folded block "
        f"(derive the term instead, and quote the line after the exercise pointer): {found}"
    )


def test_the_printed_check_sees_a_line_outside_a_fold_and_not_inside() -> None:
    lines = backward_lines()
    fold = (
        "**Exercise:** `exercises/rnn.py` TODO 11.\n\n"
        "<details><summary>The lines in reference.py</summary>\n\n"
        "```python excerpt\n        dh_next = da @ W_hh.T\n```\n\n</details>\n"
    )
    assert printed(fold, lines) == []
    assert printed(fold + "\n`dh_next = da@W_hh.T`\n", lines) == [
        "rnn_backward: dh_next = da @ W_hh.T"
    ]
    assert printed("    dW_hh += h[t].T @ da  # step 3\n", lines) == [
        'rnn_backward: grads["W_hh"] += h[t].T @ da'
    ]
    assert printed("g @ W_hh.T, da @ W_hh.Tx, da_i @ W_hh.T", lines) == []  # other names
    assert printed("$\\delta^a_t W_{hh}^\\top$", lines) == []  # the mathematics is not code


# ---- (b) every TODO names the section that derives it ---------------------------------


@dataclass(frozen=True)
class Todo:
    stub: Path
    message: str

    @property
    def label(self) -> str:
        return f"{self.stub.relative_to(ROOT)}: TODO({self.message!r})"


def todos(stub: Path) -> list[Todo]:
    """A stub's TODOs, in the order of the file."""
    found = []
    for answer in answers(stub):
        call = getattr(answer.todo, "value", None)
        assert isinstance(call, ast.Call) and call.args, answer.label
        assert isinstance(call.args[0], ast.Constant), answer.label
        found.append(Todo(stub, str(call.args[0].value)))
    return found


ALL_TODOS = [todo for stub in STUBS.values() for todo in todos(stub)]


def symbols(quantity: str, gates: str = "") -> re.Pattern[str]:
    """How the walkthrough writes the derivative a stub writes dL/dX_s: dL/dW_xh is
    \\partial L/\\partial W_{xh} (or \\frac{\\partial L}{\\partial W_{xh}}); dL/dhn_t has
    \\hat n_t; dL/da_t is also \\delta^a_t, and a gate's dL/da_i is \\delta^i_t. A parameter
    or pre-activation of one of the `gates` may be written for every gate q: W_{xq},
    \\delta^q_t."""
    match = QUANTITY.fullmatch(quantity)
    assert match, quantity
    base, sub = match.group(1), match.group(2).strip("{}")
    name = {"hn": r"\\hat n"}.get(base, re.escape(base))
    if sub and sub[-1] in gates and base in ("W", "b", "a") and len(sub) <= 2:
        generic = symbols(f"dL/d{base}_{{{sub[:-1]}q}}")
        return re.compile(f"{symbols(quantity).pattern}|{generic.pattern}")

    def subscript(s: str) -> str:
        return (
            rf"_(?:\{{{re.escape(s)}\}}|{re.escape(s)})"
            if len(s) == 1
            else rf"_\{{{re.escape(s)}\}}"
        )

    partial = r"\\partial\s*L\s*(?:/|\}\s*\{)\s*\\partial\s*"
    forms = [partial + name + subscript(sub)]
    if base == "a":
        upper = "a" if sub == "t" else sub
        forms.append(rf"\\delta\^\{{?{upper}\}}?" + subscript("t"))
        forms.append(partial + rf"a\^\{{?{upper}\}}?" + subscript("t"))
    return re.compile("(?:" + "|".join(forms) + r")(?![\w{])")


def derivation_problems(todo: Todo, markdown: str, gates: str = "") -> list[str]:
    """What is missing for a TODO: the form of its message, its section and step, the
    quantity's symbol and its activation there (outside the folds)."""
    match = MESSAGE.match(todo.message)
    if not match:
        return ["the message does not end in (walkthrough §N) or (walkthrough §N, step K)"]
    _, what, number, k = match.groups()
    section = sections(unfolded(markdown)).get(int(number))
    if section is None:
        return [f"the walkthrough has no section {number}"]
    where = f"§{number}"
    if k is not None:
        item = step(section, int(k))
        if item is None:
            return [f"§{number} has no step {k} (a list item `{k}. `)"]
        section, where = item, f"§{number}, step {k}"
    problems = []
    quantity = QUANTITY.search(what)
    if quantity is None:
        problems.append("the message names no quantity dL/d...")
    elif not symbols(quantity.group(0), gates).search(section):
        problems.append(f"{where} never writes {quantity.group(0)} in its notation")
    for word, written in ACTIVATIONS.items():
        if re.search(rf"\b{word}\b", what) and not re.search(written, section):
            problems.append(f"{where} does not mention {word}")
    return problems


@pytest.mark.parametrize(
    "todo", ALL_TODOS, ids=[f"{t.stub.stem} TODO {t.message.split('.')[0]}" for t in ALL_TODOS]
)
def test_every_todo_names_a_section_that_derives_it(todo: Todo) -> None:
    gates = GATES[todo.stub.stem]
    problems = derivation_problems(todo, text(), gates)
    assert not problems, f"{todo.label}: {problems}"


@pytest.mark.parametrize("cell", STUBS)
def test_the_todos_come_in_the_order_of_the_derivation(cell: str) -> None:
    """Numbered 1, 2, ... down the file, and the steps they name in any one section never
    go back (a TODO may name an earlier section, where a term is derived once for all)."""
    messages = [todo.message for todo in todos(STUBS[cell])]
    found = [MESSAGE.match(message) for message in messages]
    assert all(found), [message for message in messages if not MESSAGE.match(message)]
    numbers = [int(m.group(1)) for m in found if m]
    assert numbers == list(range(1, len(numbers) + 1))
    for section in {m.group(3) for m in found if m}:
        steps = [int(m.group(4) or 0) for m in found if m and m.group(3) == section]
        assert steps == sorted(steps), (section, steps)


def pointers(markdown: str) -> list[tuple[int, str, set[int]]]:
    """Every exercise pointer: its section, its stub and the TODOs it names."""
    found = []
    for number, section in sections(markdown).items():
        for line in section.splitlines():
            match = POINTER.match(line)
            if match:
                named: set[int] = set()
                for first, last in re.findall(r"(\d+)(?:-(\d+))?", match.group(2)):
                    named |= set(range(int(first), int(last or first) + 1))
                found.append((number, match.group(1), named))
    return found


@pytest.mark.parametrize("cell", STUBS)
def test_every_todo_is_set_by_one_exercise_pointer(cell: str) -> None:
    stub = f"exercises/{cell}.py"
    named = [todo for _, s, ts in pointers(text()) if s == stub for todo in sorted(ts)]
    assert sorted(named) == list(range(1, len(todos(STUBS[cell])) + 1))


def test_the_derivation_check_can_fail() -> None:
    """A TODO that names no section, a section or step that does not exist, or a step
    without the quantity's symbol or its activation is caught; a right one is not."""
    rnn = STUBS["rnn"]
    page = (
        "## 4. BPTT\n\n2. **Through the nonlinearity.** $\\delta^a_t = \\ldots$ for the "
        "sigmoid,\n   $\\tanh'$ too.\n3. **Into the weights.**\n   "
        "$\\frac{\\partial L}{\\partial W_{xh}}$\n\nA paragraph: $\\partial L/\\partial b_h$.\n"
    )

    def check(message: str) -> list[str]:
        return derivation_problems(Todo(rnn, message), page)

    assert check("2. da = dL/da_t: through the sigmoid (walkthrough §4, step 2)") == []
    assert check("5. step t's share of dL/dW_xh (walkthrough §4, step 3)") == []
    assert check("8. step t's share of dL/db_h (walkthrough §4)") == []
    assert check("5. step t's share of dL/dW_xh") != []
    assert check("5. step t's share of dL/dW_xh (walkthrough §5)") != []
    assert check("5. step t's share of dL/dW_xh (walkthrough §4, step 4)") != []
    assert check("6. step t's share of dL/dW_hh (walkthrough §4, step 3)") != []
    assert check("8. step t's share of dL/db_h (walkthrough §4, step 3)") != []  # not in step
    assert check("4. da = dL/da_t: through relu (walkthrough §4, step 2)") != []
    folded = page.replace("A paragraph", FOLD_EXAMPLE + "A paragraph").replace(
        "$\\partial L/\\partial b_h$", ""
    )
    assert "\\partial L/\\partial b_h" in FOLD_EXAMPLE
    assert derivation_problems(Todo(rnn, "8. dL/db_h (walkthrough §4)"), folded) != []


# ---- (c) every fold follows an exercise pointer ----------------------------------------


def fold_problems(markdown: str) -> list[str]:
    """Folds not of the form, without an excerpt, or with no exercise pointer before them
    in their (sub)section (since the previous fold, if any)."""
    problems = []
    if markdown.count("<details") != len(FOLD.findall(markdown)):
        problems.append("a <details> block that is not a fold of the form")
    pointed = False
    inside = False
    for number, line in enumerate(markdown.splitlines(), 1):
        if line.startswith("<details><summary>The lines in reference.py</summary>"):
            if not pointed:
                problems.append(f"line {number}: a fold with no exercise pointer before it")
            inside, pointed = True, False
        elif line == "</details>":
            inside = False
        elif not inside and (line.startswith("#") or POINTER.match(line)):
            pointed = bool(POINTER.match(line))
    for fold in FOLD.findall(markdown):
        if "\n```python excerpt\n" not in f"\n{fold}":
            problems.append(f"a fold without a quote of the reference: {fold[:60]!r}")
    return problems


def test_every_fold_follows_an_exercise_pointer() -> None:
    assert len(FOLD.findall(text())) >= 3  # the RNN's, the LSTM's and the GRU's
    assert fold_problems(text()) == []


def test_the_fold_check_can_fail() -> None:
    pointer = "**Exercise:** `exercises/rnn.py` TODOs 1-4.\n\n"
    assert fold_problems("## 4. BPTT\n\n" + pointer + FOLD_EXAMPLE) == []
    assert fold_problems("## 4. BPTT\n\n" + FOLD_EXAMPLE) != []  # no pointer
    assert fold_problems(pointer + "### Why\n\n" + FOLD_EXAMPLE) != []  # another subsection
    assert fold_problems(pointer + FOLD_EXAMPLE + "\n" + FOLD_EXAMPLE) != []  # used up
    assert fold_problems(pointer + FOLD_EXAMPLE.replace("The lines", "Lines")) != []
    assert fold_problems(pointer + FOLD_EXAMPLE.replace("python excerpt", "python")) != []
