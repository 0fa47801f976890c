"""The command line of the diagnosis: `python -m rnn_torch diagnose FILE [options]`.

`add_parser(subparsers)` adds the subcommand to a command line's subparsers, `run(args)`
runs it and returns the exit status: 0 every gradient right, 1 any wrong or not judged, 2 a
file that cannot be run or bad options (one line on stderr); interrupted by Ctrl-C
(SIGINT), SIGTERM or SIGHUP, it ends the file's processes, removes its job folder, says so
in one line and returns 130, 143 or 129. `python -m rnn_torch.diagnose` is the same command
on its own.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

from rnn_manual.core.args import Parser, UsageError, positive_float, seed

from .api import diagnose
from .diagnosis import DEFAULT_TIMEOUT
from .gradescope import not_judged, results
from .probes import ACTIVATION_NAMES, CELL_NAMES, LOSS_NAMES
from .report import Report, StyleReport
from .sandbox import MAX_TIMEOUT, MIN_TIMEOUT
from .styles import STYLES

PROG = "python -m rnn_torch diagnose"
#: How a report is printed, by --format.
FORMATS: dict[str, Callable[[Report | StyleReport], str]] = {
    "text": lambda report: report.text(),
    "json": lambda report: json.dumps(report.to_json(), indent=2),
    "gradescope": lambda report: json.dumps(results(report), indent=2),
}
DESCRIPTION = (
    "Run a learner's loss_and_grads (a Python file with rnn_manual.reference's signature) on "
    "random float64 networks in a separate process, judge every gradient against PyTorch "
    "autograd, say where the wrong ones go wrong (sequence length, batch, initial state, bias, "
    "loss, activation, distance back in time, gate) and name the known bug they equal. Exit 0 "
    "when every gradient is right, 1 when any is not, 2 when the file cannot be run."
)


def timeout(text: str) -> float:
    """Seconds from MIN_TIMEOUT (what the time limit's polling can hold) to MAX_TIMEOUT (a
    day), for argparse."""
    value = positive_float(text)
    if not MIN_TIMEOUT <= value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(
            f"expected seconds from {MIN_TIMEOUT:g} to {MAX_TIMEOUT:g}, got {text!r}"
        )
    return value


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the main thread is, as Ctrl-C raises KeyboardInterrupt
    (so that the sandbox ends the file's processes and removes its job folder for either)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Stopped while the body runs (in the main thread; elsewhere
    the signals keep their handlers)."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            if hasattr(signal, name):
                signum = getattr(signal, name)
                previous[signum] = signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        help="the Python file: loss_and_grads, or a course's functions (see --style)",
    )
    parser.add_argument(
        "--style",
        choices=STYLES,
        help="the file's convention (default: read from the functions it defines): native "
        "(loss_and_grads), cs231n (rnn_layers.py), dls (the Coursera step-by-step "
        "notebook), minchar (min-char-rnn's lossFun)",
    )
    parser.add_argument(
        "--cell", choices=CELL_NAMES, help="a loss_and_grads file's cell (default rnn)"
    )
    parser.add_argument(
        "--activation",
        choices=ACTIVATION_NAMES,
        help="the rnn's activation to probe (default: all three); not for lstm or gru",
    )
    parser.add_argument(
        "--loss",
        choices=[*LOSS_NAMES, "both"],
        default="both",
        help="the loss to probe: mse, bce, ce (cross-entropy on a softmax output), or both "
        "(mse and bce; the default)",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--bias", dest="bias", action="store_const", const=True, help="networks with biases only"
    )
    group.add_argument(
        "--no-bias", dest="bias", action="store_const", const=False, help="without biases only"
    )
    group.add_argument(
        "--both",
        dest="bias",
        action="store_const",
        const=None,
        help="with and without biases (the default)",
    )
    parser.add_argument("--seed", type=seed, default=0, help="networks and data (default 0)")
    parser.add_argument(
        "--timeout",
        type=timeout,
        default=DEFAULT_TIMEOUT,
        help=f"seconds the file may take for all probes together, from {MIN_TIMEOUT:g} to "
        f"{MAX_TIMEOUT:g} (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (the default), json (one JSON object), or gradescope (Gradescope's "
        "results.json: one test per function judged)",
    )
    parser.add_argument(
        "--json", dest="format", action="store_const", const="json", help="--format json"
    )


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `diagnose` to a command line's subparsers (argparse's add_subparsers())."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "diagnose",
        help="check your own loss_and_grads: which gradient is wrong, where, and why",
        description=DESCRIPTION,
    )
    add_arguments(parser)
    parser.set_defaults(diagnose_prog=parser.prog)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the diagnosis the parsed options ask for; print it; return the exit status.
    Interrupted (Ctrl-C, SIGTERM, SIGHUP): one line on stderr and 128 + the signal's number,
    once the file's processes are ended and its job folder removed (sandbox.py)."""
    prog = getattr(args, "diagnose_prog", PROG)
    try:
        with stopped_by_signals():
            return diagnose_and_print(args, prog)
    except KeyboardInterrupt as error:
        signum = error.signum if isinstance(error, Stopped) else signal.SIGINT
        name = signal.Signals(signum).name + (" (Ctrl-C)" if signum == signal.SIGINT else "")
        print(
            f"{prog}: stopped by {name}; the file's processes are ended and its job folder removed",
            file=sys.stderr,
        )
        return 128 + signum


def diagnose_and_print(args: argparse.Namespace, prog: str) -> int:
    try:
        if args.activation is not None and args.cell not in (None, "rnn"):
            raise UsageError(f"--activation is for --cell rnn; the {args.cell} has its own")
        report = diagnose(
            args.file,
            args.cell,
            style=args.style,
            activation=args.activation,
            loss=args.loss,
            bias=args.bias,
            seed=args.seed,
            timeout=args.timeout,
        )
    except (UsageError, ValueError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        if args.format == "gradescope":  # the grader reads results.json, not stderr
            print(json.dumps(not_judged(str(error)), indent=2))
        return 2
    print(FORMATS[args.format](report))
    return report.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog=PROG, description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(diagnose_prog=PROG)
    return run(parser.parse_args(argv))
