"""The gated-cell property checks catch the classic bugs: each test plants one in a copy of
rnn_manual/cells/lstm.py or gru.py and asserts that the checks of gated_checks.py fail on it.

A mutant is the module compiled afresh with statements or expressions of named methods
replaced (rnn_torch.planting: matched on the syntax tree, whatever the layout, and each
must occur exactly once, so a mutation cannot silently stop applying when the code
changes). Some bugs are self-consistent: the mutant's backward pass is the true derivative
of its own, wrong, forward pass. Finite differences cannot see those (the tests assert so);
only the comparison with PyTorch's cells can.
"""

from __future__ import annotations

import types
from dataclasses import dataclass

import numpy as np
import pytest
from gated_checks import (
    Case,
    check_finite_differences,
    check_forward,
    check_gradients,
    fused_probabilities,
)

from rnn_manual.cells import gru, lstm
from rnn_torch.planting import Plant, planted_module


@dataclass(frozen=True)
class Mutation:
    name: str
    module: types.ModuleType
    plants: tuple[tuple[str, str, str], ...]  # (function, old, new): rnn_torch.planting.Plant
    consistent: bool  # backward is the true derivative of the mutant's forward: FD-blind
    changes_forward: bool


def mutant(mutation: Mutation) -> type:
    """The model class of `mutation.module` with the plants applied to its source."""
    plants = [Plant(*plant) for plant in mutation.plants]
    module = planted_module(mutation.module, plants, mutation.name)
    return getattr(module, "LSTM" if mutation.module is lstm else "GRU")  # type: ignore[no-any-return]


LSTM_RUN, LSTM_BACKWARD = "LSTM.run_unchecked", "LSTM.backward_unchecked"
GRU_RUN, GRU_BACKWARD = "GRU.run_unchecked", "GRU.backward_unchecked"

MUTATIONS = [
    Mutation("unchanged lstm", lstm, (), consistent=True, changes_forward=False),
    Mutation("unchanged gru", gru, (), consistent=True, changes_forward=False),
    Mutation(
        "lstm gate order i, f, o, g (CS231n's)",
        lstm,
        (
            (
                LSTM_RUN,
                "i, f, g, o = split_gates(gates[t], 4)",
                "i, f, o, g = split_gates(gates[t], 4)",
            ),
            (LSTM_RUN, "a_g = a[t, :, 2 * H : 3 * H]", "a_g = a[t, :, 3 * H :]"),
            (
                LSTM_BACKWARD,
                "i, f, g, o = split_gates(gates, 4)",
                "i, f, o, g = split_gates(gates, 4)",
            ),
            (  # da holds the gates i, f, g, o; the weights' blocks are now i, f, o, g
                LSTM_BACKWARD,
                "dh_next = da[t].reshape(B, 4 * H) @ W_h.T",
                "dh_next = da[t][:, [0, 1, 3, 2]].reshape(B, 4 * H) @ W_h.T",
            ),
            (
                LSTM_BACKWARD,
                "da = da.reshape(T, B, 4 * H)",
                "da = da[:, :, [0, 1, 3, 2]].reshape(T, B, 4 * H)",
            ),
        ),
        consistent=True,
        changes_forward=True,
    ),
    Mutation(
        "lstm forget-gate bias applied to the output gate",
        lstm,
        (
            (
                LSTM_RUN,
                'a += self._stacked("b_")',
                'a += np.concatenate([self.params[n] for n in ("b_i", "b_o", "b_g", "b_f")])',
            ),
        ),
        consistent=False,
        changes_forward=True,
    ),
    Mutation(
        "lstm recurrent term dropped from backward",
        lstm,
        ((LSTM_BACKWARD, "dh_next = da[t].reshape(B, 4 * H) @ W_h.T", "dh_next = 0 * dh"),),
        consistent=False,
        changes_forward=False,
    ),
    Mutation(
        "lstm cell path dropped from backward",
        lstm,
        ((LSTM_BACKWARD, "dc_next = dc * f[t]", "dc_next = 0 * dc"),),
        consistent=False,
        changes_forward=False,
    ),
    Mutation(
        "lstm time index shifted: c_t for c_{t-1}",
        lstm,
        ((LSTM_BACKWARD, "c[:-1] * sigmoid_derivative(f)", "c[1:] * sigmoid_derivative(f)"),),
        consistent=False,
        changes_forward=False,
    ),
    Mutation(
        "lstm time index shifted: h_t for h_{t-1} in dW_h",
        lstm,
        ((LSTM_BACKWARD, "h[:-1].reshape(T * B, H)", "h[1:].reshape(T * B, H)"),),
        consistent=False,
        changes_forward=False,
    ),
    Mutation(
        "gru gate order z, r, n",
        gru,
        (
            (GRU_RUN, "r, u, n = split_gates(gates[t], 3)", "u, r, n = split_gates(gates[t], 3)"),
            (GRU_BACKWARD, "r, u, n = split_gates(gates, 3)", "u, r, n = split_gates(gates, 3)"),
            (  # dax and dah hold the gates r, u, n; the weights' blocks are now u, r, n
                GRU_BACKWARD,
                "dh_next = dh * u[t] + dah[t].reshape(B, 3 * H) @ W_h.T",
                "dh_next = dh * u[t] + dah[t][:, [1, 0, 2]].reshape(B, 3 * H) @ W_h.T",
            ),
            (
                GRU_BACKWARD,
                "dax = dax.reshape(T, B, 3 * H)",
                "dax = dax[:, :, [1, 0, 2]].reshape(T, B, 3 * H)",
            ),
            (
                GRU_BACKWARD,
                "dah = dah.reshape(T, B, 3 * H)",
                "dah = dah[:, :, [1, 0, 2]].reshape(T, B, 3 * H)",
            ),
        ),
        consistent=True,
        changes_forward=True,
    ),
    Mutation(
        "gru b_hn outside the reset product",
        gru,
        (
            (GRU_RUN, 'hn[t] += self.params["b_hn"]', 'ax_n += self.params["b_hn"]'),
            (
                GRU_BACKWARD,
                "dah[:, :, 2 * H :].sum(axis=(0, 1))",
                "dax[:, :, 2 * H :].sum(axis=(0, 1))",
            ),
        ),
        consistent=True,
        changes_forward=True,
    ),
    Mutation(
        "gru recurrent term dropped from backward",
        gru,
        (
            (
                GRU_BACKWARD,
                "dh_next = dh * u[t] + dah[t].reshape(B, 3 * H) @ W_h.T",
                "dh_next = dh * u[t]",
            ),
        ),
        consistent=False,
        changes_forward=False,
    ),
    Mutation(
        "gru direct path u_t * h_{t-1} dropped from backward",
        gru,
        (
            (
                GRU_BACKWARD,
                "dh_next = dh * u[t] + dah[t].reshape(B, 3 * H) @ W_h.T",
                "dh_next = dah[t].reshape(B, 3 * H) @ W_h.T",
            ),
        ),
        consistent=False,
        changes_forward=False,
    ),
    Mutation(
        "gru time index shifted: h_t for h_{t-1}",
        gru,
        (
            (
                GRU_BACKWARD,
                "(h[:-1] - n) * sigmoid_derivative(u)",
                "(h[1:] - n) * sigmoid_derivative(u)",
            ),
        ),
        consistent=False,
        changes_forward=False,
    ),
]


def cases_for(mutation: Mutation, small: bool) -> list[Case]:
    """Two generic cases: an adder-like one (binary, zero states) and a real-valued one."""
    cell = "lstm" if mutation.module is lstm else "gru"
    T, B, H = (3, 2, 2) if small else (6, 3, 5)
    lstm_ = cell == "lstm"
    return [
        Case(cell, T, B, 2, H, 1, "mse", True, False, False, True, 1.0, "float64", seed=1),
        Case(cell, T, B, 2, H, 2, "bce", True, True, lstm_, False, 1.2, "float64", seed=2),
    ]


def caught(check: object, *args: object) -> bool:
    try:
        check(*args)  # type: ignore[operator]
    except AssertionError:
        return True
    return False


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_the_torch_checks_catch_the_mutation(mutation: Mutation) -> None:
    model_class = mutant(mutation)
    planted = bool(mutation.plants)
    for case in cases_for(mutation, small=False):
        assert caught(check_gradients, case, model_class) == planted, case.describe()
        assert caught(check_forward, case, model_class) == mutation.changes_forward


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_finite_differences_catch_only_the_inconsistent_mutations(mutation: Mutation) -> None:
    model_class = mutant(mutation)
    for case in cases_for(mutation, small=True):
        assert caught(check_finite_differences, case, model_class) != mutation.consistent


BIAS_MUTATIONS = [m for m in MUTATIONS if "bias" in m.name or "b_hn" in m.name]


@pytest.mark.parametrize("mutation", BIAS_MUTATIONS, ids=lambda m: m.name)
def test_zero_biases_would_hide_the_bias_bugs(mutation: Mutation) -> None:
    """Why the property tests draw non-zero biases: with zero ones the forward is unchanged."""
    cls = lstm.LSTM if mutation.module is lstm else gru.GRU
    model = cls(2, 3, 1, bias=True, seed=0)  # biases start at zero
    broken = mutant(mutation)(2, 3, 1, True)
    for name, w in model.params.items():
        broken.params[name][...] = w
    x = np.random.default_rng(0).normal(size=(4, 2, 2))
    np.testing.assert_allclose(broken.forward(x), fused_probabilities(model, x), rtol=1e-12)
