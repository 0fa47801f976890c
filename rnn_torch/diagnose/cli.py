"""The command line of the diagnosis: `python -m rnn_torch diagnose FILE [options]`.

`add_parser(subparsers)` adds the subcommand to a command line's subparsers, `run(args)`
runs it and returns the exit status: 0 every gradient right, 1 any wrong or not judged, 2 a
file that cannot be run or bad options (one line on stderr). `python -m rnn_torch.diagnose`
is the same command on its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rnn_manual.core.args import Parser, UsageError, positive_float, seed

from .api import diagnose
from .diagnosis import DEFAULT_TIMEOUT
from .gradescope import not_judged, results
from .probes import ACTIVATION_NAMES, CELL_NAMES, LOSS_NAMES
from .report import Report, StyleReport
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
        type=positive_float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds the file may take for all probes together (default {DEFAULT_TIMEOUT:g})",
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
    """Run the diagnosis the parsed options ask for; print it; return the exit status."""
    prog = getattr(args, "diagnose_prog", PROG)
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
