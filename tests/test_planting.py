"""rnn_torch.planting, the one way bugs are planted (by the diagnosis's catalogue and by the
planted-bug tests): a target matches however it is laid out, and one that is not in its
function exactly once is an error, not a mutant that silently tests nothing."""

from __future__ import annotations

import ast

import pytest

from rnn_torch.planting import Plant, PlantError, count, plant

SOURCE = """\
def f(a, b):
    c = (a +
         b)  # sum
    return a + b


class K:
    def m(self, a):
        if a:
            a = a * 2
        print(a)
        return a
"""


def planted(*changes: Plant) -> str:
    tree = ast.parse(SOURCE)
    for change in changes:
        plant(tree, change)
    return ast.unparse(tree)


def test_a_statement_matches_whatever_its_layout_and_comments() -> None:
    assert "c = a - b" in planted(Plant("f", "c = a+b", "c = a - b"))
    assert "c = a + b" not in planted(Plant("f", "c = a+b", "pass"))


def test_an_expression_is_replaced_by_an_expression() -> None:
    text = planted(Plant("K.m", "a * 2", "a * 3"))
    assert "a = a * 3" in text and "a * 2" not in text
    assert "print(a + 1)" in planted(Plant("K.m", "print(a)", "print(a + 1)"))
    with pytest.raises(PlantError, match=r"'a \* 2' occurs 0 times in K.m"):
        planted(Plant("K.m", "a * 2", "x = 3"))  # statements in: a statement `a * 2` wanted


def test_an_expression_statement_may_be_replaced_by_statements() -> None:
    """A call on its own line is a statement too: "pass" (or several statements) replaces
    the statement, where an expression would replace the call."""
    text = planted(Plant("K.m", "print(a)", "pass"))
    assert "print" not in text and "pass" in text
    assert "print(a)\n        a = 0" in planted(Plant("K.m", "print(a)", "print(a)\na = 0"))


def test_a_statement_may_become_several_at_any_depth() -> None:
    text = planted(Plant("K.m", "a = a * 2", "a = a * 2\na = a + 1"))
    assert "a = a * 2\n            a = a + 1" in text  # inside the `if`, in order


def test_a_target_not_there_exactly_once_is_refused_by_count() -> None:
    tree = ast.parse(SOURCE)
    assert count(tree, "f", "a + b") == 2
    with pytest.raises(PlantError, match="'a \\+ b' occurs 2 times in f, not once"):
        planted(Plant("f", "a + b", "a"))
    with pytest.raises(PlantError, match="occurs 0 times in f"):
        planted(Plant("f", "c = a * b", "pass"))
    with pytest.raises(PlantError, match="0 definitions named g, not 1"):
        planted(Plant("g", "c = a + b", "pass"))
    with pytest.raises(PlantError, match="not one statement"):
        planted(Plant("f", "c = 1; d = 2", "pass"))
