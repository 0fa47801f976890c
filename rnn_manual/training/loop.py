"""The training loop: a step on a fresh random batch, again, until the run is solved.

Each step draws a batch of random sums (state.TrainState.batch_bits says how long), takes
the model's one pass over it (Cell.loss_pass: run, loss, backward) and lets the optimizer
update the weights; once a whole batch is right, stopping.evaluate_if_due decides whether
to evaluate. The loop also keeps the history, calls the checkpoint hook, and stops cleanly
on Ctrl-C, SIGTERM or SIGHUP, or on a non-finite loss, gradient or weight (Diverged).
"""

from __future__ import annotations

import math
import os
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from ..cells.base import Pass
from ..core.validate import Overflow
from .bits import random_addition_batch
from .evaluation import exact_match
from .optim import clip_grad_norm
from .progress import EVERY
from .state import (
    Model,
    Optimizer,
    TrainConfig,
    TrainResult,
    TrainState,
    default_lr,
    make_model,
    make_optimizer,
)
from .stopping import Validation, evaluate_if_due, validation_for

Log = Callable[[str], None]

#: A run whose loss has not fallen by 1% over this many steps is told so, once.
STALL_STEPS = 1000


class Diverged(ArithmeticError):
    """Training met a non-finite loss, gradient or weight."""


#: What a Stall's advice calls the things to change, in words (the command line: options).
WORDS = {"lr": "a learning rate of", "hidden": "hidden size", "bits": "number of bits"}


@dataclass(frozen=True)
class Stall:
    """A run that has made no progress over STALL_STEPS steps, and what to try."""

    step: int
    loss: float  # the mean loss of the last STALL_STEPS steps
    lr: float  # the learning rate now
    try_lr: float  # one to try instead
    hidden: int  # the hidden size and the bits per sum now, the other things to change
    bits: int

    def describe(self, names: Mapping[str, str] = WORDS) -> str:
        """The stall and what to try, the things to change called by `names` (as WORDS)."""
        return (
            f"step {self.step}: no progress in the last {STALL_STEPS} steps (mean loss "
            f"{self.loss:.4f}); try {names['lr']} {self.try_lr:g} (now {self.lr:g}), or "
            f"another {names['hidden']} (now {self.hidden}) or {names['bits']} (now "
            f"{self.bits})"
        )


def start(config: TrainConfig) -> tuple[TrainState, Validation]:
    """A fresh run of `config` and the sums it is evaluated on; the same config gives the
    same run."""
    rng = np.random.default_rng(config.seed)
    model = make_model(config, rng)
    validation = validation_for(config, rng)
    return TrainState(config, model, make_optimizer(config), rng), validation


def train(
    config: TrainConfig,
    log: Log | None = print,
    *,
    resume: TrainState | None = None,
    checkpoint: Callable[[TrainState], None] | None = None,
    checkpoint_every: int = 0,
    advice_names: Mapping[str, str] = WORDS,
) -> TrainResult:
    """Train on random sums until every validation sum is exactly right or the steps run out.

    log: told a progress line every config.log_every steps (and at least every EVERY seconds
    on slow runs), and once, if the run stops making progress, what to try (Stall.describe,
    with advice_names: the command line gives its options); None: silent.
    resume: the state of an earlier run of this same config (step budget aside) to continue;
    its weights then end bit for bit as if that run had never stopped.
    checkpoint: called with the state every `checkpoint_every` steps and when training stops,
    a stop signal included: a first Ctrl-C (SIGINT), SIGTERM or SIGHUP stops after the
    current step (TrainResult.interrupted says which), a second at once.
    Raises Diverged on a non-finite loss, gradient or weight, with no checkpoint of that state.
    """
    # The silence before the first line counts from here, the sums' making included;
    # logged is on progress.py's clock.
    logged = time.monotonic()
    state, validation = start(config)
    if resume is not None:
        if replace(resume.config, steps=config.steps) != config:
            raise ValueError("cannot resume: the checkpoint was made with a different config")
        state = replace(resume, config=config)
    saved_at = None
    begin = time.perf_counter()
    digits, warned = len(str(config.steps)), False
    with stop_on_signals() as stop:
        while state.step < config.steps and not state.solved and stop.requested is None:
            loss, batch_right = update(state)
            # The evaluations cost many steps' work: made only once a whole batch is right.
            if batch_right.all():
                evaluate_if_due(state, validation, log is not None, since=logged)
            # A line every log_every steps, and at least every EVERY seconds on slow runs.
            now = time.monotonic()
            if log is not None and (
                state.step % config.log_every == 0 or state.solved or now - logged >= EVERY
            ):
                log(
                    f"step {state.step:{digits}d}/{config.steps}  loss {loss:8.4f}  "
                    f"batch exact {batch_right.mean():6.1%}"
                )
                logged = now
            if log is not None and not warned and state.step % STALL_STEPS == 0:
                found = stall(state)
                if found is not None:
                    log(found.describe(advice_names))
                    warned = True
            if checkpoint is not None and checkpoint_every and state.step % checkpoint_every == 0:
                checkpoint(state)
                saved_at = state.step
        if checkpoint is not None and saved_at != state.step:
            checkpoint(state)
    seconds = time.perf_counter() - begin
    return TrainResult(
        state.model, state.step, state.solved, seconds, state.history, stop.requested
    )


def update(state: TrainState) -> tuple[float, NDArray[np.bool_]]:
    """One update on a fresh random batch: the loss and which sums were right before it."""
    config, model = state.config, state.model
    bits = state.batch_bits()
    x, y = random_addition_batch(state.rng, config.batch, bits, config.dtype)
    # A long batch counts as a short one: its loss (a sum over bits) per bit, times
    # config.bits, so that its gradient keeps the short batches' scale.
    weight = config.bits / bits if bits != config.bits else None
    # The batch is made here in the model's dtype and shapes, so the pass takes it as it
    # is, without loss_and_grads's input checks.
    zeros = model.zero_states(config.batch)
    done = descend(
        model,
        state.optimizer,
        config.clip,
        state.step + 1,
        lambda: model.loss_pass(x, zeros, y, config.loss, config.truncate, weight),
    )
    loss = float(done.loss)
    state.step += 1
    batch_right = exact_match(done.trace.p, y)
    state.history.loss.append(loss)
    state.history.batch_accuracy.append(float(batch_right.mean()))
    return loss, batch_right


def descend(
    model: Model, optimizer: Optimizer, clip: float | None, step: int, make_pass: Callable[[], Pass]
) -> Pass:
    """One gradient step: make_pass() (a Cell.loss_pass), its weight gradients clipped to
    norm `clip` (None: not clipped), then optimizer.step. The one update of every training
    loop (this one and training/language.py's). Diverged, naming `step`, on an overflow or a
    non-finite loss, gradient or weight (the weights may then be spent)."""
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            done = make_pass()
            loss = float(done.loss)
            grads = {name: g for name, g in done.grads.items() if name in model.params}
            if not (math.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())):
                raise FloatingPointError(f"loss {loss:.4g} or a gradient is not finite")
            if clip is not None:
                clip_grad_norm(grads, clip)
            optimizer.step(model.params, grads)
            if not all(np.isfinite(w).all() for w in model.params.values()):
                raise FloatingPointError("a weight is not finite")
    except (FloatingPointError, Overflow) as e:
        raise Diverged(f"training diverged at step {step} ({e})") from None
    return done


def stall(state: TrainState) -> Stall | None:
    """A Stall if the loss of the last STALL_STEPS steps is no lower (by 1%) than that of the
    STALL_STEPS before and the batch accuracy no higher (by a point); else None."""
    history, config = state.history, state.config
    if len(history.loss) < 2 * STALL_STEPS:
        return None
    window = slice(-STALL_STEPS, None)
    before = slice(-2 * STALL_STEPS, -STALL_STEPS)
    loss, loss_before = (statistics.fmean(history.loss[w]) for w in (window, before))
    right, right_before = (statistics.fmean(history.batch_accuracy[w]) for w in (window, before))
    if loss < 0.99 * loss_before or right > right_before + 0.01:
        return None
    lr = state.optimizer.lr
    default = default_lr(config.optimizer, config.loss)
    try_lr = lr / 10 if lr >= default else default  # too large saturates; too small crawls
    return Stall(state.step, loss, lr, try_lr, config.hidden, config.bits)


#: The signals that stop a run after its current step, its checkpoint written: Ctrl-C
#: (SIGINT), a polite kill or a shutdown (SIGTERM), a closed terminal or SSH session
#: (SIGHUP). Each would otherwise end the process at once and lose every step since the last
#: checkpoint.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class StopRequest:
    requested: signal.Signals | None = None  # the first stop signal received


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """While inside, a first STOP_SIGNALS signal only sets .requested; a second one stops at
    once: a second Ctrl-C raises KeyboardInterrupt, a second SIGTERM or SIGHUP ends the
    process as that signal does by default.

    Only the main thread can catch signals; elsewhere they keep their usual effect.
    """
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum: int, frame: object) -> None:
        if stop.requested is None:
            stop.requested = signal.Signals(signum)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:  # the default action: the process ends, killed by this signal
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    previous = {signum: signal.signal(signum, handle) for signum in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
