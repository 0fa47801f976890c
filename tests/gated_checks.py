"""The gated cells' (LSTM, GRU) drawn networks and the checks their properties make, for the
tests that run them: test_gated.py on the cells, test_gated_mutations.py on broken copies.

Each check is a plain function that raises AssertionError naming the case and the failing
array. Every optional input is drawn on its own: biases or none, h0 and (LSTM) c0 each given
or left to zeros, either loss. Biases, when present, are non-zero: with zero biases a bias
applied to the wrong gate, or b_hn moved out of the reset product, changes nothing and hides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from backends import on_backend
from hypothesis import strategies as st
from numpy.typing import NDArray
from strategies import distributions

from rnn_manual import GRU, LSTM
from rnn_manual.cells.losses import OUTPUT_OF
from rnn_manual.core.gradcheck import numeric_gradient, relative_error
from rnn_torch.check import gradient_rows
from rnn_torch.compare import bound
from rnn_torch.twin import Twin

Array = NDArray[np.floating]
Model = LSTM | GRU

CELLS: dict[str, type[LSTM] | type[GRU]] = {"lstm": LSTM, "gru": GRU}

#: The worst normwise relative error seen per (property, cell, dtype), printed with -s.
WORST: dict[tuple[str, str, str], float] = {}


def record(prop: str, cell: str, dtype: str, err: float) -> None:
    WORST[prop, cell, dtype] = max(err, WORST.get((prop, cell, dtype), 0.0))


@dataclass(frozen=True)
class Case:
    """One drawn gated network and its data, described by sizes and flags (arrays from seed)."""

    cell: str  # "lstm" | "gru"
    bits: int  # T
    batch: int  # B
    inputs: int  # I
    hidden: int  # H
    outputs: int  # O
    loss: str  # "mse" | "bce" | "ce" (on a softmax output)
    bias: bool  # every b_* parameter present (and non-zero), or none
    with_h0: bool  # a random h0 rather than zeros
    with_c0: bool  # a random c0 rather than zeros (the LSTM's only; False for the GRU)
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
        c0 = f", c0={self.with_c0}" if self.cell == "lstm" else ""
        return (
            f"{self.cell} T={T} B={B} I={I} H={H} O={O}, {self.loss}, bias={self.bias}, "
            f"h0={self.with_h0}{c0}, {'binary' if self.binary else 'real'}, "
            f"gain {self.gain:.2f}, {self.dtype}"
        )

    def states(self) -> list[str]:
        """The initial states this case gives (the others start at zeros)."""
        given = {"h0": self.with_h0, "c0": self.with_c0}
        return [name for name in CELLS[self.cell].states if given[name]]


@st.composite
def cases(
    draw: st.DrawFn,
    dtype: str = "float64",
    max_bits: int = 16,
    max_batch: int = 8,
    max_hidden: int = 16,
    max_io: int = 3,
    cell: str | None = None,
) -> Case:
    """LSTM and GRU networks (or `cell`'s): either loss, with and without biases, h0 and c0
    each given or not, on binary or real inputs."""
    cell = cell or draw(st.sampled_from(sorted(CELLS)))
    return Case(
        cell=cell,
        bits=draw(st.integers(1, max_bits)),
        batch=draw(st.integers(1, max_batch)),
        inputs=draw(st.integers(1, max_io)),
        hidden=draw(st.integers(1, max_hidden)),
        outputs=draw(st.integers(1, max_io)),
        loss=draw(st.sampled_from(["mse", "bce", "ce"])),
        bias=draw(st.booleans()),
        with_h0=draw(st.booleans()),
        with_c0=cell == "lstm" and draw(st.booleans()),
        binary=draw(st.booleans()),
        gain=draw(st.floats(0.5, 1.5)),
        dtype=dtype,
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@dataclass
class Problem:
    """A case made concrete: the model (its biases, if any, non-zero), x, y, initial states."""

    model: Model
    x: Array  # (T, B, I)
    y: Array  # (T, B, O)
    states: dict[str, Array]  # those given of "h0" and "c0" (B, H); the others start at zeros
    rng: np.random.Generator


def make_problem(case: Case) -> Problem:
    rng = np.random.default_rng(case.seed)
    T, B, I, H, O = case.bits, case.batch, case.inputs, case.hidden, case.outputs
    output = OUTPUT_OF[case.loss]
    model = CELLS[case.cell](I, H, O, bias=case.bias, dtype=case.dtype, seed=rng, output=output)
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
    if case.loss == "ce":
        y = distributions(rng, (T, B, O), case.binary)
    states = {name: rng.normal(0.0, 0.5, (B, H)).astype(case.dtype) for name in case.states()}
    return Problem(model, x.astype(case.dtype), y.astype(case.dtype), states, rng)


def clone(model: Model, model_class: type, dtype: str | None = None) -> Model:
    """A `model_class` instance with `model`'s sizes and a copy of its weights (in `dtype`)."""
    I, H, O = model.input_size, model.hidden_size, model.output_size
    copy = model_class(I, H, O, model.bias, dtype or model.dtype, output=model.output)
    for name, w in model.params.items():
        copy.params[name][...] = w
    return copy


def check_gradients(
    case: Case, model_class: type | None = None, backend: tuple[str, str | None] = ("numpy", None)
) -> float:
    """Loss and every gradient (params, x, h0, c0) equal autograd's on the cell twin, as
    rnn_torch.check.gradient_rows judges them for every cell; returns the worst normwise error.
    model_class: the model under test (a mutant, say), run on `backend`; the twins run on the
    same device.

    The judge is rnn_torch.compare.judge, the RNN's too: float64 errors within FLOAT64_BOUND;
    float32 gradients within float32_allowed of autograd's float64 ones on the same weights,
    which also admits the loss of accuracy a cancelling sum (b_y = sum_t dz_t, say) costs
    PyTorch's own float32 twin.
    """
    problem = make_problem(case)
    model = on_backend(clone(problem.model, model_class or CELLS[case.cell]), backend)
    rows = gradient_rows(model, problem.x, problem.y, case.loss, **problem.states)
    worst = 0.0
    for row in rows:
        record("gradients", case.cell, case.dtype, row.relative)
        worst = max(worst, row.relative)
        assert row.passed, (
            f"d{row.name} {row.shape}: normwise relative error {row.relative:.2e} "
            f"(allowed {row.limit:.1e}) ({case.describe()})"
        )
    return worst


def check_forward(case: Case, model_class: type | None = None) -> None:
    """Output probabilities equal those of the fused nn.LSTM / nn.GRU with the same weights."""
    problem = make_problem(case)
    model = clone(problem.model, model_class or CELLS[case.cell])
    mine = model.forward(problem.x, **problem.states)
    theirs = fused_probabilities(problem.model, problem.x, **problem.states)
    err = relative_error(mine, theirs)
    record("forward (fused)", case.cell, case.dtype, err)
    tol = bound(case.dtype, case.bits, case.width, case.batch)
    assert err <= tol, f"p {mine.shape} vs fused: {err:.2e} ({case.describe()})"


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
    for name in CELLS[case.cell].states:
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


def fused_probabilities(model: Model, x: Array, **states: Array) -> Array:
    """Output probabilities (T, B, O) of the fused nn.LSTM / nn.GRU holding model's weights."""
    twin = Twin.from_manual(model, fused=True)
    given = {name: torch.as_tensor(state, dtype=twin.dtype) for name, state in states.items()}
    with torch.no_grad():
        return twin.run(torch.as_tensor(x, dtype=twin.dtype), **given)[2].numpy()
