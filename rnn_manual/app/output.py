"""What every command writes through: standard output that cannot stop the work, files
checked before the work begins, and the options a command was given.
"""

from __future__ import annotations

import argparse
import signal
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from ..core.args import UsageError
from ..files import atomic, locks


class Output:
    """Standard output, one line per call, that cannot stop the work: after a write fails
    (a closed pipe, a full disk) the rest of the output is dropped and `error` remembers
    why, for main to report once the command has finished."""

    def __init__(self) -> None:
        self.error: OSError | None = None
        self.note = ""  # added to the report of a failure: what was kept (a saved model)

    def __call__(self, line: str) -> None:
        if self.error is None:
            try:
                print(line, flush=True)
            except OSError as e:
                self.error = e


def writable(path: str | None) -> Path | None:
    """The file that writing to `path` will replace, checked before hours of training (a
    file can be created in its folder; it is not a folder, device or FIFO), or UsageError."""
    if path is None:
        return None
    try:
        return atomic.target(path)
    except atomic.WriteError as e:
        raise UsageError(str(e)) from None


def given_options(args: argparse.Namespace) -> list[str]:
    """The train options on the command line, in the parser's order, as their attribute names."""
    return [
        name
        for name, value in vars(args).items()
        if value is not None and name not in ("command", "seed_compatible")
    ]


def option(name: str) -> str:
    return "--" + name.replace("_", "-")


def run_files(args: argparse.Namespace) -> tuple[Path | None, str, Path | None]:
    """A training command's files (train, text): the model's (--save) as `writable` gives
    it, the checkpoint's path as given ("" if none: --checkpoint, else --resume, which is
    then written to) and as `writable` gives it; UsageError when both name one file, or for
    --checkpoint-every without a checkpoint."""
    checkpoint_path = args.checkpoint if args.checkpoint is not None else args.resume
    if checkpoint_path is None and args.checkpoint_every is not None:
        raise UsageError(
            "--checkpoint-every: there is no checkpoint to write; give --checkpoint PATH"
        )
    save_to, checkpoint_to = writable(args.save), writable(checkpoint_path)
    if save_to is not None and save_to == checkpoint_to:
        both = "--checkpoint" if args.checkpoint is not None else "--resume"
        raise UsageError(
            f"--save and {both} name the same file ({args.save}): "
            "the model would overwrite the checkpoint; give --save another path"
        )
    return save_to, checkpoint_path or "", checkpoint_to


def report_stop(signum: signal.Signals, step: int, checkpoint: str) -> int:
    """Say in one line on stderr that a run was stopped by `signum` (a stop signal of
    training/loop.py) after step `step`, and whether its checkpoint (a path; "": none) was
    written; return the exit status a shell gives a process that `signum` ends, 128 + its
    number: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    how = "interrupted" if signum == signal.SIGINT else f"stopped by {signum.name}"
    kept = f"checkpoint saved to {checkpoint}" if checkpoint else "no --checkpoint"
    try:
        print(f"{how} at step {step}, {kept}", file=sys.stderr, flush=True)
    except OSError:  # the terminal hung up (SIGHUP): the exit status still says it
        pass
    return 128 + signum


def one_writer(checkpoint: Path | None, given: str) -> AbstractContextManager[object]:
    """Hold the checkpoint that run_files gives (None: none; `given`: its path as typed) for
    this run alone, inside the `with` block this is given to; UsageError if another run holds
    it: two runs writing one checkpoint would each replace the other's steps, in turn and
    silently. Take it before a --resume reads the file, so that it reads the last steps."""
    if checkpoint is None:
        return nullcontext()
    try:
        return locks.Claim(checkpoint)
    except locks.Busy as e:
        who = "another run" if e.pid is None else f"another run (PID {e.pid})"
        raise UsageError(
            f"{given}: {who} is writing this checkpoint; wait for it to end, or give "
            "another --checkpoint"
        ) from None
    except OSError as e:
        raise UsageError(f"{given}: cannot lock the checkpoint ({e.strerror or e})") from None
