"""The training loop for the addition task, and exact-match evaluation."""

from __future__ import annotations

import array
import math
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..cells import CELLS, Cell
from ..cells.activations import ACTIVATIONS
from ..cells.losses import LOSSES
from ..core.limits import MAX_HIDDEN, check_elements
from ..core.threads import parts, run_parts
from ..core.validate import DTYPE_NAMES, blas_invalid_flag_ignored, check_choice, check_size
from .bits import (
    MAX_ALL_PAIRS_BITS,
    addition_examples,
    all_pairs,
    random_addition_batch,
)
from .optim import SGD, Adam, clip_grad_norm
from .progress import EVERY, Progress

Array = NDArray[np.floating]
Log = Callable[[str], None]
#: Told how far long work has got: (work done, all the work), in any unit.
OnProgress = Callable[[int, int], None]

OPTIMIZERS = ("sgd", "momentum", "adam")
#: Learning rates that solve 8-bit addition reliably (5 of 5 seeds) with the default batch
#: on the mse loss ...
DEFAULT_LR = {"sgd": 3.0, "momentum": 0.3, "adam": 0.1}
#: ... and the share of them taken on bce, whose gradient dL/dz = p - y is up to 4 times
#: mse's (p - y) p (1 - p): SGD and momentum at the full rate saturate a GRU that then
#: never solves; Adam divides the gradient's scale away.
BCE_LR_SHARE = {"sgd": 0.25, "momentum": 0.25, "adam": 1.0}

#: Beyond MAX_ALL_PAIRS_BITS, "solved" is judged on this many fixed random sums.
VALIDATION_SUMS = 16384

#: Most values in one array of an evaluation pass (32 MiB of float64): passes over more sums
#: than that are split, which also runs faster, NumPy's work arrays staying small.
PASS_ELEMENTS = 1 << 22
#: Sums longer than this many bits are run a segment of this many steps at a time ...
SEGMENT = 1 << 14
#: ... and long sums in shorter segments, of no fewer steps than this, where that lets one
#: pass take more sums at each step: every step costs a dozen NumPy calls however few sums
#: it holds, so 1000 1024-bit LSTM sums run about 3x faster as 1000 sums x 64 steps at a
#: time than as 63 sums x 1024 steps (measured in benchmarks/: see its README).
SHORTEST_SEGMENT = 16
#: Most multiply-adds of one line of the report after training (a few seconds of NumPy on
#: two cores): a large model is reported on fewer sums (see affordable_sums).
REPORT_WORK = 1 << 32
#: A pass over fewer sums than this costs about as much as one over this many: each step
#: reads all the weights, however few sums it computes.
SMALLEST_PASS = 8
#: A run whose loss has not fallen by 1% over this many steps is told so, once.
STALL_STEPS = 1000
#: A batch all right is first confirmed on this many validation sums (a different slice of
#: them each time); only if those are all right too is the whole set run ...
SCREEN_SUMS = 1024
#: ... and not within this many steps of the last time it was (a network a few sums short
#: passes most screens, and would otherwise run the whole set at every step) ...
EVAL_GAP = 5
#: ... a gap that widens by EVAL_GAP after every this many full runs that failed: one costs
#: about as much as 60 training steps of a gated cell, and a GRU can stay one or two sums
#: short for 50 steps (one, seed 0, ran the whole set 10 times in vain before; 7 now).
EVAL_WIDEN = 4
#: Random sums of config.long_bits bits that must be exact too before training stops ...
LONG_SUMS = 256
#: ... of which these are tried first, to skip the whole set while some are still wrong,
#: at most once every LONG_EVERY steps (each try costs a few steps' work).
LONG_SCREEN = 16
LONG_EVERY = 20
#: A network still failing the long sums LONG_STEPS steps after it first may try must then
#: also add a further LONG_SUMS fresh ones, and LONG_SUMS more for every LONG_STEPS more
#: steps, up to this many blocks of LONG_SUMS in all; and it is tried every 2 x LONG_EVERY
#: steps, then 3 x, and so on. Tried every LONG_EVERY steps, a network at 99% passes 256
#: sums by luck about once in 13 tries (a GRU did, at step 980, and then added only 98.9%
#: of random 1024-bit sums; made to go on, it reached 100%).
LONG_BLOCKS = 8
#: Once the validation sums are solved, batch k holds sums of config.bits times
#: LONG_MIX[k % 4] bits (at most long_bits): the carry rule, learned on short sums, is
#: then made to hold over long ones, which short sums alone do not teach (a GRU that
#: adds every 8-bit pair exactly can get no 1024-bit sum right).
LONG_MIX = (1, 2, 4, 8)
#: ... for at least this many steps: a network that gets LONG_SUMS long sums right soon
#: after the short ones can still miss one long sum in a few hundred, and these steps make
#: it hold (train's defaults, seeds 0-4, 1000 random 1024-bit sums: every RNN and GRU adds
#: them all; the LSTM all, or all but one).
LONG_STEPS = 200


@dataclass
class TrainConfig:
    """Everything that decides a training run; the same config and seed give the same weights."""

    bits: int = 8
    cell: str = "rnn"  # a key of cells.CELLS: "rnn" | "lstm" | "gru"
    hidden: int = 16
    activation: str = "sigmoid"  # the RNN's; the gated cells have their own
    bias: bool = False
    # bce, not the tutorial's mse: its gradient does not fade as an output nears its target,
    # so training keeps widening the margins, and long sums come out exact more often (1024
    # bits, 10,000 sums a model, seeds 0-9: GRUs missed 35 sums in 100,000 with mse, 3 with
    # bce; LSTMs 1 and 12; RNNs none either way)
    loss: str = "bce"
    optimizer: str = "adam"
    lr: float | None = None  # None: default_lr(optimizer, loss)
    momentum: float = 0.9
    batch: int = 64
    steps: int = 5000
    seed: int = 0
    dtype: str = "float64"
    log_every: int = 100
    clip: float | None = None  # max gradient norm; None: no clipping
    truncate: int | None = None  # K: truncated BPTT over chunks of K steps; None: full BPTT
    long_bits: int = 1024  # sums this long must be exact too before training stops; 0: no

    def __post_init__(self) -> None:
        """ValueError for a config that cannot train or would exhaust memory, before any work."""
        for name in ("bits", "hidden", "batch", "steps", "log_every"):
            check_size(name, getattr(self, name))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        for name, choices in (
            ("cell", CELLS),
            ("activation", ACTIVATIONS),
            ("loss", LOSSES),
            ("optimizer", OPTIMIZERS),
            ("dtype", DTYPE_NAMES),
        ):
            check_choice(name, getattr(self, name), choices)
        if not isinstance(self.bias, bool):
            raise ValueError(f"bias must be True or False, got {self.bias!r}")
        for name in ("lr", "clip"):
            value = getattr(self, name)
            if value is not None and not (_is_real(value) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if self.truncate is not None:
            check_size("truncate", self.truncate)
        long_bits = self.long_bits
        if isinstance(long_bits, bool) or not isinstance(long_bits, int) or long_bits < 0:
            raise ValueError(f"long_bits must be a non-negative integer, got {long_bits!r}")
        if not (_is_real(self.momentum) and 0.0 <= self.momentum < 1.0):
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        check_size("hidden", self.hidden, MAX_HIDDEN)
        # A pass keeps (bits + 1) x batch x state values: the state is 4H wide for the LSTM's
        # gates, 3H for the GRU's, H for the RNN.
        width = CELLS[self.cell].width * self.hidden
        check_elements("a training pass (bits x batch x state)", self.bits + 1, self.batch, width)
        if self.bits > MAX_ALL_PAIRS_BITS:
            check_elements("the validation set (bits x sums x 2)", self.bits, VALIDATION_SUMS, 2)
        if self.long_bits > self.bits:
            longest = min(self.bits * LONG_MIX[-1], self.long_bits)
            check_elements(
                "a long training pass (bits x batch x state)", longest + 1, self.batch, width
            )
            check_elements("the long sums (bits x sums x 2)", self.long_bits, LONG_SUMS, 2)

    @property
    def holds_long(self) -> bool:
        """Must long sums be exact too? (Not if they are no longer than those trained on.)"""
        return self.long_bits > self.bits


#: What training asks of a network: any of the cells (RNN, LSTM, GRU).
Model = Cell


def make_model(config: TrainConfig, rng: np.random.Generator) -> Model:
    """A fresh network of the config's cell for the adder: 2 inputs, 1 output."""
    cell = CELLS[config.cell]
    options = {"activation": config.activation} if cell.activations else {}
    return cell(2, config.hidden, 1, bias=config.bias, dtype=config.dtype, seed=rng, **options)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _floats() -> array.array[float]:
    return array.array("d")


def _ints() -> array.array[int]:
    return array.array("q")


@dataclass
class History:
    """The curves of a run: per step, its loss and batch accuracy; per full evaluation, its
    step, its accuracy on the validation sums and on the LONG_SUMS long sums (1.0: every
    one right, measured first; NaN: not measured, the short sums not yet solved or no long
    sums asked for; see `check`).
    Compact arrays (float64, int64: 8 bytes a value, not the 32 of a list of Python floats)
    that training appends to; named as a model file's entries."""

    loss: array.array[float] = field(default_factory=_floats)
    batch_accuracy: array.array[float] = field(default_factory=_floats)
    eval_step: array.array[int] = field(default_factory=_ints)
    eval_accuracy: array.array[float] = field(default_factory=_floats)
    eval_long_accuracy: array.array[float] = field(default_factory=_floats)

    def __eq__(self, other: object) -> bool:
        """Bit for bit, so that two histories with the same NaN (not measured) are equal."""
        if not isinstance(other, History):
            return NotImplemented
        return all(
            getattr(self, f.name).tobytes() == getattr(other, f.name).tobytes()
            for f in fields(self)
        )


@dataclass
class TrainResult:
    model: Model
    steps: int  # updates made
    solved: bool  # every validation sum exactly right
    seconds: float
    history: History
    interrupted: bool = False  # stopped early by Ctrl-C (SIGINT)


@dataclass
class TrainState:
    """Where a run stands: everything its next step depends on, and what a checkpoint holds."""

    config: TrainConfig
    model: Model
    optimizer: SGD | Adam
    rng: np.random.Generator  # draws the next batch
    step: int = 0  # updates made
    history: History = field(default_factory=History)

    @property
    def solved(self) -> bool:
        """Did the last full evaluation get every validation sum right, and every long sum
        where the config asks for them? (Training stops there.)"""
        history = self.history
        if not history.eval_accuracy or history.eval_accuracy[-1] != 1.0:
            return False
        return not self.config.holds_long or history.eval_long_accuracy[-1] == 1.0

    @property
    def short_solved(self) -> bool:
        """Has a full evaluation got every validation sum right? From then on batches mix
        in longer sums (LONG_MIX), if the config asks for long sums."""
        return 1.0 in self.history.eval_accuracy

    def steps_since_short_solved(self) -> int:
        """Steps made since the validation sums were first all right (short_solved)."""
        history = self.history
        return self.step - history.eval_step[history.eval_accuracy.index(1.0)]

    def batch_bits(self) -> int:
        """How many bits the sums of the next batch have."""
        config = self.config
        if not (config.holds_long and self.short_solved):
            return config.bits
        return min(config.bits * LONG_MIX[self.step % len(LONG_MIX)], config.long_bits)


class Diverged(ArithmeticError):
    """Training met a non-finite loss, gradient or weight."""


def default_lr(optimizer: str, loss: str) -> float:
    """The learning rate an optimizer takes on a loss unless told otherwise."""
    return DEFAULT_LR[optimizer] * (BCE_LR_SHARE[optimizer] if loss == "bce" else 1.0)


def make_optimizer(config: TrainConfig) -> SGD | Adam:
    """The optimizer that `config` names, at its learning rate or the default one."""
    if config.optimizer not in DEFAULT_LR:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {config.optimizer!r}")
    lr = default_lr(config.optimizer, config.loss) if config.lr is None else config.lr
    if config.optimizer == "sgd":
        return SGD(lr)
    if config.optimizer == "momentum":
        return SGD(lr, momentum=config.momentum)
    return Adam(lr)


def exact_match(p: Array, y: Array) -> NDArray[np.bool_]:
    """Per sequence: is every output bit, rounded at 0.5, equal to its target? Shape (B,)."""
    return ((p > 0.5) == (y > 0.5)).all(axis=(0, 2))


def accuracy(
    model: Model,
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

        def judge(rows: slice, start: int = start, n: int = n) -> int:
            """How many of the sums start + rows are right in every bit."""
            sums = slice(start + rows.start, start + rows.stop)
            correct = np.ones(rows.stop - rows.start, dtype=bool)  # every bit right so far
            for t, trace, overflowed in outputs(model, x[:, sums], segment):
                steps = len(trace.p)
                correct &= exact_match(trace.p, y[t : t + steps, sums]) & ~overflowed
                if progress is not None and rows.start == 0:  # the first part speaks for all
                    progress(start * T + (t + steps) * n, B * T)
            return int(correct.sum())

        # A large chunk runs in parts on several threads (core/threads.py).
        right += sum(run_parts(judge, parts(n, width)))
    return right / B


def outputs(
    model: Model, x: Array, segment: int = SEGMENT
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


def affordable_sums(model: Model, bits: int, wanted: int, work: int = REPORT_WORK) -> int:
    """How many of `wanted` sums of `bits` bits the model can be run on within `work`
    multiply-adds: all of them for the models of the README, fewer (or none) for large ones.

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


@dataclass
class Checks:
    """The sums a run is judged on: all (or VALIDATION_SUMS of) the sums of config.bits
    bits, and LONG_SUMS random sums of config.long_bits bits (None without long sums), the
    first of the blocks of long sums `long_block` makes."""

    x: Array
    y: Array
    long: tuple[Array, Array] | None
    order: NDArray[np.intp]  # the validation sums in the order screens take them
    config: TrainConfig

    def long_block(self, block: int) -> tuple[Array, Array]:
        """Block `block` of LONG_SUMS long sums, each from a generator of its own (block 0:
        self.long), made when asked for: a run that needs further blocks (see LONG_BLOCKS)
        holds one at a time."""
        config = self.config
        seed = [config.seed, config.long_bits] + ([block] if block else [])
        rng = np.random.default_rng(seed)
        return random_addition_batch(rng, LONG_SUMS, config.long_bits, config.dtype)

    def screen(self, step: int) -> tuple[Array, Array]:
        """SCREEN_SUMS validation sums, a different slice of them at each step."""
        total = self.x.shape[1]
        start = step * SCREEN_SUMS % total
        pick = np.sort(np.take(self.order, np.arange(start, start + SCREEN_SUMS), mode="wrap"))
        return self.x[:, pick], self.y[:, pick]


def checks(config: TrainConfig, rng: np.random.Generator) -> Checks:
    """The validation sums (drawn from rng when there are too many to take all) and the long
    sums (from a generator of their own, so that they leave the batches unchanged)."""
    x, y = validation_set(config.bits, config.dtype, rng)
    order = np.random.default_rng([config.seed, 1]).permutation(x.shape[1])
    judged = Checks(x, y, None, order, config)
    if config.holds_long:
        judged.long = judged.long_block(0)
    return judged


def start(config: TrainConfig) -> tuple[TrainState, Checks]:
    """A fresh run of `config` and the sums it is judged on; the same config gives the
    same run."""
    rng = np.random.default_rng(config.seed)
    model = make_model(config, rng)
    judged = checks(config, rng)
    return TrainState(config, model, make_optimizer(config), rng), judged


def train(
    config: TrainConfig,
    log: Log | None = print,
    *,
    resume: TrainState | None = None,
    checkpoint: Callable[[TrainState], None] | None = None,
    checkpoint_every: int = 0,
) -> TrainResult:
    """Train on random sums until every validation sum is exactly right or the steps run out.

    resume: the state of an earlier run of this same config (step budget aside) to continue;
    its weights then end bit for bit as if that run had never stopped.
    checkpoint: called with the state every `checkpoint_every` steps and when training stops,
    Ctrl-C included: a first Ctrl-C (SIGINT) stops after the current step, a second at once.
    Raises Diverged on a non-finite loss, gradient or weight, with no checkpoint of that state.
    """
    state, judged = start(config)
    if resume is not None:
        if replace(resume.config, steps=config.steps) != config:
            raise ValueError("cannot resume: the checkpoint was made with a different config")
        state = replace(resume, config=config)
    saved_at = None
    begin = logged = time.perf_counter()
    digits, warned = len(str(config.steps)), False
    with _stop_on_ctrl_c() as stop:
        while state.step < config.steps and not state.solved and not stop.requested:
            loss, batch_right = _step(state)
            # The checks cost many steps' work: make them only once a whole batch is right.
            if batch_right.all():
                check(state, judged, log is not None)
            # A line every log_every steps, and at least every EVERY seconds on slow runs.
            now = time.perf_counter()
            if log is not None and (
                state.step % config.log_every == 0 or state.solved or now - logged >= EVERY
            ):
                log(
                    f"step {state.step:{digits}d}/{config.steps}  loss {loss:8.4f}  "
                    f"batch exact {batch_right.mean():6.1%}"
                )
                logged = now
            if log is not None and not warned and state.step % STALL_STEPS == 0:
                hint = stall_hint(state)
                if hint:
                    log(hint)
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


def eval_gap(failed: int) -> int:
    """Steps to wait after a full evaluation before the next, once `failed` have failed."""
    return EVAL_GAP * (1 + failed // EVAL_WIDEN)


def check(state: TrainState, judged: Checks, show: bool) -> None:
    """The checks that can end a run, made when a batch is all right, the cheapest and the
    likeliest to fail first; a full evaluation of the validation sums is made, and added to
    the history, only when every check before it has passed.

    Before the short sums are solved: a slice of SCREEN_SUMS validation sums (a different one
    each step), then all of them, no sooner than eval_gap steps after the last time. After
    (with long sums): every LONG_EVERY steps once LONG_STEPS steps of long batches have
    passed (less often, and on further blocks of long sums, the longer they fail: see
    LONG_BLOCKS), the first LONG_SCREEN long sums, then all LONG_SUMS and those further
    blocks, then every validation sum again.
    """
    model, total = state.model, judged.x.shape[1]
    long_right = math.nan  # not measured
    if judged.long is not None and state.short_solved:
        # Rounds of LONG_STEPS steps since the long sums could first have passed: each round
        # they fail, they are tried less often, and more of them must pass (LONG_BLOCKS).
        rounds = 1 + (state.steps_since_short_solved() - LONG_STEPS) // LONG_STEPS
        if rounds < 1 or state.step % (LONG_EVERY * rounds):
            return
        x_long, y_long = judged.long
        if accuracy(model, x_long[:, :LONG_SCREEN], y_long[:, :LONG_SCREEN]) < 1.0:
            return
        long_right = accuracy(model, x_long, y_long)
        if long_right < 1.0:
            return
        for block in range(1, min(rounds, LONG_BLOCKS)):
            if accuracy(model, *judged.long_block(block)) < 1.0:
                return
    else:
        evaluated = state.history.eval_step  # all failed, or training would have moved on
        if evaluated and state.step - evaluated[-1] < eval_gap(len(evaluated)):
            return
        if total >= 2 * SCREEN_SUMS and accuracy(model, *judged.screen(state.step)) < 1.0:
            return
    checking = f"step {state.step}: checking the {total} validation sums"
    watch = Progress(checking) if show else None
    right = accuracy(model, judged.x, judged.y, progress=watch)
    if watch is not None:
        watch.close()
    state.history.eval_step.append(state.step)
    state.history.eval_accuracy.append(right)
    state.history.eval_long_accuracy.append(long_right)


def stall_hint(state: TrainState) -> str | None:
    """What to try, if the loss of the last STALL_STEPS steps is no lower (by 1%) than that
    of the STALL_STEPS before and the batch accuracy no higher (by a point); else None."""
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
    return (
        f"step {state.step}: no progress in the last {STALL_STEPS} steps (mean loss "
        f"{loss:.4f}); try --lr {try_lr:g} (now {lr:g}), or another --hidden (now "
        f"{config.hidden}) or --bits (now {config.bits})"
    )


def _step(state: TrainState) -> tuple[float, NDArray[np.bool_]]:
    """One update on a fresh random batch: the loss and which sums were right before it."""
    config, model = state.config, state.model
    bits = state.batch_bits()
    x, y = random_addition_batch(state.rng, config.batch, bits, config.dtype)
    # The batch is made here, in the model's dtype and shape, so the pass runs unchecked
    # (run_unchecked, backward_unchecked): at this size the checks cost a fifth of a step.
    zeros = [np.zeros((config.batch, config.hidden), dtype=config.dtype) for _ in model.states]
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            with blas_invalid_flag_ignored():
                trace = model.run_unchecked(x, *zeros)
            if not np.isfinite(trace.z).all():  # an overflow is left as inf or NaN
                raise FloatingPointError("the forward pass overflowed")
            value, dz = LOSSES[config.loss](trace.z, trace.p, y)
            if bits != config.bits:  # a long batch counts as a short one: the loss (a sum
                dz *= config.bits / bits  # over bits) per bit, times config.bits, so that
                value *= config.bits / bits  # its gradient keeps the short batches' scale
            loss = float(value)
            with blas_invalid_flag_ignored():
                all_grads = model.backward_unchecked(trace, dz, config.truncate)
            grads = {name: g for name, g in all_grads.items() if name in model.params}
            if not (math.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())):
                raise FloatingPointError(f"loss {loss:.4g} or a gradient is not finite")
            if config.clip is not None:
                clip_grad_norm(grads, config.clip)
            state.optimizer.step(model.params, grads)
            if not all(np.isfinite(w).all() for w in model.params.values()):
                raise FloatingPointError("a weight is not finite")
    except FloatingPointError as e:
        raise Diverged(
            f"training diverged at step {state.step + 1} ({e}); "
            "try a smaller learning rate or gradient clipping (--clip)"
        ) from None
    state.step += 1
    batch_right = exact_match(trace.p, y)
    state.history.loss.append(loss)
    state.history.batch_accuracy.append(float(batch_right.mean()))
    return loss, batch_right


@dataclass
class _StopRequest:
    requested: bool = False


@contextmanager
def _stop_on_ctrl_c() -> Iterator[_StopRequest]:
    """While inside, a first Ctrl-C (SIGINT) only sets .requested; a second one interrupts.

    Only the main thread can catch signals; elsewhere Ctrl-C keeps its usual effect.
    """
    stop = _StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum: int, frame: object) -> None:
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
