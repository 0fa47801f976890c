"""The LSTM and GRU: gradients, forward passes and training runs equal PyTorch's.

The same properties as test_properties.py checks for the RNN, on the gated cells, judged by
the twin on nn.LSTMCell / nn.GRUCell (rnn_torch.twin) and on the fused nn.LSTM / nn.GRU.
The drawn networks and the checks are in gated_checks.py, which test_gated_mutations.py
runs on broken copies of the models. `pytest -s tests/test_gated.py` prints the worst
errors seen per cell.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from backends import BACKENDS, on_backend
from gated_checks import (
    CELLS,
    WORST,
    Case,
    cases,
    check_finite_differences,
    check_forward,
    check_gradients,
    fused_probabilities,
    make_problem,
    record,
)
from hypothesis import given
from hypothesis import strategies as st
from strategies import Optimizer, Trajectory, distributions, examples, optimizers

from rnn_manual import GRU, LSTM
from rnn_manual.cells import CELLS as ALL_CELLS
from rnn_manual.cells.losses import LOSSES
from rnn_manual.core.backend import move as backend_move
from rnn_manual.core.backend import to_numpy
from rnn_manual.core.gradcheck import relative_error
from rnn_manual.files.checkpoint import load_checkpoint, save_checkpoint
from rnn_manual.files.modelfile import load, save
from rnn_manual.training.loop import train
from rnn_manual.training.state import TrainConfig
from rnn_torch.compare import bound
from rnn_torch.twin import Twin, torch_weights

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def report_worst_errors() -> Iterator[None]:
    yield
    print("\nworst normwise relative errors seen, gated cells (manual vs torch):")
    for (prop, cell, dtype), err in sorted(WORST.items()):
        print(f"  {prop:<16} {cell:<4} {dtype}: {err:.2e}")


# ---- gradients ---------------------------------------------------------------------------


# Each property runs per cell, half the profile's examples each: drawn together, the cells
# share the examples unevenly, and a rare combination (the LSTM's c0 without h0, say) may
# not come up at all in the ci profile's derandomized draw.
PER_CELL = examples(0.5)


@pytest.mark.parametrize("dtype", ["float64", "float32"])  # each within its own bound
@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("backend", BACKENDS)
@PER_CELL
@given(data=st.data())
def test_gradients_equal_autograd(
    backend: tuple[str, str | None], cell: str, dtype: str, data: st.DataObject
) -> None:
    check_gradients(data.draw(cases(dtype, cell=cell), label="case"), backend=backend)


def test_gradients_of_one_hidden_unit_float32() -> None:
    """H = 1, B > 1 with float32: NumPy 2.4's float32 np.negative(a, out=b) reads a strided
    (N, 1) column as if contiguous, which once broke the LSTM's per-gate sigmoid calls."""
    check_gradients(Case("lstm", 5, 4, 2, 1, 1, "mse", True, True, True, False, 1.0, "float32", 56))


# ---- forward -----------------------------------------------------------------------------


@pytest.mark.parametrize("cell", sorted(CELLS))
@PER_CELL
@given(data=st.data())
def test_forward_equals_fused_float64(cell: str, data: st.DataObject) -> None:
    check_forward(data.draw(cases("float64", max_bits=32, cell=cell), label="case"))


@pytest.mark.parametrize("cell", sorted(CELLS))
@PER_CELL
@given(data=st.data())
def test_forward_equals_fused_float32(cell: str, data: st.DataObject) -> None:
    check_forward(data.draw(cases("float32", max_bits=32, cell=cell), label="case"))


# ---- training ----------------------------------------------------------------------------


def check_training(
    case: Case, optimizer: Optimizer, steps: int, backend: tuple[str, str | None] = ("numpy", None)
) -> None:
    """`steps` updates of `optimizer` (SGD, momentum, Adam or Adagrad, its hyperparameters
    drawn, clipping or not) from the same start on the same batches: the same weights after every
    step.

    Manual: loss_and_grads, then clip_grad_norm and rnn_manual's optimiser on the parameters'
    gradients as train does, on `backend`. Torch: the twin's loss, autograd,
    torch.nn.utils.clip_grad_norm_ and torch.optim on the twin's own leaves (on the CPU), an
    independent path.
    """
    problem = make_problem(case)
    rng = problem.rng
    twin = Twin.from_manual(problem.model)  # copies the starting weights
    model = on_backend(problem.model, backend)
    manual_opt = optimizer.manual()
    leaves = list(twin.params.values())
    torch_opt = optimizer.torch(leaves)
    tol = bound(case.dtype, case.bits, case.width, case.batch)
    path = Trajectory(problem.model.params, tol, f"{optimizer.describe()}; {case.describe()}")
    x, y = problem.x, problem.y
    for _ in range(steps):
        _, grads = model.loss_and_grads(x, y, case.loss, **problem.states)
        grads = {name: grads[name] for name in model.params}  # what train steps with
        optimizer.clip_manual(grads)
        manual_opt.step(model.params, grads)
        _, auto = twin.loss_and_grads(x, y, loss=case.loss, **problem.states)
        for name, leaf in twin.params.items():
            leaf.grad = torch.from_numpy(auto[name])
        optimizer.clip_torch(leaves)
        torch_opt.step()
        theirs = {name: leaf.detach().numpy() for name, leaf in twin.params.items()}
        err = path.check(model.params, theirs)
        record(f"{optimizer.kind} steps", case.cell, case.dtype, err)
        x = rng.integers(0, 2, x.shape).astype(x.dtype)
        if case.loss == "ce":  # a softmax's targets: one-hot
            y = distributions(rng, y.shape, one_hot=True).astype(y.dtype)
        else:
            y = rng.integers(0, 2, y.shape).astype(y.dtype)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("backend", BACKENDS)
@PER_CELL
@given(data=st.data(), optimizer=optimizers(), steps=st.integers(1, 4))
def test_training_trajectories_equal_float64(
    backend: tuple[str, str | None],
    cell: str,
    data: st.DataObject,
    optimizer: Optimizer,
    steps: int,
) -> None:
    case = data.draw(cases("float64", max_bits=8, max_hidden=8, cell=cell), label="case")
    check_training(case, optimizer, steps, backend)


# ---- finite differences ------------------------------------------------------------------


@pytest.mark.parametrize("cell", sorted(CELLS))
@PER_CELL
@given(data=st.data())
def test_gradients_equal_finite_differences(cell: str, data: st.DataObject) -> None:
    sizes = {"max_bits": 4, "max_batch": 2, "max_hidden": 3, "max_io": 2}
    check_finite_differences(data.draw(cases("float64", cell=cell, **sizes), label="case"))


# ---- units -------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_without_bias_equals_the_bias_free_twin(cell: str) -> None:
    model = CELLS[cell](3, 4, 2, bias=False, seed=1)
    assert not any(name.startswith("b") for name in model.params)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3, 3)), rng.integers(0, 2, (5, 3, 2)).astype(float)
    _, manual = model.loss_and_grads(x, y, "bce")
    _, auto = Twin.from_manual(model).loss_and_grads(x, y, loss="bce")
    assert set(manual) == set(auto)
    for name in auto:
        assert relative_error(manual[name], auto[name]) <= 1e-10, name
    np.testing.assert_allclose(model.forward(x), fused_probabilities(model, x), rtol=1e-12)


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_gradient_keys_shapes_and_dtypes(cell: str) -> None:
    for dtype in (np.float32, np.float64):
        model = CELLS[cell](3, 5, 2, bias=True, dtype=dtype, seed=1)
        x, y = np.zeros((4, 6, 3)), np.zeros((4, 6, 2))
        p = model.forward(x)
        _, grads = model.loss_and_grads(x, y, "mse")
        states = {"x", "h0", "c0"} if cell == "lstm" else {"x", "h0"}
        assert p.shape == (4, 6, 2) and p.dtype == dtype
        assert set(grads) == set(model.params) | states
        for name, w in model.params.items():
            assert grads[name].shape == w.shape and grads[name].dtype == dtype, name
        assert grads["x"].shape == x.shape and grads["h0"].shape == (6, 5)


# ---- every cell: what the properties take for granted -----------------------------------


@pytest.mark.parametrize("cell", sorted(ALL_CELLS))
def test_targets_and_dz_are_cast_to_the_models_dtype(cell: str) -> None:
    """y and dz = dL/dz may come in any float dtype (rnn_torch's upstream sum(V * p) hands
    backward a float64 dz): the pass computes in the model's, so float32 in gives the very
    same float32 loss and gradients as inputs cast first, in full and truncated BPTT."""
    rng = np.random.default_rng(0)
    model = ALL_CELLS[cell](3, 5, 2, bias=True, dtype=np.float32, seed=1)
    x = rng.normal(size=(4, 6, 3)).astype(np.float32)
    y, dz = rng.uniform(size=(4, 6, 2)), rng.normal(size=(4, 6, 2))
    for loss in ("mse", "bce"):
        value, grads = model.loss_and_grads(x, y, loss)
        cast_value, cast = model.loss_and_grads(x, y.astype(np.float32), loss)
        assert value == cast_value, loss
        for name, g in grads.items():
            np.testing.assert_array_equal(g, cast[name], err_msg=f"{loss} d{name}")
    for truncate in (None, 2):
        grads = model.backward(model.run(x), dz, truncate)
        cast = model.backward(model.run(x), dz.astype(np.float32), truncate)
        for name, g in grads.items():
            assert g.dtype == np.float32, f"d{name}: {g.dtype} (truncate {truncate})"
            np.testing.assert_array_equal(g, cast[name], err_msg=f"d{name}")


@pytest.mark.parametrize("cell", sorted(ALL_CELLS))
def test_initial_states_are_cast_to_the_models_dtype(cell: str) -> None:
    """h0 (and the LSTM's c0) may come in any float dtype, as x may: a float32 model gives
    the very same loss and gradients as with the states cast first, and a state beyond
    float32's range is refused by name rather than overflowing inside the pass."""
    rng = np.random.default_rng(0)
    model = ALL_CELLS[cell](3, 5, 2, bias=True, dtype=np.float32, seed=1)
    x = rng.normal(size=(4, 6, 3)).astype(np.float32)
    y = rng.uniform(size=(4, 6, 2)).astype(np.float32)
    states = {name: rng.normal(size=(6, 5)) for name in model.states}
    value, grads = model.loss_and_grads(x, y, "mse", **states)
    cast = {name: state.astype(np.float32) for name, state in states.items()}
    cast_value, cast_grads = model.loss_and_grads(x, y, "mse", **cast)
    assert value == cast_value
    for name, g in grads.items():
        assert g.dtype == np.float32, f"d{name}: {g.dtype}"
        np.testing.assert_array_equal(g, cast_grads[name], err_msg=f"d{name}")
    for name in model.states:
        with pytest.raises(ValueError) as error:
            model.forward(x, **{**states, name: np.full((6, 5), 1e39)})
        assert str(error.value) == f"{name} has values too large for float32"


@pytest.mark.parametrize("cell", sorted(ALL_CELLS))
def test_backward_truncates_as_loss_and_grads_does(cell: str) -> None:
    """backward(run(x), dz, K) from the loss's own dz is loss_and_grads(..., truncate=K),
    exactly, for K below T, at T and None (full BPTT); and K below T is not full BPTT."""
    rng = np.random.default_rng(0)
    model = ALL_CELLS[cell](3, 5, 2, bias=True, seed=1)
    x, y = rng.normal(size=(6, 4, 3)), rng.uniform(size=(6, 4, 2))
    trace = model.run(x)
    _, dz = LOSSES["bce"](trace.z, trace.p, y)
    results = {}
    for truncate in (2, 6, None):
        results[truncate] = model.backward(trace, dz, truncate)
        _, expected = model.loss_and_grads(x, y, "bce", truncate=truncate)
        assert set(results[truncate]) == set(expected)
        for name, g in expected.items():
            np.testing.assert_array_equal(results[truncate][name], g, err_msg=f"d{name}")
    assert not np.array_equal(results[2]["h0"], results[None]["h0"])


@pytest.mark.parametrize("cell", sorted(ALL_CELLS))
def test_every_array_of_a_pass_is_made_where_the_model_is(cell: str) -> None:
    """On torch's "meta" device (tensors without data, standing in for a GPU) a pass runs
    only if every array it makes is made there too: run_unchecked and backward, full and
    truncated, and with dz given as a NumPy array, which backward puts on the device."""
    model = ALL_CELLS[cell](2, 4, 1, bias=True, dtype="float32")
    model.params = {
        name: torch.empty(w.shape, dtype=torch.float32, device="meta")
        for name, w in model.params.items()
    }
    T, B = 5, 3
    x = torch.empty(T, B, 2, device="meta")
    trace = model.run_unchecked(x, *[torch.empty(B, 4, device="meta") for _ in model.states])
    for truncate in (None, 2):
        grads = model.backward(trace, np.ones((T, B, 1)), truncate)
        for name, g in grads.items():
            assert g.device.type == "meta" and g.dtype == torch.float32, (name, truncate)


@pytest.mark.parametrize("cell", sorted(ALL_CELLS))
def test_the_trace_holds_the_documented_shapes(cell: str) -> None:
    """run's trace, as each cell's Trace documents it: T + 1 states with the initial ones
    in row 0, the gates side by side."""
    rng = np.random.default_rng(0)
    model = ALL_CELLS[cell](3, 5, 2, bias=True, seed=1)
    T, B, H, O = 4, 6, 5, 2
    x = rng.normal(size=(T, B, 3))
    states = {name: rng.normal(size=(B, H)) for name in model.states}
    trace = model.run(x, **states)
    shapes = {"x": x.shape, "h": (T + 1, B, H), "z": (T, B, O), "p": (T, B, O)}
    shapes.update(
        {
            "rnn": {},
            "lstm": {"c": (T + 1, B, H), "gates": (T, B, 4 * H), "tanh_c": (T, B, H)},
            "gru": {"gates": (T, B, 3 * H), "hn": (T, B, H)},
        }[cell]
    )
    assert {name: getattr(trace, name).shape for name in vars(trace)} == shapes
    for name, state in states.items():
        np.testing.assert_array_equal(getattr(trace, name[0])[0], state, err_msg=name)


@pytest.mark.parametrize("cell", sorted(ALL_CELLS))
def test_defaults_and_seeds(cell: str) -> None:
    """A cell made without arguments is the tutorial's size (2 inputs, 16 hidden, 1 output),
    without biases, float64, from seed 0; another seed gives other weights."""
    model, cls = ALL_CELLS[cell](), ALL_CELLS[cell]
    sizes = (model.input_size, model.hidden_size, model.output_size, model.bias, model.dtype)
    assert sizes == (2, 16, 1, False, np.float64)
    assert model.state_width == model.width * 16
    same, other = cls(2, 16, 1, seed=0), cls(2, 16, 1, seed=1)
    for name, w in model.params.items():
        np.testing.assert_array_equal(w, same.params[name], err_msg=name)
    assert not np.array_equal(model.params["W_hy"], other.params["W_hy"])


@pytest.mark.parametrize("cell", sorted(ALL_CELLS))
@pytest.mark.parametrize("hidden", [4, 64])
def test_initial_weights_have_the_documented_scale(cell: str, hidden: int) -> None:
    """Weights uniform in [-s, s), s = min(1, 4 / sqrt(fan_in)), fan_in the first axis
    (2 inputs: s = 1; 64 hidden units: s = 1/2); biases zero."""
    model = ALL_CELLS[cell](2, hidden, 1, bias=True, seed=0)
    for name, w in model.params.items():
        if not name.startswith("W"):
            assert not w.any(), name
            continue
        s = min(1.0, 4.0 / np.sqrt(w.shape[0]))
        assert w.min() >= -s and w.max() < s, name
        assert np.abs(w).max() > s * (1 - 20 / w.size), f"{name}: max {np.abs(w).max()}, s {s}"


def test_bad_choices_are_refused_in_words() -> None:
    x, y = np.zeros((3, 2, 2)), np.zeros((3, 2, 1))
    refusals = [
        (
            lambda: LSTM(2, 4, 1).loss_and_grads(x, y, loss="l1"),
            "loss must be one of ['bce', 'ce', 'mse'], got 'l1'",
        ),
        (
            lambda: ALL_CELLS["rnn"](activation="elu"),
            "activation must be one of ['relu', 'sigmoid', 'tanh'], got 'elu'",
        ),
        (
            lambda: GRU(2, 4, 1).forward(x, c0=np.zeros((2, 4))),
            "c0 is an initial state of the LSTM only, not the gru",
        ),
    ]
    for call, message in refusals:
        with pytest.raises(ValueError) as error:
            call()
        assert str(error.value) == message


def test_torch_layout_is_pytorchs_gate_order() -> None:
    """Each manual block lands in PyTorch's rows: LSTM i, f, g, o; GRU r, z (our u), n."""
    for model, blocks in [
        (LSTM(2, 3, 1, bias=True), ["i", "f", "g", "o"]),
        (GRU(2, 3, 1, bias=True), ["r", "u", "n"]),
    ]:
        for k, gate in enumerate(blocks):
            params = {n: torch.zeros(w.shape, dtype=torch.float64) for n, w in model.params.items()}
            params[f"W_x{gate}"] = torch.ones(2, 3, dtype=torch.float64)
            weight_ih = torch_weights(model, params)["weight_ih"]  # (G*H, I)
            rows = weight_ih.abs().sum(dim=1).nonzero().flatten().tolist()
            assert rows == list(range(3 * k, 3 * k + 3)), (gate, rows)
    gru = GRU(2, 3, 1, bias=True)
    params = {n: torch.zeros(w.shape, dtype=torch.float64) for n, w in gru.params.items()}
    params["b_hn"] = torch.ones(3, dtype=torch.float64)
    weights = torch_weights(gru, params)
    assert weights["bias_hh"].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1]
    assert weights["bias_ih"].abs().sum() == 0


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_same_seed_same_weights_and_params_are_live(cell: str) -> None:
    a, b = CELLS[cell](2, 4, 1, seed=3), CELLS[cell](2, 4, 1, seed=3)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    x = np.ones((3, 1, 2))
    a.params["W_hy"][...] = 0.0
    np.testing.assert_array_equal(a.forward(x), 0.5)
    assert not np.array_equal(b.forward(x), 0.5)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize(
    "x, message",
    [
        (np.zeros((3, 2)), "shape"),
        (np.zeros((3, 2, 5)), "shape"),
        (np.zeros((0, 2, 2)), "at least one"),
        (np.full((3, 1, 2), np.inf), "finite"),
        (np.array([[["a", "b"]]]), "real"),
    ],
)
def test_bad_inputs_are_refused(cell: str, x: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CELLS[cell](2, 4, 1).forward(x)


def test_bad_states_targets_and_sizes_are_refused() -> None:
    x = np.zeros((3, 2, 2))
    with pytest.raises(ValueError, match="c0 must have shape"):
        LSTM(2, 4, 1).forward(x, c0=np.zeros((2, 5)))
    with pytest.raises(ValueError, match="h0 must be finite"):
        GRU(2, 4, 1).forward(x, h0=np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="y must have shape"):
        GRU(2, 4, 1).loss_and_grads(x, np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="loss"):
        LSTM(2, 4, 1).loss_and_grads(x, np.zeros((3, 2, 1)), loss="l1")
    with pytest.raises(ValueError, match="hidden_size"):
        LSTM(2, 0, 1)
    with pytest.raises(ValueError, match="dtype"):
        GRU(2, 4, 1, dtype=np.int64)


# ---- model files, training, the command lines -------------------------------------------


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_checkpoint_resume_is_exact_and_model_files_round_trip(cell: str, tmp_path: Path) -> None:
    """A run stopped at step 6 and resumed from its checkpoint ends as the unbroken run."""
    config = TrainConfig(cell=cell, hidden=4, batch=8, steps=12, bias=True, log_every=1000)
    whole = train(config, log=None)
    path = tmp_path / "ck.npz"
    train(replace(config, steps=6), log=None, checkpoint=lambda s: save_checkpoint(path, s))
    state = load_checkpoint(path)
    assert type(state.model) is CELLS[cell] and state.step == 6
    resumed = train(config, log=None, resume=state)
    for name, w in whole.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[name], w, err_msg=name)
    save(tmp_path / "m.npz", resumed.model)
    loaded, _ = load(tmp_path / "m.npz")
    assert type(loaded) is CELLS[cell] and loaded.bias
    x = np.random.default_rng(0).integers(0, 2, (8, 5, 2))
    np.testing.assert_array_equal(loaded.forward(x), resumed.model.forward(x))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-W", "error", "-m", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.mark.parametrize("options", [[], ["--fused", "--loss", "upstream"]])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_rnn_torch_check_passes_for_the_cell(cell: str, options: list[str]) -> None:
    result = run("rnn_torch", "check", "--cell", cell, "--bias", "--h0", *options)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all gradients agree" in result.stdout
    assert ("dc0" in result.stdout) == (cell == "lstm")
    judge = f"torch.nn.{cell.upper() if options else cell.upper() + 'Cell'}"
    assert f"vs PyTorch autograd ({judge})" in result.stdout.splitlines()[0]


def test_train_gru_solves_the_adder_and_add_uses_it(tmp_path: Path) -> None:
    path = tmp_path / "gru.npz"
    result = run("rnn_manual", "train", "--cell", "gru", "--quiet", "--save", str(path))
    assert result.returncode == 0, result.stderr
    assert "accuracy on 16384 8-bit sums: 100.00% exact" in result.stdout
    result = run("rnn_manual", "add", "--model", str(path), "100", "27")
    assert result.returncode == 0 and result.stdout.strip() == "127", result.stderr
    result = run("rnn_manual", "evaluate", "--model", str(path), "--bits", "8")
    assert result.returncode == 0 and result.stdout.startswith("100.00% exact"), result.stderr


@pytest.mark.parametrize("cell", sorted(ALL_CELLS))
def test_fresh_is_the_same_cell_made_anew(cell: str) -> None:
    """Cell.fresh: the cell, sizes, bias, dtype and activation kept, the weights those the
    constructor makes from the seed."""
    options = {"activation": "relu"} if cell == "rnn" else {}
    model = ALL_CELLS[cell](3, 5, 2, bias=True, dtype=np.float32, seed=7, **options)
    for w in model.params.values():
        w += 1.0  # trained, say
    fresh = model.fresh(seed=1)
    made = ALL_CELLS[cell](3, 5, 2, bias=True, dtype=np.float32, seed=1, **options)
    assert type(fresh) is type(model) and fresh.activation == model.activation
    assert (fresh.input_size, fresh.hidden_size, fresh.output_size) == (3, 5, 2)
    assert fresh.bias and fresh.dtype == np.float32
    for name, w in made.params.items():
        np.testing.assert_array_equal(fresh.params[name], w, err_msg=name)
    assert not np.array_equal(model.fresh().params["W_hy"], fresh.params["W_hy"])  # seed 0


@pytest.mark.parametrize("cell", sorted(ALL_CELLS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_states_are_the_initial_states_where_the_model_is(
    cell: str, backend: tuple[str, str | None]
) -> None:
    """Cell.zero_states(B): one (B, H) array of zeros per initial state (h0, and c0 for the
    LSTM), of the model's library, device and dtype: what a pass starts from without one."""
    model = on_backend(ALL_CELLS[cell](2, 4, 1, dtype=np.float32), backend)
    states = model.zero_states(3)
    assert len(states) == len(model.states)
    for state in states:
        assert tuple(state.shape) == (3, 4) and not bool((state != 0).any())
        assert backend_of(state) == backend_of(model.params["W_hy"])
    x = np.random.default_rng(0).normal(size=(5, 3, 2)).astype(np.float32)
    y = np.ones((5, 3, 1), dtype=np.float32)
    y_there = backend_move({"y": y}, *backend)["y"]
    done = model.loss_pass(*model.checked_inputs(x), y_there, "bce")  # the states: zeros
    value, grads = model.loss_and_grads(x, y, "bce")  # no states given: zeros
    assert float(done.loss) == value
    for name, g in grads.items():
        np.testing.assert_array_equal(to_numpy(done.grads[name]), to_numpy(g), err_msg=name)


def backend_of(array: object) -> tuple[str, str, str]:
    """An array's library, device and dtype, as text."""
    library = type(array).__module__.split(".")[0]
    return library, str(getattr(array, "device", "cpu")), str(array.dtype)  # type: ignore[attr-defined]


@pytest.mark.parametrize("cell", sorted(ALL_CELLS))
def test_loss_pass_is_run_loss_and_backward_weighted(cell: str) -> None:
    """Cell.loss_pass, the one composition: its trace is run's, its loss and dz the loss
    function's on that trace times the weight, its gradients backward's from that dz."""
    rng = np.random.default_rng(0)
    model = ALL_CELLS[cell](3, 5, 2, bias=True, seed=1)
    x, y = rng.normal(size=(6, 4, 3)), rng.uniform(size=(6, 4, 2))
    states = [rng.normal(size=(4, 5)) for _ in model.states]
    done = model.loss_pass(x, states, y, "bce", truncate=2, weight=0.25)
    trace = model.run(x, *states)
    value, dz = LOSSES["bce"](trace.z, trace.p, y)
    np.testing.assert_array_equal(done.trace.h, trace.h)
    assert float(done.loss) == float(value * 0.25)
    np.testing.assert_array_equal(done.dz, dz * 0.25)
    expected = model.backward(trace, dz * 0.25, truncate=2)
    assert set(done.grads) == set(expected)
    for name, g in expected.items():
        np.testing.assert_array_equal(done.grads[name], g, err_msg=name)
