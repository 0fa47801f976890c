"""Hostile input: random and malformed arguments to the command line and the public API.

Every one must end in a clean refusal (ValueError from the API; exit status 2 and one line
on stderr from the command line) or a normal result; never a traceback, a warning, a hang,
or an allocation the size of the input's claims.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pytest
import torch
from folders import unwritable_folder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from rnn_manual import RNN, decode, encode
from rnn_manual.app import cli
from rnn_manual.cells import CELLS
from rnn_manual.core.backend import to_numpy
from rnn_manual.files import modelfile
from rnn_manual.files.checkpoint import save_checkpoint
from rnn_manual.training.loop import train
from rnn_manual.training.state import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 60  # far beyond any case here; a hang fails the test instead of stalling CI


@contextmanager
def no_hang() -> Iterator[None]:
    """TimeoutError, rather than a stalled CI, if the body takes more than SECONDS."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"no answer within {SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Paths a hostile command line may name: good files, bad files, and no files."""
    folder = tmp_path_factory.mktemp("hostile")
    model, checkpoint = folder / "model.npz", folder / "ck.npz"
    result = train(TrainConfig(hidden=4, steps=5), log=None)
    modelfile.save(model, result.model, result.history)
    train(
        TrainConfig(hidden=4, steps=5),
        log=None,
        checkpoint=lambda s: save_checkpoint(checkpoint, s),
    )
    three_inputs = folder / "three.npz"
    modelfile.save(three_inputs, RNN(input_size=3, hidden_size=4))
    (folder / "garbage.npz").write_bytes(b"PK\x03\x04 garbage")
    # Never the real /dev/null: a regression would replace it with a file, as root.
    os.mkfifo(folder / "fifo.npz")
    (folder / "link.npz").symlink_to(folder / "fifo.npz")
    return {
        "model": str(model),
        "checkpoint": str(checkpoint),
        "three inputs": str(three_inputs),
        "garbage": str(folder / "garbage.npz"),
        "missing": str(folder / "missing.npz"),
        "folder": str(folder),
        "no folder": str(folder / "no" / "such.npz"),
        "empty": "",
        "output": str(folder / "out.npz"),
        "unwritable": str(unwritable_folder(folder) / "m.npz"),
        "fifo": str(folder / "fifo.npz"),
        "link to a fifo": str(folder / "link.npz"),
    }


NUMBERS = ["0", "1", "2", "3", "8", "-1", "1e3", "0x10", "1_0", " 7 ", "٣", "nan", "inf", "-inf"]
NUMBERS += ["1e-320", "1e300", str(2**64), "10" * 30, "", "many", "4.5", "None", "\x00"]
HUGE = ["5000", "100000", "1000000", "10000000000"]  # over the caps, alone or as products
OPERANDS = ["0", "1", "123", "-1", "1.5", "", "x", "0x10", "1_000", " 7 ", "٣", "9" * 400_000]
OPERANDS += ["+5", "1e5", "\n", "--", "nan", str(2**200)]
#: What str.isdigit calls digits, but int() does not read, or reads as something else.
NOT_DIGITS = ["²", "①", "𐩀", "١٢", "１２", " 12", "12 ", "1_2", "___1___", "٣"]
OPERANDS += NOT_DIGITS
#: The options each command takes that hold numbers, choices or paths.
OPTIONS = {
    "train": ["--bits", "--hidden", "--batch", "--lr", "--seed", "--clip", "--checkpoint-every"],
    "evaluate": ["--bits", "--samples", "--seed"],
    "add": [],
    "plot": [],
}
CHOICES = {
    "--cell": ["rnn", "lstm", "gru", "transformer"],
    "--activation": ["sigmoid", "tanh", "relu", "softmax", ""],
    "--loss": ["mse", "bce", "l1"],
    "--optimizer": ["sgd", "momentum", "adam", "rmsprop"],
    "--dtype": ["float32", "float64", "float16", "int8"],
}
PATH_OPTIONS = ["--save", "--checkpoint", "--resume"]


@st.composite
def command_lines(draw: st.DrawFn, files: dict[str, str]) -> list[str]:
    """A command with its required arguments mostly in place, then hostile options."""
    command = draw(st.sampled_from(["train", "train", "add", "evaluate", "plot", "frobnicate"]))
    argv = [command]
    some_file = st.sampled_from(["model"] * 4 + sorted(files)).map(files.get)
    if command in ("add", "evaluate", "plot"):
        argv += ["--model", draw(some_file)]
    if command == "add":
        argv += ["--", draw(st.sampled_from(OPERANDS)), draw(st.sampled_from(OPERANDS))]
    if command == "evaluate":
        argv += ["--bits", draw(st.sampled_from(NUMBERS + HUGE))]
    if command == "plot":
        argv += ["--out", files["model"]]  # a file, not a folder: refused before drawing
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["number", "huge", "choice", "path", "junk"]))
        if kind in ("number", "huge") and OPTIONS.get(command):
            values = NUMBERS if kind == "number" else HUGE
            argv[1:1] = [draw(st.sampled_from(OPTIONS[command])), draw(st.sampled_from(values))]
        elif kind == "choice" and command == "train":
            option = draw(st.sampled_from(sorted(CHOICES)))
            argv[1:1] = [option, draw(st.sampled_from(CHOICES[option]))]
        elif kind == "path" and command == "train":
            argv[1:1] = [draw(st.sampled_from(PATH_OPTIONS)), draw(some_file)]
        elif kind == "junk":
            argv.insert(draw(st.integers(0, len(argv))), draw(st.text(max_size=12)))
    if command == "train":
        argv[1:1] = ["--steps", "2", "--quiet"]  # valid runs stay short
    return argv


def assert_clean(status: int, out: str, err: str) -> None:
    assert "Traceback" not in out + err
    assert status in (0, 1, 2, 3), (status, err)
    if status == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rnn-manual"), err


def run_main(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    try:
        with no_hang():
            status = cli.main(argv)
    except SystemExit as e:  # argparse's own refusals and --help
        status = e.code if isinstance(e.code, int) else 2
    out, err = capsys.readouterr()
    return status, out, err


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_command_line_refuses_hostile_arguments_cleanly(
    files: dict[str, str], capsys: pytest.CaptureFixture[str], data: st.DataObject
) -> None:
    argv = data.draw(command_lines(files), label="argv")
    assert_clean(*run_main(capsys, argv))


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train", "--hidden", "5000"], "hidden must be at most 4096"),
        (["train", "--batch", "10000000"], "more than the limit"),
        (["train", "--bits", "100000"], "more than the limit"),
        (["train", "--bits", "5000", "--hidden", "1"], "validation set"),
        (["train", "--bits", "9" * 30], "expected a positive integer"),
        (["train", "--seed", "-1"], "from 0 to 2**64-1"),
        (["train", "--seed", str(2**64)], "from 0 to 2**64-1"),
        (["train", "--clip", "0"], "positive finite"),
        (["train", "--checkpoint-every", "0"], "positive integer"),
        (["evaluate", "--model", "{model}", "--bits", "100000"], "more than the limit"),
        (["evaluate", "--model", "{model}", "--bits", "8", "--samples", "10" * 9], "limit"),
        (["evaluate", "--model", "{three inputs}", "--bits", "8"], "not an addition model"),
        (["evaluate", "--model", "{garbage}", "--bits", "8"], "not a valid model file"),
        (["add", "--model", "{model}", "1", "9" * 400_000], "limited to 1048576 bits"),
        (["add", "--model", "{model}", "--", "0", "--"], "two non-negative integers"),
        (["train", "--resume", "{model}"], "without training state"),
        (["train", "--resume", "{checkpoint}", "--lr", "0.5"], "--lr: a resumed run"),
        (["train", "--save", "{no folder}"], "cannot write a file there"),
        (["train", "--checkpoint", "{folder}"], "cannot write a file there"),
        (["train", "--bits", "1", "a\nb\u2028c"], "unrecognized arguments: a\\nb\\u2028c"),
        (["add", "--model", "{folder}/x\ny.npz", "1", "2"], "x\\ny.npz: no such file"),
        (["add", "--model", "{folder}/" + "d" * 600 + ".npz", "1", "2"], "ddd..."),
        *[(["add", "--model", "{model}", "--", n, "3"], "(digits 0-9)") for n in NOT_DIGITS],
        (["train", "--cell", "lstm", "--activation", "relu"], "the lstm cell has no activation"),
        (["train", "--cell", "gru", "--activation", "sigmoid"], "the gru cell has no activation"),
        (["train", "--seed-compatible", "--hidden", "32"], "--hidden: --seed-compatible"),
        (["train", "--seed-compatible", "--resume", "{missing}"], "--resume: --seed-compatible"),
        (["train", "--seed-compatible", "--quiet"], "--quiet: --seed-compatible"),
        (["train", "--resume", "{checkpoint}", "--hidden", "16"], "--hidden: a resumed run"),
        (["train", "--resume", "{checkpoint}", "--bits", "8"], "--bits: a resumed run"),
        (["train", "--resume", "{checkpoint}", "--optimizer", "adam"], "--optimizer: a resumed"),
        (["train", "--resume", "{checkpoint}", "--seed", "0"], "--seed: a resumed run"),
        (["train", "--resume", "{checkpoint}", "--bias"], "--bias: a resumed run"),
        (["train", "--save", "{output}", "--checkpoint", "{output}"], "name the same file"),
        (["train", "--resume", "{checkpoint}", "--save", "{checkpoint}"], "name the same file"),
        (["train", "--save", "{unwritable}"], "cannot write a file there"),
        (["train", "--checkpoint", "{unwritable}"], "cannot write a file there"),
        (["train", "--save", "{fifo}"], "not a regular file"),
        (["train", "--save", "{link to a fifo}"], "not a regular file"),
        (["plot", "--model", "{model}", "--out", ""], "--out: give a folder"),
        (["evaluate", "--model", "{model}", "--bits", "8192"], "lower --samples (at most 8192"),
        (["evaluate", "--model", "{model}", "--bits", str(2**27)], "lower --bits"),
    ],
)
def test_named_hostile_arguments_are_refused_with_a_reason(
    files: dict[str, str], capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    status, out, err = run_main(capsys, [a.format(**files) for a in argv])
    assert status == 2 and fragment in err, err
    assert_clean(status, out, err)


def test_add_refuses_an_operand_whose_pass_would_exceed_the_memory_cap(
    files: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rnn_manual.core import limits

    monkeypatch.setattr(limits, "MAX_ELEMENTS", 4 * 100)  # hidden 4: 100 bits at most
    status, _, err = run_main(capsys, ["add", "--model", files["model"], "1", str(2**120)])
    assert status == 2 and "more than the limit of 400" in err


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--hidden", "99999999999"],
        ["train", "--lr", "nan"],
        ["add", "--model", "/dev/zero", "1", "2"],
        ["evaluate", "--model", "/dev/zero", "--bits", "8"],
        ["train", "--resume", "/dev/zero"],
    ],
)
def test_the_real_command_refuses_in_one_line(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", "rnn_manual", *args],
        capture_output=True,
        text=True,
        timeout=SECONDS,
        cwd=ROOT,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr


# --- the public API -------------------------------------------------------------------------


ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from([np.int64(3), np.float64(3.0), [2], (2,), "2"]),
)


@given(
    sizes=st.tuples(ANY_VALUE, ANY_VALUE, ANY_VALUE),
    activation=st.one_of(st.sampled_from(["sigmoid", "tanh", "relu", "softmax"]), ANY_VALUE),
    dtype=st.sampled_from([np.float32, np.float64, "float64", "f4", np.float16, np.int32, object]),
)
def test_the_rnn_constructor_refuses_bad_arguments_with_value_error(
    sizes: tuple[Any, Any, Any], activation: Any, dtype: Any
) -> None:
    try:
        model = RNN(*sizes, activation=activation, dtype=dtype)
    except ValueError:
        return
    assert model.dtype in (np.float32, np.float64)
    assert all(isinstance(s, int) and s >= 1 for s in (model.input_size, model.hidden_size))


X_DTYPES = st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.complex128, np.str_])


@given(
    x=arrays(X_DTYPES, array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)),
    loss=st.sampled_from(["mse", "bce", "hinge"]),
    y_kind=st.sampled_from(["right", "wrong shape", "nan", "not binary", "ragged"]),
)
@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_forward_and_gradients_refuse_malformed_inputs(
    library: str, x: np.ndarray, loss: str, y_kind: str
) -> None:
    model = RNN(2, 3, 1, "tanh").to(library)
    if library == "torch" and x.dtype.kind in "fib":  # torch's own tensors, where it has them
        x = torch.from_numpy(x)
    shape = (*x.shape[:2], 1) if x.ndim == 3 else (1, 1, 1)
    y = {
        "right": np.ones(shape),
        "wrong shape": np.ones((*shape, 2)),
        "nan": np.full(shape, np.nan),
        "not binary": np.full(shape, 0.5),  # soft targets are allowed
        "ragged": [[1.0], [1.0, 2.0]],
    }[y_kind]
    try:
        p = model.forward(x)
    except ValueError:
        return  # refused: the wanted outcome for anything malformed
    assert tuple(p.shape) == shape and np.isfinite(to_numpy(p)).all()
    try:
        value, grads = model.loss_and_grads(x, y, loss)
    except ValueError:
        return
    assert y_kind in ("right", "not binary") and loss in ("mse", "bce")
    assert np.isfinite(value) and all(np.isfinite(to_numpy(g)).all() for g in grads.values())


@given(
    x=st.one_of(
        st.none(),
        st.text(max_size=5),
        st.floats(),
        st.lists(st.lists(st.floats(), max_size=3), max_size=3),
        st.just([[[0.0, 1.0]], [[1.0]]]),  # ragged
        st.just(np.empty((0, 4, 2))),  # zero time steps
        st.just(np.empty((4, 0, 2))),  # an empty batch
        st.just(np.array([[[object(), 1.0]]], dtype=object)),
    ),
    h0=st.sampled_from([None, "bad", np.zeros((1, 2)), np.full((1, 3), np.inf), np.zeros((1, 3))]),
)
def test_forward_refuses_what_is_not_a_batch_of_sequences(x: Any, h0: Any) -> None:
    model = RNN(2, 3, 1)
    try:
        p = model.forward(x, h0)
    except ValueError:
        return
    assert p.ndim == 3 and np.isfinite(p).all()


@given(width=st.integers(1, 72), data=st.data())
def test_encode_round_trips_what_fits_and_refuses_what_does_not(
    width: int, data: st.DataObject
) -> None:
    values = data.draw(st.lists(st.integers(0, 2**width - 1), max_size=4), label="values")
    assert decode(encode(values, width)) == values
    bad = data.draw(st.sampled_from([-1, 2**width, 2**width + 1, -(2**80)]), label="bad value")
    with pytest.raises(ValueError):
        encode([*values, bad], width)
    with pytest.raises(ValueError):
        encode(values, data.draw(st.integers(-3, 0), label="bad width"))


@given(
    bits=arrays(
        st.sampled_from([np.uint8, np.int64, np.float64, np.bool_]),
        array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
    )
)
def test_decode_refuses_what_is_not_bits(bits: np.ndarray) -> None:
    try:
        values = decode(bits)
    except ValueError:
        assert bits.ndim != 2 or not np.isin(bits, (0, 1)).all()
        return
    assert bits.ndim == 2 and len(values) == bits.shape[1]


@given(
    field=st.sampled_from(["bits", "hidden", "batch", "steps", "lr", "momentum", "seed", "clip"]),
    value=ANY_VALUE | st.sampled_from([10**9, 2**64, -(2**64), 1e308]),
)
def test_train_config_refuses_bad_fields_with_value_error(field: str, value: Any) -> None:
    try:
        TrainConfig(**{field: value})
    except ValueError:
        return
    assert value is None or isinstance(value, (int, float, np.integer, np.floating))


# --- inputs that once slipped through rnn.py and bits.py ------------------------------------


def _relu_overflow() -> None:
    model = RNN(2, 4, 1, "relu")
    model.params["W_xh"][...] = 1.0
    model.params["W_hh"][...] = 1e200  # h_2 ~ 1e200 * 1e200: past float64's range
    model.forward(np.full((3, 2, 2), 1e200))


def _float32_cast_overflow() -> None:
    RNN(2, 4, 1, dtype=np.float32).forward(np.full((3, 2, 2), 1e300))


def _encode_float() -> None:
    encode([1.5], 4)  # silently truncated to 1


def _encode_string() -> None:
    encode(["3"], 4)  # silently parsed


def _batch_of_floats() -> None:
    from rnn_manual.training.bits import random_addition_batch

    random_addition_batch(np.random.default_rng(0), 2.5, 3)  # type: ignore[arg-type]


def _unknown_dtype_name() -> None:
    RNN(dtype="x")  # np.dtype(None) == float64: a failed lookup must not pass as None


def _unhashable_activation() -> None:
    RNN(activation=[2])  # type: ignore[arg-type]  # unhashable: not a TypeError from `in`


def _targets_outside_0_1() -> None:
    RNN(2, 3, 1).loss_and_grads(np.zeros((2, 1, 2)), np.full((2, 1, 1), 7.0), "bce")


@pytest.mark.parametrize(
    "call",
    [
        _relu_overflow,
        _float32_cast_overflow,
        _encode_float,
        _encode_string,
        _batch_of_floats,
        _targets_outside_0_1,
        _unknown_dtype_name,
        _unhashable_activation,
    ],
)
def test_once_missed_input_is_refused_with_value_error(call: Any) -> None:
    with pytest.raises(ValueError):
        call()


def _wrong_shape_weight(model: Any) -> None:
    model.params["W_hy"] = np.zeros((model.hidden_size + 1, 1))
    model.forward(np.zeros((3, 2, 2)))


def _missing_weight(model: Any) -> None:
    del model.params["W_hy"]
    model.forward(np.zeros((3, 2, 2)))


def _masked_input(model: Any) -> None:
    x = np.ma.masked_array(np.ones((3, 2, 2)), mask=np.eye(2, dtype=bool)[None].repeat(3, 0))
    model.forward(x)


def _wrong_shape_dz(model: Any) -> None:
    model.backward(model.run(np.zeros((3, 2, 2))), np.zeros((3, 2, 2)))


def _zero_truncate_in_backward(model: Any) -> None:
    model.backward(model.run(np.zeros((3, 2, 2))), np.zeros((3, 2, 1)), 0)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda cls: cls(bias="False"), "bias must be True or False, got 'False'"),
        (
            lambda cls: cls(seed=-1),
            "seed must be a non-negative integer, a numpy.random.Generator or None, got -1",
        ),
        (
            lambda cls: _wrong_shape_weight(cls()),
            "params['W_hy'] must have shape (16, 1), got (17, 1)",
        ),
        (lambda cls: _missing_weight(cls()), "params must hold ["),
        (
            lambda cls: _masked_input(cls()),
            "x has masked entries: fill them first (numpy.ma.filled)",
        ),
        (
            lambda cls: _wrong_shape_dz(cls()),
            "dz must have the outputs' shape (3, 2, 1), got (3, 2, 2)",
        ),
        (lambda cls: _zero_truncate_in_backward(cls()), "truncate must be a positive integer"),
    ],
    ids=["bias-string", "seed-negative", "weight-shape", "weight-missing", "masked", "dz", "K0"],
)
def test_the_api_names_the_argument_it_refuses(cell: str, call: Any, message: str) -> None:
    """Each once gave a silent wrong answer (bias="False" was True, a mask was ignored) or
    NumPy's own error about a reshape or a matmul."""
    with pytest.raises(ValueError) as error:
        call(CELLS[cell])
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_an_unwritable_save_is_refused_before_any_training(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    for option in ("--save", "--checkpoint"):
        status, out, err = run_main(capsys, ["train", option, files["unwritable"]])
        assert status == 2 and "cannot write a file there" in err
        assert out == ""  # not one step trained, so nothing lost
