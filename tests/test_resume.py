"""Checkpoints, exact resume, Ctrl-C, divergence, gradient clipping and determinism.

"Exact" means bit for bit: np.array_equal on every weight, never a tolerance.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from processes import interrupted, start_cli

from rnn_manual.app import cli
from rnn_manual.files import modelfile
from rnn_manual.files.checkpoint import load_checkpoint, save_checkpoint
from rnn_manual.training.loop import Diverged, train
from rnn_manual.training.optim import clip_grad_norm
from rnn_manual.training.state import TrainConfig, TrainResult, TrainState

ROOT = Path(__file__).resolve().parents[1]


def assert_same_run(a: TrainResult | TrainState, b: TrainResult | TrainState) -> None:
    assert a.history == b.history  # every loss, batch accuracy and evaluation
    for name, w in a.model.params.items():
        assert np.array_equal(b.model.params[name], w), name


def saver(path: Path) -> Any:
    return lambda state: save_checkpoint(path, state)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_a_resumed_run_ends_bit_identical_to_the_uninterrupted_one(
    tmp_path: Path, optimizer: str
) -> None:
    config = TrainConfig(optimizer=optimizer)  # the defaults solve 8-bit addition in 180-380
    whole = train(config, log=None)
    assert whole.solved
    path = tmp_path / "ck.npz"
    stop_at = whole.steps // 2
    first = train(replace(config, steps=stop_at), log=None, checkpoint=saver(path))
    assert first.steps == stop_at and not first.solved
    resumed = train(config, log=None, resume=load_checkpoint(path))
    assert resumed.steps == whole.steps and resumed.solved
    assert_same_run(whole, resumed)


def test_resume_is_exact_in_float32_with_biases_clipping_and_random_validation(
    tmp_path: Path,
) -> None:
    # 12 bits: the validation sums are drawn from the generator, after the weights.
    config = TrainConfig(bits=12, hidden=8, batch=16, steps=40, bias=True, clip=0.5)
    config = replace(config, dtype="float32", loss="bce")
    whole = train(config, log=None)
    path = tmp_path / "ck.npz"
    train(config, log=None, checkpoint=saver(path), checkpoint_every=7)  # last periodic: 35
    state = load_checkpoint(path)
    assert state.step == 40  # and the final one
    for every, at in ((7, 35), (9, 36)):
        partial = replace(config, steps=at + 2)
        train(partial, log=None, checkpoint=saver(path), checkpoint_every=every)
        assert load_checkpoint(path).step == at + 2
    resumed = train(config, log=None, resume=load_checkpoint(path))
    assert_same_run(whole, resumed)


@pytest.mark.parametrize("cell, optimizer", [("lstm", "momentum"), ("gru", "adam")])
def test_resume_is_exact_for_the_gated_cells(tmp_path: Path, cell: str, optimizer: str) -> None:
    config = TrainConfig(cell=cell, optimizer=optimizer, hidden=6, batch=16, steps=30, bias=True)
    whole = train(config, log=None)
    path = tmp_path / "ck.npz"
    train(replace(config, steps=13), log=None, checkpoint=saver(path))
    resumed = train(config, log=None, resume=load_checkpoint(path))
    assert resumed.steps == 30
    assert_same_run(whole, resumed)


def test_resume_refuses_a_different_config(tmp_path: Path) -> None:
    path = tmp_path / "ck.npz"
    train(TrainConfig(steps=3), log=None, checkpoint=saver(path))
    with pytest.raises(ValueError, match="different config"):
        train(TrainConfig(steps=9, lr=0.01), log=None, resume=load_checkpoint(path))


def test_ctrl_c_stops_after_the_step_and_checkpoints_it(tmp_path: Path) -> None:
    config = TrainConfig(log_every=1)
    whole = train(config, log=None)
    path = tmp_path / "ck.npz"

    def press_ctrl_c_at_step_50(line: str) -> None:
        if line.startswith("step   50/5000 "):  # the step, then the budget
            os.kill(os.getpid(), signal.SIGINT)

    stopped = train(config, log=press_ctrl_c_at_step_50, checkpoint=saver(path))
    assert stopped.interrupted and stopped.steps == 50
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    resumed = train(config, log=None, resume=load_checkpoint(path))
    assert_same_run(whole, resumed)


def test_a_second_ctrl_c_interrupts_at_once(tmp_path: Path) -> None:
    def press_twice(line: str) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(log_every=1), log=press_twice)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigint_to_the_command_line_saves_a_checkpoint_that_resumes_exactly(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ck.npz"
    # A learning rate too small to solve anything: the run lasts until interrupted.
    args = ["train", "--hidden", "4", "--lr", "1e-5", "--steps", "1000000"]
    args += ["--checkpoint", str(path), "--checkpoint-every", "1000000"]
    (first_line,), status, stderr = interrupted(*args)  # the first progress line
    assert first_line.startswith("step"), first_line  # training was on
    assert status == 130
    assert stderr.startswith("interrupted at step ") and stderr.count("\n") == 1, stderr
    assert f"checkpoint saved to {path}" in stderr
    state = load_checkpoint(path)
    assert stderr.startswith(f"interrupted at step {state.step},")
    # The same run, uninterrupted and in this process, ends a few steps later identically.
    config = replace(state.config, steps=state.step + 5)
    resumed = train(config, log=None, resume=state)
    assert_same_run(train(config, log=None), resumed)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = cli.main(list(argv))
    except SystemExit as e:
        status = int(e.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def test_command_line_checkpoint_and_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ck, whole, resumed = tmp_path / "ck.npz", tmp_path / "whole.npz", tmp_path / "resumed.npz"
    base = ("train", "--quiet", "--bias")
    assert run_cli(capsys, *base, "--save", str(whole))[0] == 0
    status, _, _ = run_cli(capsys, *base, "--steps", "100", "--checkpoint", str(ck))
    assert status == 1  # budget ran out
    resume = ("train", "--quiet", "--resume", str(ck))
    assert run_cli(capsys, *resume)[0] == 1  # the checkpoint's own budget: spent
    status, out, _ = run_cli(capsys, *resume, "--steps", "5000", "--save", str(resumed))
    assert status == 0 and "solved" in out
    (a, history_a), (b, history_b) = modelfile.load(whole), modelfile.load(resumed)
    assert history_a == history_b
    for name, w in a.params.items():
        assert np.array_equal(b.params[name], w)
    assert load_checkpoint(ck).step == len(history_a.loss)  # --resume kept writing

    status, _, err = run_cli(capsys, "train", "--resume", str(ck), "--hidden", "8")
    assert status == 2 and err.count("\n") == 1 and "--hidden" in err
    status, _, err = run_cli(capsys, "train", "--resume", str(whole))
    assert status == 2 and "without training state" in err
    status, _, err = run_cli(capsys, "train", "--checkpoint", str(tmp_path / "no" / "ck.npz"))
    assert status == 2 and "cannot write" in err


def test_divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ck.npz"
    config = TrainConfig(optimizer="sgd", lr=1e150, activation="relu")
    with pytest.raises(Diverged, match=r"^training diverged at step \d+ \(") as error:
        train(config, log=None, checkpoint=saver(path), checkpoint_every=1)
    kept = load_checkpoint(path)  # the state after the last finite step
    assert f"at step {kept.step + 1} " in str(error.value) and kept.step >= 1
    assert all(np.isfinite(w).all() for w in kept.model.params.values())


def test_divergence_on_the_command_line_exits_3_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ck.npz"
    argv = ["train", "--optimizer", "sgd", "--lr", "1e150", "--activation", "relu", "--quiet"]
    status, _, err = run_cli(capsys, *argv, "--checkpoint", str(path), "--checkpoint-every", "1")
    assert status == 3 and err.count("\n") == 1 and "diverged" in err
    assert "try a smaller learning rate or gradient clipping (--clip)" in err  # the options
    assert f"{path} keeps step {load_checkpoint(path).step}" in err


def test_clip_grad_norm_scales_to_the_bound_and_keeps_the_direction() -> None:
    rng = np.random.default_rng(0)
    grads = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=5)}
    before = {k: g.copy() for k, g in grads.items()}
    norm = clip_grad_norm(grads, 0.5)
    flat = np.concatenate([g.ravel() for g in before.values()])
    assert norm == pytest.approx(np.linalg.norm(flat), rel=1e-14)
    clipped = np.concatenate([g.ravel() for g in grads.values()])
    assert np.linalg.norm(clipped) == pytest.approx(0.5, rel=1e-14)
    np.testing.assert_allclose(clipped, flat * (0.5 / norm), rtol=1e-15)
    assert clip_grad_norm(grads, 10.0) == pytest.approx(0.5) and np.array_equal(
        np.concatenate([g.ravel() for g in grads.values()]), clipped
    )  # below the bound: untouched


def test_clipping_bounds_every_sgd_update() -> None:
    config = TrainConfig(optimizer="sgd", lr=1.0, steps=1, clip=1e-3)
    before = train(replace(config, steps=1, lr=1e-300), log=None).model.params  # start weights
    after = train(config, log=None).model.params
    step = np.sqrt(sum(float(np.sum((after[k] - before[k]) ** 2)) for k in after))
    assert step == pytest.approx(1e-3, rel=1e-9)  # lr * clip, the gradient being larger


def test_same_config_same_weights_different_seed_different_weights() -> None:
    config = TrainConfig(hidden=8, batch=16, steps=30, optimizer="momentum", bias=True)
    a, b = train(config, log=None), train(config, log=None)
    assert_same_run(a, b)
    c = train(replace(config, seed=1), log=None)
    assert not np.array_equal(a.model.params["W_hh"], c.model.params["W_hh"])


def test_same_command_same_weights_across_processes(tmp_path: Path) -> None:
    paths = [tmp_path / "a.npz", tmp_path / "b.npz"]
    command = [sys.executable, "-m", "rnn_manual", "train", "--steps=40", "--seed=7", "--quiet"]
    for path in paths:
        subprocess.run(
            [*command, "--save", str(path)],
            check=False,
            capture_output=True,
            timeout=60,
            cwd=ROOT,
        )
    (a, history_a), (b, history_b) = (modelfile.load(p) for p in paths)
    assert history_a == history_b and history_a is not None and len(history_a.loss) == 40
    for name, w in a.params.items():
        assert np.array_equal(b.params[name], w)


def test_ctrl_c_during_the_report_keeps_the_saved_model(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    args = ["train", "--steps", "3", "--hidden", "1024", "--quiet", "--save", str(path)]
    process = start_cli(*args)
    with process:
        assert process.stdout is not None
        first = process.stdout.readline()  # training is over: the report begins
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    assert first.startswith("NOT solved (step budget ran out) after 3 steps"), first
    assert process.returncode in (130, 1)  # interrupted, or the report was done already
    model, history = modelfile.load(path)
    assert model.hidden_size == 1024 and history is not None and len(history.loss) == 3
