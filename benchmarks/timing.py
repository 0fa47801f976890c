"""Interleaved timing: every variant timed in turn, round after round, on the same machine state.

On a shared machine absolute times drift by tens of percent between seconds; a ratio of two
variants timed back to back in the same round drifts far less. So each round times every
variant once, in a rotating order, and the ratios are taken round by round.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Timings:
    """Seconds per call of each variant, one entry per round, rounds aligned across variants."""

    seconds: dict[str, list[float]]

    def median(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def ratios(self, slower: str, faster: str) -> list[float]:
        """Round-by-round time(slower) / time(faster): how many times faster `faster` is."""
        return [s / f for s, f in zip(self.seconds[slower], self.seconds[faster], strict=True)]


def calls_per_sample(fn: Callable[[], object], min_seconds: float) -> int:
    """How many back-to-back calls of fn (already warm) take at least min_seconds."""
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return max(1, int(np.ceil(min_seconds / max(once, 1e-9))))


def interleaved(
    variants: dict[str, Callable[[], object]],
    rounds: int,
    min_sample: float,
    budget: float,
) -> Timings:
    """Time every variant `rounds` times, interleaved; stop early (after 3 rounds) past `budget` s.

    Each sample is the mean over enough back-to-back calls to last min_sample seconds.
    Call every variant once before (a warm-up: allocators, caches, lazy initialisation).
    """
    counts = {name: calls_per_sample(fn, min_sample) for name, fn in variants.items()}
    names = list(variants)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    start = time.perf_counter()
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn, n = variants[name], counts[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            seconds[name].append((time.perf_counter() - t0) / n)
        if r >= 2 and time.perf_counter() - start > budget:
            break
    return Timings(seconds)


def spread(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max) of the values."""
    return statistics.median(values), min(values), max(values)


def matmul_peak(dtype: np.dtype, n: int = 2048, repeats: int = 5) -> float:
    """The best GFLOP/s of an n x n NumPy matmul over `repeats` tries: the machine's practical peak.

    The best rather than the median: the peak is a property of the machine, and on a shared
    machine every slower try was slowed by someone else.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    np.matmul(a, b, out=out)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9
