"""The command line run as a process of its own, for the tests that signal it (Ctrl-C) or
close its output early, which a call of cli.main in this process cannot show."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_cli(*args: str) -> subprocess.Popen[str]:
    """`python -W error -u -m rnn_manual ARGS` from the repository root, started and not
    waited for: its stdout and stderr are pipes of text, its output unbuffered (-u), so a
    test sees each line as it is printed."""
    return subprocess.Popen(
        [sys.executable, "-W", "error", "-u", "-m", "rnn_manual", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def interrupted(
    *args: str, lines: int = 1, signum: int = signal.SIGINT
) -> tuple[list[str], int, str]:
    """Run the command line with ARGS, read `lines` lines of its output, then send it
    `signum` (Ctrl-C's SIGINT by default) and wait for it (60 s at most, then it is killed):
    the lines read, its exit status and its stderr."""
    process = start_cli(*args)
    try:
        assert process.stdout is not None
        read = [process.stdout.readline() for _ in range(lines)]
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    return read, process.returncode, stderr
