"""Hypothesis strategies shared by the property tests: random networks, inputs and targets.

Hypothesis draws the structure of a case (sizes, activation, bias, loss, dtype, ...) and a
seed; the arrays are then drawn from numpy.random.Generator(seed), since arrays of up to
64 x 16 x 64 entries are too big for hypothesis to draw (and shrink) entry by entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from rnn_manual import RNN

Array = NDArray[np.floating]

ACTIVATIONS = ("sigmoid", "tanh", "relu")
#: "mse", "bce": the manual losses. "upstream": sum(V * p) with random V, so that every
#: output step sends back a different, signed gradient (a loss of ones hides bugs).
OBJECTIVES = ("mse", "bce", "upstream")


def examples(factor: int) -> settings:
    """`factor` times the active profile's max_examples ("ci" 50, "thorough" 1000), for the
    properties cheap enough to deserve more examples than the profile's default."""
    return settings(max_examples=factor * settings.default.max_examples)


@dataclass(frozen=True)
class Case:
    """One drawn network and its data, described by sizes and flags (the arrays come from seed)."""

    bits: int  # T, the sequence length
    batch: int  # B
    inputs: int  # I
    hidden: int  # H
    outputs: int  # O
    activation: str
    bias: bool
    objective: str  # one of OBJECTIVES
    with_h0: bool
    binary: bool  # inputs 0/1 (as in the adder) or real-valued
    gain: float  # the recurrent weights' gain, about their spectral radius
    fused: bool  # judge by torch.nn.RNN (tanh, relu) rather than nn.RNNCell
    dtype: str  # "float32" | "float64"
    seed: int

    @property
    def width(self) -> int:
        """I + H + O, the longest dot product in a forward or backward step."""
        return self.inputs + self.hidden + self.outputs

    def shapes(self) -> str:
        """The arrays' shapes, for assertion messages."""
        T, B, I, H, O = self.bits, self.batch, self.inputs, self.hidden, self.outputs
        return (
            f"x ({T}, {B}, {I}), h ({T + 1}, {B}, {H}), p ({T}, {B}, {O}); "
            f"{self.activation}, bias={self.bias}, {self.objective}, h0={self.with_h0}, "
            f"{'binary' if self.binary else 'real'} inputs, gain {self.gain:.2f}, "
            f"{'nn.RNN' if self.fused else 'cell'}, {self.dtype}"
        )


@st.composite
def cases(
    draw: st.DrawFn,
    dtype: str = "float64",
    max_bits: int = 64,
    max_batch: int = 16,
    max_hidden: int = 64,
    max_io: int = 4,
    objectives: tuple[str, ...] = OBJECTIVES,
) -> Case:
    """Networks of every activation, with and without bias and h0, on binary or real inputs."""
    activation = draw(st.sampled_from(ACTIVATIONS))
    return Case(
        bits=draw(st.integers(1, max_bits)),
        batch=draw(st.integers(1, max_batch)),
        inputs=draw(st.integers(1, max_io)),
        hidden=draw(st.integers(1, max_hidden)),
        outputs=draw(st.integers(1, max_io)),
        activation=activation,
        bias=draw(st.booleans()),
        objective=draw(st.sampled_from(objectives)),
        with_h0=draw(st.booleans()),
        binary=draw(st.booleans()),
        gain=draw(st.floats(0.5, 1.0)),
        fused=activation != "sigmoid" and draw(st.booleans()),
        dtype=dtype,
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@dataclass
class Problem:
    """A case made concrete: the manual model, inputs, targets (or upstream weights) and h0."""

    model: RNN
    x: Array  # (T, B, I)
    target: Array  # (T, B, O): y for a loss, V for the upstream objective
    h0: Array | None  # (B, H)
    rng: np.random.Generator  # for anything more the test needs, e.g. further batches


def make_problem(case: Case, rnn_class: type[RNN] = RNN) -> Problem:
    """The network and data of `case`: non-zero biases, weights scaled so the recurrence has
    gain `case.gain` (not chaotic), targets in [0, 1] (0/1 for binary inputs), V ~ N(0, 1)."""
    rng = np.random.default_rng(case.seed)
    T, B, I, H, O = case.bits, case.batch, case.inputs, case.hidden, case.outputs
    model = rnn_class(I, H, O, case.activation, case.bias, case.dtype, seed=rng)
    scales = {"W_xh": 1 / np.sqrt(I), "W_hh": case.gain / np.sqrt(H), "W_hy": 1 / np.sqrt(H)}
    for name, w in model.params.items():
        w[...] = rng.normal(0.0, scales.get(name, 0.5), w.shape)  # biases ~ N(0, 0.5^2)
    if case.binary:
        x = rng.integers(0, 2, (T, B, I)).astype(np.float64)
    else:
        x = rng.normal(0.0, 1.0, (T, B, I))
    if case.objective == "upstream":
        target = rng.normal(0.0, 1.0, (T, B, O))
    elif case.binary:
        target = rng.integers(0, 2, (T, B, O)).astype(np.float64)
    else:
        target = rng.uniform(0.0, 1.0, (T, B, O))
    h0 = rng.normal(0.0, 0.5, (B, H)) if case.with_h0 else None
    dtype = np.dtype(case.dtype)
    return Problem(
        model,
        x.astype(dtype),
        target.astype(dtype),
        None if h0 is None else h0.astype(dtype),
        rng,
    )


def pre_activations(problem: Problem) -> Array:
    """a_t = x_t W_xh + h_{t-1} W_hh + b_h for every step, (T, B, H), from the manual forward."""
    model = problem.model
    h = model.run(problem.x, problem.h0).h
    a = problem.x @ model.params["W_xh"] + h[:-1] @ model.params["W_hh"]
    if model.bias:
        a += model.params["b_h"]
    return a


def away_from_relu_kinks(problem: Problem, margin: float, exact_zeros: bool = True) -> bool:
    """True unless relu has a pre-activation within `margin` of its kink at 0. Exact zeros
    are fine when comparing with autograd (both sides compute them exactly and give them
    relu'(0) = 0, see test_twin), not for finite differences, whose steps cross the kink."""
    if problem.model.activation != "relu":
        return True
    a = np.abs(pre_activations(problem))
    return bool(np.all((a > margin) | ((a == 0) & exact_zeros)))
