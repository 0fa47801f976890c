"""`python -m rnn_torch check` gives a verdict only where it can judge honestly: correct code
at a size where rounding alone moves the gradients is refused, not called wrong; a float32
limit too loose to fail is refused; a planted bug is caught at every size the check accepts;
an overflowing forward pass, a bad RNN_MANUAL_THREADS and Ctrl-C end in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnn_manual import RNN
from rnn_manual.cells import base, rnn
from rnn_manual.core.validate import Overflow
from rnn_torch import __main__ as cli
from rnn_torch.planting import Plant, planted_module

ROOT = Path(__file__).resolve().parents[1]

#: Real bugs of the backward pass (tests/test_mutations.py has them all): dW_hh from h_t, not
#: h_{t-1}; dL/dh0 taken a step too late, before the last multiplication by W_hh^T.
BUGS = {
    "h_t in dW_hh": Plant(
        "RNN.backward_unchecked", "h[:-1].reshape(T * B, H).T", "h[1:].reshape(T * B, H).T"
    ),
    "dh0 a step late": Plant(
        "RNN.backward_unchecked", 'grads["h0"] = dh_next', 'grads["h0"] = da[0]'
    ),
}


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`check ARGS` in this process: exit status, stdout, stderr."""
    status = cli.main(["check", *args])
    out, err = capsys.readouterr()
    return status, out, err


def refused(status: int, out: str, err: str, fragment: str) -> bool:
    """Exit 2, no table, and one line on stderr holding `fragment`."""
    return status == 2 and out == "" and len(err.splitlines()) == 1 and fragment in err


def test_correct_code_at_a_chaotic_size_is_refused_not_called_wrong(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """At T 1000 the tanh network is chaotic: one ulp in the weights moves every gradient by
    O(1), so autograd and a correct manual pass disagree as much as a wrong one would."""
    status, out, err = check(capsys, "--activation", "tanh", "--bits", "1000")
    assert refused(status, out, err, "one ulp in the weights moves"), (status, out, err)


def test_a_float32_limit_too_loose_to_fail_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = check(
        capsys,
        *"--bits 64 --hidden 64 --batch 16 --h0 --bias --activation tanh".split(),
        "--dtype",
        "float32",
    )
    assert refused(status, out, err, "in float32, rounding alone may move"), (status, out, err)


#: Sizes the check judges (the largest T it accepts, for the first two) and sizes it refuses:
#: (options, the status of a correct manual model).
SIZES = [
    ("--activation tanh --bits 32", 0),
    ("--bits 64 --dtype float32", 0),
    ("--bits 400", 0),
    ("--activation tanh --bits 8 --dtype float32", 0),
    ("--bits 400 --dtype float32", 2),
    ("--bits 200 --hidden 64 --dtype float32", 2),
    ("--activation tanh --bits 200", 2),
]


@pytest.mark.parametrize("bug", BUGS)
@pytest.mark.parametrize("options, correct", SIZES)
def test_a_planted_bug_is_caught_wherever_the_check_judges(
    options: str,
    correct: int,
    bug: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The correct model passes where the check judges, and there the planted bug fails
    (exit 1), in float64 and float32: the bound can fail. Where it cannot judge, both are
    refused alike (exit 2): a wrong gradient is never called right."""
    args = [*options.split(), "--bias", "--h0"]
    assert check(capsys, *args)[0] == correct
    fresh = planted_module(rnn, [BUGS[bug]], bug)
    monkeypatch.setattr(RNN, "backward_unchecked", fresh.RNN.backward_unchecked)
    status, out, err = check(capsys, *args)
    if correct == 0:
        assert status == 1 and "MISMATCH in" in out.splitlines()[-1], (status, out, err)
    else:
        assert refused(status, out, err, "cannot judge"), (status, out, err)


@pytest.mark.parametrize("dtype, bits", [("float64", "800"), ("float32", "128")])
def test_an_overflowing_forward_pass_is_refused_in_one_line(
    dtype: str, bits: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = check(capsys, "--activation", "relu", "--bits", bits, "--dtype", dtype)
    assert refused(status, out, err, f"forward pass overflows in {dtype}"), (status, out, err)


def test_a_manual_overflow_that_autograd_has_not_is_a_mismatch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only autograd's overflow excuses a network: the manual pass's alone is its own fault."""

    def always(z: object) -> None:
        raise Overflow("the forward pass overflowed: inputs or weights are far too large")

    monkeypatch.setattr(base, "check_outputs", always)
    status, out, err = check(capsys)
    assert status == 1 and out.startswith("MISMATCH") and err == "", (status, out, err)


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "rnn_torch", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=120,
    )


def test_a_bad_thread_count_is_one_line() -> None:
    result = run(["check"], {"RNN_MANUAL_THREADS": "abc"})
    assert result.returncode == 2 and result.stdout == "", result
    assert result.stderr.count("\n") == 1 and "RNN_MANUAL_THREADS" in result.stderr


def test_ctrl_c_during_check_is_one_line_and_130() -> None:
    """Ctrl-C while the gradients are computed: "interrupted", exit 130, no traceback."""
    code = (
        "import sys\n"
        "from rnn_torch.__main__ import main\n"
        "print('ready', flush=True)\n"
        "sys.exit(main(['check', '--bits', '2000', '--hidden', '512', '--batch', '8']))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-W", "error", "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    time.sleep(0.5)  # into the check
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, (process.returncode, err)
    assert out == "" and err == "python -m rnn_torch: interrupted\n"
