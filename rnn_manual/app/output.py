"""What every command writes through: standard output that cannot stop the work, files
checked before the work begins, and the options a command was given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.args import UsageError
from ..files import atomic


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
    then written to) and as `writable` gives it; UsageError when both name one file."""
    checkpoint_path = args.checkpoint if args.checkpoint is not None else args.resume
    save_to, checkpoint_to = writable(args.save), writable(checkpoint_path)
    if save_to is not None and save_to == checkpoint_to:
        both = "--checkpoint" if args.checkpoint is not None else "--resume"
        raise UsageError(
            f"--save and {both} name the same file ({args.save}): "
            "the model would overwrite the checkpoint; give --save another path"
        )
    return save_to, checkpoint_path or "", checkpoint_to
