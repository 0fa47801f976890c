"""The issue's speed targets (issue 15, target 4), in one place: what each asks, at which grid
points, and whether a run met it. A point is met when the median of its rounds reaches the
bound; the range over the rounds is shown beside it, never judged.

    GRID_TARGETS        the targets judged at each grid point (one row of the table each)
    SOLVE_SPEEDUP       the time-to-solve target: the tutorial's time over train's
    verdict(target, r)  ("bound", "met") for one grid row: ("-", "-") where it asks nothing
    summary(...)        one line per target: met at how many points, and the misses
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: (median, min, max) over the rounds of a grid point.
Spread = Sequence[float]


@dataclass(frozen=True)
class Target:
    """One target of the grid: a bound on a measured (median, min, max), where it applies."""

    column: str  # the table's header for the measured value
    what: str  # the target in words, for the summary
    bound: Callable[[dict], float | None]  # needed at a grid row; None where none is asked
    value: Callable[[dict], Spread | None]  # measured at a grid row; None if not measured
    percent: bool = False  # a fraction shown as a percentage, not a ratio ("2.00x")


#: Manual NumPy over the fastest torch autograd variant (the RNN): (hidden at most, bound)
#: and (hidden at least, bound).
NUMPY_SMALL = (64, 2.0)
NUMPY_LARGE = (256, 1.2)
#: The manual pass on its faster CPU backend over the fastest torch autograd variant (every
#: cell, every point).
BEST_BOUND = 1.5
#: The manual NumPy pass's share of the measured matmul peak at this hidden size.
PEAK_AT = (1024, 0.8)


def numpy_bound(r: dict) -> float | None:
    """Manual NumPy over the fastest torch autograd variant, the RNN only: NUMPY_SMALL's
    bound at hidden up to its size, NUMPY_LARGE's from its size on."""
    if r["cell"] != "rnn":
        return None
    if r["H"] <= NUMPY_SMALL[0]:
        return NUMPY_SMALL[1]
    return NUMPY_LARGE[1] if r["H"] >= NUMPY_LARGE[0] else None


def peak_bound(r: dict) -> float | None:
    """The manual pass's share of the measured matmul peak, at PEAK_AT's hidden size."""
    return PEAK_AT[1] if r["H"] == PEAK_AT[0] else None


NUMPY = Target(
    "manual / fastest torch CPU, median (min-max)",
    f"manual NumPy at least {NUMPY_SMALL[1]:g}x the fastest torch CPU autograd variant at "
    f"hidden <= {NUMPY_SMALL[0]}, {NUMPY_LARGE[1]:g}x at hidden >= {NUMPY_LARGE[0]} (RNN)",
    numpy_bound,
    lambda r: r.get("speedup_vs_fastest_cpu"),
)
BEST = Target(
    "best manual / fastest torch CPU, median (min-max), backend",
    f"the hand-written pass on its faster CPU backend (NumPy or torch) at least "
    f"{BEST_BOUND:g}x the fastest torch CPU autograd variant (every cell)",
    lambda r: BEST_BOUND,
    lambda r: r.get("best_vs_fastest_cpu"),
)
PEAK = Target(
    "of peak, median (min-max)",
    f"manual NumPy at least {PEAK_AT[1]:.0%} of the measured matmul peak at hidden "
    f"{PEAK_AT[0]} (RNN)",
    peak_bound,
    lambda r: r.get("fraction_of_peak"),
    percent=True,
)
GRID_TARGETS = (NUMPY, BEST, PEAK)

#: train (stopping when every 8-bit pair is right) at least this many times faster than
#: the tutorial's script, both as wall time from the command's start (medians over seeds).
SOLVE_SPEEDUP = 50.0


def show(target: Target, value: float) -> str:
    """A bound or a median in the target's unit: "1.5x" or "80%"."""
    return f"{value:.0%}" if target.percent else f"{value:g}x"


def show_measured(target: Target, value: float) -> str:
    """A measured value: "2.41x" or "74%"."""
    return f"{value:.0%}" if target.percent else f"{value:.2f}x"


def show_spread(target: Target, spread: Spread) -> str:
    """A measured (median, min, max) as "2.41x (2.34-2.49)" or "74% (72%-77%)"."""
    median, low, high = (show_measured(target, v) for v in spread)
    return f"{median} ({low}-{high})" if target.percent else f"{median} ({low[:-1]}-{high[:-1]})"


def met(target: Target, r: dict) -> bool | None:
    """Whether row r meets the target on the median of its rounds; None where the target asks
    nothing there, or its value was not measured."""
    bound, value = target.bound(r), target.value(r)
    if bound is None or value is None:
        return None
    return value[0] >= bound


def verdict(target: Target, r: dict) -> tuple[str, str]:
    """The table's (target, met) cells for row r."""
    bound = target.bound(r)
    if bound is None:
        return "-", "-"
    verdict = met(target, r)
    if verdict is None:
        return f">= {show(target, bound)}", "not measured"
    return f">= {show(target, bound)}", "yes" if verdict else "**no**"


def solve_speedup(solve: dict) -> float | None:
    """The tutorial script's median time over train's; None if the tutorial was not timed."""
    tutorial = solve.get("tutorial script", {}).get("median_seconds")
    if tutorial is None:
        return None
    return float(tutorial / solve["train"]["median_seconds"])


def where(r: dict) -> str:
    """A grid row in words: "rnn float64 T 8 B 4096 H 16"."""
    return f"{r['cell']} {r['dtype']} T {r['T']} B {r['B']} H {r['H']}"


def summary(results: list[dict], solve: dict | None) -> list[str]:
    """One line per target: met at how many of the points it applies to, and each miss with
    its median."""
    lines = []
    for target in GRID_TARGETS:
        applies = [r for r in results if target.bound(r) is not None]
        if not applies:
            continue
        judged = [r for r in applies if met(target, r) is not None]
        misses = [(r, target.value(r)) for r in judged if not met(target, r)]
        line = f"- {target.what}: met at {len(judged) - len(misses)} of {len(judged)} points"
        if misses:
            line += "; missed: " + ", ".join(
                f"{where(r)} ({show_measured(target, value[0])})"
                for r, value in misses
                if value is not None
            )
        if len(judged) < len(applies):
            line += f"; not measured at {len(applies) - len(judged)}"
        lines.append(line + ".")
    ratio = None if solve is None else solve_speedup(solve)
    if ratio is not None:
        verdict = "met" if ratio >= SOLVE_SPEEDUP else "**not met**"
        lines.append(
            f"- train at least {SOLVE_SPEEDUP:g}x faster than the tutorial's script: {verdict} "
            f"({ratio:.1f}x)."
        )
    return lines
