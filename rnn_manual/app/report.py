"""What the command line reports about a model: its accuracy after training and on request,
with progress lines should that take long.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..training.bits import MAX_ALL_PAIRS_BITS, random_addition_batch
from ..training.evaluation import accuracy, affordable_sums, validation_set
from ..training.progress import Progress
from ..training.state import Model, TrainConfig, TrainResult

#: Bit widths reported after training: the trained width, then much longer sums.
REPORT_WIDTHS = (16, 64, 1024)
#: Random sums per width in that report; fewer for a model too large to run them quickly.
REPORT_SUMS = 1000


def progress(quiet: bool, what: str) -> Progress | None:
    """Progress lines on stderr for long work, unless --quiet."""
    return None if quiet else Progress(what)


def evaluate(model: Model, x: Any, y: Any, quiet: bool, what: str) -> float:
    """accuracy(model, x, y), with progress lines should it take long."""
    watch = progress(quiet, f"evaluating {what}")
    try:
        return accuracy(model, x, y, progress=watch)
    finally:
        if watch is not None:
            watch.close()


def report(
    result: TrainResult, config: TrainConfig, out: Callable[[str], None], quiet: bool
) -> None:
    """Accuracy on the validation sums, then on random sums much longer than those trained
    on; each on fewer sums (or none) where the model is too large to run them all quickly."""
    model = result.model
    rng = np.random.default_rng(config.seed + 1)
    x, y = validation_set(config.bits, config.dtype, rng)
    n, total = affordable_sums(model, config.bits, x.shape[1]), x.shape[1]
    history = result.history
    if (
        config.bits <= MAX_ALL_PAIRS_BITS
        and history.eval_step
        and (history.eval_step[-1] == result.steps)
    ):  # training has just measured it on these very sums
        out(f"accuracy on {total} {config.bits}-bit sums: {history.eval_accuracy[-1]:.2%} exact")
    elif n == total:
        found = evaluate(model, x, y, quiet, f"the {total} {config.bits}-bit sums")
        out(f"accuracy on {total} {config.bits}-bit sums: {found:.2%} exact")
    elif n > 0:
        pick = np.sort(rng.choice(total, n, replace=False))
        found = evaluate(model, x[:, pick], y[:, pick], quiet, f"{n} {config.bits}-bit sums")
        out(f"accuracy on {n} of the {total} {config.bits}-bit sums: {found:.2%} exact")
    for bits in REPORT_WIDTHS:
        n = affordable_sums(model, bits, REPORT_SUMS)
        if n == 0:
            out(f"  {bits:5d}-bit sums: skipped, too slow for a model this large")
            continue
        x, y = random_addition_batch(rng, n, bits, model.dtype)
        found = evaluate(model, x, y, quiet, f"{n} {bits}-bit sums")
        out(f"  {bits:5d}-bit sums ({n} random): {found:7.2%} exact")
