"""Every thread a NumPy pass uses is decided here: how many parts a large batch is split
into, and how many threads NumPy's BLAS may use inside the pass.

The sequences of a batch are independent, so a pass can run on parts of the batch in a
small pool of threads and add up the parts' weight gradients (NumPy releases the GIL inside
its ufuncs and BLAS calls). A batch is split only where each part is large enough to pay
for it (SPLIT_VALUES), and only on NumPy (torch and CuPy parallelise each operation
themselves). The parts are fixed by the batch size and the thread count alone, and their
results are combined in order, so a split pass gives the same bits every run.

Inside every NumPy pass BLAS runs on one thread, whatever it was started with (OpenBLAS
takes every core by default): a pass's matrix products are short, and when another process
holds a core each of them waits for the BLAS thread that shares it, which costs far more
than BLAS threads gain on free cores (benchmarks/README.md, "BLAS threads", measures it).
The split is how a pass uses more cores. BLAS's setting is one for the whole process:
while passes run (in one thread or several) it is held at one thread, and it is set back
to what it was when the last of them ends.

    threads()               how many threads a pass may use (1: one thread in all)
    set_threads(n)          change it; RNN_MANUAL_THREADS sets the starting value
    parts(B, width)         the slices of a batch of B sequences a pass splits into
    run_parts(f, ps)        [f(p) for p in ps], in the pool when there are several
    one_pass()              the context of one pass: BLAS on one thread, and a stop when
                            the split pass it is part of was abandoned (Ctrl-C)
    release()               shut the pool down, for an interrupted run on its way out
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, TypeVar

from threadpoolctl import ThreadpoolController

from .args import DIGITS, MAX_DIGITS
from .validate import check_size

Result = TypeVar("Result")

#: Most threads by default: the pool is for a laptop's or a small server's cores; a pass
#: over a few thousand sequences gains little from more.
DEFAULT_MAX = 4
#: Most threads that can be asked for (RNN_MANUAL_THREADS, set_threads).
MAX_THREADS = 256
#: Values a part must hold per time step (its sequences x the state's width) to be worth a
#: thread of its own: below this the per-operation overhead, which threads do not share,
#: dominates (measured in benchmarks/: see its README's threads section).
SPLIT_VALUES = 1 << 14

_lock = threading.Lock()  # the pool and the thread count
_pool: ThreadPoolExecutor | None = None
_threads: int | None = None  # read from the environment on first use

_blas_lock = threading.Lock()  # BLAS's setting and the count of passes holding it
_blas_holders = 0  # passes running now, each holding BLAS at one thread
_blas_before: list[int] = []  # each BLAS library's threads before the first of them began
_blas: Any = None  # threadpoolctl's controller of the BLAS libraries loaded, made once

#: Set in each part of a split pass: the event that says the pass was abandoned.
_stop: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "rnn_manual_stop", default=None
)


class Abandoned(Exception):
    """Raised in a part of a split pass whose caller stopped waiting for it (Ctrl-C, or
    another part's error), at the start of the part's next pass: nobody reads its result."""


def _initial() -> int:
    """RNN_MANUAL_THREADS if set, else the cores this process may use, at most DEFAULT_MAX."""
    given = os.environ.get("RNN_MANUAL_THREADS")
    if given is None:
        return min(len(os.sched_getaffinity(0)), DEFAULT_MAX)
    # Plain ASCII digits only (args.DIGITS): int() would also take " 4" and Arabic-Indic.
    if not (
        DIGITS.fullmatch(given) and len(given) <= MAX_DIGITS and 1 <= int(given) <= MAX_THREADS
    ):
        raise ValueError(
            f"RNN_MANUAL_THREADS must be a whole number from 1 to {MAX_THREADS} in plain "
            f"digits, got {given[:40]!r}"
        )
    return int(given)


def threads() -> int:
    """How many threads a NumPy pass may use; ValueError if RNN_MANUAL_THREADS is not a
    whole number from 1 to MAX_THREADS."""
    global _threads
    if _threads is None:
        _threads = _initial()
    return _threads


def set_threads(n: int) -> None:
    """Let NumPy passes use up to n threads (1: one thread in all, never split a batch).
    Passes running meanwhile finish on the pool they started with."""
    global _threads, _pool
    n = check_size("threads", n, MAX_THREADS)
    with _lock:
        if _pool is not None and n != _threads:
            _pool.shutdown(wait=False)  # its threads end once their work is done
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


def _set_blas(one: bool) -> None:
    """Set BLAS to one thread, or (one False) back to what each library had; under
    _blas_lock."""
    for lib, before in zip(_blas.lib_controllers, _blas_before, strict=True):
        if before == 1:  # on one thread already (OPENBLAS_NUM_THREADS=1): nothing to do
            continue
        # threadpoolctl (3.8) lets only the first Python thread that set OpenBLAS's limit
        # change it while that thread lives, ignoring the others without a word; here
        # every change is made under one lock, by whichever thread a pass starts or ends
        # in, so that claim is cleared around each change.
        unclaim = getattr(type(lib), "clear_controlling_thread", None)
        if unclaim is not None:
            unclaim(force=True)
        lib.set_num_threads(1 if one else before)
        if unclaim is not None:
            unclaim(force=True)


@contextmanager
def _blas_on_one_thread() -> Iterator[None]:
    """BLAS held to one thread for the duration; once the last of the passes that overlap
    ends, what it had before the first began (never what another pass found it at)."""
    global _blas, _blas_before, _blas_holders
    with _blas_lock:
        if _blas is None:  # NumPy's BLAS is loaded: validate imported NumPy
            _blas = ThreadpoolController().select(user_api="blas")
        if _blas_holders == 0:
            _blas_before = [lib.num_threads for lib in _blas.lib_controllers]
            _set_blas(True)
        _blas_holders += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_holders -= 1
            if _blas_holders == 0:
                _set_blas(False)


def stop_if_abandoned() -> None:
    """Abandoned if this runs in a part of a split pass that its caller has given up on."""
    stop = _stop.get()
    if stop is not None and stop.is_set():
        raise Abandoned("the split pass this part belongs to was abandoned")


@contextmanager
def one_pass(numpy: bool = True) -> Iterator[None]:
    """The context of one pass (forward, backward, or both): BLAS on one thread, and
    Abandoned at once in a part whose split pass was given up. numpy: False for the other
    array libraries, which choose their own threads."""
    stop_if_abandoned()
    if not numpy:
        yield
        return
    with _blas_on_one_thread():
        yield


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


def _in_part(stop: threading.Event, work: Callable[[slice], Result], rows: slice) -> Result:
    """work(rows) as a part of a split pass, which `stop` abandons."""
    _stop.set(stop)
    return work(rows)


def run_parts(work: Callable[[slice], Result], slices: list[slice]) -> list[Result]:
    """[work(s) for s in slices], the slices in the pool's threads when there are several
    (each with a one-thread BLAS); the results in the order of the slices.

    When the caller stops waiting (Ctrl-C, or a part's error), the parts not yet started
    are cancelled and those running stop at the start of their next pass (one_pass), so
    that no part goes on working, or printing progress, for a pass nobody wants."""
    if len(slices) == 1:
        return [work(slices[0])]
    global _pool
    stop = threading.Event()
    # Each part runs in a copy of the caller's context, so that NumPy's floating-point
    # error settings (np.errstate, a context variable) hold in the threads as they do here.
    contexts = [contextvars.copy_context() for _ in slices]
    futures: list[Future[Result]] = []
    with _blas_on_one_thread():
        try:
            # Submitted under the lock, so that set_threads cannot shut this pool down
            # between its choice and the submissions; the parts then finish on it.
            with _lock:
                if _pool is None:
                    _pool = ThreadPoolExecutor(
                        max_workers=threads(), thread_name_prefix="rnn-manual"
                    )
                for c, s in zip(contexts, slices, strict=True):
                    futures.append(_pool.submit(c.run, _in_part, stop, work, s))
            return [future.result() for future in futures]
        except BaseException:
            stop.set()
            for future in futures:
                future.cancel()
            wait(futures)  # the running parts stop at their next pass
            raise
