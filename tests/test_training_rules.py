"""When training stops, what its batches hold, and what it passes to the backward pass:
the rules of rnn_manual/training/ (state.py, stopping.py, loop.py) beyond the update itself."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from rnn_manual import reference
from rnn_manual.core.gradcheck import relative_error
from rnn_manual.training import loop, stopping
from rnn_manual.training.bits import random_addition_batch
from rnn_manual.training.evaluation import LONG_SUMS, accuracy
from rnn_manual.training.state import (
    DEFAULT_LR,
    OPTIMIZERS,
    TrainConfig,
    TrainState,
    make_optimizer,
)
from rnn_torch.compare import FLOAT64_BOUND


def solved_short(state: TrainState) -> None:
    """Record a full evaluation at the current step with every validation sum right."""
    state.history.eval_step.append(state.step)
    state.history.eval_accuracy.append(1.0)
    state.history.eval_long_accuracy.append(math.nan)


def test_batches_mix_in_long_sums_once_the_short_ones_are_solved() -> None:
    state, _ = loop.start(TrainConfig(bits=8, long_bits=40, steps=50))
    assert [state.batch_bits() for _ in range(3)] == [8, 8, 8]
    loop.update(state)
    solved_short(state)
    lengths = []
    for _ in range(8):
        lengths.append(state.batch_bits())
        loop.update(state)
    assert lengths == [16, 32, 40, 8, 16, 32, 40, 8]  # 8 x LONG_MIX, at most long_bits
    assert len(state.history.loss) == state.step == 9


def test_without_long_sums_batches_stay_short() -> None:
    state, validation = loop.start(TrainConfig(bits=8, long_bits=0))
    assert validation.long is None
    solved_short(state)
    assert state.batch_bits() == 8 and state.solved


def test_solved_needs_the_long_sums_too() -> None:
    state, validation = loop.start(TrainConfig(bits=6, long_bits=30))
    assert validation.long is not None and validation.long[0].shape == (30, LONG_SUMS, 2)
    solved_short(state)
    assert not state.solved  # the long sums were not measured
    state.history.eval_long_accuracy[-1] = 0.99
    assert not state.solved
    state.history.eval_long_accuracy[-1] = 1.0
    assert state.solved


def test_a_run_that_solves_has_every_long_sum_right() -> None:
    """End to end: a run with long sums stops with them all right, after LONG_STEPS steps
    of mixed batches at least; the same run without them stops sooner."""
    config = TrainConfig(bits=6, long_bits=48, seed=0)
    result = loop.train(config, log=None)
    assert result.solved
    history = result.history
    first = history.eval_step[history.eval_accuracy.index(1.0)]
    assert result.steps - first >= stopping.LONG_STEPS
    _, validation = loop.start(config)
    assert validation.long is not None
    assert accuracy(result.model, *validation.long) == 1.0
    assert history.eval_long_accuracy[-1] == 1.0
    short = loop.train(replace(config, long_bits=0), log=None)
    assert short.solved and short.steps == first


def test_the_long_sums_do_not_change_the_batches() -> None:
    """The long sums come from a generator of their own: the first steps of a run are the
    same with and without them."""
    with_long, _ = loop.start(TrainConfig(long_bits=64))
    without, _ = loop.start(TrainConfig(long_bits=0))
    for _ in range(5):
        loop.update(with_long)
        loop.update(without)
    for name, w in with_long.model.params.items():
        np.testing.assert_array_equal(w, without.model.params[name], err_msg=name)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_training_truncates_bptt_as_asked(cell: str) -> None:
    """TrainConfig(truncate=K) updates with the gradient of truncated BPTT: one step of
    plain SGD moves the weights by -lr times the reference's truncated gradient."""
    config = TrainConfig(cell=cell, bits=7, optimizer="sgd", lr=0.5, truncate=2, long_bits=0)
    state, _ = loop.start(config)
    before = {name: w.copy() for name, w in state.model.params.items()}
    same = np.random.default_rng()  # draws the batch the step will draw
    same.bit_generator.state = state.rng.bit_generator.state
    x, y = random_addition_batch(same, config.batch, config.bits, config.dtype)
    loop.update(state)
    rules = {"activation": config.activation, "loss": config.loss}
    _, grads = reference.loss_and_grads(before, x, y, **rules, truncate=2)
    _, full = reference.loss_and_grads(before, x, y, **rules)
    for name, w in state.model.params.items():
        moved = (before[name] - w) / config.lr
        assert relative_error(moved, grads[name]) <= FLOAT64_BOUND, name
    assert any(relative_error(grads[n], full[n]) > 1e-3 for n in grads if n in before)


def test_a_long_batch_weighs_as_much_as_a_short_one() -> None:
    """A batch of 4x longer sums is a loss over 4x the bits: its gradient is scaled by 1/4,
    so that it steps as far as a short batch (unscaled, Adam's step sizes, tuned on short
    batches, overshoot, and a solved RNN with biases falls apart)."""
    config = TrainConfig(bits=8, long_bits=64, optimizer="sgd", lr=0.5)
    state, _ = loop.start(config)
    solved_short(state)
    state.step = 2  # LONG_MIX[2]: sums 4x as long
    assert state.batch_bits() == 32
    before = {name: w.copy() for name, w in state.model.params.items()}
    same = np.random.default_rng()
    same.bit_generator.state = state.rng.bit_generator.state
    x, y = random_addition_batch(same, config.batch, 32, config.dtype)
    value, grads = reference.loss_and_grads(
        before, x, y, activation=config.activation, loss=config.loss
    )
    loss, _ = loop.update(state)
    assert loss == pytest.approx(value / 4, rel=1e-12)
    for name, w in state.model.params.items():
        moved = (before[name] - w) / config.lr
        assert relative_error(moved, grads[name] / 4) <= FLOAT64_BOUND, name


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("truncate", 0, "truncate must be a positive integer"),
        ("long_bits", -1, "long_bits must be a non-negative integer"),
        ("long_bits", True, "long_bits must be a non-negative integer"),
        ("long_bits", 2.5, "long_bits must be a non-negative integer"),
    ],
)
def test_bad_training_rules_are_refused(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})  # type: ignore[arg-type]


def test_screens_take_a_different_slice_of_the_validation_sums_each_step() -> None:
    _, validation = loop.start(TrainConfig(bits=8))
    first, second = validation.screen(0), validation.screen(1)
    assert first[0].shape == (8, stopping.SCREEN_SUMS, 2)
    assert not np.array_equal(first[0], second[0])
    seen = np.concatenate([validation.screen(k)[0] for k in range(16)], axis=1)  # 16 x 1024 sums
    rows = seen.transpose(1, 0, 2).reshape(seen.shape[1], -1)  # one row per sum
    assert np.unique(rows, axis=0).shape[0] == validation.x.shape[1] == 16384  # each one once


def test_the_whole_set_runs_less_often_as_its_runs_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """A network a few sums short passes most screens: the whole validation set then runs
    EVAL_GAP steps apart at first, and EVAL_GAP more apart after every EVAL_WIDEN failures."""
    state, validation = loop.start(TrainConfig(long_bits=0))
    total = validation.x.shape[1]
    # Every screen passes; the whole set never does.
    monkeypatch.setattr(
        stopping, "accuracy", lambda m, x, y, **k: 0.999 if x.shape[1] == total else 1.0
    )
    for step in range(1, 200):
        state.step = step
        stopping.evaluate_if_due(state, validation, show=False)
    runs = list(state.history.eval_step)
    gaps = np.diff(runs).tolist()
    assert runs[0] == 1 and len(gaps) >= 3 * stopping.EVAL_WIDEN
    for failed, gap in enumerate(gaps, start=1):
        assert gap == stopping.EVAL_GAP * (1 + failed // stopping.EVAL_WIDEN)
    assert gaps[: stopping.EVAL_WIDEN - 1] == [stopping.EVAL_GAP] * (stopping.EVAL_WIDEN - 1)
    assert max(gaps) > 2 * stopping.EVAL_GAP  # it widened


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_default_learning_rates_follow_the_loss(optimizer: str) -> None:
    """bce's gradient is up to 4 times mse's: plain SGD and momentum take smaller default
    steps on it (the full rate saturates a GRU, which then never solves); Adam and Adagrad,
    which divide the gradient's scale away, do not."""
    mse, bce = (
        make_optimizer(TrainConfig(optimizer=optimizer, loss=loss)).lr for loss in ("mse", "bce")
    )
    assert mse == DEFAULT_LR[optimizer]
    assert bce == (mse if optimizer in ("adam", "adagrad") else mse / 4)
    assert make_optimizer(TrainConfig(optimizer=optimizer, lr=0.5)).lr == 0.5


def test_long_sums_failed_for_long_are_tried_less_often_and_on_more_sums(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each round of LONG_STEPS steps that the long sums keep failing, they are tried
    LONG_EVERY steps less often, and one more block of LONG_SUMS fresh ones must pass too:
    a network that fails now and then does not pass by luck at the hundredth try."""
    state, validation = loop.start(TrainConfig(bits=8, long_bits=24))
    solved_short(state)  # at step 0
    tried: list[tuple[int, int]] = []  # (step, block) of each block of long sums evaluated
    blocks = [validation.long_block(b)[0] for b in range(stopping.LONG_BLOCKS)]
    passing = {0}  # the blocks the network gets right (none in the first round)

    def fake(model: object, x: np.ndarray, y: np.ndarray, **k: object) -> float:
        if x.shape[:2] == (24, LONG_SUMS):
            block = next(b for b, xb in enumerate(blocks) if np.array_equal(x, xb))
            tried.append((state.step, block))
            return 1.0 if block in passing and state.step >= 2 * stopping.LONG_STEPS else 0.99
        return 1.0

    monkeypatch.setattr(stopping, "accuracy", fake)

    def run(steps: range) -> None:
        for step in steps:
            state.step = step
            stopping.evaluate_if_due(state, validation, show=False)
            if len(state.history.eval_step) > 1:  # passed: training would stop here
                return

    def rounds(step: int) -> int:
        return 1 + (step - stopping.LONG_STEPS) // stopping.LONG_STEPS

    last = 12 * stopping.LONG_STEPS  # rounds(last) > LONG_BLOCKS
    run(range(stopping.LONG_STEPS + 1, last))  # block 0 passes from round 2 on, block 1 never
    passing.update(range(stopping.LONG_BLOCKS - 1))  # then every block but the last passes
    run(range(last, 2 * last))
    assert list(state.history.eval_step) == [0]  # never passed: a further block failed
    for step, block in tried:
        assert step % (stopping.LONG_EVERY * rounds(step)) == 0  # tried less often each round
        assert block < min(rounds(step), stopping.LONG_BLOCKS)  # on more blocks
    assert {block for step, block in tried if step < last} == {0, 1}
    assert max(block for _, block in tried) == stopping.LONG_BLOCKS - 1
    passing.add(stopping.LONG_BLOCKS - 1)  # now it gets them all right
    run(range(2 * last, 3 * last))
    due = [s for s in range(2 * last, 3 * last) if s % (stopping.LONG_EVERY * rounds(s)) == 0]
    assert state.history.eval_step[-1] == due[0]  # it passes at the first step due
    assert not np.array_equal(blocks[0], blocks[1]) and not np.array_equal(blocks[1], blocks[2])
    assert validation.long is not None and np.array_equal(blocks[0], validation.long[0])
