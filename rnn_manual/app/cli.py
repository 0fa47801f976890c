"""The command line: train, add, evaluate, plot.

Usage errors print one line on stderr and exit with status 2; nothing prints a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import numpy as np

from ..cells.activations import ACTIVATIONS
from ..cells.losses import LOSSES
from ..cells.rnn import RNN
from ..core.limits import check_elements
from ..files import modelfile
from ..training.bits import addition_examples, decode, encode, random_addition_batch
from ..training.train import (
    CELLS,
    OPTIMIZERS,
    Diverged,
    Model,
    TrainConfig,
    TrainState,
    accuracy,
    train,
    validation_set,
)
from ..training.tutorial import replay

#: Bit widths reported after training: the trained width, then much longer sums.
REPORT_WIDTHS = (16, 64, 1024)
#: Operands of `add` may have up to this many bits (about 315,000 decimal digits).
MAX_ADD_BITS = 1 << 20
#: The train options that decide the weights: a resumed run takes them from its checkpoint.
RUN_OPTIONS = "bits cell hidden activation bias loss optimizer lr batch seed dtype clip".split()


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit status 2."""


def one_line(text: object, limit: int = 500) -> str:
    """`text` with unprintable characters (line breaks) escaped, cut short after `limit`."""
    text = str(text)
    text = text if len(text) <= limit else f"{text[:limit]}..."
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def positive_int(text: str) -> int:
    if len(text) > 20:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text[:20]!r}...")
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def seed(text: str) -> int:
    try:
        value = int(text) if len(text) <= 20 else -1
    except ValueError:
        value = -1
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to 2**64-1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    if not isinstance(text, str):  # argparse gives [] for a missing operand after a second --
        raise UsageError("expected two non-negative integers")
    digits = text.strip().replace("_", "")
    if not digits.isdigit():
        raise UsageError(f"expected a non-negative integer, got {text[:40]!r}")
    if len(digits) > MAX_ADD_BITS * 0.302 + 1:  # log10(2) ~ 0.30103 digits per bit
        raise UsageError(f"operands are limited to {MAX_ADD_BITS} bits")
    return int(digits)


def build_parser() -> Parser:
    parser = Parser(
        prog="rnn-manual",
        description="An RNN that learns binary addition, trained by hand-written BPTT.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    t = commands.add_parser("train", help="train on random sums until all 8-bit pairs are right")
    t.add_argument("--bits", type=positive_int, default=8, help="bits per sum (default 8)")
    t.add_argument("--cell", choices=CELLS, default="rnn", help="recurrent cell (default rnn)")
    t.add_argument("--hidden", type=positive_int, default=16, help="hidden units (default 16)")
    t.add_argument(
        "--activation", choices=sorted(ACTIVATIONS), default="sigmoid", help="rnn cell only"
    )
    t.add_argument("--bias", action="store_true", help="give both layers a bias")
    t.add_argument("--loss", choices=sorted(LOSSES), default="mse")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    t.add_argument("--lr", type=positive_float, help="learning rate (default per optimizer)")
    t.add_argument("--batch", type=positive_int, default=64, help="sums per step (default 64)")
    t.add_argument(
        "--steps", type=positive_int, help="step budget (default 5000, or the checkpoint's)"
    )
    t.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    t.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    t.add_argument("--clip", type=positive_float, help="clip the gradient norm (default: off)")
    t.add_argument("--save", metavar="PATH", help="write the trained model to PATH (.npz)")
    t.add_argument("--checkpoint", metavar="PATH", help="keep a resumable checkpoint in PATH")
    t.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=500,
        metavar="N",
        help="steps between checkpoints (default 500; also written on stop and Ctrl-C)",
    )
    t.add_argument(
        "--resume",
        metavar="PATH",
        help="continue the run in checkpoint PATH exactly (writing to it unless --checkpoint)",
    )
    t.add_argument("--quiet", action="store_true", help="no per-step progress")
    t.add_argument(
        "--seed-compatible",
        action="store_true",
        help="replay the tutorial's exact run and output (ignores the other options)",
    )

    a = commands.add_parser("add", help="add two non-negative integers with a saved model")
    a.add_argument("--model", required=True, metavar="PATH")
    a.add_argument("a", help="first operand, any size")
    a.add_argument("b", help="second operand, any size")

    e = commands.add_parser("evaluate", help="exact-match accuracy of a saved model")
    e.add_argument("--model", required=True, metavar="PATH")
    e.add_argument("--bits", type=positive_int, required=True)
    e.add_argument(
        "--samples",
        type=positive_int,
        default=10000,
        help="random sums, when there are more pairs than this (default 10000)",
    )
    e.add_argument("--seed", type=seed, default=0)

    f = commands.add_parser("plot", help="draw figures of a saved model (needs matplotlib)")
    f.add_argument("--model", required=True, metavar="PATH")
    f.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG files")
    return parser


def report_generalization(model: Model, rng: np.random.Generator, samples: int = 1000) -> None:
    """Print accuracy on random sums much longer than those trained on."""
    for bits in REPORT_WIDTHS:
        x, y = random_addition_batch(rng, samples, bits, model.dtype)
        print(f"  {bits:5d}-bit sums ({samples} random): {accuracy(model, x, y):7.2%} exact")


def writable(path: str | None) -> str | None:
    """`path` if a file can be written there, checked before hours of training, or UsageError."""
    if path is not None and (Path(path).is_dir() or not Path(path).parent.is_dir()):
        raise UsageError(f"{path}: cannot write a file there")
    return path


def within_limits(what: str, *dims: int) -> None:
    try:
        check_elements(what, *dims)
    except ValueError as e:
        raise UsageError(str(e)) from None


def cmd_train(args: argparse.Namespace) -> int:
    if args.seed_compatible:
        replay()
        return 0
    resume: TrainState | None = None
    if args.resume:
        resume = modelfile.load_checkpoint(args.resume)
        given = [name for name in RUN_OPTIONS if getattr(args, name) != getattr(TrainConfig, name)]
        if given:
            raise UsageError(f"--{given[0]}: a resumed run takes its options from the checkpoint")
        config = replace(resume.config, steps=args.steps or resume.config.steps)
    else:
        try:
            config = TrainConfig(
                bits=args.bits,
                cell=args.cell,
                hidden=args.hidden,
                activation=args.activation,
                bias=args.bias,
                loss=args.loss,
                optimizer=args.optimizer,
                lr=args.lr,
                batch=args.batch,
                steps=args.steps or TrainConfig.steps,
                seed=args.seed,
                dtype=args.dtype,
                clip=args.clip,
            )
        except ValueError as e:
            raise UsageError(str(e)) from None
    save_to, checkpoint_to = writable(args.save), writable(args.checkpoint or args.resume)
    saved_steps = []

    def checkpoint(state: TrainState) -> None:
        modelfile.save_checkpoint(checkpoint_to, state)  # type: ignore[arg-type]
        saved_steps.append(state.step)

    try:
        result = train(
            config,
            log=None if args.quiet else print,
            resume=resume,
            checkpoint=checkpoint if checkpoint_to else None,
            checkpoint_every=args.checkpoint_every,
        )
    except Diverged as e:
        kept = f"; {checkpoint_to} keeps step {saved_steps[-1]}" if saved_steps else ""
        raise Diverged(f"{e}{kept}") from None
    if result.interrupted:
        kept = f"checkpoint saved to {checkpoint_to}" if checkpoint_to else "no --checkpoint"
        print(f"interrupted at step {result.steps}, {kept}", file=sys.stderr)
        return 130
    state = "solved" if result.solved else "NOT solved (step budget ran out)"
    print(f"{state} after {result.steps} steps in {result.seconds:.2f} s")
    rng = np.random.default_rng(config.seed + 1)
    x, y = validation_set(config.bits, config.dtype, rng)
    print(
        f"accuracy on {x.shape[1]} {config.bits}-bit sums: {accuracy(result.model, x, y):.2%} exact"
    )
    report_generalization(result.model, rng)
    if save_to:
        modelfile.save(save_to, result.model, result.history)
        print(f"saved to {save_to}")
    return 0 if result.solved else 1


def cmd_add(args: argparse.Namespace) -> int:
    a, b = non_negative_int(args.a), non_negative_int(args.b)
    model, _ = modelfile.load(args.model)
    if model.input_size != 2 or model.output_size != 1:
        raise UsageError(
            f"{args.model}: not an addition model (sizes {model.input_size}->{model.output_size})"
        )
    width = max(a.bit_length(), b.bit_length(), 1) + 1  # room for the carry out
    within_limits("the hidden states (bits x hidden)", width, model.hidden_size)
    x, _ = addition_examples(encode([a], width), encode([b], width), model.dtype)
    try:
        p = model.forward(x)  # (width, 1, 1)
    except ValueError:  # an unbounded (relu) hidden state can overflow on long operands
        raise UsageError(f"the model's hidden state overflows on {width}-bit operands") from None
    print(decode((p[:, :, 0] > 0.5).astype(np.uint8))[0])
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    within_limits("the sums (bits x samples x 2)", args.bits, args.samples, 2)
    model, _ = modelfile.load(args.model)
    if model.input_size != 2 or model.output_size != 1:
        raise UsageError(
            f"{args.model}: not an addition model (sizes {model.input_size}->{model.output_size})"
        )
    within_limits("the hidden states (bits x hidden)", args.bits, model.hidden_size)
    rng = np.random.default_rng(args.seed)
    if 4 ** (args.bits - 1) <= max(args.samples, 4**7):  # all pairs up to 8 bits at least
        x, y = validation_set(args.bits, model.dtype.name, rng)
        what = f"all {x.shape[1]} pairs of {args.bits}-bit operands"
    else:
        x, y = random_addition_batch(rng, args.samples, args.bits, model.dtype)
        what = f"{args.samples} random {args.bits}-bit sums"
    print(f"{accuracy(model, x, y):.2%} exact on {what}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from . import plot  # matplotlib itself is imported only when a figure is drawn

    model, history = modelfile.load(args.model)
    if not isinstance(model, RNN) or model.input_size != 2 or model.output_size != 1:
        raise UsageError(f"{args.model}: plot draws RNN addition models only")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{out}: cannot create the folder ({e.strerror})") from None
    if not os.access(out, os.W_OK):
        raise UsageError(f"{out}: the folder is not writable")
    try:
        found = plot.write_figures(model, history, out)
    except plot.MatplotlibMissing as e:
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"{out}: cannot write the figures ({e.strerror})") from None
    print(
        f"carry: hidden unit {found.unit} tracks it best, r = {found.r:+.3f} "
        f"(all {len(found.r_all)} units read out together: r = {found.readout_r:.3f})"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    sys.set_int_max_str_digits(0)  # `add` takes and prints integers of any size
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {"train": cmd_train, "add": cmd_add, "evaluate": cmd_evaluate, "plot": cmd_plot}
    try:
        return commands[args.command](args)
    except (UsageError, modelfile.ModelFileError) as e:
        print(f"{parser.prog} {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except Diverged as e:
        print(f"{parser.prog} {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Whoever read our output stopped (`... | head`): stop quietly, as Unix tools do, and
        # point stdout at /dev/null so that Python's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
