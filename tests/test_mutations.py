"""The tests bite: plant a bug in the manual backward pass, and the property test must fail.

Each mutation names a function of rnn_manual (a method such as "RNN.backward_unchecked", or a loss),
one statement or expression in it, and what to put there instead. `plant` finds the target
in the function's syntax tree, so layout, line breaks, comments and redundant parentheses
do not matter; it fails, naming the mutation, unless the target occurs exactly once, so that
a mutation cannot silently stop applying when rnn_manual changes. The mutated module is
compiled afresh and the mutated function put into a subclass of RNN.
"""

from __future__ import annotations

import ast
import copy
import inspect
import sys
import textwrap
import types
from collections.abc import Callable, Iterable

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from strategies import Case, cases
from test_properties import check_gradients

from rnn_manual import RNN
from rnn_manual.cells import losses, rnn

#: One planted change: (function, as "Class.method" or "function", target, replacement).
#: target is one statement (replaced by the statements of replacement) or one expression
#: (replaced by the expression replacement), written as Python source.
Plant = tuple[str, str, str]

#: name -> (module, plant)
MUTATIONS: dict[str, tuple[types.ModuleType, Plant]] = {
    "drop the recurrent term of dh": (
        rnn,
        ("RNN.backward_unchecked", "da[t - 1] += dh_next", "pass"),
    ),
    "h_t instead of h_{t-1} in dW_hh": (
        rnn,
        ("RNN.backward_unchecked", "h[:-1].reshape(T * B, H).T", "h[1:].reshape(T * B, H).T"),
    ),
    "drop the activation derivative": (
        rnn,
        ("RNN.backward_unchecked", "da[t] *= df(h[t + 1], out=df_t)", "pass"),
    ),
    "shift a time index: f'(a_{t-1}) for f'(a_t)": (
        rnn,
        ("RNN.backward_unchecked", "df(h[t + 1], out=df_t)", "df(h[t], out=df_t)"),
    ),
    "forget a transpose: W_hh for W_hh^T": (
        rnn,
        (
            "RNN.backward_unchecked",
            "xp.matmul(da[t], W_hh.T, out=dh_next)",
            "xp.matmul(da[t], W_hh, out=dh_next)",
        ),
    ),
    "dL/dh_{-1} from the wrong step": (
        rnn,
        ("RNN.backward_unchecked", 'grads["h0"] = dh_next', 'grads["h0"] = da[0]'),
    ),
    "forward: drop b_h": (rnn, ("RNN.run_unchecked", 'h[1:] += self.params["b_h"]', "pass")),
    "forget the batch mean (mse)": (losses, ("mse", "dz /= batch", "pass")),
    "forget the batch mean (bce)": (losses, ("bce", "dz /= batch", "pass")),
}


# ---- planting ----------------------------------------------------------------------------


def _same(a: ast.AST, b: ast.AST) -> bool:
    """Whether two syntax trees are the same code (positions, layout and comments aside)."""
    return ast.dump(a) == ast.dump(b)


def _scope(tree: ast.Module, qualname: str) -> ast.AST:
    """The definition named `qualname` ("Class.method" or "function") in `tree`."""
    node: ast.AST = tree
    for name in qualname.split("."):
        found = [
            child
            for child in ast.iter_child_nodes(node)
            if isinstance(child, ast.ClassDef | ast.FunctionDef) and child.name == name
        ]
        assert len(found) == 1, f"{qualname}: {len(found)} definitions named {name}, not 1"
        node = found[0]
    return node


def plant(tree: ast.Module, where: str, target: str, replacement: str) -> None:
    """Replace, in `tree`, the one occurrence of `target` inside the function `where` with
    `replacement`; AssertionError unless `target` occurs there exactly once."""
    body = ast.parse(textwrap.dedent(target)).body
    assert len(body) == 1, f"target {target!r} is {len(body)} statements, not one"
    new: list[ast.stmt] | ast.expr = ast.parse(textwrap.dedent(replacement)).body
    wanted: ast.AST = body[0]
    if isinstance(wanted, ast.Expr):  # an expression: replaced by an expression
        wanted = wanted.value
        assert len(new) == 1 and isinstance(new[0], ast.Expr), f"not an expression: {replacement}"
        new = new[0].value
    scope = _scope(tree, where)
    hits = sum(_same(node, wanted) for node in ast.walk(scope))
    assert hits == 1, (
        f"{target!r} occurs {hits} times in {where}, not once: update the mutation to the "
        "current source"
    )

    class Swap(ast.NodeTransformer):
        def generic_visit(self, node: ast.AST) -> ast.AST | list[ast.stmt]:
            if _same(node, wanted):
                if isinstance(new, list):
                    return [ast.copy_location(copy.deepcopy(n), node) for n in new]
                return ast.copy_location(copy.deepcopy(new), node)
            return super().generic_visit(node)

    Swap().visit(scope)


def mutant_module(
    module: types.ModuleType, plants: Iterable[Plant], label: str
) -> types.ModuleType:
    """A fresh copy of `module` (a module of rnn_manual.cells), compiled from its source with
    every plant applied."""
    tree = ast.parse(inspect.getsource(module))
    for where, target, replacement in plants:
        plant(tree, where, target, replacement)
    name = f"{module.__name__}_mutant"
    fresh = types.ModuleType(name)
    fresh.__package__ = module.__package__  # for its relative imports
    sys.modules[name] = fresh  # dataclasses look their module up while being made
    try:
        code = compile(ast.fix_missing_locations(tree), f"<{label}>", "exec")
        exec(code, fresh.__dict__)
    finally:
        del sys.modules[name]
    return fresh


def mutant(name: str) -> type[RNN]:
    """A subclass of RNN carrying the mutation `name`."""
    module, (where, target, replacement) = MUTATIONS[name]
    fresh = mutant_module(module, [(where, target, replacement)], name)
    if module is rnn:  # a method of RNN: override it
        method = where.split(".")[1]
        return type("Mutant", (RNN,), {method: getattr(fresh.RNN, method)})
    # A loss: loss_and_grads, unchanged, looking the losses up in a patched table.
    original = RNN.loss_and_grads
    lookup = {**original.__globals__["LOSSES"], where: getattr(fresh, where)}
    globals_ = {**original.__globals__, "LOSSES": lookup}
    loss_and_grads = types.FunctionType(
        original.__code__, globals_, original.__name__, original.__defaults__
    )
    return type("Mutant", (RNN,), {"loss_and_grads": loss_and_grads})


@pytest.mark.parametrize("name", MUTATIONS)
def test_target_occurs_once(name: str) -> None:
    module, (where, target, replacement) = MUTATIONS[name]
    plant(ast.parse(inspect.getsource(module)), where, target, replacement)


def test_planting_ignores_layout_and_fails_loudly() -> None:
    """A target matches however it is laid out, and one that is not there exactly once is
    an error, not a mutant that silently tests nothing."""
    source = "def f(a, b):\n    c = (a +\n         b)  # sum\n    return a + b\n"
    tree = ast.parse(source)
    plant(tree, "f", "c = a+b", "c = a - b")
    assert "c = a - b" in ast.unparse(tree)
    with pytest.raises(AssertionError, match="occurs 2 times in f"):
        plant(ast.parse(source), "f", "a + b", "a")
    with pytest.raises(AssertionError, match="occurs 0 times in f"):
        plant(ast.parse(source), "f", "c = a * b", "pass")
    with pytest.raises(AssertionError, match="0 definitions named g"):
        plant(ast.parse(source), "g", "c = a + b", "pass")


def test_unmutated_copy_passes() -> None:
    """The mutation machinery itself changes nothing: a no-op 'mutant' passes."""
    statement = "da[t - 1] += dh_next"
    fresh = mutant_module(rnn, [("RNN.backward_unchecked", statement, statement)], "unchanged")
    clone = type("Clone", (RNN,), {"backward_unchecked": fresh.RNN.backward_unchecked})
    property_test(clone)()


def property_test(
    rnn_class: type[RNN], backend: tuple[str, str | None] = ("numpy", None)
) -> Callable[[], None]:
    """The float64 gradient property (test_properties' check_gradients) on `rnn_class`, run
    on `backend`.

    No shrinking and no example database: the question is only whether it fails.
    """

    @settings(
        max_examples=100,
        phases=[Phase.generate],
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(case=cases("float64"))
    def run(case: Case) -> None:
        check_gradients(case, rnn_class, backend)

    return run


@pytest.mark.parametrize("backend", [("numpy", None), ("torch", "cpu")], ids=["numpy", "torch"])
@pytest.mark.parametrize("name", MUTATIONS)
def test_gradient_property_catches(name: str, backend: tuple[str, str | None]) -> None:
    """Every planted bug fails the property, whichever library runs the (one) manual code."""
    with pytest.raises(AssertionError, match="normwise relative error"):
        property_test(mutant(name), backend)()
