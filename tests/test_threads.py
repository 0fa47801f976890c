"""A batch split across threads (rnn_manual/core/threads.py) gives the pass it replaces.

The split is forced on small batches here (SPLIT_VALUES lowered), into uneven parts, so
that every cell, loss, initial state and truncation is judged in milliseconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_info, threadpool_limits

from rnn_manual.cells import CELLS
from rnn_manual.core import threads
from rnn_manual.core.gradcheck import relative_error
from rnn_manual.files import modelfile
from rnn_manual.training.bits import random_addition_batch
from rnn_manual.training.evaluation import accuracy
from rnn_manual.training.state import TrainConfig, make_model
from rnn_torch.compare import FLOAT64_BOUND

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def split_everything(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every batch of 2 or more sequences is split, over up to 3 threads."""
    before = threads.threads()
    monkeypatch.setattr(threads, "SPLIT_VALUES", 1)
    yield
    threads.set_threads(before)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cell=st.sampled_from(sorted(CELLS)),
    batch=st.integers(2, 9),
    loss=st.sampled_from(["mse", "bce"]),
    truncate=st.one_of(st.none(), st.integers(1, 4)),
    bias=st.booleans(),
    given_states=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_a_split_pass_equals_the_whole_one(
    split_everything: None,
    cell: str,
    batch: int,
    loss: str,
    truncate: int | None,
    bias: bool,
    given_states: bool,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    model = CELLS[cell](2, 5, 1, bias=bias, seed=seed)
    x = rng.normal(size=(6, batch, 2))
    y = rng.uniform(size=(6, batch, 1))
    states = {s: rng.normal(size=(batch, 5)) for s in model.states} if given_states else {}
    threads.set_threads(1)
    whole_loss, whole = model.loss_and_grads(x, y, loss, truncate=truncate, **states)
    threads.set_threads(3)
    assert len(threads.parts(batch, model.state_width)) == min(3, batch)
    split_loss, split = model.loss_and_grads(x, y, loss, truncate=truncate, **states)
    again_loss, again = model.loss_and_grads(x, y, loss, truncate=truncate, **states)
    assert abs(split_loss - whole_loss) <= FLOAT64_BOUND * abs(whole_loss)
    assert split.keys() == whole.keys()
    for name, g in whole.items():
        assert split[name].shape == g.shape, name
        assert relative_error(split[name], g) <= FLOAT64_BOUND, name
        np.testing.assert_array_equal(
            again[name], split[name], err_msg=f"{name}: not the same bits"
        )
    assert again_loss == split_loss


def test_parts_cover_the_batch_in_order_and_only_when_large() -> None:
    before = threads.threads()
    try:
        threads.set_threads(3)
        assert threads.parts(10, threads.SPLIT_VALUES // 10) == [slice(0, 10)]  # too small
        split = threads.parts(10, threads.SPLIT_VALUES)
        assert split == [slice(0, 3), slice(3, 6), slice(6, 10)]
        threads.set_threads(1)
        assert threads.parts(10**6, 10**6) == [slice(0, 10**6)]
    finally:
        threads.set_threads(before)


def test_parts_run_with_the_callers_floating_point_settings(split_everything: None) -> None:
    """np.errstate is a context variable: the parts run in copies of the caller's context,
    so an overflow that the caller asked to raise raises in a thread too."""
    threads.set_threads(2)

    def overflow(rows: slice) -> float:
        return float(np.exp(np.float64(1000.0)))

    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        threads.run_parts(overflow, [slice(0, 1), slice(1, 2)])


def test_accuracy_in_parts_counts_every_sum(split_everything: None) -> None:
    """Targets that are the model's own rounded outputs are all right; one sum changed, in
    the middle part, is the one wrong."""
    model = make_model(TrainConfig(hidden=4), np.random.default_rng(0))
    x, _ = random_addition_batch(np.random.default_rng(1), 101, 12)
    y = (model.forward(x) > 0.5).astype(np.float64)
    threads.set_threads(3)
    assert accuracy(model, x, y) == 1.0
    y[3, 50] = 1 - y[3, 50]
    assert accuracy(model, x, y) == 100 / 101


def test_a_bad_thread_count_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        threads.set_threads(0)
    done = subprocess.run(
        [sys.executable, "-m", "rnn_manual", "evaluate", "--model", "x.npz", "--bits", "4"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"RNN_MANUAL_THREADS": "two", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "rnn-manual evaluate: error: RNN_MANUAL_THREADS must be a whole number from 1 to 256 "
        "in plain digits, got 'two'"
    )


@pytest.mark.parametrize(
    "given", ["abc", " 4", "4 ", "\u0664", "\uff14", "10000", "257", "0", "", "-2"]
)
def test_only_plain_digits_from_1_to_256_set_the_threads(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """int() would take " 4" and the Arabic-Indic or full-width 4; 10000 must name the
    limit, not call itself "not a positive integer"."""
    monkeypatch.setenv("RNN_MANUAL_THREADS", given)
    with pytest.raises(ValueError) as refused:
        threads._initial()
    assert str(refused.value) == (
        f"RNN_MANUAL_THREADS must be a whole number from 1 to 256 in plain digits, got {given!r}"
    )


@pytest.mark.parametrize(("given", "n"), [("1", 1), ("7", 7), ("256", 256)])
def test_plain_digits_set_the_threads(monkeypatch: pytest.MonkeyPatch, given: str, n: int) -> None:
    monkeypatch.setenv("RNN_MANUAL_THREADS", given)
    assert threads._initial() == n


def test_the_rnn_keeps_one_work_array_per_thread() -> None:
    """RNN.backward reuses a work array between calls: one per thread, so that the parts
    of a split batch never write into each other's (a shared one would mix their dL/da)."""
    import threading

    model = CELLS["rnn"](2, 4, 1)
    like = model.params["W_hh"]
    here = model._scratch(6, 4, like)
    assert model._scratch(6, 4, like) is here  # reused by the same thread
    there: list[np.ndarray] = []
    worker = threading.Thread(target=lambda: there.append(model._scratch(6, 4, like)))
    worker.start()
    worker.join()
    assert there[0] is not here and not np.shares_memory(there[0], here)


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_only_numpy_passes_are_split(
    split_everything: None, monkeypatch: pytest.MonkeyPatch, library: str
) -> None:
    """A NumPy pass over a large batch does run in parts (the results above would be the
    same if it did not); a torch pass never is: torch parallelises each operation itself."""
    seen: list[int] = []
    run_parts = threads.run_parts

    def spy(work: object, slices: list[slice]) -> object:
        seen.append(len(slices))
        return run_parts(work, slices)  # type: ignore[arg-type]

    monkeypatch.setattr(threads, "run_parts", spy)
    threads.set_threads(2)
    model = CELLS["gru"](2, 3, 1).to(library)
    x, y = np.zeros((4, 6, 2)), np.zeros((4, 6, 1))
    if library == "torch":
        import torch

        x, y = torch.from_numpy(x), torch.from_numpy(y)
    model.loss_and_grads(x, y)
    assert seen == ([2] if library == "numpy" else [1])


def test_release_wakes_the_pool_and_the_next_pass_makes_a_new_one() -> None:
    """An interrupted run releases the pool on its way out (app/cli.py): every worker ends,
    none is left waiting for work that would hold the interpreter's exit up."""
    from rnn_manual.core import threads as pool_module

    slices = [slice(0, 1), slice(1, 2)]
    assert pool_module.run_parts(lambda s: s.start, slices) == [0, 1]
    workers = [t for t in threading.enumerate() if t.name.startswith("rnn-manual")]
    assert workers
    pool_module.release()
    for worker in workers:
        worker.join(timeout=10)
        assert not worker.is_alive()
    assert pool_module.run_parts(lambda s: s.stop, slices) == [1, 2]


def blas_threads_now() -> list[int]:
    """What each BLAS library loaded in this process is set to now."""
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.fixture
def blas_at_three() -> Iterator[None]:
    """BLAS set to 3 threads, a value no pass asks for, so that a pass that leaves its own
    setting behind shows (on any machine, whatever BLAS started with)."""
    with threadpool_limits(limits=3, user_api="blas"):
        assert blas_threads_now() and set(blas_threads_now()) == {3}
        yield


def blas_seen_by_passes(model: object) -> list[list[int]]:
    """Spy on a model's forward equations: the BLAS threads set while each of them ran."""
    seen: list[list[int]] = []
    run_unchecked = model.run_unchecked  # type: ignore[attr-defined]

    def spy(*args: object) -> object:
        seen.append(blas_threads_now())
        return run_unchecked(*args)

    model.run_unchecked = spy  # type: ignore[attr-defined]
    return seen


@pytest.mark.parametrize("n", [1, 2])
def test_blas_runs_on_one_thread_inside_a_pass_and_is_given_back(
    blas_at_three: None, n: int
) -> None:
    """Whatever BLAS was started with, a pass on small matrices holds it to one thread: a
    training step's (the loop calls loss_pass), loss_and_grads's, a split pass's parts'
    and, with one thread set (RNN_MANUAL_THREADS=1), a large pass's; after each, BLAS has
    its own setting back."""
    before = threads.threads()
    try:
        threads.set_threads(n)
        model = CELLS["lstm"](2, 16, 1)
        seen = blas_seen_by_passes(model)
        x, y = np.zeros((4, 2048, 2)), np.zeros((4, 2048, 1))
        model.loss_pass(x[:, :64], model.zero_states(64), y[:, :64], "mse")
        model.loss_and_grads(x[:, :64], y[:, :64])
        model.loss_and_grads(x, y)  # split in two with n = 2
        model.forward(x)
    finally:
        threads.set_threads(before)
    assert len(seen) == 4 + (n == 2)
    assert all(blas == [1] * len(blas) for blas in seen), seen
    assert set(blas_threads_now()) == {3}


def test_overlapping_passes_give_blas_its_setting_back(blas_at_three: None) -> None:
    """Two split passes in two threads, the second begun while the first runs and ended
    after it: BLAS stays at one thread until the second ends (it still runs), and then has
    the setting it had before the first began, not the one-thread setting the second found
    when it began (which a pass that restores what it found would leave for good)."""
    threads.set_threads(4)  # four parts at once: two passes of two
    started = {"a": threading.Event(), "b": threading.Event()}
    may_end = {"a": threading.Event(), "b": threading.Event()}

    def split_pass(name: str) -> None:
        def part(rows: slice) -> None:
            started[name].set()
            assert may_end[name].wait(timeout=60)

        threads.run_parts(part, [slice(0, 1), slice(1, 2)])

    first = threading.Thread(target=split_pass, args=("a",))
    second = threading.Thread(target=split_pass, args=("b",))
    first.start()
    assert started["a"].wait(timeout=60)
    second.start()
    assert started["b"].wait(timeout=60)
    may_end["a"].set()
    first.join()
    during = blas_threads_now()
    may_end["b"].set()
    second.join()
    assert set(during) == {1}
    assert set(blas_threads_now()) == {3}


def test_set_threads_racing_passes_raises_nothing(split_everything: None) -> None:
    """set_threads swaps the pool while split passes run in other threads: each pass
    finishes on the pool it started with, none is refused by a pool shut down under it."""
    model = CELLS["rnn"](2, 4, 1)
    x, y = np.zeros((3, 6, 2)), np.zeros((3, 6, 1))
    threads.set_threads(1)
    expected = model.loss_and_grads(x, y)[0]
    errors: list[BaseException] = []
    counts = [0, 0, 0]
    done = threading.Event()

    def passes(k: int) -> None:
        try:
            while not done.is_set():
                assert abs(model.loss_and_grads(x, y)[0] - expected) <= 1e-12
                counts[k] += 1
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    workers = [threading.Thread(target=passes, args=(k,)) for k in range(3)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 60
    try:
        k = 0
        while min(counts) < 100 and not errors and time.monotonic() < deadline:
            threads.set_threads(2 + k % 2)
            k += 1
            time.sleep(0.0002)
    finally:
        done.set()
        for worker in workers:
            worker.join()
    assert errors == []
    assert min(counts) >= 100


def test_a_split_pass_abandoned_stops_its_other_parts(split_everything: None) -> None:
    """When the caller of a split pass stops waiting (here a part's error; Ctrl-C goes the
    same way), the parts still running stop at the start of their next pass, within about
    a pass, instead of working on (and printing progress) for a result nobody reads."""
    threads.set_threads(2)
    model = CELLS["lstm"](2, 8, 1)
    x = np.zeros((8, 4, 2))
    ended = threading.Event()

    def work(rows: slice) -> int:
        if rows.start == 0:
            time.sleep(0.2)  # the other part is at work by then
            raise ValueError("this part failed")
        try:
            start = time.monotonic()
            while time.monotonic() - start < 30:  # far longer than the test waits
                model.run(x[:, rows])
        finally:
            ended.set()
        return 0

    start = time.monotonic()
    with pytest.raises(ValueError, match="this part failed"):
        threads.run_parts(work, [slice(0, 2), slice(2, 4)])
    assert ended.wait(timeout=5)
    assert time.monotonic() - start < 5


def test_ctrl_c_during_a_long_split_evaluation_stops_at_once(tmp_path: Path) -> None:
    """`evaluate` on long sums runs each chunk in parts on two threads; Ctrl-C, once the
    parts are at work (the first progress line, after 5 s), ends it within seconds (0.2 s
    seen), not after the rest of the evaluation (a minute on two cores)."""
    model = tmp_path / "lstm.npz"
    modelfile.save(model, CELLS["lstm"](2, 64, 1))
    args = ["evaluate", "--model", str(model), "--bits", "16384", "--samples", "1024"]
    process = subprocess.Popen(
        [sys.executable, "-W", "error", "-u", "-m", "rnn_manual", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "RNN_MANUAL_THREADS": "2"},
    )
    with process:
        assert process.stderr is not None
        first = process.stderr.readline()
        process.send_signal(signal.SIGINT)
        start = time.perf_counter()
        try:
            _, rest = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            rest = "still running 30 s after Ctrl-C"
        finally:
            process.kill()
        took = time.perf_counter() - start
    assert first.startswith("evaluating 1024 random 16384-bit sums: "), first + rest
    assert process.returncode == 130, first + rest
    assert took < 5, f"{took:.1f} s after Ctrl-C"


@pytest.mark.parametrize(
    ("command", "prog"),
    [
        (["rnn_manual", "evaluate", "--model", "x.npz", "--bits", "4"], "rnn-manual evaluate"),
        (["rnn_torch", "check"], "python -m rnn_torch"),
    ],
)
def test_every_command_refuses_a_bad_thread_count_in_one_line(
    command: list[str], prog: str
) -> None:
    """The Arabic-Indic 4 (int() takes it) is refused by each command that reads
    RNN_MANUAL_THREADS, in one line, exit 2, before any work."""
    done = subprocess.run(
        [sys.executable, "-m", *command],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "RNN_MANUAL_THREADS": "\u0664"},
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"{prog}: error: RNN_MANUAL_THREADS must be a whole number from 1 to 256 in plain "
        "digits, got '\u0664'"
    ]
    assert done.stdout == ""
