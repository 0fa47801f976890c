"""Truncated BPTT (`truncate=K`): the sequence is cut into chunks of K steps, the state runs
on across the cuts, and no gradient crosses one, exactly as `h = h.detach()` between chunks
does in PyTorch.

Judged like full BPTT: the reference against the torch twins run with detached states at
the chunk boundaries, and every fast cell against the reference, within FLOAT64_BOUND, on
the random networks of nets.py; plus the edge cases (truncate >= T is full BPTT,
K = 1 keeps no recurrent gradient) and a planted bug (the cut one step late) that the
property catches.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from nets import Net, assert_agree, by_autograd, by_reference, check_against_autograd, make, nets
from strategies import examples

from rnn_manual import GRU, LSTM, RNN, reference
from rnn_manual.cells import gru, lstm, rnn, truncation
from rnn_manual.core.gradcheck import relative_error
from rnn_torch.compare import FLOAT64_BOUND
from rnn_torch.planting import Plant, planted_module


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
    check_against_autograd(net, example, truncate=truncate)


@examples(2)
@given(drawn=truncated_nets())
def test_fast_cells_equal_the_reference_truncated(drawn: tuple[Net, int]) -> None:
    net, truncate = drawn
    example = make(net)
    assume(example.usable)
    fast = example.model.loss_and_grads(
        example.x, example.y, example.loss, **example.states, truncate=truncate
    )
    assert_agree(by_reference(net, example, truncate), fast, "the fast cell", net)


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

#: The cut one step late, in the one rule every cell and the reference follow
#: (cells/truncation.py): the chunk boundary after t = K instead of K - 1.
LATE = Plant("ends_chunk", "(t + 1) % truncate == 0", "t % truncate == 0")
#: Where the rule is used: each imports it by name.
USERS = (reference, rnn, lstm, gru)


def test_cut_one_step_late_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The late cut planted in ends_chunk fails the property against autograd, for the
    reference and for each fast cell alike (they all take the cut from there)."""
    late = planted_module(truncation, [LATE], "late cut").ends_chunk
    for user in USERS:
        monkeypatch.setattr(user, "ends_chunk", late)
    caught: set[str] = set()

    @settings(
        max_examples=60,
        phases=[Phase.generate],
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(drawn=truncated_nets())
    def run(drawn: tuple[Net, int]) -> None:
        net, truncate = drawn
        example = make(net)
        assume(example.usable)
        right = by_autograd(example, truncate)
        fast = example.model.loss_and_grads(
            example.x, example.y, example.loss, **example.states, truncate=truncate
        )
        for name, mine in (("reference", by_reference(net, example, truncate)), ("fast", fast)):
            try:
                assert_agree(mine, right, "autograd", net)
            except AssertionError:
                caught.add(f"{name} {net.cell}")

    run()
    expected = {
        f"{name} {cell}" for name in ("reference", "fast") for cell in ("rnn", "lstm", "gru")
    }
    assert caught == expected, f"a cut one step late passed for {sorted(expected - caught)}"


@pytest.mark.parametrize("cell", [RNN, LSTM, GRU], ids=lambda c: c.name)
def test_a_pass_from_the_final_states_continues_the_sequence(cell: type) -> None:
    """The state runs on across a cut: a pass over x[k:] from the states a pass over x[:k]
    ended in (Cell.final_states) computes the same states and outputs as one pass over x,
    as `text` carries the state from chunk to chunk."""
    rng = np.random.default_rng(4)
    model = cell(3, 5, 2, bias=True, seed=rng)
    x = rng.normal(size=(9, 4, 3))
    h0 = rng.normal(size=(4, 5))
    c0 = rng.normal(size=(4, 5)) if cell is LSTM else None
    whole, first = model.run(x, h0, c0), model.run(x[:4], h0, c0)
    ends = model.final_states(first)
    assert len(ends) == len(model.states)
    second = model.run(x[4:], *ends)
    np.testing.assert_array_equal(ends[0], whole.h[4])
    np.testing.assert_allclose(second.h, whole.h[4:], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(second.z, whole.z[4:], rtol=1e-13, atol=1e-15)
    if cell is LSTM:
        np.testing.assert_array_equal(ends[1], whole.c[4])
        np.testing.assert_allclose(second.c, whole.c[4:], rtol=1e-13, atol=1e-15)
