"""rnn_manual.reference, the plain RNN, LSTM and GRU a learner reads first: its loss and
gradients equal PyTorch autograd's and the fast cells', on random networks of all three
cells, and the properties catch bugs planted in it.

The networks come from the RNN's strategy (tests/strategies.py) and the gated cells'
(test_gated.py), with what the gated strategy holds fixed drawn here: bias on or off, h0
and c0 each present or absent. Every judgement is within rnn_torch.compare.FLOAT64_BOUND.
"""

from __future__ import annotations

import ast
import inspect
import types
from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from numpy.typing import NDArray
from strategies import ACTIVATIONS, away_from_relu_kinks, examples
from strategies import Case as RNNCase
from strategies import cases as rnn_cases
from strategies import make_problem as make_rnn_problem
from test_gated import CELLS
from test_gated import Case as GatedCase
from test_gated import cases as gated_cases
from test_gated import make_problem as make_gated_problem
from test_properties import KINK_MARGIN

from rnn_manual import GRU, LSTM, RNN, reference
from rnn_manual.core.gradcheck import relative_error
from rnn_torch.compare import FLOAT64_BOUND, float32_bound
from rnn_torch.gated import GatedTwin
from rnn_torch.twin import Twin

Array = NDArray[np.floating]
Grads = dict[str, Array]
Result = tuple[float, Grads]  # a loss and its gradients


# ---- networks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Net:
    """One drawn network: an RNN case (strategies.py) or a gated one (test_gated.py, drawn
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
    """RNN, LSTM or GRU networks: every activation (RNN), mse and bce, bias on and off, h0
    and c0 each present or absent, float64."""
    cell = draw(st.sampled_from(["rnn", "lstm", "gru"]))
    if cell == "rnn":
        case = draw(rnn_cases("float64", objectives=("mse", "bce"), **SIZES))
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
        model = CELLS[net.cell](case.inputs, case.hidden, case.outputs, False, case.dtype)
        for name, w in model.params.items():
            w[...] = gated.model.params[name]
    keep = {"h0": net.with_h0, "c0": net.with_c0}
    states = {name: state for name, state in gated.states.items() if keep[name]}
    return Example(model, gated.x, gated.y, states, case.loss, False, True)


# ---- checks ------------------------------------------------------------------------------


def by_reference(net: Net, example: Example, module: types.ModuleType = reference) -> Result:
    """reference.loss_and_grads (or a mutant's) on the example's network."""
    return module.loss_and_grads(
        example.model.params,
        example.x,
        example.y,
        activation=net.activation,
        loss=example.loss,
        h0=example.states.get("h0"),
        c0=example.states.get("c0"),
    )


def by_autograd(example: Example) -> Result:
    """The loss and its autograd gradients on the torch twin of the fast cell."""
    model, x, y, states = example.model, example.x, example.y, example.states
    if isinstance(model, RNN):
        twin = Twin.from_manual(model, fused=example.fused)
        return twin.loss_and_grads(x, y, example.loss, states.get("h0"))
    return GatedTwin(model).loss_and_grads(x, y, example.loss, **states)


def judge(mine: Result, theirs: Result, judge_name: str, net: Net) -> None:
    """The reference's loss and every gradient within FLOAT64_BOUND of the judge's."""
    loss, grads = mine
    their_loss, their_grads = theirs
    assert set(grads) == set(their_grads), f"keys {sorted(grads)} vs {sorted(their_grads)}"
    err = abs(loss - their_loss) / max(abs(their_loss), np.finfo(np.float64).tiny)
    assert err <= FLOAT64_BOUND, (
        f"loss {loss} vs {judge_name}'s {their_loss}: relative error {err:.2e} ({net.describe()})"
    )
    for name, theirs_g in their_grads.items():
        assert grads[name].shape == theirs_g.shape, f"d{name}: {grads[name].shape}"
        err = relative_error(grads[name], theirs_g)
        assert err <= FLOAT64_BOUND, (
            f"d{name} {theirs_g.shape}: reference vs {judge_name}, normwise relative error "
            f"{err:.2e} > {FLOAT64_BOUND:.0e} ({net.describe()})"
        )


def check_against_autograd(
    net: Net, example: Example, module: types.ModuleType = reference
) -> None:
    judge(by_reference(net, example, module), by_autograd(example), "autograd", net)


def check_against_fast_cell(net: Net, example: Example) -> None:
    fast = example.model.loss_and_grads(example.x, example.y, example.loss, **example.states)
    judge(by_reference(net, example), fast, "the fast cell", net)


def check_keys_and_shapes(net: Net, example: Example) -> None:
    params, x = example.model.params, example.x
    _, grads = by_reference(net, example)
    B, H = x.shape[1], example.model.hidden_size
    shapes = {name: w.shape for name, w in params.items()}
    shapes.update(x=x.shape, h0=(B, H))
    if net.cell == "lstm":
        shapes["c0"] = (B, H)
    assert reference.cell_of(params) == net.cell
    assert set(grads) == set(shapes), f"keys {sorted(grads)}, not {sorted(shapes)}"
    for name, g in grads.items():
        assert isinstance(g, np.ndarray), f"d{name}: {type(g)}"
        assert g.shape == shapes[name] and g.dtype == np.float64, f"d{name}: {g.shape} {g.dtype}"


# ---- properties --------------------------------------------------------------------------


@examples(4)
@given(net=nets())
def test_reference_equals_autograd(net: Net) -> None:
    example = make(net)
    assume(example.usable)
    check_against_autograd(net, example)


@examples(2)
@given(net=nets())
def test_reference_equals_the_fast_cells(net: Net) -> None:
    example = make(net)
    assume(example.usable)
    check_against_fast_cell(net, example)


@given(net=nets())
def test_gradient_keys_and_shapes(net: Net) -> None:
    check_keys_and_shapes(net, make(net))


@pytest.mark.parametrize("model", [RNN(2, 3, 1), LSTM(2, 3, 1), GRU(2, 3, 1, bias=True)])
def test_cell_of_reads_the_keys(model: RNN | LSTM | GRU) -> None:
    assert reference.cell_of(model.params) == type(model).__name__.lower()
    with pytest.raises(KeyError, match="not an RNN's"):
        reference.cell_of({"W_hy": model.params["W_hy"]})


# ---- planted bugs ------------------------------------------------------------------------

#: name -> (function of reference.py, one line of its code, its replacement). Lines match on
#: their code alone (indentation and the comment beside it aside), within that function.
MUTATIONS: dict[str, tuple[str, str, str]] = {
    "rnn: drop the recurrent term dh_next": (
        "rnn_backward",
        "dh = dz[t] @ W_hy.T + dh_next",
        "dh = dz[t] @ W_hy.T",
    ),
    "rnn: h_t instead of h_{t-1} in dW_hh": (
        "rnn_backward",
        'grads["W_hh"] += h[t].T @ da',
        'grads["W_hh"] += h[t + 1].T @ da',
    ),
    "rnn: tanh'(a_{t-1}) for tanh'(a_t)": (
        "rnn_backward",
        "da = dh * (1 - h[t + 1] ** 2)",
        "da = dh * (1 - h[t] ** 2)",
    ),
    "rnn: relu' = 1 everywhere": (
        "rnn_backward",
        "da = dh * (h[t + 1] > 0)",
        "da = dh * (h[t + 1] >= 0)",
    ),
    "rnn: W_hh for W_hh^T": ("rnn_backward", "dh_next = da @ W_hh.T", "dh_next = da @ W_hh"),
    "lstm: drop the recurrent term dh_next": (
        "lstm_backward",
        "dh = dz[t] @ W_hy.T + dh_next",
        "dh = dz[t] @ W_hy.T",
    ),
    "lstm: drop dc_next = dc * f (no cell-state carry)": (
        "lstm_backward",
        "dc_next = dc * f[t]",
        "dc_next = 0 * dc",
    ),
    "lstm: forget gate left out of the carry": (
        "lstm_backward",
        "dc_next = dc * f[t]",
        "dc_next = dc",
    ),
    "lstm: c_t for c_{t-1} in df": ("lstm_backward", "df = dc * c[t]", "df = dc * c[t + 1]"),
    "lstm: sigmoid' for tanh' at g": (
        "lstm_backward",
        "da_g = dg * (1 - g[t] ** 2)",
        "da_g = dg * g[t] * (1 - g[t])",
    ),
    "gru: drop the direct path u_t * dh": (
        "gru_backward",
        "dh_next = dh * u[t] + da_r @ W_hr.T + da_u @ W_hu.T + dhn @ W_hn.T",
        "dh_next = da_r @ W_hr.T + da_u @ W_hu.T + dhn @ W_hn.T",
    ),
    "gru: wrong sign of the update gate's derivative": (
        "gru_backward",
        "du = dh * (h[t] - n[t])",
        "du = dh * (n[t] - h[t])",
    ),
    "gru: reset gate left out of dL/dhn": ("gru_backward", "dhn = da_n * r[t]", "dhn = da_n"),
    "gru forward: b_hn left out": (
        "gru_forward",
        "hn[t] = h[t] @ W_hn + b_hn",
        "hn[t] = h[t] @ W_hn",
    ),
}


def code(line: str) -> str:
    """A source line's code, without indentation or the comment beside it."""
    return line.split("#", 1)[0].strip()


def mutant(function: str, line: str, replacement: str) -> types.ModuleType:
    """reference.py recompiled, as a new module, with the one line of `function` whose code is
    `line` replaced by `replacement`; fails unless exactly one line matches."""
    source = inspect.getsource(reference)
    lines = source.splitlines(keepends=True)
    defs = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef) and node.name == function
    ]
    assert len(defs) == 1, f"reference.py has {len(defs)} functions named {function}, not 1"
    span = range(defs[0].lineno - 1, defs[0].end_lineno or defs[0].lineno)
    hits = [k for k in span if code(lines[k]) == line]
    assert len(hits) == 1, (
        f"{line!r} is on {len(hits)} lines of reference.{function}, not 1: update MUTATIONS "
        "in tests/test_reference.py to the current source"
    )
    k = hits[0]
    indent = lines[k][: len(lines[k]) - len(lines[k].lstrip())]
    lines[k] = f"{indent}{replacement}\n"
    module = types.ModuleType(f"{reference.__name__}_mutant")
    module.__package__ = reference.__package__  # for its relative imports
    exec(compile("".join(lines), inspect.getfile(reference), "exec"), module.__dict__)
    return module


def _rnn(activation: str) -> Net:
    case = RNNCase(6, 3, 2, 5, 2, activation, True, "bce", True, False, 0.9, False, "float64", 1)
    return Net("rnn", case, True, True, False, activation)


def _gated(cell: str) -> Net:
    case = GatedCase(cell, 6, 3, 2, 5, 2, "mse", True, True, True, False, 1.0, "float64", 1)
    return Net(cell, case, True, True, cell == "lstm", "sigmoid")


#: A few fixed networks per cell, with biases and initial states: the planted bugs' judges.
FIXED: dict[str, list[Net]] = {
    "rnn": [_rnn(activation) for activation in ACTIVATIONS],
    "lstm": [_gated("lstm")],
    "gru": [_gated("gru")],
}


def failures(module: types.ModuleType, cell: str) -> list[str]:
    """The autograd property's failure messages on FIXED[cell], with `module` as reference."""
    found = []
    for net in FIXED[cell]:
        example = make(net)
        assert example.usable, f"a fixed network too near relu's kink: {net.describe()}"
        try:
            check_against_autograd(net, example, module)
        except AssertionError as error:
            found.append(str(error))
    return found


@pytest.mark.parametrize("function", sorted({function for function, _, _ in MUTATIONS.values()}))
def test_unmutated_copy_passes(function: str) -> None:
    """The machinery changes nothing by itself: a line replaced by itself passes."""
    line = next(line for name, line, _ in MUTATIONS.values() if name == function)
    assert failures(mutant(function, line, line), function.split("_")[0]) == []


@pytest.mark.parametrize("name", MUTATIONS)
def test_planted_bug_is_caught(name: str) -> None:
    function, line, replacement = MUTATIONS[name]
    cell = function.split("_")[0]
    caught = failures(mutant(function, line, replacement), cell)
    assert caught, f"{name}: the autograd property passed on every fixed {cell} network"
    assert any("relative error" in message for message in caught), caught


# ---- what the drawn networks may miss ----------------------------------------------------
# (found by mutation testing, `make mutate`, which cannot run the planted bugs above: they
# recompile this module's source, which mutmut has rewritten)


@pytest.mark.parametrize("cell", sorted(FIXED))
def test_fixed_networks_equal_autograd(cell: str) -> None:
    """The planted bugs' judges on the reference itself: every RNN activation, the LSTM and
    the GRU, with biases, initial states and T = 6, agree with autograd."""
    assert failures(reference, cell) == []


@pytest.mark.parametrize("cell", sorted(FIXED))
def test_float32_in_float32_out(cell: str) -> None:
    """Arrays of one floating dtype, any: float32 parameters and data give a float32
    gradient for every key, within float32 rounding of the float64 ones (measured against
    the norm of all of them, as compare.float32_allowed does)."""
    for net in FIXED[cell]:
        example = make(net)
        _, exact = by_reference(net, example)
        single = {name: w.astype(np.float32) for name, w in example.model.params.items()}
        states = {name: s.astype(np.float32) for name, s in example.states.items()}
        x, y = example.x.astype(np.float32), example.y.astype(np.float32)
        _, grads = reference.loss_and_grads(
            single, x, y, activation=net.activation, loss=example.loss, **states
        )
        assert set(grads) == set(exact)
        total = float(np.sqrt(sum(np.sum(g**2) for g in exact.values())))
        T, B, I = x.shape
        H, O = example.model.params["W_hy"].shape
        allowed = float32_bound(T, I + H + O, B) * total
        for name, g in grads.items():
            assert g.dtype == np.float32, f"d{name}: {g.dtype} ({net.describe()})"
            gap = float(np.linalg.norm(g - exact[name]))
            assert gap <= allowed, f"d{name}: {gap:.2e} > {allowed:.2e} ({net.describe()})"


def test_defaults_are_the_fast_cells() -> None:
    """Without activation and loss, the reference computes what RNN().loss_and_grads does
    without them: the tutorial's sigmoid and mse."""
    model = RNN(2, 4, 1, seed=3)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(5, 2, 2)), rng.integers(0, 2, (5, 2, 1)).astype(np.float64)
    loss, grads = reference.loss_and_grads(model.params, x, y)
    fast_loss, fast = model.loss_and_grads(x, y)
    assert abs(loss - fast_loss) <= FLOAT64_BOUND * abs(fast_loss)
    for name, g in fast.items():
        assert relative_error(grads[name], g) <= FLOAT64_BOUND, name


@pytest.mark.parametrize("cell", sorted(FIXED))
def test_forward_caches_are_as_documented(cell: str) -> None:
    """Each forward function returns the arrays its docstring names, in those shapes, with
    the initial states in row 0 of h (and c)."""
    net = FIXED[cell][0]
    example = make(net)
    params, x, states = example.model.params, example.x, example.states
    T, B, _ = x.shape
    H, O = params["W_hy"].shape
    if cell == "rnn":
        cache = reference.rnn_forward(params, x, states["h0"], net.activation)
        steps, gates = ["h"], []
    elif cell == "lstm":
        cache = reference.lstm_forward(params, x, states["h0"], states["c0"])
        steps, gates = ["h", "c"], ["i", "f", "g", "o"]
    else:
        cache = reference.gru_forward(params, x, states["h0"])
        steps, gates = ["h"], ["r", "u", "n", "hn"]
    shapes = {"x": x.shape, "z": (T, B, O), "p": (T, B, O)}
    shapes.update(dict.fromkeys(steps, (T + 1, B, H)))
    shapes.update(dict.fromkeys(gates, (T, B, H)))
    assert {name: a.shape for name, a in cache.items()} == shapes
    for name in steps:
        np.testing.assert_array_equal(cache[name][0], states[f"{name}0"], err_msg=name)


@pytest.mark.parametrize("cell", sorted(FIXED))
def test_an_empty_sequence_has_zero_loss_and_gradients(cell: str) -> None:
    """T = 0: no step, so the loss is an empty sum, 0, and every gradient one too, in its
    shape; nothing reads the initial states, so their gradients are 0 as well. (The fast
    cells refuse T = 0; the reference checks nothing and computes the sums as written.)"""
    for net in FIXED[cell]:
        example = make(net)
        params, states = example.model.params, example.states
        x, y = example.x[:0], example.y[:0]
        loss, grads = reference.loss_and_grads(
            params, x, y, activation=net.activation, loss=example.loss, **states
        )
        assert loss == 0.0, f"loss {loss} ({net.describe()})"
        shapes = {name: w.shape for name, w in params.items()}
        shapes.update(x=x.shape, **{name: s.shape for name, s in states.items()})
        assert {name: g.shape for name, g in grads.items()} == shapes
        for name, g in grads.items():
            assert not g.any(), f"d{name} is not 0 ({net.describe()})"
