"""End-to-end tests of the command line, run as a user runs it: `python -m rnn_manual`."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from processes import start_cli

from rnn_manual.app import cli
from rnn_manual.app.output import given_options
from rnn_manual.app.parser import build_parser
from rnn_manual.core.args import positive_float
from rnn_manual.files.modelfile import load

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "rnn_manual", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def assert_usage_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "adder.npz"
    result = run("train", "--quiet", "--save", str(path))
    assert result.returncode == 0, result.stderr
    return path


def test_train_default_solves_all_8_bit_pairs_and_reports_long_sums(tmp_path: Path) -> None:
    result = run("train")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "no progress" not in out and "skipped" not in out
    assert "solved after" in out
    assert "accuracy on 16384 8-bit sums: 100.00% exact" in out
    for bits in (16, 64, 1024):
        assert f"{bits}-bit sums" in out
    assert "step" in out  # progress lines


def test_train_seed_compatible_prints_the_tutorials_output_and_can_save_the_model(
    tmp_path: Path,
) -> None:
    from rnn_manual.training.tutorial import replay

    path = tmp_path / "tutorial.npz"
    result = run("train", "--seed-compatible", "--save", str(path))
    assert result.returncode == 0
    expected = (ROOT / "tests" / "data" / "seed_rnn.expected.txt").read_text()
    squeeze = lambda text: [" ".join(line.split()) for line in text.strip().splitlines()]  # noqa: E731
    assert squeeze(result.stdout) == [*squeeze(expected), f"saved to {path}"]
    model, history = load(path)  # the replayed model, which has no history file entries
    assert history is None
    for name, w in replay(lambda line: None).params.items():
        assert np.array_equal(model.params[name], w), name


def test_train_reports_a_budget_that_runs_out() -> None:
    result = run("train", "--steps", "3", "--quiet")
    assert result.returncode == 1
    assert "NOT solved" in result.stdout


def test_add_uses_the_network(trained_model: Path) -> None:
    result = run("add", "--model", str(trained_model), "3", "5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "8"
    big_a, big_b = 2**200 + 12345, 3**120
    result = run("add", "--model", str(trained_model), str(big_a), str(big_b))
    assert result.returncode == 0
    assert result.stdout.strip().isdigit()


def test_add_zero_plus_zero(trained_model: Path) -> None:
    result = run("add", "--model", str(trained_model), "0", "0")
    assert result.stdout.strip() == "0"


def test_evaluate_prints_accuracy(trained_model: Path) -> None:
    result = run("evaluate", "--model", str(trained_model), "--bits", "8")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("100.00% exact on all 16384 pairs")
    result = run("evaluate", "--model", str(trained_model), "--bits", "32", "--samples", "500")
    assert result.returncode == 0
    assert "exact on 500 random 32-bit sums" in result.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "--hidden", "0"], "positive integer"),
        (["train", "--bits", "-3"], "positive integer"),
        (["train", "--batch", "many"], "positive integer"),
        (["train", "--lr", "nan"], "positive finite"),
        (["train", "--lr", "inf"], "positive finite"),
        (["train", "--lr", "-0.1"], "positive finite"),
        (["train", "--lr", "0"], "positive finite"),
        (["train", "--activation", "softmax"], "invalid choice"),
        (["train", "--no-such-option"], "unrecognized"),
        (["frobnicate"], "invalid choice"),
        (["add", "--model", "missing.npz", "1", "2"], "no such file"),
        (["evaluate", "--model", "missing.npz", "--bits", "8"], "no such file"),
        (["evaluate", "--model", "tests", "--bits", "8"], "directory"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(args: list[str], fragment: str) -> None:
    assert_usage_error(run(*args), fragment)


@pytest.mark.parametrize("a, b", [("-1", "2"), ("1", "-2"), ("1.5", "2"), ("x", "2"), ("", "2")])
def test_add_refuses_what_is_not_a_non_negative_integer(
    trained_model: Path, a: str, b: str
) -> None:
    assert_usage_error(run("add", "--model", str(trained_model), "--", a, b), "non-negative")


def test_unreadable_model_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.npz"
    bad.write_bytes(b"this is not a zip file")
    assert_usage_error(run("add", "--model", str(bad), "1", "2"), "not a valid model file")


def test_a_closed_pipe_ends_quietly(trained_model: Path) -> None:
    # A sum of 100,000 digits: more than a pipe holds, so the writer meets the closed pipe.
    big = "9" * 100_000
    result = subprocess.run(
        f"{sys.executable} -W error -m rnn_manual add --quiet --model {trained_model} {big} 1"
        " | head -c 5",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert len(result.stdout) == 5 and result.stdout.isdigit()
    assert result.stderr == ""


def test_add_reports_an_overflowing_model_in_one_line(tmp_path: Path) -> None:
    from rnn_manual import RNN
    from rnn_manual.files.modelfile import save

    model = RNN(2, 4, 1, "relu", seed=0)
    model.params["W_xh"][...] = 1.0
    model.params["W_hh"][...] = 1e100  # h grows by 1e100 a step: inf within a few bits
    path = tmp_path / "exploding.npz"
    save(path, model)
    assert_usage_error(run("add", "--model", str(path), "255", "255"), "overflows")


# --- hardening: first contact, output that cannot be written, models that cannot be drawn ---


def test_no_command_lists_each_command_with_an_example() -> None:
    result = run()
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "rnn-manual: error: give a command:"
    for command in ("train", "add", "evaluate", "plot"):
        assert any(line.split()[:1] == [command] for line in lines), command
        assert any(line.strip().startswith(f"e.g. rnn-manual {command} ") for line in lines)


def shell(command: str) -> subprocess.CompletedProcess[str]:
    """`command` run by the shell, as a user would type it, `python` being this one."""
    return subprocess.run(
        command.replace("python", f"{sys.executable} -W error", 1),
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_for_stdout_is_one_line_and_the_model_is_saved(
    trained_model: Path, tmp_path: Path
) -> None:
    result = shell(f"python -m rnn_manual add --model {trained_model} 3 5 > /dev/full")
    assert result.returncode == 2
    assert result.stderr == (
        "rnn-manual add: error: cannot write the output (No space left on device)\n"
    )
    path = tmp_path / "m.npz"
    result = shell(f"python -m rnn_manual train --steps 30 --save {path} > /dev/full")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"the model was saved to {path}" in result.stderr
    assert len(load(path)[1].loss) == 30  # type: ignore[union-attr]


def test_a_closed_pipe_does_not_lose_the_model(tmp_path: Path) -> None:
    """`train --save m.npz | head -1`: the reader leaves after the first line."""
    path = tmp_path / "m.npz"
    argv = ["train", "--steps", "400", "--lr", "1e-4", "--save", str(path)]
    process = start_cli(*argv)
    with process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()  # as `head -1` does
        status, stderr = process.wait(timeout=120), process.stderr.read()
    assert first.startswith("step ")  # training has begun
    assert status == 141 and stderr == ""
    assert len(load(path)[1].loss) == 400  # type: ignore[union-attr]


def exploding(path: Path, activation: str, value: float) -> Path:
    from rnn_manual import RNN
    from rnn_manual.files.modelfile import save

    model = RNN(2, 4, 1, activation, seed=0)
    signs = np.sign(np.random.default_rng(0).uniform(-1, 1, size=model.params["W_hh"].shape))
    model.params["W_xh"][...] = 1.0
    model.params["W_hh"][...] = value * signs
    save(path, model)
    return path


@pytest.mark.parametrize("activation, value", [("relu", 1e200), ("sigmoid", 1e300)])
def test_plot_refuses_a_model_that_overflows_in_one_line(
    tmp_path: Path, activation: str, value: float
) -> None:
    path = exploding(tmp_path / "m.npz", activation, value)
    result = run("plot", "--model", str(path), "--out", str(tmp_path / "figures"))
    assert_usage_error(result, "overflow")
    assert not (tmp_path / "figures").exists()


def test_a_large_model_is_reported_on_fewer_sums_not_for_minutes() -> None:
    # 1000 random 1024-bit sums through 1024 hidden units: 10**12 multiply-adds, once.
    result = run("train", "--hidden", "1024", "--steps", "1", "--quiet")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("accuracy on ") and " of the 16384 8-bit sums: " in lines[1]
    assert "(1000 random)" not in result.stdout
    assert lines[-1] == "   1024-bit sums: skipped, too slow for a model this large"


def test_a_stalled_run_says_so_once_with_what_to_try() -> None:
    result = run("train", "--hidden", "4", "--lr", "1e-5", "--steps", "3000")
    assert result.returncode == 1
    hints = [line for line in result.stdout.splitlines() if "no progress" in line]
    assert len(hints) == 1, result.stdout
    assert re.match(r"step \d+000: no progress in the last 1000 steps \(mean loss", hints[0])
    assert "try --lr 0.1 (now 1e-05)" in hints[0] and "--hidden (now 4)" in hints[0]
    assert "step 3000/3000 " in result.stdout  # progress lines show the budget


# --- number options: ASCII digits, one line and exit 2 for anything else -------------------


def number_options() -> list[tuple[str, str, Any]]:
    """(command, option, type) for every option of every command that has a type: each
    takes a number (the others are flags, choices and paths, taken as typed)."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [
        (name, action.option_strings[0], action.type)
        for name, command in commands.choices.items()
        for action in command._actions
        if action.type is not None
    ]


#: What int() or float() would take, or a traceback met, and an option must not.
NOT_NUMBERS = ["abc", "", " 8", "8 ", "１６", "١٦", "1_0", "+8", "-1", "0x10", "²"]


@pytest.mark.parametrize("command, option, kind", number_options())
def test_number_options_take_ascii_digits_only_and_refuse_in_one_line(
    capsys: pytest.CaptureFixture[str], command: str, option: str, kind: Any
) -> None:
    refused = NOT_NUMBERS + (["nan", "inf", " 0.5", "0.5 "] if kind is positive_float else [])
    for text in refused:
        with pytest.raises(SystemExit) as stopped:
            build_parser().parse_args([command, option, text])
        err = capsys.readouterr().err
        assert stopped.value.code == 2 and err.count("\n") == 1, (text, err)
        assert err.startswith(f"rnn-manual {command}: error: argument {option}: expected "), err
    number = float if kind is positive_float else int
    for text in ["8", "16"] + (["0.5", ".5", "1e-3", "2E+2"] if number is float else []):
        assert kind(text) == number(text)  # what is plainly a number still is


def test_a_bad_long_bits_is_one_line_not_a_traceback() -> None:
    assert_usage_error(run("train", "--long-bits", "１６"), "argument --long-bits: expected")


@pytest.mark.parametrize("command", ["train", "text"])
def test_checkpoint_every_without_a_checkpoint_is_refused(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert cli.main([command, "--checkpoint-every", "10", "--steps", "1", "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (
        f"rnn-manual {command}: error: --checkpoint-every: there is no checkpoint to write; "
        "give --checkpoint PATH\n"
    )


def test_plot_help_gives_the_command_that_makes_the_walkthroughs_adder(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rnn_manual.app.docruns import ADDER, ADDER_COMMAND

    monkeypatch.setenv("COLUMNS", "1000")  # one line per option: no word is split
    with pytest.raises(SystemExit):
        cli.main(["plot", "--help"])
    assert f"which `{ADDER_COMMAND}` makes" in capsys.readouterr().out
    python, dash_m, module, *argv = shlex.split(ADDER_COMMAND)
    assert (python, dash_m, module) == ("python", "-m", "rnn_manual")
    args = build_parser().parse_args(argv)
    assert cli.train_config(args, given_options(args)) == (ADDER, None)
