"""rnn_manual.reference, the plain RNN, LSTM and GRU a learner reads first: its loss and
gradients equal PyTorch autograd's and the fast cells', on random networks of all three
cells, and the properties catch the bugs of the diagnosis's catalogue planted in it.

The networks come from nets.py. Every judgement is within rnn_torch.compare.FLOAT64_BOUND.
"""

from __future__ import annotations

import numpy as np
import pytest
from gated_checks import Case as GatedCase
from hypothesis import assume, given
from nets import (
    Example,
    Net,
    assert_agree,
    by_reference,
    check_against_autograd,
    make,
    nets,
)
from reference_plants import EXTRA
from strategies import ACTIVATIONS, examples
from strategies import Case as RNNCase

from rnn_manual import GRU, LSTM, RNN, reference
from rnn_manual.cells.losses import OUTPUT_OF
from rnn_manual.core.gradcheck import relative_error
from rnn_torch.compare import FLOAT64_BOUND, float32_bound
from rnn_torch.diagnose import catalogue
from rnn_torch.diagnose.catalogue import LossAndGrads
from rnn_torch.planting import planted_module


def check_against_fast_cell(net: Net, example: Example) -> None:
    fast = example.model.loss_and_grads(example.x, example.y, example.loss, **example.states)
    assert_agree(by_reference(net, example), fast, "the fast cell", net)


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
# The catalogue of rnn_torch.diagnose (catalogue.py) plants its bugs in the reference, by
# its syntax tree (rnn_torch.planting), and reference_plants.py two more: here each one must
# fail the autograd property.


def _rnn(activation: str, loss: str = "bce") -> Net:
    output = OUTPUT_OF[loss]
    case = RNNCase(6, 3, 2, 5, 2, activation, True, loss, output, True, False, 0.9, False, F64, 1)
    return Net("rnn", case, True, True, False, activation)


def _gated(cell: str, loss: str = "mse") -> Net:
    case = GatedCase(cell, 6, 3, 2, 5, 2, loss, True, True, True, False, 1.0, "float64", 1)
    return Net(cell, case, True, True, cell == "lstm", "sigmoid")


F64 = "float64"
#: A few fixed networks per cell, with biases and initial states, and one with a softmax
#: output (the cross-entropy's bugs change nothing elsewhere): the planted bugs' judges.
FIXED: dict[str, list[Net]] = {
    "rnn": [*(_rnn(activation) for activation in ACTIVATIONS), _rnn("tanh", "ce")],
    "lstm": [_gated("lstm"), _gated("lstm", "ce")],
    "gru": [_gated("gru"), _gated("gru", "ce")],
}


def failures(loss_and_grads: LossAndGrads, cells: list[str]) -> list[str]:
    """The autograd property's failure messages on FIXED[cell] for `cells`, with
    loss_and_grads in the reference's place."""
    found = []
    for net in (net for cell in cells for net in FIXED[cell]):
        example = make(net)
        assert example.usable, f"a fixed network too near relu's kink: {net.describe()}"
        try:
            check_against_autograd(net, example, loss_and_grads)
        except AssertionError as error:
            found.append(str(error))
    return found


def test_unmutated_planted_copy_passes() -> None:
    """The machinery changes nothing by itself: the reference rebuilt as the catalogue
    rebuilds it, with no bug planted, passes on every fixed network."""
    unchanged = catalogue.Bug("unchanged", "any", "-", "-", ())
    namespace: dict[str, object] = {}
    exec(compile(catalogue.source(unchanged), "<unchanged>", "exec"), namespace)
    assert failures(namespace["loss_and_grads"], sorted(FIXED)) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("name", EXTRA)
def test_planted_extra_bug_fails_the_property(name: str) -> None:
    plant = EXTRA[name]
    planted = planted_module(reference, [plant], name)
    caught = failures(planted.loss_and_grads, [plant.function.split("_")[0]])
    assert caught, f"{name}: the autograd property passed on every fixed network"
    assert any("relative error" in message for message in caught), caught


@pytest.mark.parametrize("bug", catalogue.BUGS, ids=lambda bug: bug.name)
def test_planted_catalogue_bug_fails_the_property(bug: catalogue.Bug) -> None:
    cells = sorted(FIXED) if bug.cell == "any" else [bug.cell]
    caught = failures(catalogue.mutant(bug.name), cells)
    assert caught, f"{bug.name}: the autograd property passed on every fixed network"
    assert any("relative error" in message for message in caught), caught


# ---- what the drawn networks may miss ----------------------------------------------------
# (found by mutation testing, `make mutate`, which cannot run the planted bugs above: they
# recompile this module's source, which mutmut has rewritten)


@pytest.mark.parametrize("cell", sorted(FIXED))
def test_fixed_networks_equal_autograd(cell: str) -> None:
    """The planted bugs' judges on the reference itself: every RNN activation, the LSTM and
    the GRU, with biases, initial states and T = 6, agree with autograd."""
    assert failures(reference.loss_and_grads, [cell]) == []


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
