"""Planting a known bug in source code, the one way this project does it.

A plant names a function ("rnn_backward", or "RNN.backward_unchecked" for a method), one
statement or one expression in it, and what replaces it (statements for a statement,
"pass" for none; an expression for an expression). The target is found by its syntax tree,
so layout, line breaks, comments and redundant parentheses do not matter, and it must occur
in the function exactly once: otherwise PlantError says how often it does, so that a plant
cannot silently stop applying when the code changes.

The diagnosis's catalogue (diagnose/catalogue.py) plants its bugs in rnn_manual/reference.py
this way, and the tests plant theirs in the fast cells, the losses and the truncation rule.
"""

from __future__ import annotations

import ast
import copy
import inspect
import sys
import textwrap
import types
from collections.abc import Iterable
from dataclasses import dataclass

#: The mark, at the end of a line's comment, of a statement other code finds by its syntax
#: tree (a catalogue bug's edit, an exercise's answer): rnn_manual/reference.py explains it.
ANCHOR = "⚓"


class PlantError(Exception):
    """A plant's function or target is not in the source exactly once."""


@dataclass(frozen=True)
class Plant:
    function: str  # "name" or "Class.method"
    old: str  # one statement, or one expression, as code
    new: str  # what replaces it: statements ("pass" for none), or an expression


def occurrences(node: ast.AST, wanted: ast.AST) -> list[ast.AST]:
    """The nodes under `node` that are the same code as `wanted` (positions, layout and
    comments aside)."""
    key = ast.dump(wanted)
    kind = type(wanted)
    return [n for n in ast.walk(node) if type(n) is kind and ast.dump(n) == key]


def definition(tree: ast.Module, qualname: str) -> ast.FunctionDef | ast.ClassDef:
    """The definition named `qualname` ("function" or "Class.method") in `tree`."""
    node: ast.AST = tree
    for name in qualname.split("."):
        found = [
            child
            for child in ast.iter_child_nodes(node)
            if isinstance(child, ast.ClassDef | ast.FunctionDef) and child.name == name
        ]
        if len(found) != 1:
            raise PlantError(f"{qualname}: {len(found)} definitions named {name}, not 1")
        node = found[0]
    assert isinstance(node, ast.FunctionDef | ast.ClassDef)
    return node


def target(code: str, replacement: str | None = None) -> ast.AST:
    """The syntax tree a plant looks for: one statement, or one expression. Code that is an
    expression on its own (a call, say) is looked for as an expression when `replacement` is
    one expression too (or not given), and as the statement that holds it otherwise."""
    body = ast.parse(textwrap.dedent(code)).body
    if len(body) != 1:
        raise PlantError(f"not one statement or expression: {code!r}")
    if not isinstance(body[0], ast.Expr):
        return body[0]
    if replacement is not None and not _one_expression(replacement):
        return body[0]  # the statement `f(...)` replaced by statements ("pass", say)
    return body[0].value


def _one_expression(code: str) -> bool:
    body = ast.parse(textwrap.dedent(code)).body
    return len(body) == 1 and isinstance(body[0], ast.Expr)


def count(tree: ast.Module, function: str, old: str) -> int:
    """How often `old` occurs in `function` of `tree`."""
    return len(occurrences(definition(tree, function), target(old)))


def plant(tree: ast.Module, change: Plant) -> None:
    """Apply `change` to `tree`, in place; PlantError unless its target occurs exactly once.
    (The new nodes take the old one's position: ast.fix_missing_locations before compiling.)"""
    wanted = target(change.old, change.new)
    statements = ast.parse(textwrap.dedent(change.new)).body
    new: list[ast.stmt] | ast.expr = statements
    if isinstance(wanted, ast.expr):  # an expression, replaced by an expression
        expression = statements[0]
        assert isinstance(expression, ast.Expr)  # (target looked for an expression: it is one)
        new = expression.value
    function = definition(tree, change.function)
    found = occurrences(function, wanted)
    if len(found) != 1:
        raise PlantError(f"{change.old!r} occurs {len(found)} times in {change.function}, not once")
    hit = found[0]

    class Swap(ast.NodeTransformer):
        def generic_visit(self, node: ast.AST) -> ast.AST | list[ast.stmt]:  # type: ignore[override]
            if node is hit:
                if isinstance(new, list):
                    return [ast.copy_location(copy.deepcopy(n), node) for n in new]
                return ast.copy_location(copy.deepcopy(new), node)
            return super().generic_visit(node)

    Swap().visit(function)


def planted_tree(module: types.ModuleType, plants: Iterable[Plant]) -> ast.Module:
    """`module`'s source, as a syntax tree, with every plant applied."""
    tree = ast.parse(inspect.getsource(module))
    for change in plants:
        plant(tree, change)
    return ast.fix_missing_locations(tree)


def planted_module(
    module: types.ModuleType, plants: Iterable[Plant], label: str
) -> types.ModuleType:
    """A fresh copy of `module`, compiled from its source with every plant applied (its
    relative imports resolved as the original's); `label` names it in tracebacks."""
    tree = planted_tree(module, plants)
    name = f"{module.__name__}_planted"
    fresh = types.ModuleType(name)
    fresh.__package__ = module.__package__  # for its relative imports
    sys.modules[name] = fresh  # dataclasses look their module up while being made
    try:
        exec(compile(tree, f"<{label}>", "exec"), fresh.__dict__)
    finally:
        del sys.modules[name]
    return fresh
