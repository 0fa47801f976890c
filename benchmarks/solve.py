"""Time to solve: wall time until 8-bit addition is learnt, every one of the 128 x 128 pairs right.

The race, each contender median over the same seeds:
- "train": rnn_manual.training.loop.train(race_config(s)), `train`'s default run with the
  tutorial's loss and stopping rule: mse, and stop when every 8-bit pair is right
  (long_bits=0; the default goes on to make 1024-bit sums exact too, which neither of the
  others does);
- "torch autograd train": the same training written with torch autograd (below): same
  network, initial weights, batches, Adam and stopping rule, only the gradients come from
  autograd; like train, it checks all pairs when a batch is all right, no sooner after the
  last check than train's eval_gap allows (train screens a slice of the pairs first, so the
  two can check at different steps and stop a few steps apart; the weights at each step
  are the same, since no check changes them);
- the tutorial's own script, run as it is in a subprocess (it always makes its 10000 steps
  and has no seed to vary, so its runs are repeats).
Beside the race, not in it: "train, default": train(TrainConfig(seed=s)), which also makes
random 1024-bit sums exact before it stops (what `python -m rnn_manual train` runs).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rnn_manual.cells.rnn import RNN
from rnn_manual.training.bits import random_addition_batch
from rnn_manual.training.evaluation import exact_match, validation_set
from rnn_manual.training.loop import train
from rnn_manual.training.state import TrainConfig
from rnn_manual.training.stopping import eval_gap


def race_config(seed: int) -> TrainConfig:
    """The race's run: train's defaults but the tutorial's loss (mse), stopping once every
    8-bit pair is right."""
    return TrainConfig(seed=seed, loss="mse", long_bits=0)


def time_train(seed: int) -> tuple[float, int, bool]:
    """(seconds, steps, solved) of the race's run with this seed."""
    start = time.perf_counter()
    result = train(race_config(seed), log=None)
    return time.perf_counter() - start, result.steps, result.solved


def time_default_train(seed: int) -> tuple[float, int, bool]:
    """(seconds, steps, solved) of `train`'s default run (long sums exact too)."""
    start = time.perf_counter()
    result = train(TrainConfig(seed=seed), log=None)
    return time.perf_counter() - start, result.steps, result.solved


def time_torch_train(seed: int) -> tuple[float, int, bool]:
    """(seconds, steps, solved) of the race's run redone with torch autograd and Adam."""
    start = time.perf_counter()
    config = race_config(seed)
    assert config.optimizer == "adam" and config.loss == "mse" and not config.bias
    assert not config.holds_long and config.truncate is None and config.clip is None
    dtype = getattr(torch, config.dtype)
    rng = np.random.default_rng(config.seed)  # drawn from in train's order: weights, then data
    model = RNN(2, config.hidden, 1, config.activation, False, config.dtype, seed=rng)
    x_val, y_val = (torch.from_numpy(a) for a in validation_set(config.bits, config.dtype, rng))
    weights = [torch.from_numpy(model.params[n]).requires_grad_() for n in ("W_xh", "W_hh", "W_hy")]
    W_xh, W_hh, W_hy = weights
    f = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[config.activation]
    optimizer = torch.optim.Adam(weights, lr=0.1 if config.lr is None else config.lr)

    def forward(x: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(x.shape[1], config.hidden, dtype=dtype)
        hs = []
        for xw_t in (x @ W_xh).unbind(0):
            h = f(xw_t + h @ W_hh)  # h_t = f(x_t W_xh + h_{t-1} W_hh)
            hs.append(h)
        return torch.sigmoid(torch.stack(hs) @ W_hy)  # p_t = sigmoid(h_t W_hy)

    solved, step, evaluated, failed = False, 0, None, 0
    while step < config.steps and not solved:
        x, y = (torch.from_numpy(a) for a in random_addition_batch(rng, config.batch, config.bits))
        p = forward(x)
        loss = 0.5 * ((p - y) ** 2).sum() / config.batch
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        waited = evaluated is None or step - evaluated >= eval_gap(failed)  # train's rule
        if exact_match(p.detach().numpy(), y.numpy()).all() and waited:
            evaluated = step
            with torch.no_grad():
                solved = bool(exact_match(forward(x_val).numpy(), y_val.numpy()).all())
            failed += not solved
    return time.perf_counter() - start, step, solved


#: The row of train's default run, which is not in the race.
DEFAULT_TRAIN = "train, default (1024-bit sums too)"


def time_tutorial(script: Path) -> float:
    """Wall seconds of `python seed_rnn.py`, interpreter start-up included."""
    start = time.perf_counter()
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    return time.perf_counter() - start


def time_startup() -> float:
    """Wall seconds of starting Python and importing NumPy, the floor under any script."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numpy"], check=True)
    return time.perf_counter() - start


def time_to_solve(seeds: list[int], tutorial: Path | None) -> dict:
    """Per contender: every run's seconds and steps, and the median; interleaved seed by seed."""
    contenders = {
        "train": time_train,
        "torch autograd train": time_torch_train,
        DEFAULT_TRAIN: time_default_train,
    }
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    if tutorial is not None:
        runs["tutorial script"] = []
        runs["python + numpy start-up"] = []
    for seed in seeds:
        for name, fn in contenders.items():
            seconds, steps, solved = fn(seed)
            runs[name].append({"seed": seed, "seconds": seconds, "steps": steps, "solved": solved})
        if tutorial is not None:
            runs["tutorial script"].append({"seconds": time_tutorial(tutorial), "steps": 10000})
            runs["python + numpy start-up"].append({"seconds": time_startup()})
    return {
        name: {"median_seconds": statistics.median(r["seconds"] for r in rs), "runs": rs}
        for name, rs in runs.items()
    }
