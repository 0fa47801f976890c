"""Hypothesis strategies shared by the property tests: random networks, inputs and targets,
and optimisers with their hyperparameters.

Hypothesis draws the structure of a case (sizes, activation, bias, loss, dtype, ...) and a
seed; the arrays are then drawn from numpy.random.Generator(seed), since arrays of up to
64 x 16 x 64 entries are too big for hypothesis to draw (and shrink) entry by entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from rnn_manual import RNN, SGD, Adam
from rnn_manual.cells.losses import OUTPUT_OF
from rnn_manual.cells.outputs import OUTPUTS
from rnn_manual.core.backend import to_numpy
from rnn_manual.training.optim import Adagrad, clip_grad_norm
from rnn_manual.training.state import OPTIMIZERS

Array = NDArray[np.floating]

ACTIVATIONS = ("sigmoid", "tanh", "relu")
#: "mse", "bce", "ce": the manual losses (ce on a softmax output). "upstream": sum(V * p)
#: with random V, through either output layer, so that every output step sends back a
#: different, signed gradient (a loss of ones hides bugs).
OBJECTIVES = ("mse", "bce", "ce", "upstream")


def examples(factor: float) -> settings:
    """`factor` times the active profile's max_examples ("ci" 50, "thorough" 1000), for the
    properties cheap enough to deserve more examples than the profile's default (or split
    into several, by parameter)."""
    return settings(max_examples=max(1, round(factor * settings.default.max_examples)))


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
    output: str  # "sigmoid" | "softmax": the loss's (OUTPUT_OF), either for "upstream"
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
            f"{self.activation}, bias={self.bias}, {self.objective} on {self.output}, "
            f"h0={self.with_h0}, "
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
    objective = draw(st.sampled_from(objectives))
    if objective == "upstream":
        output = draw(st.sampled_from(sorted(OUTPUTS)))
    else:
        output = OUTPUT_OF[objective]
    return Case(
        bits=draw(st.integers(1, max_bits)),
        batch=draw(st.integers(1, max_batch)),
        inputs=draw(st.integers(1, max_io)),
        hidden=draw(st.integers(1, max_hidden)),
        outputs=draw(st.integers(1, max_io)),
        activation=activation,
        bias=draw(st.booleans()),
        objective=objective,
        output=output,
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
    model = rnn_class(I, H, O, case.activation, case.bias, case.dtype, seed=rng, output=case.output)
    scales = {"W_xh": 1 / np.sqrt(I), "W_hh": case.gain / np.sqrt(H), "W_hy": 1 / np.sqrt(H)}
    for name, w in model.params.items():
        w[...] = rng.normal(0.0, scales.get(name, 0.5), w.shape)  # biases ~ N(0, 0.5^2)
    if case.binary:
        x = rng.integers(0, 2, (T, B, I)).astype(np.float64)
    else:
        x = rng.normal(0.0, 1.0, (T, B, I))
    if case.objective == "upstream":
        target = rng.normal(0.0, 1.0, (T, B, O))
    elif case.objective == "ce":
        target = distributions(rng, (T, B, O), case.binary)
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


def distributions(rng: np.random.Generator, shape: tuple[int, ...], one_hot: bool) -> Array:
    """Targets of a softmax: at every step a distribution over the last axis, one-hot (a
    random index, as min-char-rnn's next character) or random probabilities."""
    if one_hot:
        return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    weights = rng.uniform(0.0, 1.0, shape)
    return weights / weights.sum(axis=-1, keepdims=True)


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


# ---- optimisers --------------------------------------------------------------------------

#: Learning rates the trajectories on networks draw from, per optimiser: small enough that K
#: steps stay in one basin on both sides (training is a chaotic map: a large step can amplify
#: a 1e-16 difference into a visible one).
LEARNING_RATES = {
    "sgd": (0.01, 0.2),
    "momentum": (0.005, 0.1),
    "adam": (1e-4, 0.02),
    "adagrad": (1e-4, 0.02),
}

#: torch.nn.utils.clip_grad_norm_ scales by max_norm / (norm + 1e-6), the 1e-6 guarding a
#: zero norm; rnn_manual's clip_grad_norm by max_norm / norm (see Optimizer.clip_torch).
TORCH_CLIP_EPS = 1e-6


def log_uniform(low: float, high: float) -> st.SearchStrategy[float]:
    """Floats from low to high, uniform in their logarithm (every decade as likely)."""
    return st.floats(math.log10(low), math.log10(high)).map(lambda e: float(10.0**e))


@dataclass(frozen=True)
class Optimizer:
    """A drawn optimiser: which one, its hyperparameters, and the clipping before each step.

    `manual()` builds rnn_manual's optimiser, `torch(leaves)` torch.optim's counterpart;
    `clip_manual` and `clip_torch` clip the gradients as train --clip does, before a step.
    """

    kind: str  # one of train.OPTIMIZERS: "sgd", "momentum", "adam", "adagrad"
    lr: float
    momentum: float  # momentum's m; 0 for the others
    betas: tuple[float, float]  # Adam's (beta1, beta2)
    eps: float  # Adam's and Adagrad's epsilon
    lr_decay: float  # Adagrad's; 0 for the others
    initial_accumulator_value: float  # Adagrad's; 0 for the others
    clip: float | None  # the joint gradient norm clipped to before each step; None: none

    def manual(self) -> SGD | Adam | Adagrad:
        """rnn_manual's optimiser with these hyperparameters."""
        if self.kind == "adam":
            return Adam(self.lr, self.betas, self.eps)
        if self.kind == "adagrad":
            return Adagrad(self.lr, self.lr_decay, self.initial_accumulator_value, self.eps)
        return SGD(self.lr, self.momentum)

    def torch(self, leaves: list[torch.Tensor]) -> torch.optim.Optimizer:
        """torch.optim's: SGD, SGD(momentum=m) (dampening 0, no Nesterov), Adam, or Adagrad
        (no weight decay)."""
        if self.kind == "adam":
            return torch.optim.Adam(leaves, self.lr, betas=self.betas, eps=self.eps)
        if self.kind == "adagrad":
            return torch.optim.Adagrad(
                leaves,
                self.lr,
                lr_decay=self.lr_decay,
                initial_accumulator_value=self.initial_accumulator_value,
                eps=self.eps,
            )
        return torch.optim.SGD(leaves, self.lr, momentum=self.momentum)

    def clip_manual(self, grads: dict[str, Array]) -> None:
        """rnn_manual's clip_grad_norm on `grads` (the parameters' only), in place."""
        if self.clip is not None:
            clip_grad_norm(grads, self.clip)

    def clip_torch(self, leaves: list[torch.Tensor]) -> None:
        """torch.nn.utils.clip_grad_norm_ on the leaves' .grad, in place.

        torch's factor is max_norm / (norm + 1e-6), ours max_norm / norm: a relative
        difference of 1e-6 / norm, far above float64 rounding. So torch is handed
        clip * (norm + 1e-6) / norm, with torch's own norm, which makes its factor ours up to
        rounding and leaves the rest to torch: the norm over every array, when to scale (only
        above the bound), and scaling every gradient by one factor.
        """
        if self.clip is None:
            return
        norm = float(torch.nn.utils.clip_grad_norm_(leaves, math.inf))  # measures, scales by 1
        if norm > 0:
            torch.nn.utils.clip_grad_norm_(leaves, self.clip * (norm + TORCH_CLIP_EPS) / norm)

    def describe(self) -> str:
        """The optimiser and its hyperparameters, for assertion messages."""
        if self.kind == "adam":
            b1, b2 = self.betas
            text = f"adam lr {self.lr:.3g}, betas ({b1:.4g}, {b2:.6g}), eps {self.eps:.2g}"
        elif self.kind == "adagrad":
            text = (
                f"adagrad lr {self.lr:.3g}, lr_decay {self.lr_decay:.3g}, "
                f"initial_accumulator_value {self.initial_accumulator_value:.3g}, "
                f"eps {self.eps:.2g}"
            )
        elif self.kind == "momentum":
            text = f"momentum lr {self.lr:.3g}, m {self.momentum:.4g}"
        else:
            text = f"sgd lr {self.lr:.3g}"
        return text + ("" if self.clip is None else f", clip {self.clip:.3g}")


@st.composite
def optimizers(
    draw: st.DrawFn,
    learning_rates: dict[str, tuple[float, float]] = LEARNING_RATES,
    clips: tuple[float, float] = (0.01, 10.0),
) -> Optimizer:
    """Every optimiser, with learning rate, momentum, betas, epsilon, Adagrad's learning-rate
    decay and starting accumulator drawn over their usual ranges (so that a constant written
    in place of any of them shows; the decay and the accumulator are 0, their defaults, as
    often as not), clipping to a joint norm drawn from `clips` or none."""
    kind = draw(st.sampled_from(OPTIMIZERS))
    lr = draw(log_uniform(*learning_rates[kind]))
    momentum = draw(st.floats(0.0, 0.99)) if kind == "momentum" else 0.0
    betas = (0.9, 0.999)
    eps = 1e-8
    lr_decay = initial_accumulator_value = 0.0
    if kind == "adam":
        betas = (draw(st.floats(0.0, 0.99)), draw(st.floats(0.5, 0.9999)))
        eps = draw(log_uniform(1e-8, 0.1))
    if kind == "adagrad":
        eps = draw(log_uniform(1e-10, 0.1))
        lr_decay = draw(st.just(0.0) | st.floats(0.0, 0.5))
        initial_accumulator_value = draw(st.just(0.0) | st.floats(0.0, 1.0))
    clip = draw(st.none() | log_uniform(*clips))
    return Optimizer(kind, lr, momentum, betas, eps, lr_decay, initial_accumulator_value, clip)


class Trajectory:
    """Two training runs from the same weights, judged against each other after every step.

    A weight after k steps is its start plus k updates, each rounded relative to its own size,
    so each step's error is measured against the path so far, ||w_0|| + sum_k ||w_k - w_{k-1}||
    (a weight that training brings near 0 keeps only that absolute accuracy).
    """

    def __init__(self, start: dict[str, Array], tolerance: float, context: str) -> None:
        self.last = {name: to_numpy(w).astype(np.float64) for name, w in start.items()}
        self.length = {name: float(np.linalg.norm(w)) for name, w in self.last.items()}
        self.tolerance = tolerance
        self.context = context  # the case and the optimiser, for the assertion message
        self.steps = 0

    def check(self, mine: dict[str, Array], theirs: dict[str, Array]) -> float:
        """Judge one more step: `mine` and `theirs` are both runs' weights after it (arrays of
        any library, in the manual layout). Returns the worst error of this step."""
        self.steps += 1
        worst = 0.0
        for name, param in mine.items():
            w = to_numpy(param).astype(np.float64)
            self.length[name] += float(np.linalg.norm(w - self.last[name]))
            self.last[name] = w
            gap = float(np.linalg.norm(w - to_numpy(theirs[name])))
            err = gap / max(self.length[name], np.finfo(np.float64).tiny)
            worst = max(worst, err)
            assert err <= self.tolerance, (
                f"{name} {w.shape} after step {self.steps}: error {err:.2e} of the path's "
                f"length (allowed {self.tolerance:.1e}) ({self.context})"
            )
        return worst
