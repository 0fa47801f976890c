"""min-char-rnn's task: a character-level language model, trained on a text chunk by chunk.

The model reads V one-hot characters and ends in a softmax over the same V (cells/outputs.py):
p_t is its guess at character t + 1, judged by the cross-entropy "ce" (cells/losses.py).
Each step takes the chunk of seq characters at the streams' position (corpus.py) and makes
one pass over it, run, loss and backward (Cell.loss_pass), from the states the last chunk
ended in; then the optimizer updates the weights. The state runs on from chunk to chunk
(min-char-rnn's hprev), the gradient does not: each pass stops at its chunk's start, as
truncated BPTT with K = seq does (cells/truncation.py), here with an update between chunks.

A TextState is everything the next step depends on, so that a run resumed from a
checkpoint (files/textcheckpoint.py) ends bit for bit as if it had never stopped.
"""

from __future__ import annotations

import array
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..cells import CELLS, Cell
from ..core.limits import MAX_HIDDEN, check_elements
from ..core.validate import DTYPE_NAMES, check_choice, check_size
from .corpus import Corpus
from .loop import descend, stop_on_signals
from .progress import EVERY
from .sampling import sample
from .state import OPTIMIZERS, Optimizer, optimizer_for

Log = Callable[[str], None]
Array = NDArray[np.floating]

#: The learning rate each optimizer takes on this task unless told otherwise: Adagrad's is
#: min-char-rnn's (docs/decisions.md).
TEXT_LR = {"sgd": 1.0, "momentum": 0.1, "adam": 0.005, "adagrad": 0.1}
#: Characters in each sample printed while training.
SAMPLE_CHARS = 80


@dataclass(frozen=True)
class TextConfig:
    """Everything that decides a run on a text; the same config and text give the same
    weights."""

    cell: str = "rnn"  # a key of cells.CELLS
    hidden: int = 100  # min-char-rnn's
    seq: int = 25  # steps per chunk, min-char-rnn's seq_length
    batch: int = 16  # streams read side by side (min-char-rnn: 1)
    optimizer: str = "adagrad"
    lr: float | None = None  # None: TEXT_LR[optimizer]
    clip: float | None = 5.0  # max gradient norm (min-char-rnn clips each entry to 5)
    steps: int = 1000  # longer, the gated cells learn the default text by heart (decisions.md)
    seed: int = 0
    dtype: str = "float64"
    log_every: int = 100
    sample_every: int = 500  # steps between samples in the log; 0: none

    def __post_init__(self) -> None:
        """ValueError for a config that cannot train, before any work."""
        for name in ("hidden", "seq", "batch", "steps", "log_every"):
            check_size(name, getattr(self, name))
        check_size("hidden", self.hidden, MAX_HIDDEN)
        for name, choices in (
            ("cell", CELLS),
            ("optimizer", OPTIMIZERS),
            ("dtype", DTYPE_NAMES),
        ):
            check_choice(name, getattr(self, name), choices)
        for name in ("lr", "clip"):
            value = getattr(self, name)
            if value is not None and not (_is_real(value) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("seed", "sample_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        width = CELLS[self.cell].width * self.hidden
        check_elements("a training pass (seq x batch x state)", self.seq + 1, self.batch, width)

    @property
    def learning_rate(self) -> float:
        return TEXT_LR[self.optimizer] if self.lr is None else self.lr


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _floats() -> array.array[float]:
    return array.array("d")


@dataclass
class TextState:
    """Where a run on a text stands: everything its next step depends on."""

    config: TextConfig
    model: Cell
    optimizer: Optimizer
    states: list[Array]  # h (and c) (B, H) that the last chunk ended in: the next starts there
    step: int = 0  # updates made
    position: int = 0  # where the streams' next chunk starts (corpus.py)
    losses: array.array[float] = field(default_factory=_floats)  # nats per character, per step


@dataclass
class TextResult:
    state: TextState
    seconds: float
    interrupted: signal.Signals | None = None  # the signal that stopped it early (loop.py)


def make_text_model(config: TextConfig, size: int, rng: np.random.Generator) -> Cell:
    """A fresh model for a vocabulary of `size` characters: `size` one-hot inputs, a softmax
    over `size` outputs, biases (the softmax's bias alone learns the characters'
    frequencies), tanh units in the RNN (min-char-rnn's)."""
    cell = CELLS[config.cell]
    options: dict[str, Any] = {"activation": "tanh"} if cell.activations else {}
    sizes = (size, config.hidden, size)
    return cell(*sizes, bias=True, dtype=config.dtype, seed=rng, output="softmax", **options)


def start(config: TextConfig, corpus: Corpus) -> TextState:
    """A fresh run of `config` on `corpus`; TextError if the text is too short for it."""
    corpus.check_fits(config.seq, config.batch)
    model = make_text_model(config, len(corpus.vocabulary), np.random.default_rng(config.seed))
    return TextState(config, model, make_text_optimizer(config), model.zero_states(config.batch))


def make_text_optimizer(config: TextConfig) -> Optimizer:
    """The optimizer `config` names, at its learning rate or TEXT_LR's."""
    return optimizer_for(config.optimizer, config.learning_rate)


def check_resumable(state: TextState, corpus: Corpus) -> None:
    """ValueError unless `state` is a run on `corpus` that can go on: its position one
    that training reaches (a multiple of seq, with a whole chunk after it)."""
    config = state.config
    corpus.check_fits(config.seq, config.batch)
    if len(corpus.vocabulary) != state.model.input_size:
        raise ValueError("the checkpoint's vocabulary is not this text's")
    if state.position % config.seq or state.position + config.seq >= corpus.stream_length(
        config.batch
    ):
        raise ValueError(f"its position {state.position} is not one this text reaches")


def update(state: TextState, corpus: Corpus) -> float:
    """One update on the chunk at the state's position: the loss before it, in nats per
    character. Diverged on a non-finite loss, gradient or weight (the state is then spent)."""
    config, model = state.config, state.model
    x, y = corpus.chunk(state.position, config.seq, config.batch, config.dtype)
    done = descend(
        model,
        state.optimizer,
        config.clip,
        state.step + 1,
        lambda: model.loss_pass(x, state.states, y, "ce"),
    )
    loss = float(done.loss) / config.seq  # ce sums over the chunk's steps
    state.step += 1
    state.losses.append(loss)
    state.position = corpus.next_position(state.position, config.seq, config.batch)
    if state.position == 0:  # the streams start over: from a zero state, as at the start
        state.states = model.zero_states(config.batch)
    else:
        state.states = [s.copy() for s in model.final_states(done.trace)]
    return loss


def train_text(
    config: TextConfig,
    corpus: Corpus,
    log: Log | None = print,
    *,
    resume: TextState | None = None,
    checkpoint: Callable[[TextState], None] | None = None,
    checkpoint_every: int = 0,
) -> TextResult:
    """Train on `corpus` for config.steps updates.

    log: told the mean loss of the last config.log_every steps (at least every EVERY seconds
    on slow runs) and, every config.sample_every steps, a sample of SAMPLE_CHARS characters
    (drawn from a generator of its own, seeded by the seed and the step, so that samples
    never change the run). resume: the state of an earlier run of this config (step budget
    aside) on this text, to continue exactly. checkpoint: called with the state every
    checkpoint_every steps and when training stops, Ctrl-C included (a first Ctrl-C stops
    after the current step, a second at once). Raises Diverged on a non-finite loss,
    gradient or weight, with no checkpoint of that state.
    """
    state = start(config, corpus) if resume is None else resume
    if resume is not None and replace(resume.config, steps=config.steps) != config:
        raise ValueError("cannot resume: the checkpoint was made with a different config")
    state.config = config
    saved_at, since = None, state.step
    begin = logged = time.perf_counter()
    digits = len(str(config.steps))
    with stop_on_signals() as stop:
        while state.step < config.steps and stop.requested is None:
            update(state, corpus)
            now = time.perf_counter()
            if log is not None and (
                state.step % config.log_every == 0
                or state.step == config.steps
                or now - logged >= EVERY
            ):
                recent = state.losses[since:]
                log(
                    f"step {state.step:{digits}d}/{config.steps}  loss "
                    f"{sum(recent) / len(recent):.4f} nats/char"
                )
                logged, since = now, state.step
            if log is not None and config.sample_every and state.step % config.sample_every == 0:
                log(f"sample: {sample_now(state, corpus)!r}")
            if checkpoint is not None and checkpoint_every and state.step % checkpoint_every == 0:
                checkpoint(state)
                saved_at = state.step
        if checkpoint is not None and saved_at != state.step:
            checkpoint(state)
    return TextResult(state, time.perf_counter() - begin, stop.requested)


def sample_now(state: TextState, corpus: Corpus) -> str:
    """SAMPLE_CHARS characters from the model as it is, primed with the training text's
    first character, at temperature 1, the same for the same seed and step."""
    rng = np.random.default_rng([state.config.seed, state.step])
    prime = corpus.vocabulary[int(corpus.train[0])]
    return prime + sample(state.model, corpus.vocabulary, prime, SAMPLE_CHARS, 1.0, rng)
