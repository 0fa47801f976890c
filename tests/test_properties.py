"""Property tests: on random networks, inputs, sizes and bit widths, the manual RNN's
gradients, forward pass and training runs equal PyTorch's.

Each property is a plain check function (check_*) that raises AssertionError with the case's
shapes and the failing parameter, wrapped by hypothesis below; the gradient check is in
rnn_checks.py, which test_mutations.py runs on deliberately broken copies of the manual
backward pass.

`pytest -s tests/test_properties.py` prints the worst errors seen.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from backends import BACKENDS, on_backend
from hypothesis import assume, given
from hypothesis import strategies as st
from rnn_checks import KINK_MARGIN, WORST, check_gradients, record
from strategies import (
    Case,
    Optimizer,
    Problem,
    Trajectory,
    away_from_relu_kinks,
    cases,
    distributions,
    examples,
    make_problem,
    optimizers,
)

from rnn_manual import RNN
from rnn_manual.cells.activations import ACTIVATIONS
from rnn_manual.core.backend import to_numpy
from rnn_manual.core.gradcheck import numeric_gradient, relative_error
from rnn_torch.compare import bound
from rnn_torch.twin import Twin, manual_upstream_grads, torch_loss


@pytest.fixture(scope="module", autouse=True)
def report_worst_errors() -> Iterator[None]:
    yield
    print("\nworst normwise relative errors seen (manual vs torch):")
    for (prop, dtype), err in sorted(WORST.items()):
        print(f"  {prop:<10} {dtype}: {err:.2e}")


# ---- gradients ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@examples(20)
@given(case=cases("float64"))
def test_gradients_equal_autograd_float64(backend: tuple[str, str | None], case: Case) -> None:
    check_gradients(case, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@examples(8)
@given(case=cases("float32"))
def test_gradients_equal_autograd_float32(backend: tuple[str, str | None], case: Case) -> None:
    check_gradients(case, backend=backend)


# ---- forward -----------------------------------------------------------------------------


def check_forward(case: Case, backend: tuple[str, str | None] = ("numpy", None)) -> None:
    """Hidden states (T+1, B, H) and outputs (T, B, O), computed on `backend`, equal the
    cell twin's and nn.RNN's (on the CPU)."""
    problem = make_problem(case)
    model, x, h0 = problem.model, problem.x, problem.h0
    trace = on_backend(model, backend).run(x, h0)
    tol = bound(case.dtype, case.bits, case.width, case.batch)
    judges = [False] if case.activation == "sigmoid" else [False, True]  # fused: nn.RNN
    for fused in judges:
        twin = Twin.from_manual(model, fused=fused)
        x_t = torch.from_numpy(x)
        h0_t = torch.zeros(case.batch, case.hidden, dtype=x_t.dtype)
        if h0 is not None:
            h0_t = torch.from_numpy(h0)
        with torch.no_grad():
            h, _, p = twin.run(x_t, h0_t)
        for name, mine, theirs in [
            ("h", to_numpy(trace.h), h.numpy()),
            ("p", to_numpy(trace.p), p.numpy()),
        ]:
            assert mine.shape == theirs.shape, f"{name}: {mine.shape} vs {theirs.shape}"
            err = relative_error(mine, theirs)
            record("forward", case.dtype, err)
            judge = "nn.RNN" if fused else "cell"
            assert err <= tol, f"{name} {mine.shape} vs {judge}: error {err:.2e} ({case.shapes()})"


@pytest.mark.parametrize("backend", BACKENDS)
@examples(4)
@given(case=cases("float64"))
def test_forward_equals_torch_float64(backend: tuple[str, str | None], case: Case) -> None:
    check_forward(case, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@examples(4)
@given(case=cases("float32"))
def test_forward_equals_torch_float32(backend: tuple[str, str | None], case: Case) -> None:
    check_forward(case, backend)


# ---- training ----------------------------------------------------------------------------

MAX_GRADIENT = 100.0  # an SGD step of 0.1 x 100 = 10 per weight is a divergence, not training


def check_training(
    case: Case, optimizer: Optimizer, steps: int, backend: tuple[str, str | None] = ("numpy", None)
) -> None:
    """`steps` updates of `optimizer` (SGD, momentum, Adam or Adagrad, its hyperparameters
    drawn, clipping or not) from the same start on the same batches: the same weights after every
    step.

    Manual side, on `backend`: RNN.loss_and_grads, then clip_grad_norm and rnn_manual's
    optimiser on the parameters' gradients, as train does. Torch side: the twin's loss,
    loss.backward(), torch.nn.utils.clip_grad_norm_ and torch.optim, a fully independent path.
    """
    problem = make_problem(case)
    rng = problem.rng
    twin = Twin.from_manual(problem.model, fused=case.fused)
    model = on_backend(problem.model, backend)
    manual_opt = optimizer.manual()
    trainable = list(twin.params.values())  # the manual parameters, as torch leaves
    torch_opt = optimizer.torch(trainable)
    dtype = np.dtype(case.dtype)
    shape = problem.target.shape

    def targets() -> np.ndarray:  # 0/1 bits, or one-hot for a softmax
        if case.objective == "ce":
            return distributions(rng, shape, one_hot=True)
        return rng.integers(0, 2, shape)

    batches = [(problem.x, problem.target)] + [
        (rng.integers(0, 2, problem.x.shape).astype(dtype), targets().astype(dtype))
        for _ in range(steps - 1)
    ]
    h0 = problem.h0
    h0_t = torch.zeros(case.batch, case.hidden, dtype=twin.dtype)
    if h0 is not None:
        h0_t = torch.from_numpy(h0)
    tol = bound(case.dtype, case.bits, case.width, case.batch)
    path = Trajectory(problem.model.params, tol, f"{optimizer.describe()}; {case.shapes()}")
    for x, y in batches:
        now = on_backend(model, ("numpy", None))  # the weights so far, in NumPy
        assume(away_from_relu_kinks(Problem(now, x, y, h0, rng), KINK_MARGIN[case.dtype]))
        _, grads = model.loss_and_grads(x, y, case.objective, h0)
        # An exploding step (relu at gain 1 can blow up in a few steps) leaves nothing to
        # compare but overflow; such trajectories are skipped.
        assume(max(float(np.abs(to_numpy(g)).max()) for g in grads.values()) < MAX_GRADIENT)
        grads = {name: grads[name] for name in model.params}  # what train steps with
        optimizer.clip_manual(grads)
        manual_opt.step(model.params, grads)

        torch_opt.zero_grad()
        _, z, p = twin.run(torch.from_numpy(x), h0_t)
        torch_loss(case.objective, z, p, torch.from_numpy(y)).backward()
        optimizer.clip_torch(trainable)
        torch_opt.step()

        err = path.check(model.params, twin.manual_params())
        record(f"{optimizer.kind} steps", case.dtype, err)


TRAINING_CASES = {
    "max_bits": 16,
    "max_batch": 8,
    "max_hidden": 32,
    "objectives": ("mse", "bce", "ce"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@examples(8)
@given(
    case=cases("float64", **TRAINING_CASES),
    optimizer=optimizers(),
    steps=st.integers(1, 5),
)
def test_training_trajectories_equal_float64(
    backend: tuple[str, str | None], case: Case, optimizer: Optimizer, steps: int
) -> None:
    check_training(case, optimizer, steps, backend)


@pytest.mark.parametrize("backend", BACKENDS)
@examples(4)
@given(
    case=cases("float32", **TRAINING_CASES),
    optimizer=optimizers(),
    steps=st.integers(1, 5),
)
def test_training_trajectories_equal_float32(
    backend: tuple[str, str | None], case: Case, optimizer: Optimizer, steps: int
) -> None:
    check_training(case, optimizer, steps, backend)


# ---- three oracles -----------------------------------------------------------------------

FD_STEP = 1e-6


def check_three_oracles(case: Case) -> None:
    """Manual BPTT, autograd and central finite differences of the torch forward agree.

    Finite differences are exact up to truncation ~FD_STEP^2 |L'''| ~ 1e-12 and rounding
    ~u |L| / FD_STEP ~ 1e-10 |L| per entry; the bound below is the sum of the two with a
    factor 10 of slack, so it holds for differences of a smooth loss and nothing looser.
    """
    problem = make_problem(case)
    assume(
        away_from_relu_kinks(problem, margin=1e-3, exact_zeros=False)
    )  # a step of 1e-6 must not cross 0
    model, x, target, h0 = problem.model, problem.x, problem.target, problem.h0
    twin = Twin.from_manual(model, fused=case.fused)
    if case.objective == "upstream":
        manual = manual_upstream_grads(model, x, target, h0=h0)
        upstream = torch.from_numpy(target)
        loss_value, auto = twin.gradients(x, lambda z, p: (upstream * p).sum(), h0=h0)
    else:
        loss_value, auto = twin.loss_and_grads(x, target, loss=case.objective, h0=h0)
        manual = model.loss_and_grads(x, target, case.objective, h0)[1]

    # Perturbed one entry at a time, in place; params shares its arrays with `arrays`.
    params = {name: w.copy() for name, w in model.params.items()}
    arrays = {**params, "x": x.copy(), "h0": np.zeros((case.batch, case.hidden))}
    if h0 is not None:
        arrays["h0"] = h0.copy()

    def objective() -> float:
        twin.load_manual(params)
        with torch.no_grad():
            _, z, p = twin.run(torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["h0"]))
            if case.objective == "upstream":
                return float((torch.from_numpy(target) * p).sum())
            return float(torch_loss(case.objective, z, p, torch.from_numpy(target)))

    for name, w in arrays.items():
        numeric = numeric_gradient(objective, w, FD_STEP)  # central differences
        rounding = 10 * (
            np.finfo(np.float64).eps * max(1.0, abs(loss_value)) / FD_STEP + FD_STEP**2
        )
        allowed = 1e-6 * np.linalg.norm(auto[name]) + rounding * np.sqrt(w.size)
        gap = np.linalg.norm(auto[name] - numeric)
        assert gap <= allowed, (
            f"d{name} {w.shape}: autograd vs finite differences {gap:.2e} > {allowed:.2e} "
            f"({case.shapes()})"
        )
        err = relative_error(manual[name], auto[name])
        record("3 oracles", case.dtype, err)
        assert err <= bound(case.dtype, case.bits, case.width, case.batch), (
            f"d{name} {w.shape}: manual vs autograd {err:.2e} ({case.shapes()})"
        )


@examples(2)
@given(case=cases("float64", max_bits=5, max_batch=3, max_hidden=4, max_io=2))
def test_manual_autograd_and_finite_differences_agree(case: Case) -> None:
    check_three_oracles(case)


# ---- activations -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_keep_the_dtype_and_write_into_out(name: str, dtype: type) -> None:
    """f and f' (from f's output) return the input's dtype, and when given `out` write
    their result there (RNN.run_unchecked applies f in place and ignores what it returns)."""
    f, df = ACTIVATIONS[name]
    a = np.linspace(-3, 3, 13).astype(dtype)
    h = f(a)
    for fn, arg in ((f, a), (df, h)):
        plain = fn(arg)
        out = np.full_like(arg, np.nan)
        assert plain.dtype == dtype and fn(arg, out=out) is out, fn.__name__
        np.testing.assert_array_equal(out, plain, err_msg=fn.__name__)


# ---- overflow ----------------------------------------------------------------------------


def test_run_unchecked_leaves_an_overflow_silently() -> None:
    """RNN.run_unchecked, called directly (as training and rnn_torch's graphs call it, outside
    run's error settings), leaves an overflow in the recurrence as inf or NaN without a
    warning, whatever NumPy's error settings, as its comment says; forward refuses it."""
    model = RNN(2, 4, 1, "relu", seed=0)
    model.params["W_hh"] *= 1e200  # h_2 ~ 1e200, h_3 overflows: +-inf, and relu(-inf) NaN
    x = np.ones((4, 3, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="warn", invalid="warn"):
            trace = model.run_unchecked(x, np.zeros((3, 4)))
    assert np.isinf(trace.h).any() and np.isnan(trace.h).any()
    assert not np.isfinite(trace.z).all()
    with pytest.raises(ValueError, match="overflowed"):
        model.forward(x)
