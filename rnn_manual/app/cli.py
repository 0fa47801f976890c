"""The command line: train, add, evaluate, plot (and text, sample: textcli.py).

Usage errors print one line on stderr and exit with status 2; nothing prints a traceback.
Output that cannot be written (a full disk, a closed pipe) never costs the work: training
goes on, the model is still saved, and the failure is reported once, at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..cells import CELLS
from ..core import limits, threads
from ..core.args import UsageError, one_line, within_limits
from ..core.validate import Overflow
from ..files import atomic, modelfile
from ..files.checkpoint import load_checkpoint, save_checkpoint
from ..training.bits import addition_examples, decode, encode, random_addition_batch
from ..training.evaluation import outputs, validation_set
from ..training.loop import Diverged, train
from ..training.state import Model, TrainConfig, TrainState
from ..training.tutorial import replay
from . import figures, plot
from .docruns import NotTheAdder
from .draw import MatplotlibMissing
from .measures import pass_overflows
from .output import (
    Output,
    given_options,
    one_writer,
    option,
    report_stop,
    run_files,
    writable,
)
from .parser import CHECKPOINT_EVERY, build_parser, commands_overview, operand
from .report import evaluate, progress, report
from .textcli import cmd_sample, cmd_text

#: The train options that decide the weights: a resumed run takes them from its checkpoint.
RUN_OPTIONS = (
    "bits cell hidden activation bias loss optimizer lr batch seed dtype clip truncate long_bits"
).split()
#: What a diverged run can try, in options.
DIVERGED_ADVICE = "try a smaller learning rate or gradient clipping (--clip)"
#: The options a stalled run's advice names (training.loop.WORDS says it in words).
STALL_OPTIONS = {"lr": "--lr", "hidden": "--hidden", "bits": "--bits"}


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
    save_to, checkpoint_path, checkpoint_to = run_files(args)
    saved_steps = []

    def checkpoint(state: TrainState) -> None:
        save_checkpoint(checkpoint_path, state)
        saved_steps.append(state.step)

    with one_writer(checkpoint_to, checkpoint_path):
        config, resume = train_config(args, given)
        try:
            result = train(
                config,
                log=None if quiet else out,
                resume=resume,
                checkpoint=checkpoint if checkpoint_to else None,
                checkpoint_every=args.checkpoint_every or CHECKPOINT_EVERY,
                advice_names=STALL_OPTIONS,
            )
        except Diverged as e:
            kept = f"; {checkpoint_path} keeps step {saved_steps[-1]}" if saved_steps else ""
            raise Diverged(f"{e}; {DIVERGED_ADVICE}{kept}") from None
    if result.interrupted is not None:
        return report_stop(result.interrupted, result.steps, checkpoint_path)
    if save_to is not None:  # first the model, then the report, which Ctrl-C may cut short
        modelfile.save(args.save, result.model, result.history)
        out.note = f"; the model was saved to {args.save}"
    state = "solved" if result.solved else "NOT solved (step budget ran out)"
    out(f"{state} after {result.steps} steps in {result.seconds:.2f} s")
    if save_to is not None:
        out(f"saved to {args.save}")
    report(result, config, out, quiet)
    return 0 if result.solved else 1


def train_config(
    args: argparse.Namespace, given: list[str]
) -> tuple[TrainConfig, TrainState | None]:
    """The run that train's options describe, and the state to resume it from (None: a
    fresh run): a --resume takes its options from the checkpoint, --steps aside."""
    resume: TrainState | None = None
    if args.resume is not None:
        resume = load_checkpoint(args.resume)
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
    return config, resume


def addition_model(path: str) -> Model:
    """The model in the file at `path`, if it adds (2 inputs, 1 output); else UsageError."""
    model, _ = modelfile.load(path)
    if model.input_size != 2 or model.output_size != 1:
        raise UsageError(
            f"{path}: not an addition model (sizes {model.input_size}->{model.output_size})"
        )
    return model


def cmd_add(args: argparse.Namespace, out: Output) -> int:
    a, b = operand(args.a), operand(args.b)
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
    out(f"{evaluate(model, x, y, args.quiet, what):.2%} exact on {what}")
    return 0


def cmd_plot(args: argparse.Namespace, out: Output) -> int:
    if not args.out:
        raise UsageError("--out: give a folder for the figures (it is created if need be)")
    model, history = modelfile.load(args.model)
    if model.name != "rnn" or model.input_size != 2 or model.output_size != 1:
        raise UsageError(f"{args.model}: plot draws RNN addition models only")
    if pass_overflows(model, plot.GRADIENT_BITS, plot.GRADIENT_SUMS):
        raise UsageError(
            f"{args.model}: the model's hidden state or its gradients overflow on "
            f"{plot.GRADIENT_BITS}-bit sums, there is nothing to draw"
        )
    folder = Path(args.out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{folder}: cannot create the folder ({e.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{folder}: the folder is not writable")
    try:
        found = figures.write_figures(model, history, folder, log=out, docs=args.docs)
    except (MatplotlibMissing, NotTheAdder) as e:
        raise UsageError(str(e)) from None
    except atomic.WriteError as e:  # a figure's file that cannot be written
        raise UsageError(str(e)) from None
    except OSError as e:
        raise UsageError(f"{folder}: cannot write the figures ({e.strerror})") from None
    except (np.linalg.LinAlgError, FloatingPointError, Overflow) as e:  # pass_overflows missed
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
    commands = {
        "train": cmd_train,
        "add": cmd_add,
        "evaluate": cmd_evaluate,
        "plot": cmd_plot,
        "text": cmd_text,
        "sample": cmd_sample,
    }
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
        threads.release()  # its threads must not hold the exit up
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
