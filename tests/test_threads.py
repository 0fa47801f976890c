"""A batch split across threads (rnn_manual/core/threads.py) gives the pass it replaces.

The split is forced on small batches here (SPLIT_VALUES lowered), into uneven parts, so
that every cell, loss, initial state and truncation is judged in milliseconds.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_manual.cells import CELLS
from rnn_manual.core import threads
from rnn_manual.core.gradcheck import relative_error
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
        "rnn-manual evaluate: error: RNN_MANUAL_THREADS must be a positive integer, got 'two'"
    )


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
