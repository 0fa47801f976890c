"""Long work is never silent, and the report after training scales to the model: progress
lines, evaluation in segments, the report's budget, the stall hint."""

from __future__ import annotations

import array
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_manual import LSTM, RNN
from rnn_manual.app import cli
from rnn_manual.app.cli import STALL_OPTIONS
from rnn_manual.cells import CELLS
from rnn_manual.files import modelfile
from rnn_manual.training import evaluation, loop, progress, stopping
from rnn_manual.training.bits import random_addition_batch
from rnn_manual.training.state import TrainConfig


class Clock:
    """time.monotonic, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(progress.time, "monotonic", fake)
    return fake


def test_quick_work_prints_nothing(clock: Clock) -> None:
    out = io.StringIO()
    watch = progress.Progress("evaluating", out)
    for done in range(1, 11):
        clock.now += 0.4  # 4 s in all: under EVERY
        watch(done, 10)
    watch.close()
    assert out.getvalue() == ""


def test_long_work_prints_a_line_every_few_seconds(clock: Clock) -> None:
    out = io.StringIO()
    watch = progress.Progress("evaluating 7 1024-bit sums", out)
    for done in range(1, 21):
        clock.now += 1.0
        watch(done, 20)
    lines = out.getvalue().splitlines()
    assert lines == [
        "evaluating 7 1024-bit sums: 25% after 5 s, about 15 s to go",
        "evaluating 7 1024-bit sums: 50% after 10 s, about 10 s to go",
        "evaluating 7 1024-bit sums: 75% after 15 s, about 5 s to go",
        "evaluating 7 1024-bit sums: 100% after 20 s",
    ]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_line_redraws_in_place_and_is_erased(clock: Clock) -> None:
    out = Terminal()
    watch = progress.Progress("adding", out)
    for done in range(1, 13):
        clock.now += 0.5
        watch(done, 12)
    watch.close()
    text = out.getvalue()
    assert "\n" not in text and text.count("\r") > 2 and text.endswith("\r\x1b[K")


def test_a_failing_stream_silences_progress(clock: Clock) -> None:
    out = io.StringIO()
    out.close()  # writing raises ValueError
    watch = progress.Progress("x", out)
    clock.now += 10
    watch(1, 2)  # no exception
    assert watch.every == float("inf")


# --- evaluation in segments ---------------------------------------------------------------


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_accuracy_in_segments_equals_one_pass(monkeypatch: pytest.MonkeyPatch, cell: str) -> None:
    # Trained on 8 bits alone with mse, the model gets most 40-bit sums right, not all
    # (96-99.7%).
    config = TrainConfig(cell=cell, hidden=8, steps=300, loss="mse", long_bits=0)
    model = loop.train(config, log=None).model
    rng = np.random.default_rng(0)
    x, y = random_addition_batch(rng, 300, 40)
    whole = model.forward(x)
    expected = evaluation.exact_match(whole, y).mean()
    assert 0 < expected < 1
    seen: list[tuple[int, int]] = []
    monkeypatch.setattr(evaluation, "SEGMENT", 7)  # 40 steps: segments of 7, the last of 5
    found = evaluation.accuracy(model, x, y, chunk=64, progress=lambda d, t: seen.append((d, t)))
    assert found == expected
    dones = [d for d, _ in seen]
    assert dones == sorted(dones) and seen[-1] == (300 * 40, 300 * 40) and len(seen) == 5 * 6
    for t, trace, overflowed in evaluation.outputs(model, x, 7):
        np.testing.assert_allclose(trace.p, whole[t : t + 7], rtol=1e-12, atol=0)
        assert not overflowed.any()


@settings(max_examples=40, deadline=None)
@given(
    T=st.integers(1, 60),
    B=st.integers(1, 50),
    cell=st.sampled_from(["rnn", "lstm", "gru"]),
    budget=st.integers(1, 6000),
)
def test_evaluation_passes_stay_within_budget_and_take_many_sums_a_step(
    T: int, B: int, cell: str, budget: int
) -> None:
    """Each pass of `accuracy` holds at most PASS_ELEMENTS values where a pass of one sum
    and as few steps as allowed can; it takes no fewer than SHORTEST_SEGMENT steps (or all
    T) unless one sum already fills the budget; every sum-bit is judged once; the answer is
    that of one whole pass."""
    model = CELLS[cell](2, 3, 1, seed=1)
    width = model.state_width
    x, y = random_addition_batch(np.random.default_rng(T * 100 + B), B, T)
    expected = evaluation.exact_match(model.forward(x), y).mean()
    seen: list[tuple[int, int]] = []  # (steps, sums) of each pass
    run = model.run

    def spy(x: np.ndarray, **states: np.ndarray) -> object:
        seen.append(x.shape[:2])
        return run(x, **states)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluation, "PASS_ELEMENTS", budget)
        patch.setattr(evaluation, "SHORTEST_SEGMENT", 7)
        patch.setattr(model, "run", spy)
        found = evaluation.accuracy(model, x, y, chunk=40)
    assert found == expected
    assert sum(steps * sums for steps, sums in seen) == T * B  # each sum-bit once
    segment, chunk = max(s for s, _ in seen), max(n for _, n in seen)  # the full passes'
    shortest, most = min(T, 7), min(B, 40)
    if (shortest + 1) * width <= budget:  # a sum of the shortest segment fits the budget
        assert (segment + 1) * chunk * width <= budget
        assert segment >= shortest
        assert chunk == most or (shortest + 1) * (chunk + 1) * width > budget  # sums first
        assert segment == T or (segment + 2) * chunk * width > budget  # then steps
    else:  # one sum at a time, in the longest segment that fits (at least one step)
        assert chunk == 1 and segment == min(T, max(1, budget // width - 1))


def test_a_sum_whose_state_overflows_counts_as_wrong_and_spares_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = RNN(2, 3, 1, "relu", seed=0)
    model.params["W_xh"][...] = [[1.0, 0, 0], [0, 0, 0]]  # only operand a feeds unit 0
    model.params["W_hh"][...] = np.diag([1e200, 0, 0])  # unit 0 explodes once a has a 1
    monkeypatch.setattr(evaluation, "SEGMENT", 4)
    a_bits = np.zeros((12, 2), dtype=np.uint8)
    a_bits[0, 1] = 1  # sum 1: a = 1; sum 0: a = 0
    x = np.stack([a_bits, np.zeros_like(a_bits)], axis=-1).astype(np.float64)  # (12, 2, 2)
    flags = [overflowed.copy() for _, _, overflowed in evaluation.outputs(model, x, 4)]
    assert [f.tolist() for f in flags] == [[False, True]] * 3  # found, then kept, in segment 1
    y = np.zeros((12, 2, 1))
    y[0, 1] = 1.0
    p0 = model.forward(x[:, :1])  # sum 0 alone never overflows
    right0 = bool(evaluation.exact_match(p0, y[:, :1])[0])
    assert evaluation.accuracy(model, x, y) == (1 if right0 else 0) / 2


# --- the report's budget ------------------------------------------------------------------


def test_affordable_sums_keeps_the_readme_models_whole_and_cuts_large_ones() -> None:
    for model in (RNN(2, 16, 1), RNN(2, 32, 1, "tanh"), LSTM(2, 16, 1)):
        for bits in (8, 16, 64, 1024):
            assert evaluation.affordable_sums(model, bits, 1000) == 1000
    big = RNN(2, 4096, 1)
    assert 0 < evaluation.affordable_sums(big, 16, 1000) < 1000
    assert evaluation.affordable_sums(big, 1024, 1000) == 0
    per_sum = 16 * ((2 + 4096) * 4096 + 4096)
    n = evaluation.affordable_sums(big, 16, 1000)
    assert n * per_sum <= evaluation.REPORT_WORK < (n + 1) * per_sum


def test_evaluate_shows_progress_on_long_work_unless_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.npz"
    modelfile.save(path, RNN(2, 4, 1))
    monkeypatch.setattr(progress, "EVERY", 0.0)  # every call counts as long work
    monkeypatch.setattr(evaluation, "SEGMENT", 100)
    argv = ["evaluate", "--model", str(path), "--bits", "1000", "--samples", "3"]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert out.endswith("exact on 3 random 1000-bit sums\n")
    lines = err.splitlines()
    assert lines[-1] == "evaluating 3 random 1000-bit sums: 100% after 0 s" and len(lines) == 10
    assert cli.main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


# --- the training loop's own output -------------------------------------------------------


def test_progress_lines_show_the_step_budget() -> None:
    lines: list[str] = []
    loop.train(TrainConfig(steps=250, lr=1e-4, log_every=100), log=lines.append)
    assert [line[:13] for line in lines] == ["step 100/250 ", "step 200/250 "]


def test_a_slow_step_is_logged_within_every_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop, "EVERY", 0.0)  # every step counts as slow
    lines: list[str] = []
    loop.train(TrainConfig(steps=3, log_every=100), log=lines.append)
    assert [line[:9] for line in lines] == ["step 1/3 ", "step 2/3 ", "step 3/3 "]


def test_a_stall_needs_a_flat_loss_and_suggests_the_other_way() -> None:
    config = TrainConfig(steps=2000)
    state, _ = loop.start(config)
    steps = 2 * loop.STALL_STEPS
    state.history.loss.extend([4.0] * steps)
    state.history.batch_accuracy.extend([0.0] * steps)
    stall = loop.stall(state)
    assert stall is not None and (stall.try_lr, stall.lr) == (0.01, 0.1)
    assert "try a learning rate of 0.01 (now 0.1)" in stall.describe()  # in words
    assert "try --lr 0.01 (now 0.1), or another --hidden (now 16) or --bits (now 8)" in (
        stall.describe(STALL_OPTIONS)  # in options, for the command line
    )
    state.history.loss[-1] = 0.0  # the last stretch's mean falls by 4 / 1000 = 0.4%: flat
    assert loop.stall(state) is not None
    state.history.loss[-500:] = array.array("d", [3.0] * 500)  # by 12.5%: moving
    assert loop.stall(state) is None
    slow, _ = loop.start(replace(config, lr=1e-5))
    slow.history.loss.extend([4.0] * steps)
    slow.history.batch_accuracy.extend([0.0] * steps)
    found = loop.stall(slow)
    assert found is not None and "try --lr 0.1 (now 1e-05)" in found.describe(STALL_OPTIONS)


def test_checks_of_long_sums_show_progress_counting_the_silence_before_them(
    clock: Clock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The checks that can end a run (long sums, then the validation sums) each take a few
    seconds on long sums and print, together, a line once the output has been silent EVERY
    seconds since the loop's last line (`train --cell lstm --long-bits 65536` was silent
    for 18 s); without `show`, nothing."""
    state, validation = loop.start(TrainConfig(long_bits=64))
    state.history.eval_step.append(0)  # the short sums solved at step 0 ...
    state.history.eval_accuracy.append(1.0)
    state.history.eval_long_accuracy.append(float("nan"))
    state.step = stopping.LONG_STEPS  # ... and the long sums due now
    checked: list[int] = []

    def three_seconds_each(model: object, x: np.ndarray, y: np.ndarray, **kw: Any) -> float:
        clock.now += 3.0
        if kw.get("progress") is not None:
            kw["progress"](1, 2)
        checked.append(x.shape[1])
        return 1.0

    monkeypatch.setattr(stopping, "accuracy", three_seconds_each)
    for show in (True, False):
        stopping.evaluate_if_due(state, validation, show, since=clock.now)
    assert checked == [stopping.LONG_SCREEN, evaluation.LONG_SUMS, 16384] * 2
    assert capsys.readouterr().err.splitlines() == [
        f"step {stopping.LONG_STEPS}: evaluating the {evaluation.LONG_SUMS} 64-bit sums: "
        "50% after 3 s, about 3 s to go"  # 6 s after the loop's line; the next 3 s later
    ]
