"""min-char-rnn's task, `python -m rnn_manual text` and `sample`: the chunks read, a run that
learns, resumes exactly and samples deterministically, and one-line refusals.
"""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path

import manual
import numpy as np
import pytest
from processes import interrupted

from rnn_manual.app import cli
from rnn_manual.cells import CELLS
from rnn_manual.files import modelfile, textcheckpoint
from rnn_manual.files.textcheckpoint import load_text_checkpoint
from rnn_manual.training.corpus import MAX_TEXT_BYTES, corpus_of, read_corpus
from rnn_manual.training.language import TextConfig, train_text
from rnn_manual.training.sampling import held_out_loss, sample, uniform_loss

#: A small text with structure to learn: words repeat, letters follow letters.
SMALL = (
    "the cat sat on the mat. the dog sat on the log. a cat and a dog sat on a mat and a log. "
) * 12


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = cli.main(list(argv))
    except SystemExit as e:  # argparse's own refusals
        status = e.code if isinstance(e.code, int) else 2
    out, err = capsys.readouterr()
    return status, out, err


def test_a_chunk_is_the_text_and_its_next_characters() -> None:
    """x[t, b] is character b L + position + t, y[t, b] the one after it; the streams start
    over at 0 before a chunk would read past its stream."""
    corpus = corpus_of("abcdefghijklmnopqrstuvwxyz" * 2)
    seq, batch = 3, 2
    L = corpus.stream_length(batch)
    assert L == len(corpus.train) // 2
    x, y = corpus.chunk(3, seq, batch, "float64")
    assert x.shape == y.shape == (seq, batch, len(corpus.vocabulary))
    text = corpus.vocabulary
    for t in range(seq):
        for b in range(batch):
            at = b * L + 3 + t
            assert x[t, b].argmax() == corpus.train[at] and x[t, b].sum() == 1
            assert y[t, b].argmax() == corpus.train[at + 1]
    assert "".join(text[k] for k in x[:, 0].argmax(-1)) == "def"
    position, seen = 0, []
    for _ in range(2 * L):
        seen.append(position)
        position = corpus.next_position(position, seq, batch)
    cycle = (L - 1) // seq  # whole chunks of seq + 1 characters in a stream of L
    assert seen[: cycle + 1] == [k * seq for k in range(cycle)] + [0]
    assert seen[cycle - 1] + seq + 1 <= L < seen[cycle - 1] + 2 * seq + 1


def test_the_held_out_tail_is_never_trained_on() -> None:
    corpus = corpus_of(SMALL)
    assert len(corpus.train) + len(corpus.held_out) == len(SMALL)
    assert len(corpus.held_out) == round(0.1 * len(SMALL))
    for batch in (1, 4):
        _x, y = corpus.chunk(corpus.stream_length(batch) - 11, 10, batch, "float64")
        assert y.sum() == 10 * batch  # the last chunk stays inside the training part


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_a_short_run_learns_the_text(cell: str) -> None:
    """A fixed-seed run of 150 steps: the held-out loss falls well below the uniform guess
    log V and the model's own loss after one step, measured, not timed."""
    corpus = corpus_of(SMALL)
    config = TextConfig(cell=cell, hidden=24, seq=12, batch=4, steps=150, sample_every=0)
    first = train_text(replace_steps(config, 1), corpus, log=None).state.model
    result = train_text(config, corpus, log=None)
    before, after = held_out_loss(first, corpus), held_out_loss(result.state.model, corpus)
    uniform = uniform_loss(corpus)
    assert after < min(uniform, before) - 1.0, (cell, before, after, uniform)


def replace_steps(config: TextConfig, steps: int) -> TextConfig:
    return TextConfig(**{**config.__dict__, "steps": steps})


@pytest.mark.parametrize(
    ("cell", "optimizer"), [("rnn", "adagrad"), ("lstm", "adam"), ("gru", "momentum")]
)
def test_a_resumed_run_ends_bit_identical(tmp_path: Path, cell: str, optimizer: str) -> None:
    """Stopped at step 13 into a checkpoint file, resumed to 30: the weights, the carried
    states, the position and every loss as in the run that never stopped (the streams wrap
    around on the way, so the state reset is crossed too)."""
    corpus = corpus_of(SMALL)
    config = TextConfig(
        cell=cell, hidden=8, seq=20, batch=3, optimizer=optimizer, steps=30, sample_every=0
    )
    assert config.steps * config.seq > corpus.stream_length(config.batch)  # it wraps
    whole = train_text(config, corpus, log=None).state
    path = tmp_path / "run.npz"

    def save(state: object) -> None:
        textcheckpoint.save_text_checkpoint(path, state, corpus.vocabulary, corpus.digest)  # type: ignore[arg-type]

    train_text(replace_steps(config, 13), corpus, log=None, checkpoint=save)
    resumed, vocabulary, digest = textcheckpoint.load_text_checkpoint(path)
    assert (resumed.step, vocabulary, digest) == (13, corpus.vocabulary, corpus.digest)
    ended = train_text(config, corpus, log=None, resume=resumed).state
    assert ended.step == whole.step and ended.position == whole.position
    assert ended.losses.tobytes() == whole.losses.tobytes()
    for name, w in whole.model.params.items():
        np.testing.assert_array_equal(ended.model.params[name], w, err_msg=name)
    for mine, theirs in zip(ended.states, whole.states, strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_sampling_is_deterministic_for_a_seed_and_follows_the_temperature() -> None:
    corpus = corpus_of(SMALL)
    model = train_text(TextConfig(hidden=16, seq=10, batch=4, steps=60), corpus, log=None)
    model = model.state.model
    draw = lambda seed, t=1.0: sample(  # noqa: E731
        model, corpus.vocabulary, "the ", 200, t, np.random.default_rng(seed)
    )
    assert draw(3) == draw(3) and len(draw(3)) == 200
    assert draw(3) != draw(4)
    assert set(draw(3)) <= set(corpus.vocabulary)
    cold = draw(5, 1e-6)  # the likeliest character at every step, whatever the seed
    assert cold == draw(6, 1e-6) == draw(7, 1e-300)
    assert len(set(draw(8, 100.0))) > len(set(cold))  # hot: nearly uniform


def test_text_and_sample_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "small.txt"
    text.write_text(SMALL, encoding="utf-8")
    saved = tmp_path / "chars.npz"
    argv = ["text", "--file", str(text), "--hidden", "16", "--seq", "10", "--batch", "4"]
    status, out, err = run_cli(capsys, *argv, "--steps", "500", "--save", str(saved))
    assert status == 0, err
    lines = out.splitlines()
    V = len(set(SMALL))
    assert lines[0].startswith(f"text: {len(SMALL)} characters, {V} distinct")
    assert any(line.startswith("sample: ") for line in lines)
    last = next(line for line in lines if line.startswith("held-out loss"))
    loss = float(last.split()[2])
    assert loss < math.log(V) - 1.0 and f"log {V} = {math.log(V):.4f}" in last
    model, vocabulary = modelfile.load_text_model(saved)
    assert model.output == "softmax" and vocabulary == "".join(sorted(set(SMALL)))
    assert abs(held_out_loss(model, read_corpus(text)) - loss) < 1e-4
    first = run_cli(capsys, "sample", "--model", str(saved), "--prime", "the", "--seed", "2")
    again = run_cli(capsys, "sample", "--model", str(saved), "--prime", "the", "--seed", "2")
    assert first == again and first[0] == 0 and first[1].startswith("the")
    assert len(first[1]) == len("the") + 200 + 1  # the prime, 200 characters, a newline


def test_command_line_checkpoint_and_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "small.txt"
    text.write_text(SMALL, encoding="utf-8")
    base = ["text", "--file", str(text), "--hidden", "8", "--seq", "10", "--batch", "2"]
    whole, part = tmp_path / "whole.npz", tmp_path / "part.npz"
    assert run_cli(capsys, *base, "--steps", "40", "--save", str(whole), "--quiet")[0] == 0
    assert run_cli(capsys, *base, "--steps", "15", "--checkpoint", str(part), "--quiet")[0] == 0
    resumed = tmp_path / "resumed.npz"
    status, _, err = run_cli(
        capsys, "text", "--file", str(text), "--resume", str(part), "--steps", "40",
        "--save", str(resumed), "--quiet",
    )  # fmt: skip
    assert status == 0, err
    a, b = modelfile.load_text_model(whole)[0], modelfile.load_text_model(resumed)[0]
    for name, w in a.params.items():
        np.testing.assert_array_equal(b.params[name], w, err_msg=name)
    other = tmp_path / "other.txt"
    other.write_text(SMALL.upper(), encoding="utf-8")
    refusals = [
        (["--file", str(other), "--resume", str(part)], "trained on another text"),
        (["--file", str(text), "--resume", str(part), "--hidden", "9"], "--hidden: a resumed"),
        (["--file", str(text), "--resume", str(whole)], "not a checkpoint of a text run"),
    ]
    for args, message in refusals:
        status, _, err = run_cli(capsys, "text", *args)
        assert status == 2 and message in err and len(err.splitlines()) == 1, (args, err)


def test_bad_texts_and_primes_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {
        "latin1.txt": ("caf\xe9 " * 50).encode("latin-1"),
        "empty.txt": b"",
        "one.txt": b"a",
        "same.txt": b"aaaaaaaaaaaaaaaaaaaaaaaa",
        "short.txt": b"abcabc",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as f:  # sparse: MAX_TEXT_BYTES + 1 bytes without writing them
        f.truncate(MAX_TEXT_BYTES + 1)
    expected = {
        "latin1.txt": "not UTF-8 text (byte 0xe9 at offset 3)",
        "empty.txt": "the file is empty",
        "one.txt": "at least two distinct characters",
        "same.txt": "at least two distinct characters",
        "short.txt": "too short for --seq 25 with --batch 16",
        "huge.txt": "larger than the 16 MiB",
        "missing.txt": "cannot read the file",
        ".": "not a regular file",
    }
    for name, message in expected.items():
        status, out, err = run_cli(capsys, "text", "--file", str(tmp_path / name))
        assert status == 2 and message in err and len(err.splitlines()) == 1, (name, err)
        assert out == ""
    adder = tmp_path / "adder.npz"
    modelfile.save(adder, CELLS["rnn"]())
    corpus = corpus_of(SMALL)
    model = train_text(TextConfig(hidden=4, seq=5, batch=2, steps=1), corpus, log=None)
    chars = tmp_path / "chars.npz"
    modelfile.save(chars, model.state.model, vocabulary=corpus.vocabulary)
    bad_samples = [
        (["--model", str(adder)], "not a text model"),
        (["--model", str(chars), "--prime", "The"], "never saw: ['T']"),
        (["--model", str(chars), "--prime", ""], "the prime text is empty"),
        (["--model", str(chars), "--length", "0"], "expected a positive integer"),
        (["--model", str(chars), "--length", "100001"], "at most 100000"),
        (["--model", str(chars), "--temperature", "0"], "temperature"),
    ]
    for args, message in bad_samples:
        status, out, err = run_cli(capsys, "sample", *args)
        assert status == 2 and message in err and len(err.splitlines()) == 1, (args, err)


def test_the_readmes_text_run_is_what_the_commands_print(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console block of the README's pages (docs/command-line.md), rerun command by
    command in a fresh folder: the same lines, the seconds aside (they are the machine's)."""
    ((_, block),) = manual.blocks("console")
    commands = re.split(r"^\$ ", block, flags=re.M)[1:]
    assert [c.split()[3] for c in commands] == ["text", "sample"]
    monkeypatch.chdir(tmp_path)
    for command in commands:
        line, _, shown = command.partition("\n")
        status, out, err = run_cli(capsys, *shlex.split(line)[3:])
        assert status == 0, err
        seconds = re.compile(r"in \d+\.\d s")
        assert seconds.sub("in _ s", out) == seconds.sub("in _ s", shown), line


def test_sigint_to_text_saves_a_checkpoint_that_resumes_exactly(tmp_path: Path) -> None:
    """Ctrl-C stops `text` after the current step with the checkpoint written (status 130,
    one line), and that checkpoint resumes to the weights of a run never stopped."""
    path, text = tmp_path / "ck.npz", tmp_path / "small.txt"
    text.write_text(SMALL, encoding="utf-8")
    args = ["text", "--file", str(text), "--hidden", "8", "--seq", "10", "--batch", "2"]
    args += ["--steps", "10000000", "--checkpoint", str(path), "--checkpoint-every", "10000000"]
    (_, first_step), status, stderr = interrupted(*args, lines=2)  # the text's line, a step's
    assert first_step.startswith("step"), first_step  # training was on
    assert status == 130
    assert stderr.count("\n") == 1 and f"checkpoint saved to {path}" in stderr, stderr
    state, _, _ = load_text_checkpoint(path)
    assert stderr.startswith(f"interrupted at step {state.step},") and state.step >= 100
    config = replace_steps(state.config, state.step + 7)
    corpus = read_corpus(text)
    resumed = train_text(config, corpus, log=None, resume=state).state
    whole = train_text(config, corpus, log=None).state
    for name, w in whole.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[name], w, err_msg=name)
