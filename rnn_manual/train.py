"""The training loop for the addition task, and exact-match evaluation."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .bits import (
    MAX_ALL_PAIRS_BITS,
    addition_examples,
    all_pairs,
    random_addition_batch,
)
from .losses import LOSSES
from .optim import SGD, Adam
from .rnn import RNN

Array = NDArray[np.floating]
Log = Callable[[str], None]

OPTIMIZERS = ("sgd", "momentum", "adam")
#: Learning rates that solve 8-bit addition reliably (5 of 5 seeds) with the default batch.
DEFAULT_LR = {"sgd": 3.0, "momentum": 0.3, "adam": 0.1}

#: Beyond MAX_ALL_PAIRS_BITS, "solved" is judged on this many fixed random sums.
VALIDATION_SUMS = 16384


@dataclass
class TrainConfig:
    """Everything that decides a training run; the same config and seed give the same weights."""

    bits: int = 8
    hidden: int = 16
    activation: str = "sigmoid"
    bias: bool = False
    loss: str = "mse"
    optimizer: str = "adam"
    lr: float | None = None  # None: DEFAULT_LR[optimizer]
    momentum: float = 0.9
    batch: int = 64
    steps: int = 5000
    seed: int = 0
    dtype: str = "float64"
    log_every: int = 100


@dataclass
class History:
    """Per-step training loss and batch accuracy, and the full evaluations made."""

    loss: list[float] = field(default_factory=list)
    batch_accuracy: list[float] = field(default_factory=list)
    evaluations: list[tuple[int, float]] = field(default_factory=list)  # (step, accuracy)


@dataclass
class TrainResult:
    model: RNN
    steps: int  # updates made
    solved: bool  # every validation sum exactly right
    seconds: float
    history: History


def make_optimizer(config: TrainConfig) -> SGD | Adam:
    """The optimizer that `config` names, at its learning rate or the default one."""
    if config.optimizer not in DEFAULT_LR:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {config.optimizer!r}")
    lr = DEFAULT_LR[config.optimizer] if config.lr is None else config.lr
    if config.optimizer == "sgd":
        return SGD(lr)
    if config.optimizer == "momentum":
        return SGD(lr, momentum=config.momentum)
    return Adam(lr)


def exact_match(p: Array, y: Array) -> NDArray[np.bool_]:
    """Per sequence: is every output bit, rounded at 0.5, equal to its target? Shape (B,)."""
    return ((p > 0.5) == (y > 0.5)).all(axis=(0, 2))


def accuracy(model: RNN, x: Array, y: Array, chunk: int = 16384) -> float:
    """Fraction of the sequences in x: (T, B, I) whose every output bit is right."""
    right = 0
    for start in range(0, x.shape[1], chunk):
        p = model.forward(x[:, start : start + chunk])
        right += int(exact_match(p, y[:, start : start + chunk]).sum())
    return right / x.shape[1]


def validation_set(bits: int, dtype: str, rng: np.random.Generator) -> tuple[Array, Array]:
    """All pairs of `bits`-bit operands where that is few enough, else a fixed random sample."""
    if bits <= MAX_ALL_PAIRS_BITS:
        return addition_examples(*all_pairs(bits), dtype=dtype)
    return random_addition_batch(rng, VALIDATION_SUMS, bits, dtype)


def train(config: TrainConfig, log: Log | None = print) -> TrainResult:
    """Train on random sums until every validation sum is exactly right or the steps run out."""
    if config.loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {config.loss!r}")
    rng = np.random.default_rng(config.seed)
    model = RNN(2, config.hidden, 1, config.activation, config.bias, config.dtype, seed=rng)
    optimizer = make_optimizer(config)
    x_val, y_val = validation_set(config.bits, config.dtype, rng)
    history = History()
    solved = False
    step = 0
    start = time.perf_counter()
    while step < config.steps and not solved:
        x, y = random_addition_batch(rng, config.batch, config.bits, config.dtype)
        trace = model.run(x)
        loss, dz = LOSSES[config.loss](trace.z, trace.p, y)
        batch_right = exact_match(trace.p, y)
        optimizer.step(model.params, model.backward(trace, dz))
        step += 1
        history.loss.append(loss)
        history.batch_accuracy.append(float(batch_right.mean()))
        # The full check costs many steps' work: make it only once a whole batch is right.
        if batch_right.all():
            val_accuracy = accuracy(model, x_val, y_val)
            history.evaluations.append((step, val_accuracy))
            solved = val_accuracy == 1.0
        if log is not None and (step % config.log_every == 0 or solved):
            log(f"step {step:5d}  loss {loss:8.4f}  batch exact {batch_right.mean():6.1%}")
    return TrainResult(model, step, solved, time.perf_counter() - start, history)
