"""Random networks of every cell for the reference's properties (test_reference.py and
test_truncate.py): an RNN drawn by strategies.py or a gated one by gated_checks.py, with
what the gated strategy fixes drawn here (bias on or off, h0 and c0 each present or absent),
made concrete, and judged against autograd within rnn_torch.compare.FLOAT64_BOUND.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from gated_checks import CELLS
from gated_checks import Case as GatedCase
from gated_checks import cases as gated_cases
from gated_checks import make_problem as make_gated_problem
from hypothesis import strategies as st
from numpy.typing import NDArray
from rnn_checks import KINK_MARGIN
from strategies import ACTIVATIONS, away_from_relu_kinks
from strategies import Case as RNNCase
from strategies import cases as rnn_cases
from strategies import make_problem as make_rnn_problem

from rnn_manual import GRU, LSTM, RNN, reference
from rnn_manual.core.gradcheck import relative_error
from rnn_torch.compare import FLOAT64_BOUND
from rnn_torch.twin import Twin

Array = NDArray[np.floating]
Grads = dict[str, Array]
Result = tuple[float, Grads]  # a loss and its gradients
#: A loss_and_grads with the reference's signature: the reference's own, or a planted bug's.
LossAndGrads = Callable[..., Result]


@dataclass(frozen=True)
class Net:
    """One drawn network: an RNN case (strategies.py) or a gated one (gated_checks.py, drawn
    with states, some of which are then left out), and what the gated strategy fixes."""

    cell: str  # "rnn" | "lstm" | "gru"
    case: RNNCase | GatedCase
    bias: bool
    with_h0: bool
    with_c0: bool  # the LSTM's only
    activation: str  # the RNN's; passed to the gated cells too, which must ignore it

    def describe(self) -> str:
        text = self.case.shapes() if isinstance(self.case, RNNCase) else self.case.describe()
        flags = f"bias={self.bias}, h0={self.with_h0}, c0={self.with_c0}"
        return f"{self.cell}: {text}; {flags}"


#: Sizes small enough for the ci profile to run every property in seconds.
SIZES = {"max_bits": 16, "max_batch": 5, "max_hidden": 10, "max_io": 3}


@st.composite
def nets(draw: st.DrawFn) -> Net:
    """RNN, LSTM or GRU networks: every activation (RNN), every loss, bias on and off, h0
    and c0 each present or absent, float64."""
    cell = draw(st.sampled_from(["rnn", "lstm", "gru"]))
    if cell == "rnn":
        case = draw(rnn_cases("float64", objectives=("mse", "bce", "ce"), **SIZES))
        return Net(cell, case, case.bias, case.with_h0, False, case.activation)
    gated = replace(
        draw(gated_cases("float64", **SIZES)), cell=cell, bias=True, with_h0=True, with_c0=True
    )
    with_c0 = cell == "lstm" and draw(st.booleans())
    activation = draw(st.sampled_from(ACTIVATIONS))
    return Net(cell, gated, draw(st.booleans()), draw(st.booleans()), with_c0, activation)


@dataclass
class Example:
    """A Net made concrete: the fast cell (reference reads its params), data and states."""

    model: RNN | LSTM | GRU
    x: Array  # (T, B, I)
    y: Array  # (T, B, O)
    states: dict[str, Array]  # "h0", "c0": those given, (B, H) each
    loss: str
    fused: bool  # the RNN's autograd judge: nn.RNN rather than a cell
    usable: bool  # False for relu pre-activations too near the kink to judge


def make(net: Net) -> Example:
    case = net.case
    if isinstance(case, RNNCase):
        problem = make_rnn_problem(case)
        states = {} if problem.h0 is None else {"h0": problem.h0}
        usable = away_from_relu_kinks(problem, KINK_MARGIN[case.dtype])
        x, y = problem.x, problem.target
        return Example(problem.model, x, y, states, case.objective, case.fused, usable)
    gated = make_gated_problem(case)  # with biases, h0 and c0; dropped below as drawn
    model = gated.model
    if not net.bias:
        sizes = (case.inputs, case.hidden, case.outputs)
        model = CELLS[net.cell](*sizes, False, case.dtype, output=gated.model.output)
        for name, w in model.params.items():
            w[...] = gated.model.params[name]
    keep = {"h0": net.with_h0, "c0": net.with_c0}
    states = {name: state for name, state in gated.states.items() if keep[name]}
    return Example(model, gated.x, gated.y, states, case.loss, False, True)


def by_reference(
    net: Net,
    example: Example,
    truncate: int | None = None,
    loss_and_grads: LossAndGrads = reference.loss_and_grads,
) -> Result:
    """reference.loss_and_grads (or a planted bug's) on the example's network."""
    return loss_and_grads(
        example.model.params,
        example.x,
        example.y,
        activation=net.activation,
        loss=example.loss,
        h0=example.states.get("h0"),
        c0=example.states.get("c0"),
        truncate=truncate,
    )


def by_autograd(example: Example, truncate: int | None = None) -> Result:
    """The loss and its autograd gradients on the torch twin of the fast cell; with truncate,
    its state detached at the start of every chunk but the first (the cell twin, which the
    fused layer cannot do)."""
    twin = Twin.from_manual(example.model, fused=example.fused and truncate is None)
    return twin.loss_and_grads(
        example.x, example.y, loss=example.loss, **example.states, truncate=truncate
    )


def assert_agree(mine: Result, theirs: Result, against: str, net: Net) -> None:
    """The reference's loss and every gradient within FLOAT64_BOUND of `against`'s."""
    loss, grads = mine
    their_loss, their_grads = theirs
    assert set(grads) == set(their_grads), f"keys {sorted(grads)} vs {sorted(their_grads)}"
    err = abs(loss - their_loss) / max(abs(their_loss), np.finfo(np.float64).tiny)
    assert err <= FLOAT64_BOUND, (
        f"loss {loss} vs {against}'s {their_loss}: relative error {err:.2e} ({net.describe()})"
    )
    for name, theirs_g in their_grads.items():
        assert grads[name].shape == theirs_g.shape, f"d{name}: {grads[name].shape}"
        err = relative_error(grads[name], theirs_g)
        assert err <= FLOAT64_BOUND, (
            f"d{name} {theirs_g.shape}: reference vs {against}, normwise relative error "
            f"{err:.2e} > {FLOAT64_BOUND:.0e} ({net.describe()})"
        )


def check_against_autograd(
    net: Net,
    example: Example,
    loss_and_grads: LossAndGrads = reference.loss_and_grads,
    truncate: int | None = None,
) -> None:
    """The reference (or a planted bug's copy) agrees with autograd on the example."""
    mine = by_reference(net, example, truncate, loss_and_grads)
    assert_agree(mine, by_autograd(example, truncate), "autograd", net)
