"""The command line: train, add, evaluate, plot.

Usage errors print one line on stderr and exit with status 2; nothing prints a traceback.
Output that cannot be written (a full disk, a closed pipe) never costs the work: training
goes on, the model is still saved, and the failure is reported once, at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..cells.activations import ACTIVATIONS
from ..cells.losses import LOSSES
from ..cells.rnn import RNN
from ..core import limits, threads
from ..core.validate import DTYPE_NAMES
from ..files import atomic, modelfile
from ..training.bits import (
    MAX_ALL_PAIRS_BITS,
    addition_examples,
    decode,
    encode,
    random_addition_batch,
)
from ..training.progress import Progress
from ..training.train import (
    CELLS,
    LONG_SUMS,
    OPTIMIZERS,
    Diverged,
    Model,
    TrainConfig,
    TrainResult,
    TrainState,
    accuracy,
    affordable_sums,
    outputs,
    train,
    validation_set,
)
from ..training.tutorial import replay
from .args import (
    Parser,
    UsageError,
    one_line,
    positive_float,
    positive_int,
    seed,
    within_limits,
)

#: Bit widths reported after training: the trained width, then much longer sums.
REPORT_WIDTHS = (16, 64, 1024)
#: Random sums per width in that report; fewer for a model too large to run them quickly.
REPORT_SUMS = 1000
#: Operands of `add` may have up to this many bits (about 315,000 decimal digits).
MAX_ADD_BITS = 1 << 20
#: The train options that decide the weights: a resumed run takes them from its checkpoint.
RUN_OPTIONS = (
    "bits cell hidden activation bias loss optimizer lr batch seed dtype clip truncate long_bits"
).split()
#: Steps between checkpoints unless --checkpoint-every says otherwise.
CHECKPOINT_EVERY = 500
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
}


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


def non_negative_int(text: str) -> int:
    """An operand of `add`: ASCII digits 0-9 and nothing else (no sign, space or underscore,
    no other script's digits), at most MAX_ADD_BITS bits."""
    if not isinstance(text, str):  # argparse gives [] for a missing operand after a second --
        raise UsageError("expected two non-negative integers")
    if not (text.isascii() and text.isdigit()):
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

    # Every train option defaults to None, so that the options given can be told from the
    # defaults (TrainConfig's) even where a value equals the default.
    t = commands.add_parser("train", help=COMMANDS["train"][0])
    t.add_argument("--bits", type=positive_int, help="bits per sum (default 8)")
    t.add_argument("--cell", choices=CELLS, help="recurrent cell (default rnn)")
    t.add_argument("--hidden", type=positive_int, help="hidden units (default 16)")
    t.add_argument(
        "--activation", choices=sorted(ACTIVATIONS), help="rnn cell only (default sigmoid)"
    )
    t.add_argument("--bias", action="store_true", default=None, help="give both layers a bias")
    t.add_argument(
        "--loss", choices=sorted(LOSSES), help="training loss (default bce; mse is the tutorial's)"
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
    t.add_argument("--save", metavar="PATH", help="write the trained model to PATH (.npz)")
    t.add_argument("--checkpoint", metavar="PATH", help="keep a resumable checkpoint in PATH")
    t.add_argument(
        "--checkpoint-every",
        type=positive_int,
        metavar="N",
        help="steps between checkpoints (default 500; also written on stop and Ctrl-C)",
    )
    t.add_argument(
        "--resume",
        metavar="PATH",
        help="continue the run in checkpoint PATH exactly (writing to it unless --checkpoint)",
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
        help="also draw the walkthrough's figures into DIR (unrolled.png, backward.gif, "
        "gradient_flow_cells.png, carry_emerging.png): the model must be the walkthrough's "
        "adder (train --save adder.npz); trains an RNN, an LSTM and a GRU (under a minute)",
    )
    return parser


def commands_overview(prog: str) -> str:
    """What to type: each command with what it does and one example."""
    lines = [f"{prog}: error: give a command:"]
    for name, (does, example) in COMMANDS.items():
        lines += [f"  {name:9s} {does}", f"            e.g. {prog} {example}"]
    lines.append(
        f"{prog} COMMAND --help lists a command's options ({prog}: or python -m rnn_manual)."
    )
    return "\n".join(lines)


def writable(path: str | None) -> Path | None:
    """The file that writing to `path` will replace, checked before hours of training (a
    file can be created in its folder; it is not a folder, device or FIFO), or UsageError."""
    if path is None:
        return None
    try:
        return atomic.target(path)
    except atomic.WriteError as e:
        raise UsageError(str(e)) from None


def progress(quiet: bool, what: str) -> Progress | None:
    """Progress lines on stderr for long work, unless --quiet."""
    return None if quiet else Progress(what)


def measure(model: Model, x: Any, y: Any, quiet: bool, what: str) -> float:
    """accuracy(model, x, y), with progress lines should it take long."""
    watch = progress(quiet, f"evaluating {what}")
    try:
        return accuracy(model, x, y, progress=watch)
    finally:
        if watch is not None:
            watch.close()


def report(
    result: TrainResult, config: TrainConfig, out: Callable[[str], None], quiet: bool
) -> None:
    """Accuracy on the validation sums, then on random sums much longer than those trained
    on; each on fewer sums (or none) where the model is too large to run them all quickly."""
    model = result.model
    rng = np.random.default_rng(config.seed + 1)
    x, y = validation_set(config.bits, config.dtype, rng)
    n, total = affordable_sums(model, config.bits, x.shape[1]), x.shape[1]
    history = result.history
    if (
        config.bits <= MAX_ALL_PAIRS_BITS
        and history.eval_step
        and (history.eval_step[-1] == result.steps)
    ):  # training has just measured it on these very sums
        out(f"accuracy on {total} {config.bits}-bit sums: {history.eval_accuracy[-1]:.2%} exact")
    elif n == total:
        found = measure(model, x, y, quiet, f"the {total} {config.bits}-bit sums")
        out(f"accuracy on {total} {config.bits}-bit sums: {found:.2%} exact")
    elif n > 0:
        pick = np.sort(rng.choice(total, n, replace=False))
        found = measure(model, x[:, pick], y[:, pick], quiet, f"{n} {config.bits}-bit sums")
        out(f"accuracy on {n} of the {total} {config.bits}-bit sums: {found:.2%} exact")
    for bits in REPORT_WIDTHS:
        n = affordable_sums(model, bits, REPORT_SUMS)
        if n == 0:
            out(f"  {bits:5d}-bit sums: skipped, too slow for a model this large")
            continue
        x, y = random_addition_batch(rng, n, bits, model.dtype)
        found = measure(model, x, y, quiet, f"{n} {bits}-bit sums")
        out(f"  {bits:5d}-bit sums ({n} random): {found:7.2%} exact")


def given_options(args: argparse.Namespace) -> list[str]:
    """The train options on the command line, in the parser's order, as their attribute names."""
    return [
        name
        for name, value in vars(args).items()
        if value is not None and name not in ("command", "seed_compatible")
    ]


def option(name: str) -> str:
    return "--" + name.replace("_", "-")


def cmd_train(args: argparse.Namespace, out: Output) -> int:
    given = given_options(args)
    quiet = bool(args.quiet)
    if args.seed_compatible:
        ignored = [name for name in given if name != "save"]
        if ignored:
            raise UsageError(
                f"{option(ignored[0])}: --seed-compatible replays the tutorial's run as it was "
                "and takes no other option but --save"
            )
        save_to = writable(args.save)
        model = replay(out)
        if save_to is not None:
            modelfile.save(args.save, model)
            out(f"saved to {args.save}")
        return 0
    resume: TrainState | None = None
    if args.resume is not None:
        resume = modelfile.load_checkpoint(args.resume)
        run_options = [name for name in RUN_OPTIONS if name in given]
        if run_options:
            raise UsageError(
                f"{option(run_options[0])}: a resumed run takes its options from the checkpoint"
            )
        config = replace(resume.config, steps=args.steps or resume.config.steps)
    else:
        cell = args.cell or TrainConfig.cell
        if args.activation is not None and not CELLS[cell].activations:
            raise UsageError(
                f"--activation: the {cell} cell has no activation to choose (the rnn cell has)"
            )
        chosen = {name: getattr(args, name) for name in RUN_OPTIONS if name in given}
        try:
            config = TrainConfig(**chosen, steps=args.steps or TrainConfig.steps)
        except ValueError as e:
            raise UsageError(str(e)) from None
    checkpoint_path = args.checkpoint if args.checkpoint is not None else args.resume
    save_to, checkpoint_to = writable(args.save), writable(checkpoint_path)
    if save_to is not None and save_to == checkpoint_to:
        both = "--checkpoint" if args.checkpoint is not None else "--resume"
        raise UsageError(
            f"--save and {both} name the same file ({args.save}): "
            "the model would overwrite the checkpoint; give --save another path"
        )
    saved_steps = []

    def checkpoint(state: TrainState) -> None:
        modelfile.save_checkpoint(checkpoint_path, state)
        saved_steps.append(state.step)

    try:
        result = train(
            config,
            log=None if quiet else out,
            resume=resume,
            checkpoint=checkpoint if checkpoint_to else None,
            checkpoint_every=args.checkpoint_every or CHECKPOINT_EVERY,
        )
    except Diverged as e:
        kept = f"; {checkpoint_path} keeps step {saved_steps[-1]}" if saved_steps else ""
        raise Diverged(f"{e}{kept}") from None
    if result.interrupted:
        kept = f"checkpoint saved to {checkpoint_path}" if checkpoint_to else "no --checkpoint"
        print(f"interrupted at step {result.steps}, {kept}", file=sys.stderr)
        return 130
    if save_to is not None:  # first the model, then the report, which Ctrl-C may cut short
        modelfile.save(args.save, result.model, result.history)
        out.note = f"; the model was saved to {args.save}"
    state = "solved" if result.solved else "NOT solved (step budget ran out)"
    out(f"{state} after {result.steps} steps in {result.seconds:.2f} s")
    if save_to is not None:
        out(f"saved to {args.save}")
    report(result, config, out, quiet)
    return 0 if result.solved else 1


def addition_model(path: str) -> Model:
    """The model in the file at `path`, if it adds (2 inputs, 1 output); else UsageError."""
    model, _ = modelfile.load(path)
    if model.input_size != 2 or model.output_size != 1:
        raise UsageError(
            f"{path}: not an addition model (sizes {model.input_size}->{model.output_size})"
        )
    return model


def cmd_add(args: argparse.Namespace, out: Output) -> int:
    a, b = non_negative_int(args.a), non_negative_int(args.b)
    model = addition_model(args.model)
    width = max(a.bit_length(), b.bit_length(), 1) + 1  # room for the carry out
    within_limits("the hidden states (bits x hidden)", width, model.hidden_size)
    x, _ = addition_examples(encode([a], width), encode([b], width), model.dtype)
    watch = progress(args.quiet, f"adding {width}-bit operands")
    bits = []
    for t, trace, overflowed in outputs(model, x):
        # An unbounded (relu) hidden state can overflow on long operands.
        if overflowed.any() or not np.isfinite(trace.z).all():
            raise UsageError(f"the model's hidden state overflows on {width}-bit operands")
        bits.append(trace.p[:, :, 0] > 0.5)  # (segment, 1)
        if watch is not None:
            watch(t + len(trace.p), width)
    if watch is not None:
        watch.close()
    out(str(decode(np.concatenate(bits).astype(np.uint8))[0]))
    return 0


def cmd_evaluate(args: argparse.Namespace, out: Output) -> int:
    try:
        within_limits("the sums (bits x samples x 2)", args.bits, args.samples, 2)
    except UsageError as e:
        most = limits.MAX_ELEMENTS // (2 * args.bits)
        lower = f"lower --samples (at most {most} at {args.bits} bits)" if most else "lower --bits"
        raise UsageError(f"{e}; {lower}") from None
    model = addition_model(args.model)
    within_limits("the hidden states (bits x hidden)", args.bits, model.hidden_size)
    rng = np.random.default_rng(args.seed)
    if 4 ** (args.bits - 1) <= max(args.samples, 4**7):  # all pairs up to 8 bits at least
        x, y = validation_set(args.bits, model.dtype.name, rng)
        what = f"all {x.shape[1]} pairs of {args.bits}-bit operands"
    else:
        x, y = random_addition_batch(rng, args.samples, args.bits, model.dtype)
        what = f"{args.samples} random {args.bits}-bit sums"
    out(f"{measure(model, x, y, args.quiet, what):.2%} exact on {what}")
    return 0


def refuse_overflow(model: RNN, path: str, bits: int, sums: int) -> None:
    """UsageError unless a pass over `sums` random sums of `bits` bits, and its gradients,
    stay finite: the figures are drawn from exactly such passes."""
    x, y = random_addition_batch(np.random.default_rng(0), sums, bits, model.dtype)
    with np.errstate(all="ignore"):  # an overflow is what is looked for here, not warned of
        trace = model.run(x)
        _, dz = LOSSES["mse"](trace.z, trace.p, y)
        grads = model.backward(trace, dz)
    if not all(np.isfinite(a).all() for a in (trace.h, trace.z, *grads.values())):
        raise UsageError(
            f"{path}: the model's hidden state or its gradients overflow on {bits}-bit sums, "
            "there is nothing to draw"
        )


def cmd_plot(args: argparse.Namespace, out: Output) -> int:
    from . import docfigures, plot  # matplotlib is imported only when a figure is drawn

    if not args.out:
        raise UsageError("--out: give a folder for the figures (it is created if need be)")
    model, history = modelfile.load(args.model)
    if not isinstance(model, RNN) or model.input_size != 2 or model.output_size != 1:
        raise UsageError(f"{args.model}: plot draws RNN addition models only")
    refuse_overflow(model, args.model, plot.GRADIENT_BITS, plot.GRADIENT_SUMS)
    folder = Path(args.out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{folder}: cannot create the folder ({e.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{folder}: the folder is not writable")
    try:
        found = plot.write_figures(model, history, folder, log=out, docs=args.docs)
    except plot.MatplotlibMissing as e:
        raise UsageError(str(e)) from None
    except docfigures.NotTheAdder as e:
        raise UsageError(str(e)) from None
    except atomic.WriteError as e:  # a figure's file that cannot be written
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"{folder}: cannot write the figures ({e.strerror})") from None
    except (np.linalg.LinAlgError, FloatingPointError) as e:  # what refuse_overflow missed
        raise UsageError(f"{args.model}: cannot draw this model ({e})") from None
    out(
        f"carry: hidden unit {found.unit} tracks it best, r = {found.r:+.3f} "
        f"(all {len(found.r_all)} units read out together: r = {found.readout_r:.3f})"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    sys.set_int_max_str_digits(0)  # `add` takes and prints integers of any size
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        print(commands_overview(parser.prog), file=sys.stderr)
        return 2
    commands = {"train": cmd_train, "add": cmd_add, "evaluate": cmd_evaluate, "plot": cmd_plot}
    out = Output()
    prefix = f"{parser.prog} {args.command}: error:"
    try:
        threads.threads()  # reads RNN_MANUAL_THREADS
    except ValueError as e:
        print(f"{prefix} {one_line(e)}", file=sys.stderr)
        return 2
    try:
        status = commands[args.command](args, out)
    except (UsageError, modelfile.ModelFileError) as e:
        print(f"{prefix} {one_line(e)}", file=sys.stderr)
        status = 2
    except Diverged as e:
        print(f"{prefix} {one_line(e)}", file=sys.stderr)
        status = 3
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        status = 130
    if out.error is None:
        return status
    # Point stdout at /dev/null, so that Python's final flush of what could not be written
    # does not fail again on the way out.
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (a test's captured output)
        pass
    if status not in (0, 1):  # the command failed anyway, and has said why
        return status
    if isinstance(out.error, BrokenPipeError):
        # Whoever read our output stopped (`... | head`): end quietly, as Unix tools do.
        return 141
    reason = out.error.strerror or out.error
    print(f"{prefix} cannot write the output ({reason}){out.note}", file=sys.stderr)
    return 2
