"""The tests bite: plant a bug in the manual backward pass, and the property test must fail.

Each mutation replaces one exact snippet of the source of a manual function (RNN.backward,
RNN.run or a loss) and compiles the result into a subclass of RNN. Every snippet must occur exactly
once in the current source: when rnn_manual changes, test_snippet_occurs_once fails and
names the snippet to update here, rather than a mutant silently testing nothing.
"""

from __future__ import annotations

import inspect
import textwrap
import types
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from strategies import Case, cases
from test_properties import check_gradients

from rnn_manual import RNN
from rnn_manual.cells import losses, rnn

#: name -> (function whose source is mutated, exact snippet, its replacement)
MUTATIONS: dict[str, tuple[Callable[..., Any], str, str]] = {
    "drop the recurrent term of dh": (
        RNN.backward,
        "da[t - 1] += dh_prev",
        "pass",
    ),
    "h_t instead of h_{t-1} in dW_hh": (
        RNN.backward,
        '"W_hh": h[:-1].reshape',
        '"W_hh": h[1:].reshape',
    ),
    "drop the activation derivative": (
        RNN.backward,
        "da[t] *= df(h[t + 1], out=df_t)",
        "pass",
    ),
    "shift a time index: f'(a_{t-1}) for f'(a_t)": (
        RNN.backward,
        "df(h[t + 1], out=df_t)",
        "df(h[t], out=df_t)",
    ),
    "forget a transpose: W_hh for W_hh^T": (
        RNN.backward,
        "xp.matmul(da[t], W_hh.T, out=dh_prev)",
        "xp.matmul(da[t], W_hh, out=dh_prev)",
    ),
    "dL/dh_0 from the wrong step": (
        RNN.backward,
        'grads["h0"] = dh_prev',
        'grads["h0"] = da[0]',
    ),
    "forward: drop b_h": (
        RNN.run_unchecked,
        'h[1:] += self.params["b_h"]',
        "pass",
    ),
    "forget the batch mean (mse)": (losses.mse, "dz /= batch", "pass"),
    "forget the batch mean (bce)": (losses.bce, "dz /= batch", "pass"),
}


def mutate(function: Callable[..., Any], snippet: str, replacement: str) -> Callable[..., Any]:
    """`function` recompiled from its source with `snippet` replaced, in its module's globals."""
    source = textwrap.dedent(inspect.getsource(function))
    assert source.count(snippet) == 1, (
        f"{function.__qualname__}: {snippet!r} occurs {source.count(snippet)} times, not once; "
        "update MUTATIONS in tests/test_mutations.py to the current source"
    )
    namespace = dict(inspect.unwrap(function).__globals__)  # the module it was written in
    exec(
        compile(source.replace(snippet, replacement), inspect.getfile(function), "exec"), namespace
    )
    return namespace[function.__name__]


def mutant(name: str) -> type[RNN]:
    """A subclass of RNN carrying the mutation `name`."""
    function, snippet, replacement = MUTATIONS[name]
    mutated = mutate(function, snippet, replacement)
    if function.__qualname__.startswith("RNN."):  # a method: override it
        return type("Mutant", (RNN,), {function.__name__: mutated})
    # A loss: RNN.loss_and_grads, unchanged, looking the losses up in a patched table.
    lookup = {**rnn.LOSSES, function.__name__: mutated}
    original = RNN.loss_and_grads
    loss_and_grads = types.FunctionType(
        original.__code__, {**original.__globals__, "LOSSES": lookup}, "loss_and_grads"
    )
    return type("Mutant", (RNN,), {"loss_and_grads": loss_and_grads})


@pytest.mark.parametrize("name", MUTATIONS)
def test_snippet_occurs_once(name: str) -> None:
    function, snippet, _ = MUTATIONS[name]
    assert textwrap.dedent(inspect.getsource(function)).count(snippet) == 1, (
        f"{name}: {snippet!r} is not in {function.__qualname__} exactly once; update MUTATIONS"
    )


def test_unmutated_copy_passes() -> None:
    """The mutation machinery itself changes nothing: a no-op 'mutant' passes."""
    recompiled = mutate(RNN.backward, "da[t - 1] += dh_prev", "da[t - 1] += dh_prev")
    clone = type("Clone", (RNN,), {"backward": recompiled})
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
