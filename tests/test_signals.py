"""Stop signals and second writers never cost a run's work: SIGTERM and SIGHUP stop a
training run after its step with the checkpoint written, as Ctrl-C does, and a checkpoint
is written by one run at a time."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from processes import interrupted, start_cli

from rnn_manual.files import locks
from rnn_manual.files.checkpoint import load_checkpoint
from rnn_manual.files.textcheckpoint import load_text_checkpoint
from rnn_manual.training.loop import STOP_SIGNALS, train
from rnn_manual.training.state import TrainConfig

#: A run that lasts until it is stopped: a learning rate too small to solve anything, a
#: budget never reached, no checkpoint but the one written when it stops.
ENDLESS = ["train", "--hidden", "4", "--lr", "1e-5", "--steps", "1000000"]
#: Its text twin, on a text of its own (`text_file`).
ENDLESS_TEXT = ["text", "--hidden", "8", "--seq", "10", "--batch", "2", "--steps", "10000000"]
#: The exit status of a run that a stop signal stopped: 128 + its number, as a shell says.
STATUS = {signal.SIGTERM: 143, signal.SIGHUP: 129}


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 40, encoding="utf-8")
    return path


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_sigterm_and_sighup_stop_train_after_the_step_with_the_checkpoint_written(
    tmp_path: Path, signum: signal.Signals
) -> None:
    path = tmp_path / "ck.npz"
    args = [*ENDLESS, "--checkpoint", str(path), "--checkpoint-every", "1000000"]
    (first,), status, stderr = interrupted(*args, signum=signum)
    assert first.startswith("step"), first  # training was on
    assert status == STATUS[signum]
    assert stderr.count("\n") == 1, stderr
    state = load_checkpoint(path)  # every step made, none lost
    assert stderr == (
        f"stopped by {signum.name} at step {state.step}, checkpoint saved to {path}\n"
    )
    assert state.step >= 100 and not list(tmp_path.glob(".*"))  # no lock, no temporary left


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_sigterm_and_sighup_stop_text_after_the_step_with_the_checkpoint_written(
    tmp_path: Path, text_file: Path, signum: signal.Signals
) -> None:
    path = tmp_path / "ck.npz"
    args = [*ENDLESS_TEXT, "--file", str(text_file), "--checkpoint", str(path)]
    # two lines: the text's, then a step's
    (_, first_step), status, stderr = interrupted(*args, lines=2, signum=signum)
    assert first_step.startswith("step"), first_step
    assert status == STATUS[signum]
    state, _, _ = load_text_checkpoint(path)
    assert stderr == (
        f"stopped by {signum.name} at step {state.step}, checkpoint saved to {path}\n"
    )
    assert state.step >= 100


def test_each_stop_signal_stops_train_after_the_step_and_says_which(tmp_path: Path) -> None:
    """In this process: the first stop signal only asks, the step ends, the result names
    the signal, and the handlers in place before are back afterwards."""
    received: list[int] = []
    before = {
        s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in STOP_SIGNALS
    }
    try:
        for signum in STOP_SIGNALS:
            handlers = {s: signal.getsignal(s) for s in STOP_SIGNALS}

            def send_at_step_20(line: str, signum: int = signum) -> None:
                if line.split()[:2] == ["step", "20/5000"]:
                    os.kill(os.getpid(), signum)

            stopped = train(TrainConfig(log_every=1), log=send_at_step_20)
            assert (stopped.interrupted, stopped.steps) == (signum, 20)
            assert {s: signal.getsignal(s) for s in STOP_SIGNALS} == handlers
        assert received == []  # the run's own handlers took every signal
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def test_a_second_run_on_a_checkpoint_in_use_is_refused_and_the_first_keeps_it(
    tmp_path: Path,
) -> None:
    """Two runs writing one checkpoint would replace each other's steps in turn; a --resume
    of a checkpoint still being written would go on from steps the first run then replaces.
    Both are refused in one line (status 2) while the first runs on; once it has ended, its
    checkpoint resumes, and a run killed outright (SIGKILL) leaves no lock that refuses."""
    path = tmp_path / "ck.npz"
    first = start_cli(*ENDLESS, "--checkpoint", str(path), "--checkpoint-every", "50")
    try:
        assert first.stdout is not None
        assert first.stdout.readline().startswith("step")  # training, checkpoint written
        another_run = ["train", "--hidden", "5", "--steps", "200", "--checkpoint", str(path)]
        for argv in (another_run, ["train", "--resume", str(path)]):
            second = run_cli(*argv)
            assert second.returncode == 2, second
            assert second.stderr == (
                f"rnn-manual train: error: {path}: another run (PID {first.pid}) is writing "
                "this checkpoint; wait for it to end, or give another --checkpoint\n"
            )
            assert first.poll() is None  # the first run goes on
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 130
    state = load_checkpoint(path)
    assert state.config.hidden == 4  # its own run's
    assert not list(tmp_path.glob(".*"))  # its lock went with it
    # A run killed outright: its lock goes with it, and the checkpoint resumes.
    killed = start_cli("train", "--resume", str(path), "--steps", "1000000")
    assert killed.stdout is not None and killed.stdout.readline().startswith("step")
    killed.kill()
    killed.communicate(timeout=60)
    resumed = run_cli("train", "--resume", str(path), "--steps", str(state.step + 3), "--quiet")
    assert resumed.returncode == 1, resumed  # the budget ran out: it ran
    assert load_checkpoint(path).step == state.step + 3


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    process = start_cli(*args)
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_a_claim_refuses_a_second_holder_and_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "ck.npz"
    with locks.Claim(path):
        with pytest.raises(locks.Busy) as refused:
            locks.Claim(path)  # a second open file of this process counts as another holder
        assert refused.value.pid == os.getpid()
    assert list(tmp_path.iterdir()) == []
    locks.Claim(path).release()  # free again
