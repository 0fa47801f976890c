"""What a training run is: its config, its history, where it stands, and what it returns.

A `TrainConfig` decides a run (the same config gives the same weights); a `TrainState` is
everything its next step depends on, which is also what a checkpoint holds (files/); a
`History` is its curves; a `TrainResult` what `loop.train` returns. The rules that move a
state forward are beside this module: the loop (loop.py), what is evaluated when
(stopping.py) and how (evaluation.py).
"""

from __future__ import annotations

import array
import math
import signal
from dataclasses import dataclass, field, fields

import numpy as np

from ..cells import CELLS, Cell
from ..cells.activations import ACTIVATIONS
from ..cells.losses import losses_of
from ..core.limits import MAX_HIDDEN, check_elements
from ..core.validate import DTYPE_NAMES, check_choice, check_size
from .bits import MAX_ALL_PAIRS_BITS
from .evaluation import LONG_SUMS, VALIDATION_SUMS
from .optim import SGD, Adagrad, Adam

OPTIMIZERS = ("sgd", "momentum", "adam", "adagrad")
#: The learning rates that solve 8-bit addition reliably with the default batch on the mse
#: loss (docs/decisions.md) ...
DEFAULT_LR = {"sgd": 3.0, "momentum": 0.3, "adam": 0.1, "adagrad": 0.1}
#: ... and the share of them taken on bce, whose gradient dL/dz = p - y is up to 4 times
#: mse's (p - y) p (1 - p): SGD and momentum at the full rate saturate a GRU that then
#: never solves; Adam and Adagrad divide the gradient's scale away.
BCE_LR_SHARE = {"sgd": 0.25, "momentum": 0.25, "adam": 1.0, "adagrad": 1.0}
#: Once the validation sums are solved, batch k holds sums of config.bits times
#: LONG_MIX[k % 4] bits (at most long_bits): the carry rule, learned on short sums, is then
#: made to hold over long ones, which short sums alone do not teach (docs/decisions.md).
LONG_MIX = (1, 2, 4, 8)


@dataclass
class TrainConfig:
    """Everything that decides a training run; the same config and seed give the same weights."""

    bits: int = 8
    cell: str = "rnn"  # a key of cells.CELLS: "rnn" | "lstm" | "gru"
    hidden: int = 16
    activation: str = "sigmoid"  # the RNN's; the gated cells have their own
    bias: bool = False
    # bce, not the tutorial's mse: its gradient does not fade as an output nears its target,
    # so training keeps widening the margins, and long sums come out exact more often
    # (docs/decisions.md)
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
            ("loss", losses_of("sigmoid")),  # the adder's one output bit
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
#: What updates it: any of the optimisers that OPTIMIZERS names.
Optimizer = SGD | Adam | Adagrad


def make_model(config: TrainConfig, rng: np.random.Generator) -> Model:
    """A fresh network of the config's cell for the adder: 2 inputs, 1 output."""
    cell = CELLS[config.cell]
    options = {"activation": config.activation} if cell.activations else {}
    return cell(2, config.hidden, 1, bias=config.bias, dtype=config.dtype, seed=rng, **options)


def default_lr(optimizer: str, loss: str) -> float:
    """The learning rate an optimizer takes on a loss unless told otherwise."""
    return DEFAULT_LR[optimizer] * (BCE_LR_SHARE[optimizer] if loss == "bce" else 1.0)


def make_optimizer(config: TrainConfig) -> Optimizer:
    """The optimizer that `config` names, at its learning rate or the default one."""
    if config.optimizer not in DEFAULT_LR:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {config.optimizer!r}")
    lr = default_lr(config.optimizer, config.loss) if config.lr is None else config.lr
    return optimizer_for(config.optimizer, lr, config.momentum)


def optimizer_for(name: str, lr: float, momentum: float = 0.9) -> Optimizer:
    """The optimizer OPTIMIZERS calls `name`, at learning rate lr (momentum: momentum's m)."""
    if name == "sgd":
        return SGD(lr)
    if name == "momentum":
        return SGD(lr, momentum=momentum)
    if name == "adagrad":
        return Adagrad(lr)
    return Adam(lr)


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
    sums asked for; see stopping.evaluate_if_due).
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
    interrupted: signal.Signals | None = None  # the signal that stopped it early (loop.py)


@dataclass
class TrainState:
    """Where a run stands: everything its next step depends on, and what a checkpoint holds."""

    config: TrainConfig
    model: Model
    optimizer: Optimizer
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
