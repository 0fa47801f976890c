"""The LSTM and GRU: gradients, forward passes and training runs equal PyTorch's.

The same properties as test_properties.py checks for the RNN, on the gated cells, judged by
twins on nn.LSTMCell / nn.GRUCell (rnn_torch.gated) and by the fused nn.LSTM / nn.GRU.
Biases are always present and non-zero here: with zero biases a bias applied to the wrong
gate, or b_hn moved out of the reset product, changes nothing and hides.

Each property is a plain check function (check_*) that raises AssertionError naming the case
and the failing array; test_gated_mutations.py runs the same checks on broken copies of the
models. `pytest -s tests/test_gated.py` prints the worst errors seen per cell.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from backends import BACKENDS, on_backend
from hypothesis import example, given
from hypothesis import strategies as st
from numpy.typing import NDArray

from rnn_manual import GRU, LSTM, SGD, Adam
from rnn_manual.core.backend import to_numpy
from rnn_manual.core.gradcheck import numeric_gradient, relative_error
from rnn_manual.files.modelfile import load, load_checkpoint, save, save_checkpoint
from rnn_manual.training.train import TrainConfig, train
from rnn_torch.compare import bound, float32_allowed
from rnn_torch.gated import GatedTwin, fused_forward, torch_weights

ROOT = Path(__file__).resolve().parents[1]
Array = NDArray[np.floating]
Model = LSTM | GRU
CELLS: dict[str, type[LSTM] | type[GRU]] = {"lstm": LSTM, "gru": GRU}

#: The worst normwise relative error seen per (property, cell, dtype), printed with -s.
WORST: dict[tuple[str, str, str], float] = {}


@pytest.fixture(scope="module", autouse=True)
def report_worst_errors() -> Iterator[None]:
    yield
    print("\nworst normwise relative errors seen, gated cells (manual vs torch):")
    for (prop, cell, dtype), err in sorted(WORST.items()):
        print(f"  {prop:<16} {cell:<4} {dtype}: {err:.2e}")


def record(prop: str, cell: str, dtype: str, err: float) -> None:
    WORST[prop, cell, dtype] = max(err, WORST.get((prop, cell, dtype), 0.0))


# ---- cases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One drawn gated network and its data, described by sizes and flags (arrays from seed)."""

    cell: str  # "lstm" | "gru"
    bits: int  # T
    batch: int  # B
    inputs: int  # I
    hidden: int  # H
    outputs: int  # O
    loss: str  # "mse" | "bce"
    with_state: bool  # random h0 (and c0) rather than zeros
    binary: bool  # inputs 0/1 as in the adder, or real-valued
    gain: float  # scale of the recurrent weights, about their spectral radius
    dtype: str  # "float32" | "float64"
    seed: int

    @property
    def width(self) -> int:
        """I + H + O, the longest dot product in a step, for the rounding bound."""
        return self.inputs + self.hidden + self.outputs

    def describe(self) -> str:
        T, B, I, H, O = self.bits, self.batch, self.inputs, self.hidden, self.outputs
        return (
            f"{self.cell} T={T} B={B} I={I} H={H} O={O}, {self.loss}, state={self.with_state}, "
            f"{'binary' if self.binary else 'real'}, gain {self.gain:.2f}, {self.dtype}"
        )


@st.composite
def cases(
    draw: st.DrawFn,
    dtype: str = "float64",
    max_bits: int = 16,
    max_batch: int = 8,
    max_hidden: int = 16,
    max_io: int = 3,
) -> Case:
    return Case(
        cell=draw(st.sampled_from(sorted(CELLS))),
        bits=draw(st.integers(1, max_bits)),
        batch=draw(st.integers(1, max_batch)),
        inputs=draw(st.integers(1, max_io)),
        hidden=draw(st.integers(1, max_hidden)),
        outputs=draw(st.integers(1, max_io)),
        loss=draw(st.sampled_from(["mse", "bce"])),
        with_state=draw(st.booleans()),
        binary=draw(st.booleans()),
        gain=draw(st.floats(0.5, 1.5)),
        dtype=dtype,
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@dataclass
class Problem:
    """A case made concrete: the model (always with non-zero biases), x, y, initial states."""

    model: Model
    x: Array  # (T, B, I)
    y: Array  # (T, B, O)
    states: dict[str, Array]  # "h0" (B, H), and "c0" for the LSTM; empty for zero states
    rng: np.random.Generator


def make_problem(case: Case) -> Problem:
    rng = np.random.default_rng(case.seed)
    T, B, I, H, O = case.bits, case.batch, case.inputs, case.hidden, case.outputs
    model = CELLS[case.cell](I, H, O, bias=True, dtype=case.dtype, seed=rng)
    for name, w in model.params.items():
        if name.startswith("W_x"):
            scale = 1 / np.sqrt(I)
        elif name.startswith("W_hy"):
            scale = 1 / np.sqrt(H)
        elif name.startswith("W_h"):
            scale = case.gain / np.sqrt(H)
        else:
            scale = 0.5  # every bias ~ N(0, 0.5^2): non-zero
        w[...] = rng.normal(0.0, scale, w.shape)
    if case.binary:
        x = rng.integers(0, 2, (T, B, I)).astype(np.float64)
        y = rng.integers(0, 2, (T, B, O)).astype(np.float64)
    else:
        x = rng.normal(0.0, 1.0, (T, B, I))
        y = rng.uniform(0.0, 1.0, (T, B, O))
    states = {}
    if case.with_state:
        names = ["h0", "c0"] if case.cell == "lstm" else ["h0"]
        states = {name: rng.normal(0.0, 0.5, (B, H)).astype(case.dtype) for name in names}
    return Problem(model, x.astype(case.dtype), y.astype(case.dtype), states, rng)


def clone(model: Model, model_class: type, dtype: str | None = None) -> Model:
    """A `model_class` instance with `model`'s sizes and a copy of its weights (in `dtype`)."""
    I, H, O = model.input_size, model.hidden_size, model.output_size
    copy = model_class(I, H, O, model.bias, dtype or model.dtype)
    for name, w in model.params.items():
        copy.params[name][...] = w
    return copy


# ---- gradients ---------------------------------------------------------------------------


def check_gradients(
    case: Case, model_class: type | None = None, backend: tuple[str, str | None] = ("numpy", None)
) -> float:
    """Loss and every gradient (params, x, h0, c0) equal autograd's on the cell twin; returns
    the worst normwise error. model_class: the model under test (a mutant, say), run on
    `backend`; the twins run on the same device.

    The judge is the float64 twin of the same weights and inputs. float64 errors must be
    within rnn_torch.compare.bound; float32 ones within float32_allowed, which also admits
    the loss of accuracy a cancelling sum (b_y = sum_t dz_t, say) costs PyTorch's own float32
    twin (the manual/twin error ratio stayed below 2.3 on 60 random gated cases).
    """
    problem = make_problem(case)
    model = on_backend(clone(problem.model, model_class or CELLS[case.cell]), backend)
    x, y, states = problem.x, problem.y, problem.states
    manual_loss, grads = model.loss_and_grads(x, y, case.loss, **states)
    manual = {name: to_numpy(g) for name, g in grads.items()}
    judge = GatedTwin(on_backend(clone(problem.model, CELLS[case.cell], "float64"), backend))
    auto_loss, auto = judge.loss_and_grads(x, y, case.loss, **states)
    tol = bound(case.dtype, case.bits, case.width, case.batch)
    err = abs(manual_loss - auto_loss) / abs(auto_loss)
    assert err <= tol, f"loss {manual_loss} vs {auto_loss}: {err:.2e} ({case.describe()})"
    assert set(manual) == set(auto), f"gradient keys {sorted(manual)} vs {sorted(auto)}"
    twin32 = {}
    if case.dtype == "float32":
        twin32 = GatedTwin(on_backend(problem.model, backend))
        twin32 = twin32.loss_and_grads(x, y, case.loss, **states)[1]
    worst = 0.0
    for name, g in auto.items():
        assert manual[name].shape == g.shape, f"d{name}: {manual[name].shape} vs {g.shape}"
        assert manual[name].dtype == case.dtype, f"d{name}: dtype {manual[name].dtype}"
        err = relative_error(manual[name], g)
        record("gradients", case.cell, case.dtype, err)
        worst = max(worst, err)
        allowed = tol
        if twin32:
            norm = float(np.linalg.norm(g))
            torch_error = float(np.linalg.norm(twin32[name] - g))
            T, width, B = case.bits, case.width, case.batch
            allowed = float32_allowed(torch_error, norm, T, width, B) / max(norm, 1e-300)
        assert err <= allowed, f"d{name} {g.shape}: {err:.2e} > {allowed:.1e} ({case.describe()})"
    return worst


@pytest.mark.parametrize("backend", BACKENDS)
@given(case=cases("float64"))
def test_gradients_equal_autograd_float64(backend: tuple[str, str | None], case: Case) -> None:
    check_gradients(case, backend=backend)


# H = 1, B > 1 with float32: NumPy 2.4's float32 np.negative(a, out=b) reads a strided (N, 1)
# column as if contiguous, which once broke the LSTM's per-gate sigmoid calls.
@example(case=Case("lstm", 5, 4, 2, 1, 1, "mse", True, False, 1.0, "float32", 56))
@pytest.mark.parametrize("backend", BACKENDS)
@given(case=cases("float32"))
def test_gradients_equal_autograd_float32(backend: tuple[str, str | None], case: Case) -> None:
    check_gradients(case, backend=backend)


# ---- forward -----------------------------------------------------------------------------


def check_forward(case: Case, model_class: type | None = None) -> None:
    """Output probabilities equal those of the fused nn.LSTM / nn.GRU with the same weights."""
    problem = make_problem(case)
    model = clone(problem.model, model_class or CELLS[case.cell])
    mine = model.forward(problem.x, **problem.states)
    theirs = fused_forward(problem.model, problem.x, **problem.states)
    err = relative_error(mine, theirs)
    record("forward (fused)", case.cell, case.dtype, err)
    tol = bound(case.dtype, case.bits, case.width, case.batch)
    assert err <= tol, f"p {mine.shape} vs fused: {err:.2e} ({case.describe()})"


@given(case=cases("float64", max_bits=32))
def test_forward_equals_fused_float64(case: Case) -> None:
    check_forward(case)


@given(case=cases("float32", max_bits=32))
def test_forward_equals_fused_float32(case: Case) -> None:
    check_forward(case)


# ---- training ----------------------------------------------------------------------------

#: Small enough that a few steps stay in one basin on both sides (training amplifies 1e-16).
LEARNING_RATES = {"sgd": 0.1, "adam": 0.01}


def check_training(
    case: Case, optimizer: str, steps: int, backend: tuple[str, str | None] = ("numpy", None)
) -> None:
    """`steps` updates from the same start on the same batches give the same weights.

    Manual: loss_and_grads + rnn_manual's optimiser, on `backend`. Torch: the twin's loss,
    autograd and torch.optim on the twin's own leaves (on the CPU), an independent path.
    """
    problem = make_problem(case)
    rng = problem.rng
    twin = GatedTwin(problem.model)  # copies the starting weights
    model = on_backend(problem.model, backend)
    lr = LEARNING_RATES[optimizer]
    manual_opt = SGD(lr) if optimizer == "sgd" else Adam(lr)
    leaves = list(twin.params.values())
    torch_opt = torch.optim.SGD(leaves, lr) if optimizer == "sgd" else torch.optim.Adam(leaves, lr)
    x, y = problem.x, problem.y
    for _ in range(steps):
        _, grads = model.loss_and_grads(x, y, case.loss, **problem.states)
        manual_opt.step(model.params, grads)
        _, auto = twin.loss_and_grads(x, y, case.loss, **problem.states)
        for name, leaf in twin.params.items():
            leaf.grad = torch.from_numpy(auto[name])
        torch_opt.step()
        x = rng.integers(0, 2, x.shape).astype(x.dtype)
        y = rng.integers(0, 2, y.shape).astype(y.dtype)
    tol = bound(case.dtype, case.bits, case.width, case.batch)
    for name, w in model.params.items():
        err = relative_error(to_numpy(w), twin.params[name].detach().numpy())
        record(f"{optimizer} steps", case.cell, case.dtype, err)
        assert err <= tol, f"{name} after {steps} {optimizer} steps: {err:.2e} ({case.describe()})"


@pytest.mark.parametrize("backend", BACKENDS)
@given(
    case=cases("float64", max_bits=8, max_hidden=8),
    optimizer=st.sampled_from(["sgd", "adam"]),
    steps=st.integers(1, 4),
)
def test_training_trajectories_equal_float64(
    backend: tuple[str, str | None], case: Case, optimizer: str, steps: int
) -> None:
    check_training(case, optimizer, steps, backend)


# ---- finite differences ------------------------------------------------------------------

FD_STEP = 1e-6


def check_finite_differences(case: Case, model_class: type | None = None) -> None:
    """The manual gradients equal central differences of the manual loss (float64).

    A central difference is exact up to truncation ~FD_STEP^2 |L'''| and rounding
    ~eps |L| / FD_STEP per entry; the allowance is 10 times their sum per entry plus 1e-6
    relative, so it holds for a smooth loss and nothing looser.
    """
    problem = make_problem(case)
    model = clone(problem.model, model_class or CELLS[case.cell])
    x, y, states = problem.x.copy(), problem.y, dict(problem.states)
    B, H = case.batch, case.hidden
    for name in ["h0", "c0"] if case.cell == "lstm" else ["h0"]:
        states.setdefault(name, np.zeros((B, H)))
    value, grads = model.loss_and_grads(x, y, case.loss, **states)
    arrays = {**model.params, "x": x, **states}  # perturbed in place, entry by entry
    rounding = 10 * (np.finfo(np.float64).eps * max(1.0, abs(value)) / FD_STEP + FD_STEP**2)
    for name, w in arrays.items():
        numeric = numeric_gradient(
            lambda: model.loss_and_grads(x, y, case.loss, **states)[0], w, FD_STEP
        )
        allowed = 1e-6 * np.linalg.norm(numeric) + rounding * np.sqrt(w.size)
        gap = np.linalg.norm(grads[name] - numeric)
        assert gap <= allowed, (
            f"d{name} {w.shape}: manual vs finite differences {gap:.2e} > {allowed:.2e} "
            f"({case.describe()})"
        )


@given(case=cases("float64", max_bits=4, max_batch=2, max_hidden=3, max_io=2))
def test_gradients_equal_finite_differences(case: Case) -> None:
    check_finite_differences(case)


# ---- units -------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_without_bias_equals_the_bias_free_twin(cell: str) -> None:
    model = CELLS[cell](3, 4, 2, bias=False, seed=1)
    assert not any(name.startswith("b") for name in model.params)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3, 3)), rng.integers(0, 2, (5, 3, 2)).astype(float)
    _, manual = model.loss_and_grads(x, y, "bce")
    _, auto = GatedTwin(model).loss_and_grads(x, y, "bce")
    assert set(manual) == set(auto)
    for name in auto:
        assert relative_error(manual[name], auto[name]) <= 1e-10, name
    np.testing.assert_allclose(model.forward(x), fused_forward(model, x), rtol=1e-12)


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


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_rnn_torch_check_passes_for_the_cell(cell: str) -> None:
    result = run("rnn_torch", "check", "--cell", cell, "--bias", "--h0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all gradients agree" in result.stdout
    assert ("dc0" in result.stdout) == (cell == "lstm")


def test_train_gru_solves_the_adder_and_add_uses_it(tmp_path: Path) -> None:
    path = tmp_path / "gru.npz"
    result = run("rnn_manual", "train", "--cell", "gru", "--quiet", "--save", str(path))
    assert result.returncode == 0, result.stderr
    assert "accuracy on 16384 8-bit sums: 100.00% exact" in result.stdout
    result = run("rnn_manual", "add", "--model", str(path), "100", "27")
    assert result.returncode == 0 and result.stdout.strip() == "127", result.stderr
    result = run("rnn_manual", "evaluate", "--model", str(path), "--bits", "8")
    assert result.returncode == 0 and result.stdout.startswith("100.00% exact"), result.stderr
