"""Using more than one core for a large batch: the sequences of a batch are independent, so
a pass can run on parts of the batch in a small pool of threads and add up the parts'
weight gradients (NumPy releases the GIL inside its ufuncs and BLAS calls).

A batch is split only where each part is large enough to pay for it (SPLIT_VALUES), and
only on NumPy (torch and CuPy parallelise each operation themselves). While the parts run,
NumPy's BLAS is held to one thread each: two passes that each ask OpenBLAS for every core
make its threads wait on each other, which on a busy machine costs more than the split
gains. The parts are fixed by the batch size and the thread count alone, and their results
are combined in order, so a split pass gives the same bits every run.

    threads()           how many threads a pass may use (1: never split)
    set_threads(n)      change it; RNN_MANUAL_THREADS sets the starting value
    parts(B, width)     the slices of a batch of B sequences a pass splits into
    run_parts(f, ps)    [f(p) for p in ps], in the pool when there are several
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from threadpoolctl import threadpool_limits

from .validate import check_size

Result = TypeVar("Result")

#: Most threads by default: the pool is for a laptop's or a small server's cores; a pass
#: over a few thousand sequences gains little from more.
DEFAULT_MAX = 4
#: Values a part must hold per time step (its sequences x the state's width) to be worth a
#: thread of its own: below this the per-operation overhead, which threads do not share,
#: dominates (measured in benchmarks/: see its README's threads section).
SPLIT_VALUES = 1 << 14

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_threads: int | None = None  # read from the environment on first use


def _initial() -> int:
    """RNN_MANUAL_THREADS if set, else the cores this process may use, at most DEFAULT_MAX."""
    given = os.environ.get("RNN_MANUAL_THREADS")
    if given is not None:
        try:
            return check_size("RNN_MANUAL_THREADS", int(given), 256)
        except ValueError:
            raise ValueError(
                f"RNN_MANUAL_THREADS must be a positive integer, got {given!r}"
            ) from None
    return min(len(os.sched_getaffinity(0)), DEFAULT_MAX)


def threads() -> int:
    """How many threads a NumPy pass may split its batch over; ValueError if
    RNN_MANUAL_THREADS is not a positive integer."""
    global _threads
    if _threads is None:
        _threads = _initial()
    return _threads


def set_threads(n: int) -> None:
    """Let NumPy passes use up to n threads (1: never split a batch)."""
    global _threads, _pool
    n = check_size("threads", n, 256)
    with _lock:
        if _pool is not None and n != _threads:
            _pool.shutdown(wait=True)
            _pool = None
        _threads = n


def parts(batch: int, width: int) -> list[slice]:
    """The consecutive slices of a batch of `batch` sequences, each keeping `width` values
    per step, that a pass runs in parallel: one slice (the whole batch) unless each of
    several would hold at least SPLIT_VALUES values per step."""
    n = min(threads(), batch, batch * width // SPLIT_VALUES)
    if n <= 1:
        return [slice(0, batch)]
    bounds = [batch * k // n for k in range(n + 1)]
    return [slice(bounds[k], bounds[k + 1]) for k in range(n)]


def release() -> None:
    """Shut the pool down without waiting (the next pass makes a new one). For an
    interrupted run on its way out: a Ctrl-C that lands while the pool starts a thread can
    leave that thread unknown to the pool's exit hook, waiting for work forever, and the
    interpreter waits for it at exit; shutting the pool down wakes every thread of it."""
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None


def run_parts(work: Callable[[slice], Result], slices: list[slice]) -> list[Result]:
    """[work(s) for s in slices], the slices in the pool's threads when there are several
    (each with a one-thread BLAS); the results in the order of the slices."""
    if len(slices) == 1:
        return [work(slices[0])]
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=threads(), thread_name_prefix="rnn-manual")
        pool = _pool
    # Each part runs in a copy of the caller's context, so that NumPy's floating-point
    # error settings (np.errstate, a context variable) hold in the threads as they do here.
    contexts = [contextvars.copy_context() for _ in slices]
    with threadpool_limits(limits=1, user_api="blas"):
        return list(pool.map(lambda c, s: c.run(work, s), contexts, slices))
