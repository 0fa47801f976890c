"""The runs behind the walkthrough's figures: the walkthrough's adder trained again while
its hidden units are watched, an RNN, an LSTM and a GRU trained to be compared, and the
three trained on the default text (`python -m rnn_manual text --cell ...`).

Every model here is small and trained with a fixed seed, so the figures come out the same at
every run: the walkthrough's adder (`train --loss mse --long-bits 0 --save adder.npz`, about
a second) and, to compare the cells, an RNN, an LSTM and a GRU trained on the same task
with biases (the gated cells learn faster with them). docfigures.py draws what these return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from ..cells import CELLS, Cell
from ..training.bits import random_addition_batch
from ..training.corpus import Corpus, read_corpus
from ..training.language import TextConfig, TextState, train_text
from ..training.loop import start, train
from ..training.sampling import held_out_loss, uniform_loss
from ..training.state import TrainConfig, TrainResult, TrainState
from .measures import carry_bits, correlations, gradient_norms

#: The walkthrough's adder: train's defaults but the tutorial's loss and stopping rule (stop
#: once the 8-bit sums are solved; section 10 shows what long sums then do, and what train's
#: default adds to it) ...
ADDER = TrainConfig(loss="mse", long_bits=0)
#: ... and the command that makes it, as `plot --help` and a refused `plot --docs` name it.
ADDER_COMMAND = "python -m rnn_manual train --loss mse --long-bits 0 --save adder.npz"
#: The task on which the three cells are compared: the same, with biases.
CELLS_TASK = TrainConfig(bias=True, loss="mse", long_bits=0)
#: Training steps between two looks at the hidden units while the adder learns.
SNAPSHOT_EVERY = 2
#: Random sums, and their length, on which the carry unit is looked for during training.
SNAPSHOT_SUMS, SNAPSHOT_BITS = 500, 16
#: Random sums, and their length, along which the three cells' gradients are followed back.
CELL_SUMS, CELL_BITS = 32, 64
#: The sigmoid's steepest slope: sigmoid'(a) = s (1 - s) with s = sigmoid(a), at most 1/4
#: (at a = 0, s = 1/2).
SIGMOID_MAX_SLOPE = 0.25


class NotTheAdder(ValueError):
    """`plot --docs` was given a model other than the walkthrough's adder."""


@dataclass
class AdderRun:
    """The walkthrough's adder trained again, its hidden units looked at along the way."""

    result: TrainResult
    steps: NDArray[np.int_]  # (n,) the training steps looked at; 0 is the initial network
    r_all: NDArray[np.float64]  # (n, H) each unit's correlation with the carry at those steps

    @property
    def carry_unit(self) -> int:
        """The unit that tracks the carry best once training is over."""
        return int(np.argmax(np.abs(self.r_all[-1])))


def rerun_adder(model: Cell) -> AdderRun:
    """Train the walkthrough's adder again, looking at every unit's correlation with the
    carry every SNAPSHOT_EVERY steps; NotTheAdder unless it ends as `model`, bit for bit."""
    x, _ = random_addition_batch(np.random.default_rng(1), SNAPSHOT_SUMS, SNAPSHOT_BITS)
    carry = carry_bits(x)  # (T, B)
    steps, r_all = [0], [correlations(start(ADDER)[0].model.run(x).h[1:], carry)]

    def look(state: TrainState) -> None:  # train's checkpoint hook, every SNAPSHOT_EVERY steps
        steps.append(state.step)
        r_all.append(correlations(state.model.run(x).h[1:], carry))  # h[1:]: (T, B, H)

    result = train(ADDER, log=None, checkpoint=look, checkpoint_every=SNAPSHOT_EVERY)
    same = (
        model.name == ADDER.cell
        and (model.activation, model.bias) == (ADDER.activation, ADDER.bias)
        and model.params.keys() == result.model.params.keys()
        and all(np.array_equal(model.params[k], w) for k, w in result.model.params.items())
    )
    if not same:
        raise NotTheAdder(f"--docs draws the walkthrough's adder: make it with `{ADDER_COMMAND}`")
    return AdderRun(result, np.array(steps), np.array(r_all))


@dataclass
class CellsFlow:
    """The gradient through time in a trained RNN, LSTM and GRU, on the same sums."""

    norms: dict[str, NDArray[np.float64]]  # cell name -> (T, B) gradient_norms, row t: h[t]
    labels: dict[str, str]  # cell name -> its legend: how long it trained, and if it solved
    bound: NDArray[np.float64]  # (T,) the RNN's bound on its norms, row t as norms'
    W_hh_norm: float  # the RNN's ||W_hh||_2 (its largest singular value)
    W_hy_norm: float  # the RNN's ||W_hy||_2
    mean_slope: float  # the RNN's sigmoid'(a_t) = h_t (1 - h_t), averaged over the sums

    @property
    def back(self) -> NDArray[np.int_]:
        """(T,) steps back from the last output, row by row: row t is T - t steps back."""
        T = next(iter(self.norms.values())).shape[0]
        return T - np.arange(T)


def cells_flow(task: TrainConfig = CELLS_TASK) -> CellsFlow:
    """Train every cell on `task` and follow the gradient back through CELL_BITS-bit sums.

    The RNN's bound, for a sigmoid RNN: one step back, dL/dh[t] = (dL/dh[t+1] * f'(a_t))
    W_hh^T, where ||v W^T|| <= ||v|| ||W||_2 and f' <= 1/4; the last state h[T] gets
    dz_last/dh[T] = W_hy^T, of norm ||W_hy||_2; so k steps back
        ||dz_last / dh[T - k]|| <= ||W_hy||_2 (||W_hh||_2 / 4)^k,
    which shrinks with k only when ||W_hh||_2 < 4.
    """
    if task.activation != "sigmoid":
        raise ValueError("the bound drawn is the sigmoid RNN's")
    x, _ = random_addition_batch(np.random.default_rng(2), CELL_SUMS, CELL_BITS)
    models, norms, labels = {}, {}, {}
    for name in CELLS:
        result = train(replace(task, cell=name), log=None)
        models[name], norms[name] = result.model, gradient_norms(result.model, x)
        solved = "solved" if result.solved else "NOT solved"
        labels[name] = f"{name.upper()} ({solved} in {result.steps} steps)"
    rnn = models["rnn"]
    W_hh_norm = float(np.linalg.norm(rnn.params["W_hh"], 2))
    W_hy_norm = float(np.linalg.norm(rnn.params["W_hy"], 2))
    h = rnn.run(x).h[1:]  # (T, B, H)
    mean_slope = float((h * (1 - h)).mean())  # sigmoid'(a) = h (1 - h)
    flow = CellsFlow(norms, labels, np.empty(0), W_hh_norm, W_hy_norm, mean_slope)
    flow.bound = W_hy_norm * (SIGMOID_MAX_SLOPE * W_hh_norm) ** flow.back.astype(np.float64)
    return flow


#: Steps between two held-out evaluations while the three cells learn the default text.
HELD_OUT_EVERY = 50


@dataclass
class TextRuns:
    """The three cells trained on the default text with `text`'s defaults."""

    config: TextConfig
    losses: dict[str, NDArray[np.float64]]  # cell name -> (steps,) nats per character
    held_out: dict[str, NDArray[np.float64]]  # cell name -> the held-out loss at each of ...
    evaluated: NDArray[np.int_]  # ... these steps, every HELD_OUT_EVERY, the last included
    uniform: float  # log V, the uniform guess's loss


def text_runs(config: TextConfig | None = None) -> TextRuns:
    """`python -m rnn_manual text --cell C` for every cell C, on the default text (config:
    text's defaults unless given), its held-out loss measured every HELD_OUT_EVERY steps."""
    config = config or TextConfig()
    corpus = read_corpus(None)
    runs = TextRuns(config, {}, {}, np.empty(0, dtype=int), uniform_loss(corpus))
    for name in CELLS:
        steps: list[int] = []
        held_out: list[float] = []
        result = train_text(
            replace(config, cell=name),
            corpus,
            log=None,
            checkpoint=_evaluator(corpus, steps, held_out),
            checkpoint_every=HELD_OUT_EVERY,
        )
        runs.losses[name] = np.array(result.state.losses)
        runs.held_out[name], runs.evaluated = np.array(held_out), np.array(steps)
    return runs


def _evaluator(
    corpus: Corpus, steps: list[int], held_out: list[float]
) -> Callable[[TextState], None]:
    """train_text's checkpoint hook that appends the step and the held-out loss there."""

    def look(state: TextState) -> None:
        steps.append(state.step)
        held_out.append(held_out_loss(state.model, corpus))

    return look
