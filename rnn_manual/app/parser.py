"""The command line's parser: the six commands and their options, and what to type when no
command is given. Every train option defaults to None, so that the options given can be
told from the defaults (TrainConfig's) even where a value equals the default.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..cells import CELLS
from ..cells.activations import ACTIVATIONS
from ..cells.losses import losses_of
from ..core.args import (
    DIGITS,
    Parser,
    UsageError,
    non_negative_int,
    positive_float,
    positive_int,
    seed,
)
from ..core.validate import DTYPE_NAMES
from ..training.corpus import DEFAULT_TEXT, HELD_OUT
from ..training.evaluation import LONG_SUMS
from ..training.language import TEXT_LR, TextConfig
from ..training.state import OPTIMIZERS
from .docfigures import DOC_FIGURES
from .docruns import ADDER_COMMAND

#: Operands of `add` may have up to this many bits (about 315,000 decimal digits).
MAX_ADD_BITS = 1 << 20
#: Steps between checkpoints unless --checkpoint-every says otherwise.
CHECKPOINT_EVERY = 500
#: The longest text `sample` prints, in characters.
MAX_SAMPLE = 100_000
#: Each command: what it does, and an example (printed when no command is given).
COMMANDS = {
    "train": (
        "train on random sums until all 8-bit pairs are right",
        "train --hidden 32 --activation tanh --bias --loss bce --save adder.npz",
    ),
    "add": (
        "add two non-negative integers with a saved model",
        "add --model adder.npz 123456789 987654321",
    ),
    "evaluate": ("exact-match accuracy of a saved model", "evaluate --model adder.npz --bits 64"),
    "plot": (
        "draw figures of a saved model (needs matplotlib)",
        "plot --model adder.npz --out figures",
    ),
    "text": (
        "train a character-level model on a text (min-char-rnn's task)",
        "text --cell lstm --save chars.npz",
    ),
    "sample": (
        "print text from a saved character-level model",
        "sample --model chars.npz --length 300 --prime The",
    ),
}


def operand(text: str) -> int:
    """An operand of `add`: ASCII digits 0-9 and nothing else (no sign, space or underscore,
    no other script's digits), at most MAX_ADD_BITS bits."""
    if not isinstance(text, str):  # argparse gives [] for a missing operand after a second --
        raise UsageError("expected two non-negative integers")
    if not DIGITS.fullmatch(text):
        raise UsageError(f"expected a non-negative integer (digits 0-9), got {text[:40]!r}")
    if len(text) > MAX_ADD_BITS * 0.302 + 1:  # log10(2) ~ 0.30103 digits per bit
        raise UsageError(f"operands are limited to {MAX_ADD_BITS} bits")
    return int(text)


def build_parser() -> Parser:
    parser = Parser(
        prog="rnn-manual",
        description="An RNN that learns binary addition, trained by hand-written BPTT.",
    )
    commands = parser.add_subparsers(dest="command", parser_class=Parser)

    t = commands.add_parser("train", help=COMMANDS["train"][0])
    t.add_argument("--bits", type=positive_int, help="bits per sum (default 8)")
    t.add_argument("--cell", choices=CELLS, help="recurrent cell (default rnn)")
    t.add_argument("--hidden", type=positive_int, help="hidden units (default 16)")
    t.add_argument(
        "--activation", choices=sorted(ACTIVATIONS), help="rnn cell only (default sigmoid)"
    )
    t.add_argument("--bias", action="store_true", default=None, help="give both layers a bias")
    t.add_argument(
        "--loss",
        choices=sorted(losses_of("sigmoid")),
        help="training loss (default bce; mse is the tutorial's)",
    )
    t.add_argument("--optimizer", choices=OPTIMIZERS, help="optimizer (default adam)")
    t.add_argument("--lr", type=positive_float, help="learning rate (default per optimizer)")
    t.add_argument("--batch", type=positive_int, help="sums per step (default 64)")
    t.add_argument(
        "--steps", type=positive_int, help="step budget (default 5000, or the checkpoint's)"
    )
    t.add_argument("--seed", type=seed, help="random seed (default 0)")
    t.add_argument("--dtype", choices=DTYPE_NAMES, help="default float64")
    t.add_argument("--clip", type=positive_float, help="clip the gradient norm (default: off)")
    t.add_argument(
        "--truncate",
        type=positive_int,
        metavar="K",
        help="truncated BPTT: no gradient crosses back over K steps (default: full BPTT)",
    )
    t.add_argument(
        "--long-bits",
        type=non_negative_int,
        metavar="N",
        help=f"go on until {LONG_SUMS} random N-bit sums are exact too, training on longer "
        "sums once the short ones are solved; 0: stop at the short ones (default 1024)",
    )
    add_run_files(
        t, "continue the run in checkpoint PATH exactly (writing to it unless --checkpoint)"
    )
    t.add_argument("--quiet", action="store_true", default=None, help="no progress output")
    t.add_argument(
        "--seed-compatible",
        action="store_true",
        help="replay the tutorial's exact run and output (takes no other option but --save)",
    )

    a = commands.add_parser("add", help=COMMANDS["add"][0])
    a.add_argument("--model", required=True, metavar="PATH")
    a.add_argument("--quiet", action="store_true", help="no progress output on long operands")
    a.add_argument("a", help="first operand, digits 0-9, any size")
    a.add_argument("b", help="second operand, digits 0-9, any size")

    e = commands.add_parser("evaluate", help=COMMANDS["evaluate"][0])
    e.add_argument("--model", required=True, metavar="PATH")
    e.add_argument("--bits", type=positive_int, required=True)
    e.add_argument(
        "--samples",
        type=positive_int,
        default=10000,
        help="random sums, when there are more pairs than this (default 10000)",
    )
    e.add_argument("--seed", type=seed, default=0)
    e.add_argument("--quiet", action="store_true", help="no progress output")

    f = commands.add_parser("plot", help=COMMANDS["plot"][0])
    f.add_argument("--model", required=True, metavar="PATH")
    f.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG files")
    f.add_argument(
        "--docs",
        action="store_true",
        help=f"also draw the walkthrough's figures into DIR ({', '.join(DOC_FIGURES)}): "
        f"--model must be the walkthrough's adder, which `{ADDER_COMMAND}` makes; trains an "
        "RNN, an LSTM and a GRU on sums and on the default text (about a minute)",
    )
    add_text_parsers(commands)
    return parser


def add_run_files(command: Parser, resume: str) -> None:
    """The options of a training command (train, text) for the files it writes and resumes:
    --save, --checkpoint, --checkpoint-every and --resume (its help: `resume`)."""
    command.add_argument("--save", metavar="PATH", help="write the trained model to PATH (.npz)")
    command.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="keep a resumable checkpoint in PATH (one run at a time writes it)",
    )
    command.add_argument(
        "--checkpoint-every",
        type=positive_int,
        metavar="N",
        help=f"steps between checkpoints (default {CHECKPOINT_EVERY}; also written when "
        "training stops, Ctrl-C, SIGTERM and SIGHUP included)",
    )
    command.add_argument("--resume", metavar="PATH", help=resume)


def sample_length(text: str) -> int:
    """--length: a positive integer up to MAX_SAMPLE."""
    value = positive_int(text)
    if value > MAX_SAMPLE:
        raise argparse.ArgumentTypeError(f"at most {MAX_SAMPLE} characters, got {value}")
    return value


def add_text_parsers(commands: Any) -> None:
    """The text and sample commands. Every text option that decides the run defaults to
    None, as train's do (TextConfig's defaults, or a resumed checkpoint's)."""
    defaults = TextConfig  # its fields' defaults, without checking a config of them
    x = commands.add_parser("text", help=COMMANDS["text"][0])
    x.add_argument(
        "--file",
        metavar="PATH",
        help=f"a UTF-8 text file (default: the package's {DEFAULT_TEXT}, the project's own "
        f"writing); its last {HELD_OUT:.0%} is held out to measure the model",
    )
    x.add_argument("--cell", choices=CELLS, help="recurrent cell (default rnn, tanh units)")
    x.add_argument("--hidden", type=positive_int, help=f"hidden units (default {defaults.hidden})")
    x.add_argument(
        "--seq",
        type=positive_int,
        help=f"steps per chunk: the state runs on across chunks, the gradient stops at each "
        f"(default {defaults.seq})",
    )
    x.add_argument(
        "--batch",
        type=positive_int,
        help=f"streams read side by side at spread places of the text (default {defaults.batch})",
    )
    x.add_argument("--optimizer", choices=OPTIMIZERS, help=f"default {defaults.optimizer}")
    x.add_argument(
        "--lr",
        type=positive_float,
        help="learning rate (default " + ", ".join(f"{k} {v:g}" for k, v in TEXT_LR.items()) + ")",
    )
    x.add_argument(
        "--clip", type=positive_float, help=f"clip the gradient norm (default {defaults.clip:g})"
    )
    x.add_argument(
        "--steps",
        type=positive_int,
        help=f"updates (default {defaults.steps}, or the checkpoint's)",
    )
    x.add_argument("--seed", type=seed, help="random seed (default 0)")
    x.add_argument("--dtype", choices=DTYPE_NAMES, help="default float64")
    add_run_files(x, "continue the run in checkpoint PATH exactly, on the same --file")
    x.add_argument("--quiet", action="store_true", default=None, help="no progress output")

    s = commands.add_parser("sample", help=COMMANDS["sample"][0])
    s.add_argument("--model", required=True, metavar="PATH", help="a model saved by text")
    s.add_argument(
        "--length", type=sample_length, default=200, help="characters to draw (default 200)"
    )
    s.add_argument(
        "--prime",
        metavar="TEXT",
        help="text to start from, printed first (default: one character drawn at random)",
    )
    s.add_argument(
        "--temperature",
        type=positive_float,
        default=1.0,
        help="below 1 sharper, above 1 flatter than the model's softmax (default 1)",
    )
    s.add_argument("--seed", type=seed, default=0, help="the same seed prints the same text")


def commands_overview(prog: str) -> str:
    """What to type: each command with what it does and one example."""
    lines = [f"{prog}: error: give a command:"]
    for name, (does, example) in COMMANDS.items():
        lines += [f"  {name:9s} {does}", f"            e.g. {prog} {example}"]
    lines.append(
        f"{prog} COMMAND --help lists a command's options ({prog}: or python -m rnn_manual)."
    )
    return "\n".join(lines)
