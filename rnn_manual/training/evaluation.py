"""How right a model is: exact-match accuracy on sums, run in passes that fit in memory.

A sum is right when every output bit, rounded at 0.5, equals its target. Long sums and
large sets are run a segment of steps and a chunk of sums at a time (`outputs`, `accuracy`),
large chunks in parts on several threads, so that no pass holds more than PASS_ELEMENTS
values. `add` runs the same passes to add two numbers, the command line's report sizes
itself with `affordable_sums`, and training is evaluated on `validation_set` and `long_sums`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..cells import Cell
from ..core.limits import check_elements
from ..core.threads import parts, run_parts
from .bits import MAX_ALL_PAIRS_BITS, addition_examples, all_pairs, random_addition_batch

Array = NDArray[np.floating]
#: Told how far long work has got: (work done, all the work), in any unit.
OnProgress = Callable[[int, int], None]

#: Beyond MAX_ALL_PAIRS_BITS, "solved" is decided on this many fixed random sums.
VALIDATION_SUMS = 16384
#: Random sums of a run's long_bits bits that must be exact too before training stops.
LONG_SUMS = 256

#: Most values in one array of an evaluation pass (32 MiB of float64): passes over more sums
#: than that are split, which also runs faster, NumPy's work arrays staying small.
PASS_ELEMENTS = 1 << 22
#: Sums longer than this many bits are run a segment of this many steps at a time ...
SEGMENT = 1 << 14
#: ... and long sums in shorter segments, of no fewer steps than this, where that lets one
#: pass take more sums at each step: every step costs a dozen NumPy calls however few sums
#: it holds, so many sums a step over fewer steps is the faster shape (benchmarks/README.md).
SHORTEST_SEGMENT = 16
#: Most multiply-adds of one line of the report after training (a few seconds of NumPy on
#: two cores): a large model is reported on fewer sums (see affordable_sums).
REPORT_WORK = 1 << 32
#: A pass over fewer sums than this costs about as much as one over this many: each step
#: reads all the weights, however few sums it computes.
SMALLEST_PASS = 8


def exact_match(p: Array, y: Array) -> NDArray[np.bool_]:
    """Per sequence: is every output bit, rounded at 0.5, equal to its target? Shape (B,)."""
    return ((p > 0.5) == (y > 0.5)).all(axis=(0, 2))


def accuracy(
    model: Cell,
    x: Array,
    y: Array,
    chunk: int = 16384,
    progress: OnProgress | None = None,
) -> float:
    """Fraction of the sequences in x: (T, B, I) whose every output bit is right.

    Runs `chunk` sums at a time, fewer where a pass of SHORTEST_SEGMENT steps would hold
    more than PASS_ELEMENTS values, and each chunk a segment of time steps at a time (see
    `outputs`): as many steps as keep a pass within PASS_ELEMENTS, at most SEGMENT. A sum
    whose hidden state overflows (an unbounded relu on long sums) counts as wrong.
    progress: told (sum-bits done, sum-bits in all) after each pass.
    """
    T, B = x.shape[0], x.shape[1]
    width = model.state_width
    chunk = max(1, min(chunk, B, PASS_ELEMENTS // ((min(T, SHORTEST_SEGMENT) + 1) * width)))
    segment = max(1, min(T, SEGMENT, PASS_ELEMENTS // (chunk * width) - 1))
    check_elements("one sequence's pass (bits x state)", segment + 1, width)
    right = 0
    for start in range(0, B, chunk):
        n = min(chunk, B - start)

        def count_right(rows: slice, start: int = start, n: int = n) -> int:
            """How many of the sums start + rows are right in every bit."""
            part = slice(start + rows.start, start + rows.stop)  # of all B sums
            correct = np.ones(rows.stop - rows.start, dtype=bool)  # every bit right so far
            for t, trace, overflowed in outputs(model, x[:, part], segment):
                steps = len(trace.p)
                correct &= exact_match(trace.p, y[t : t + steps, part]) & ~overflowed
                if progress is not None and rows.start == 0:  # the first part speaks for all
                    progress(start * T + (t + steps) * n, B * T)
            return int(correct.sum())

        # A large chunk runs in parts on several threads (core/threads.py).
        right += sum(run_parts(count_right, parts(n, width)))
    return right / B


def outputs(
    model: Cell, x: Array, segment: int = SEGMENT
) -> Iterator[tuple[int, Any, NDArray[np.bool_]]]:
    """The model's passes over the sums x: (T, B, I), `segment` time steps at a time.

    Yields (t, trace, overflowed): the trace of steps t to t + segment (trace.z, trace.p:
    (segment, B, O)), and overflowed: (B,) which sums' state has overflowed so far (their
    outputs are meaningless from there on). Each segment starts from the states the one
    before ended in, so together they are one pass over x that holds only a segment's
    states at a time.
    """
    states: dict[str, Any] = {}
    overflowed = np.zeros(x.shape[1], dtype=bool)
    for t in range(0, x.shape[0], segment):
        trace = model.run(x[t : t + segment], **states)
        # The state each sum ends the segment in ("h0" starts from trace.h[-1]); an
        # overflowed one (inf or NaN) restarts from zeros, its sum already lost.
        states = {}
        for name in model.states:
            state = np.array(getattr(trace, name.removesuffix("0"))[-1])  # (B, H)
            lost = ~np.isfinite(state).all(axis=1)
            state[lost] = 0.0
            overflowed |= lost
            states[name] = state
        yield t, trace, overflowed


def affordable_sums(model: Cell, bits: int, wanted: int, work: int = REPORT_WORK) -> int:
    """How many of `wanted` sums of `bits` bits the model can be run on within `work`
    multiply-adds: all of them for the models the manual shows (docs/command-line.md), fewer
    (or none) for large ones.

    One step of one sum costs x_t and h_{t-1} times the stacked input and recurrent weights,
    (I + H) x state, and h_t times the output weights, H x O; a pass costs at least
    SMALLEST_PASS sums' work.
    """
    I, H, O = model.input_size, model.hidden_size, model.output_size
    per_sum = bits * ((I + H) * model.state_width + H * O)
    if per_sum * min(wanted, SMALLEST_PASS) > work:
        return 0
    return min(wanted, work // per_sum)


def validation_set(bits: int, dtype: str, rng: np.random.Generator) -> tuple[Array, Array]:
    """All pairs of `bits`-bit operands where that is few enough, else a fixed random sample."""
    if bits <= MAX_ALL_PAIRS_BITS:
        return addition_examples(*all_pairs(bits), dtype=dtype)
    return random_addition_batch(rng, VALIDATION_SUMS, bits, dtype)


def long_sums(seed: int, bits: int, dtype: str, block: int = 0) -> tuple[Array, Array]:
    """Block `block` of LONG_SUMS random sums of `bits` bits, for a run of seed `seed`: each
    block from a generator of its own, so that making one draws nothing from the run's."""
    rng = np.random.default_rng([seed, bits] + ([block] if block else []))
    return random_addition_batch(rng, LONG_SUMS, bits, dtype)
