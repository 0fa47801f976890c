"""The tests bite: plant a bug in the manual backward pass, and the property test must fail.

Each mutation is a rnn_torch.planting.Plant: a function of rnn_manual (a method such as
"RNN.backward_unchecked", or a loss), one statement or expression in it, and what to put
there instead, found by its syntax tree and only where it occurs exactly once, so that a
mutation cannot silently stop applying when rnn_manual changes. The mutated module is
compiled afresh and the mutated function put into a subclass of RNN.
"""

from __future__ import annotations

import types
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from rnn_checks import check_gradients
from strategies import Case, cases

from rnn_manual import RNN
from rnn_manual.cells import Cell, losses, rnn
from rnn_torch.planting import Plant, planted_module, planted_tree

#: name -> (module, plant)
MUTATIONS: dict[str, tuple[types.ModuleType, Plant]] = {
    "drop the recurrent term of dh": (
        rnn,
        Plant("RNN.backward_unchecked", "da[t] += dh_next", "pass"),
    ),
    "h_t instead of h_{t-1} in dW_hh": (
        rnn,
        Plant("RNN.backward_unchecked", "h[:-1].reshape(T * B, H).T", "h[1:].reshape(T * B, H).T"),
    ),
    "drop the activation derivative": (
        rnn,
        Plant("RNN.backward_unchecked", "da[t] *= df(h[t + 1], out=df_t)", "pass"),
    ),
    "shift a time index: f'(a_{t-1}) for f'(a_t)": (
        rnn,
        Plant("RNN.backward_unchecked", "df(h[t + 1], out=df_t)", "df(h[t], out=df_t)"),
    ),
    "forget a transpose: W_hh for W_hh^T": (
        rnn,
        Plant(
            "RNN.backward_unchecked",
            "xp.matmul(da[t], W_hh.T, out=dh_next)",
            "xp.matmul(da[t], W_hh, out=dh_next)",
        ),
    ),
    "dL/dh_{-1} from the wrong step": (
        rnn,
        Plant("RNN.backward_unchecked", 'grads["h0"] = dh_next', 'grads["h0"] = da[0]'),
    ),
    "forward: drop b_h": (rnn, Plant("RNN.run_unchecked", 'h[1:] += self.params["b_h"]', "pass")),
    "forget the batch mean (mse)": (losses, Plant("mse", "dz /= batch", "pass")),
    "forget the batch mean (bce)": (losses, Plant("bce", "dz /= batch", "pass")),
}


def mutant(name: str) -> type[RNN]:
    """A subclass of RNN carrying the mutation `name`."""
    module, change = MUTATIONS[name]
    fresh = planted_module(module, [change], name)
    if module is rnn:  # a method of RNN: override it
        method = change.function.split(".")[1]
        return type("Mutant", (RNN,), {method: getattr(fresh.RNN, method)})
    # A loss: the one pass, unchanged, looking the losses up in a patched table.
    original = Cell.loss_pass
    lookup = {**original.__globals__["LOSSES"], change.function: getattr(fresh, change.function)}
    globals_ = {**original.__globals__, "LOSSES": lookup}
    loss_pass = types.FunctionType(
        original.__code__, globals_, original.__name__, original.__defaults__
    )
    return type("Mutant", (RNN,), {"loss_pass": loss_pass})


@pytest.mark.parametrize("name", MUTATIONS)
def test_target_occurs_once(name: str) -> None:
    module, change = MUTATIONS[name]
    planted_tree(module, [change])


def test_unmutated_copy_passes() -> None:
    """The mutation machinery itself changes nothing: a no-op 'mutant' passes."""
    statement = "da[t] += dh_next"
    same = Plant("RNN.backward_unchecked", statement, statement)
    fresh = planted_module(rnn, [same], "unchanged")
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
