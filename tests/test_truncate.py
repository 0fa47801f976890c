"""Truncated BPTT (`truncate=K`): the sequence is cut into chunks of K steps, the state runs
on across the cuts, and no gradient crosses one, exactly as `h = h.detach()` between chunks
does in PyTorch.

Judged like full BPTT: the reference against the torch twins run with detached states at
the chunk boundaries, and every fast cell against the reference, within FLOAT64_BOUND, on
the random networks of test_reference.py; plus the edge cases (truncate >= T is full BPTT,
K = 1 keeps no recurrent gradient) and a planted bug (the cut one step late) that the
property catches.
"""

from __future__ import annotations

import inspect
import textwrap
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from strategies import examples
from test_reference import Example, Net, judge, make, mutant, nets

from rnn_manual import GRU, LSTM, RNN, reference
from rnn_manual.core.gradcheck import relative_error
from rnn_torch.compare import FLOAT64_BOUND
from rnn_torch.gated import GatedTwin
from rnn_torch.twin import Twin

Result = tuple[float, dict[str, np.ndarray]]


def by_reference_truncated(
    net: Net, example: Example, truncate: int, module: types.ModuleType = reference
) -> Result:
    return module.loss_and_grads(  # type: ignore[no-any-return]
        example.model.params,
        example.x,
        example.y,
        activation=net.activation,
        loss=example.loss,
        h0=example.states.get("h0"),
        c0=example.states.get("c0"),
        truncate=truncate,
    )


def by_autograd_truncated(example: Example, truncate: int) -> Result:
    """Autograd on the twin, its state detached at the start of every chunk but the first."""
    model, x, y, states = example.model, example.x, example.y, example.states
    if isinstance(model, RNN):
        twin = Twin.from_manual(model, fused=False)  # a cell per step, so it can be cut
        return twin.loss_and_grads(x, y, example.loss, states.get("h0"), truncate=truncate)
    return GatedTwin(model).loss_and_grads(x, y, example.loss, **states, truncate=truncate)


@st.composite
def truncated_nets(draw: st.DrawFn) -> tuple[Net, int]:
    net = draw(nets())
    return net, draw(st.integers(1, 18))  # past T (at most 16) too: full BPTT


@examples(4)
@given(drawn=truncated_nets())
def test_reference_equals_autograd_with_detached_chunks(drawn: tuple[Net, int]) -> None:
    net, truncate = drawn
    example = make(net)
    assume(example.usable)
    judge(
        by_reference_truncated(net, example, truncate),
        by_autograd_truncated(example, truncate),
        f"autograd (truncate={truncate})",
        net,
    )


@examples(2)
@given(drawn=truncated_nets())
def test_fast_cells_equal_the_reference_truncated(drawn: tuple[Net, int]) -> None:
    net, truncate = drawn
    example = make(net)
    assume(example.usable)
    fast = example.model.loss_and_grads(
        example.x, example.y, example.loss, **example.states, truncate=truncate
    )
    judge(by_reference_truncated(net, example, truncate), fast, "the fast cell", net)


@pytest.mark.parametrize(
    "model", [RNN(2, 5, 1), LSTM(2, 5, 1), GRU(2, 5, 1)], ids=lambda model: type(model).__name__
)
def test_truncate_at_or_past_T_is_full_bptt_and_shorter_changes_it(model: RNN) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (7, 3, 2)).astype(np.float64)
    y = rng.integers(0, 2, (7, 3, 1)).astype(np.float64)
    _, full = model.loss_and_grads(x, y)
    for truncate in (7, 8, 100):
        _, same = model.loss_and_grads(x, y, truncate=truncate)
        for name, g in full.items():
            assert np.array_equal(same[name], g), f"truncate={truncate}: d{name} differs"
    _, cut = model.loss_and_grads(x, y, truncate=3)
    assert relative_error(cut["W_hy"], full["W_hy"]) == 0  # the output layer has no past
    recurrent = next(name for name in model.params if name.startswith("W_h") and name != "W_hy")
    assert relative_error(cut[recurrent], full[recurrent]) > 1e-6  # the cut shows upstream
    assert relative_error(cut["h0"], full["h0"]) > 1e-6  # less reaches the start


def test_truncate_one_keeps_no_recurrent_path() -> None:
    """K = 1: every step's gradient stops at its own input, so what reaches h_{-1} is step
    0's own loss term alone: the gradient of the one-step sequence's loss."""
    model = RNN(2, 4, 1, activation="tanh", bias=True)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 2, 2))
    y = rng.uniform(0, 1, (5, 2, 1))
    _, cut = model.loss_and_grads(x, y, truncate=1)
    _, first = model.loss_and_grads(x[:1], y[:1])
    assert relative_error(cut["h0"], first["h0"]) <= FLOAT64_BOUND


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_truncate_is_one_clear_error(bad: object) -> None:
    model = LSTM(2, 3, 1)
    x, y = np.zeros((4, 1, 2)), np.zeros((4, 1, 1))
    with pytest.raises(ValueError, match=r"^truncate must be a positive integer"):
        model.loss_and_grads(x, y, truncate=bad)  # type: ignore[arg-type]


# ---- the tests bite -----------------------------------------------------------------------

#: The cut one step late in the reference: the chunk boundary after t = K instead of K - 1.
LATE = (
    "lstm_backward",
    "if truncate and (t + 1) % truncate == 0:",
    "if truncate and t % truncate == 0:",
)


def test_cut_one_step_late_is_caught() -> None:
    function, line, replacement = LATE
    late = mutant(function, line, replacement)
    caught = []

    @settings(
        max_examples=60,
        phases=[Phase.generate],
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(drawn=truncated_nets())
    def run(drawn: tuple[Net, int]) -> None:
        net, truncate = drawn
        assume(net.cell == "lstm")
        example = make(net)
        try:
            judge(
                by_reference_truncated(net, example, truncate, late),
                by_autograd_truncated(example, truncate),
                "autograd",
                net,
            )
        except AssertionError:
            caught.append(net)

    run()
    assert caught, "a cut one step late passed every truncated property"


def test_fast_rnn_cut_one_step_late_is_caught() -> None:
    """The same bug planted in the fast RNN's backward: the property against the reference
    catches it."""
    source = textwrap.dedent(inspect.getsource(RNN.backward_unchecked))
    line = "t % truncate == 0"
    assert source.count(line) == 1, "update this test to RNN.backward_unchecked's truncation line"
    namespace = dict(inspect.unwrap(RNN.backward_unchecked).__globals__)
    exec(compile(source.replace(line, "(t - 1) % truncate == 0"), "<late cut>", "exec"), namespace)
    late = type("LateCut", (RNN,), {"backward_unchecked": namespace["backward_unchecked"]})
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((9, 2, 2)), rng.uniform(0, 1, (9, 2, 1))
    model = late(2, 4, 1, activation="tanh")
    _, mutated = model.loss_and_grads(x, y, truncate=4)
    _, right = reference.loss_and_grads(model.params, x, y, activation="tanh", truncate=4)
    assert relative_error(mutated["W_hh"], right["W_hh"]) > FLOAT64_BOUND
