"""When a run is done: which sums it must get exactly right, and when they are evaluated.

A run is solved when a full evaluation gets every validation sum right (all the pairs of
config.bits-bit operands, or VALIDATION_SUMS random sums beyond MAX_ALL_PAIRS_BITS) and,
where config.long_bits asks for them, every one of LONG_SUMS random sums of that length.
A full evaluation costs many training steps' work, so it is made only when cheaper tries
(a slice of the sums, a few of the long ones) have passed, and no more often than the
rules below allow; each rule says what it buys, and docs/decisions.md what was measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .evaluation import accuracy, long_sums, validation_set
from .progress import Progress
from .state import TrainConfig, TrainState

Array = NDArray[np.floating]

#: A batch all right is first confirmed on this many validation sums (a different slice of
#: them each time); only if those are all right too is the whole set run ...
SCREEN_SUMS = 1024
#: ... and not within this many steps of the last time it was (a network a few sums short
#: passes most screens, and would otherwise run the whole set at every step) ...
EVAL_GAP = 5
#: ... a gap that widens by EVAL_GAP after every this many full runs that failed: one costs
#: many training steps' work (docs/decisions.md), and a network can stay one or two sums
#: short for tens of steps.
EVAL_WIDEN = 4
#: Of the long sums, these are tried first, to skip the whole set while some are still
#: wrong, at most once every LONG_EVERY steps (each try costs a few steps' work).
LONG_SCREEN = 16
LONG_EVERY = 20
#: A network still failing the long sums LONG_STEPS steps after it first may try must then
#: also add a further LONG_SUMS fresh ones, and LONG_SUMS more for every LONG_STEPS more
#: steps, up to this many blocks of LONG_SUMS in all; and it is tried every 2 x LONG_EVERY
#: steps, then 3 x, and so on. A network that gets 99% of long sums right passes 256 of
#: them by luck with probability 0.99**256, about once in 13 tries: tried often, it would
#: stop too soon.
LONG_BLOCKS = 8
#: Batches mix in long sums (state.LONG_MIX) for at least this many steps before the long
#: sums are tried: a network that gets LONG_SUMS long sums right soon after the short ones
#: can still miss one long sum in a few hundred, and these steps make it hold.
LONG_STEPS = 200


@dataclass
class Validation:
    """The sums a run is evaluated on: all (or VALIDATION_SUMS of) the sums of config.bits
    bits, and the first block of long sums of config.long_bits bits (None without long
    sums; `long_block` makes the further blocks)."""

    x: Array
    y: Array
    long: tuple[Array, Array] | None
    order: NDArray[np.intp]  # the validation sums in the order screens take them
    config: TrainConfig

    def long_block(self, block: int) -> tuple[Array, Array]:
        """Block `block` of the long sums (block 0: self.long), made when asked for: a run
        that needs further blocks (see LONG_BLOCKS) holds one at a time."""
        config = self.config
        return long_sums(config.seed, config.long_bits, config.dtype, block)

    def screen(self, step: int) -> tuple[Array, Array]:
        """SCREEN_SUMS validation sums, a different slice of them at each step."""
        total = self.x.shape[1]
        start = step * SCREEN_SUMS % total
        pick = np.sort(np.take(self.order, np.arange(start, start + SCREEN_SUMS), mode="wrap"))
        return self.x[:, pick], self.y[:, pick]


def validation_for(config: TrainConfig, rng: np.random.Generator) -> Validation:
    """The validation sums (drawn from rng when there are too many to take all) and the long
    sums (from generators of their own, so that they leave the batches unchanged)."""
    x, y = validation_set(config.bits, config.dtype, rng)
    order = np.random.default_rng([config.seed, 1]).permutation(x.shape[1])
    validation = Validation(x, y, None, order, config)
    if config.holds_long:
        validation.long = validation.long_block(0)
    return validation


def eval_gap(failed: int) -> int:
    """Steps to wait after a full evaluation before the next, once `failed` have failed."""
    return EVAL_GAP * (1 + failed // EVAL_WIDEN)


def evaluate_if_due(
    state: TrainState, validation: Validation, show: bool, since: float | None = None
) -> None:
    """The evaluations that can end a run, made when a batch is all right, the cheapest and
    the likeliest to fail first; a full evaluation of the validation sums is made, and added
    to the history, only when every one before it has passed.

    Before the short sums are solved: a slice of SCREEN_SUMS validation sums (a different one
    each step), then all of them, no sooner than eval_gap steps after the last time. After
    (with long sums): every LONG_EVERY steps once LONG_STEPS steps of long batches have
    passed (less often, and on further blocks of long sums, the longer they fail: see
    LONG_BLOCKS), the first LONG_SCREEN long sums, then all LONG_SUMS and those further
    blocks, then every validation sum again. show: progress on stderr during the
    evaluations once the output has been silent progress.EVERY seconds since `since` (when
    the caller last wrote a line, time.monotonic(); None: now), however many they are.
    """
    model, total = state.model, validation.x.shape[1]

    def right(what: str, x: Array, y: Array) -> float:
        """accuracy(model, x, y), its progress on stderr (if `show`) naming `what`."""
        nonlocal since
        if not show:
            return accuracy(model, x, y)
        watch = Progress(f"step {state.step}: evaluating {what}", since=since)
        try:
            return accuracy(model, x, y, progress=watch)
        finally:
            watch.close()
            since = watch.last

    long_right = math.nan  # not measured
    if validation.long is not None and state.short_solved:
        # Rounds of LONG_STEPS steps since the long sums could first have passed: each round
        # they fail, they are tried less often, and more of them must pass (LONG_BLOCKS).
        rounds = 1 + (state.steps_since_short_solved() - LONG_STEPS) // LONG_STEPS
        if rounds < 1 or state.step % (LONG_EVERY * rounds):
            return
        x_long, y_long = validation.long
        bits = validation.config.long_bits
        screen = x_long[:, :LONG_SCREEN], y_long[:, :LONG_SCREEN]
        if right(f"{LONG_SCREEN} of the {bits}-bit sums", *screen) < 1.0:
            return
        long_right = right(f"the {x_long.shape[1]} {bits}-bit sums", x_long, y_long)
        if long_right < 1.0:
            return
        for block in range(1, min(rounds, LONG_BLOCKS)):
            further = validation.long_block(block)
            if right(f"{further[0].shape[1]} further {bits}-bit sums", *further) < 1.0:
                return
    else:
        evaluated = state.history.eval_step  # all failed, or training would have moved on
        if evaluated and state.step - evaluated[-1] < eval_gap(len(evaluated)):
            return
        if total >= 2 * SCREEN_SUMS:
            screen = validation.screen(state.step)
            if right(f"{SCREEN_SUMS} of the {total} validation sums", *screen) < 1.0:
                return
    found = right(f"the {total} validation sums", validation.x, validation.y)
    state.history.eval_step.append(state.step)
    state.history.eval_accuracy.append(found)
    state.history.eval_long_accuracy.append(long_right)
