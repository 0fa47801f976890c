"""`python -m rnn_torch check`: build a model from options, compute its gradients by hand and
by PyTorch autograd, and print a table of each gradient's error. Exit 0 when every gradient
is within its bound, 1 on a mismatch, 2 for bad options or a network that cannot be judged
honestly (one line on stderr: its forward pass overflows, or rounding alone moves its
gradients too near their limits), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch
from numpy.typing import NDArray

from rnn_manual import random_addition_batch
from rnn_manual.cells import CELLS, Cell
from rnn_manual.cells.activations import ACTIVATIONS
from rnn_manual.cells.losses import OUTPUT_OF
from rnn_manual.core import threads
from rnn_manual.core.args import Parser, UsageError, one_line, positive_int, seed, within_limits
from rnn_manual.core.backend import LIBRARIES
from rnn_manual.core.validate import DTYPE_NAMES, Overflow

from . import diagnose
from .check import OBJECTIVES, judged_rows, overflows, unjudged
from .compare import Row
from .twin import torch_module

M = TypeVar("M", bound=Cell)
Array = NDArray[np.floating]

#: The adder's input and output sizes: two operand bits in, one sum bit out; with a softmax
#: output (--loss ce), the sum bit is a choice between two outputs, 0 and 1.
INPUTS, OUTPUTS = 2, {"sigmoid": 1, "softmax": 2}
#: Largest value of each size option, so that a typo cannot ask for gigabytes (a pass as a
#: whole is held to rnn_manual.core.limits).
MAX_SIZE = 4096


def size(text: str) -> int:
    """A positive integer up to MAX_SIZE, for argparse."""
    value = positive_int(text)
    if value > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"expected an integer in 1..{MAX_SIZE}, got {text!r}")
    return value


def build_parser() -> Parser:
    parser = Parser(prog="python -m rnn_torch", description="The manual RNN judged by autograd.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    c = commands.add_parser(
        "check",
        help="manual BPTT gradients against PyTorch autograd, on random sums",
        description="Run the manual model and its PyTorch twin on a batch of random binary "
        "sums and print each gradient's max absolute and normwise relative error. A network "
        "that rounding alone moves too near the limits (a long chaotic one, or a long float32 "
        "one) is refused, exit 2.",
    )
    c.add_argument("--bits", type=size, default=8, help="sequence length T (default 8)")
    c.add_argument("--batch", type=size, default=4, help="sums per batch B (default 4)")
    c.add_argument("--hidden", type=size, default=16, help="hidden units H (default 16)")
    c.add_argument("--cell", choices=list(CELLS), default="rnn", help="default rnn")
    c.add_argument(
        "--activation", choices=sorted(ACTIVATIONS), help="rnn cell only (default sigmoid)"
    )
    c.add_argument("--bias", action="store_true", help="give both layers a (random) bias")
    c.add_argument(
        "--loss",
        choices=OBJECTIVES,
        default="mse",
        help="what to differentiate: a loss (ce: cross-entropy on a softmax over the sum "
        "bit's two values), or 'upstream', sum(V * p) for random V",
    )
    c.add_argument("--dtype", choices=DTYPE_NAMES, default="float64")
    c.add_argument("--seed", type=seed, default=0, help="weights and data (default 0)")
    c.add_argument("--h0", action="store_true", help="start from a random h0, not zeros")
    c.add_argument(
        "--fused",
        action="store_true",
        help="judge by the whole-sequence layer (torch.nn.RNN, LSTM, GRU) instead of the cell",
    )
    c.add_argument(
        "--backend",
        choices=LIBRARIES,
        default="numpy",
        help="the array library that runs the manual BPTT (default numpy); autograd runs on "
        "the same device",
    )
    c.add_argument("--device", help="where the backend runs, e.g. cuda (default: its default)")
    diagnose.add_parser(commands)
    return parser


def on_backend(model: M, args: argparse.Namespace) -> M:
    """`model` moved to the --backend library and --device, or UsageError if it cannot go."""
    if args.device not in (None, "cpu") and args.backend == "numpy":
        raise UsageError("--device needs --backend torch or cupy (NumPy runs on the cpu)")
    try:
        model.to(args.backend, args.device)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return model


def where(args: argparse.Namespace) -> str:
    """The backend and device, for the report's first line."""
    return args.backend if args.device is None else f"{args.backend} on {args.device}"


def build_model(args: argparse.Namespace, rng: np.random.Generator) -> Cell:
    """The model the options describe: the cell's initial weights, biases ~ N(0, 0.5^2)."""
    cell = CELLS[args.cell]
    options = {"activation": args.activation} if cell.activations else {}
    output = OUTPUT_OF.get(args.loss, "sigmoid")  # "upstream" judges the sigmoid's
    sizes = (INPUTS, args.hidden, OUTPUTS[output])
    model = cell(*sizes, bias=args.bias, dtype=args.dtype, seed=rng, output=output, **options)
    for name, w in model.params.items():
        if name.startswith("b_"):  # non-zero, so that a wrong or misplaced bias shows
            w[...] = rng.normal(0.0, 0.5, w.shape)
    return model


def format_table(rows: Sequence[Row]) -> str:
    """One line per gradient: name, shape, max |manual - torch|, relative error, its limit."""
    lines = [f"{'gradient':<10} {'shape':<14} {'max abs':>10} {'relative':>10} {'limit':>10}"]
    for row in rows:
        name = "loss" if row.name == "loss" else f"d{row.name}"
        verdict = "ok" if row.passed else "MISMATCH"
        lines.append(
            f"{name:<10} {row.shape!s:<14} {row.max_abs:>10.2e} {row.relative:>10.2e} "
            f"{row.limit:>10.1e}  {verdict}"
        )
    return "\n".join(lines)


def judged(
    args: argparse.Namespace, model: Cell, x: Array, target: Array, states: dict[str, Array]
) -> list[Row] | None:
    """The rows of `check`; None where the manual forward pass overflows and autograd's does
    not (a mismatch). UsageError, one line and exit 2, for a network that cannot be judged
    honestly: autograd's pass overflows too, or rounding alone could move a gradient near
    its limit, or the limit is too loose to fail (rnn_torch.check.unjudged)."""
    network = f"T {args.bits}, B {args.batch}, H {args.hidden} {args.activation or args.cell}"
    advice = "use fewer --bits"
    if args.dtype != "float64":
        advice += ", or --dtype float64"
    try:
        rows, spread = judged_rows(model, x, target, args.loss, **states, fused=args.fused)
    except Overflow:
        if not overflows(model, x, **states):
            return None
        raise UsageError(
            f"the {network} network's forward pass overflows in {args.dtype}; {advice}"
        ) from None
    reason = unjudged(rows, spread)
    if reason is not None:
        raise UsageError(f"cannot judge the {network} network: {reason}; {advice}")
    return rows


def check(args: argparse.Namespace) -> int:
    """The manual gradients of the model the options describe against autograd's, any cell."""
    cell = CELLS[args.cell]
    # A pass holds (T + 1) x B x state values (the state: H, or the gates' 4H / 3H), the
    # batch T x B x 2 inputs.
    width = max(cell.width * args.hidden, INPUTS)
    within_limits("a pass (bits x batch x state)", args.bits + 1, args.batch, width)
    if args.activation is not None and not cell.activations:
        raise UsageError(f"--activation is for the rnn cell, not {args.cell}")
    if cell.activations:
        args.activation = args.activation or "sigmoid"
    if args.fused and args.activation == "sigmoid":
        raise UsageError("--fused needs --activation tanh or relu (torch.nn.RNN has no sigmoid)")
    rng = np.random.default_rng(args.seed)
    model = build_model(args, rng)
    x, y = random_addition_batch(rng, args.batch, args.bits, args.dtype)  # (T, B, 2), (T, B, 1)
    if model.output == "softmax":
        y = np.concatenate([1 - y, y], axis=-1)  # the sum bit one-hot: (1, 0) for 0, (0, 1) for 1
    target = rng.normal(0.0, 1.0, y.shape).astype(args.dtype) if args.loss == "upstream" else y
    shape = (args.batch, args.hidden)
    states = {}  # zeros, or random h0 (and c0 for the LSTM)
    if args.h0:
        states = {name: rng.normal(0.0, 0.5, shape).astype(args.dtype) for name in cell.states}
    rows = judged(args, on_backend(model, args), x, target, states)
    if rows is None:
        print("MISMATCH: the manual forward pass overflows, autograd's does not")
        return 1
    # The twin's torch module, made on the "meta" device (no data) only to be named.
    module = type(torch_module(model, args.fused, torch.float64, torch.device("meta"))).__name__
    module = module if module == "SigmoidRNNCell" else f"torch.nn.{module}"
    activation = f"{args.activation}, " if args.activation else ""
    print(
        f"manual BPTT ({where(args)}) vs PyTorch autograd ({module}): T {args.bits}, "
        f"B {args.batch}, H {args.hidden}, {activation}bias {args.bias}, {args.loss}, "
        f"h0 {'random' if args.h0 else 'zeros'}, {args.dtype}, seed {args.seed}"
    )
    print(format_table(rows))
    failed = [row.name for row in rows if not row.passed]
    print(f"MISMATCH in {', '.join(failed)}" if failed else "all gradients agree")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "diagnose":
        return diagnose.run(args)
    # Judges in full float32 on a GPU: cuDNN's RNNs would otherwise round through TF32.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        threads.threads()  # reads RNN_MANUAL_THREADS: a bad value is the user's to fix
    except ValueError as error:
        print(f"{parser.prog}: error: {one_line(error)}", file=sys.stderr)
        return 2
    try:
        return check(args)
    except UsageError as error:
        print(f"{parser.prog}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        threads.release()  # its threads must not hold the exit up
        return 130


if __name__ == "__main__":
    sys.exit(main())
