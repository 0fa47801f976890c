"""The command line's text commands: `text` trains a character-level model on a text file
(min-char-rnn's task), `sample` prints text from a saved one.

As for `train`: usage errors are one line and exit status 2, a checkpoint resumes the run
exactly, is written by one run at a time, and Ctrl-C, SIGTERM or SIGHUP stops after the
current step with the checkpoint written (status 130, 143, 129).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from ..core.args import UsageError
from ..core.validate import Overflow
from ..files import modelfile
from ..files.textcheckpoint import load_text_checkpoint, save_text_checkpoint
from ..training.corpus import Corpus, TextError, read_corpus
from ..training.language import TextConfig, TextState, check_resumable, train_text
from ..training.loop import Diverged
from ..training.sampling import held_out_loss, sample, uniform_loss
from .output import Output, given_options, one_writer, option, report_stop, run_files
from .parser import CHECKPOINT_EVERY

#: The text options that decide the weights: a resumed run takes them from its checkpoint.
TEXT_RUN_OPTIONS = "cell hidden seq batch optimizer lr clip seed dtype".split()


def corpus_for(args: argparse.Namespace) -> Corpus:
    """The text --file names (the default text without one), or UsageError."""
    try:
        return read_corpus(args.file)
    except TextError as e:
        raise UsageError(str(e)) from None


def text_config(
    args: argparse.Namespace, given: list[str], corpus: Corpus
) -> tuple[TextConfig, TextState | None]:
    """The run that text's options describe on `corpus`, and the state to resume it from
    (None: a fresh run): a --resume takes its options from the checkpoint, --steps aside."""
    resume: TextState | None = None
    if args.resume is not None:
        resume, _, digest = load_text_checkpoint(args.resume)
        run_options = [name for name in TEXT_RUN_OPTIONS if name in given]
        if run_options:
            raise UsageError(
                f"{option(run_options[0])}: a resumed run takes its options from the checkpoint"
            )
        if digest != corpus.digest:
            raise UsageError(
                f"--resume: {args.resume} was trained on another text; give its --file"
            )
        config = replace(resume.config, steps=args.steps or resume.config.steps)
        try:
            check_resumable(resume, corpus)
        except ValueError as e:
            raise UsageError(f"--resume: {e}") from None
    else:
        chosen = {name: getattr(args, name) for name in TEXT_RUN_OPTIONS if name in given}
        try:
            config = TextConfig(**chosen, steps=args.steps or TextConfig.steps)
            corpus.check_fits(config.seq, config.batch)
        except ValueError as e:
            raise UsageError(str(e)) from None
    return config, resume


def cmd_text(args: argparse.Namespace, out: Output) -> int:
    given = given_options(args)
    corpus = corpus_for(args)
    save_to, checkpoint_path, checkpoint_to = run_files(args)
    saved_steps = []

    def checkpoint(state: TextState) -> None:
        save_text_checkpoint(checkpoint_path, state, corpus.vocabulary, corpus.digest)
        saved_steps.append(state.step)

    with one_writer(checkpoint_to, checkpoint_path):
        config, resume = text_config(args, given, corpus)
        held = len(corpus.held_out)
        out(
            f"text: {len(corpus.indices)} characters, {len(corpus.vocabulary)} distinct; "
            f"training on the first {len(corpus.train)}, holding out the last {held}"
        )
        try:
            result = train_text(
                config,
                corpus,
                log=None if args.quiet else out,
                resume=resume,
                checkpoint=checkpoint if checkpoint_to else None,
                checkpoint_every=args.checkpoint_every or CHECKPOINT_EVERY,
            )
        except Diverged as e:
            kept = f"; {checkpoint_path} keeps step {saved_steps[-1]}" if saved_steps else ""
            raise Diverged(f"{e}; try a smaller --lr or --clip{kept}") from None
    state = result.state
    if result.interrupted is not None:
        return report_stop(result.interrupted, state.step, checkpoint_path)
    if save_to is not None:
        modelfile.save(args.save, state.model, vocabulary=corpus.vocabulary)
        out.note = f"; the model was saved to {args.save}"
    loss, uniform = held_out_loss(state.model, corpus), uniform_loss(corpus)
    out(
        f"held-out loss {loss:.4f} nats/char after {state.step} steps in "
        f"{result.seconds:.1f} s (uniform guess: log {len(corpus.vocabulary)} = {uniform:.4f})"
    )
    if save_to is not None:
        out(f"saved to {args.save}")
    return 0


def cmd_sample(args: argparse.Namespace, out: Output) -> int:
    model, vocabulary = modelfile.load_text_model(args.model)
    rng = np.random.default_rng(args.seed)
    prime = args.prime if args.prime is not None else vocabulary[int(rng.integers(len(vocabulary)))]
    try:
        text = sample(model, vocabulary, prime, args.length, args.temperature, rng)
    except Overflow as e:
        raise UsageError(f"{args.model}: {e}") from None
    except ValueError as e:  # the temperature is checked by the parser: the prime is wrong
        raise UsageError(f"--prime: {e}") from None
    out(prime + text)
    return 0
