"""Model files: exact round trips, atomic writes, and a loader that refuses every bad file.

Each refusal must be a ModelFileError (exit status 2 from the command line) that names the
file and what is wrong; nothing in a file is ever unpickled or executed.
"""

from __future__ import annotations

import array
import io
import json
import os
import pathlib
import signal
import struct
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.lib import format as npy

from rnn_manual import RNN
from rnn_manual.core.validate import Overflow, check_params
from rnn_manual.files import modelfile, npz
from rnn_manual.files.checkpoint import load_checkpoint, save_checkpoint
from rnn_manual.files.modelfile import ModelFileError
from rnn_manual.training.loop import train
from rnn_manual.training.optim import SGD, Adagrad, Adam
from rnn_manual.training.state import TrainConfig

Arrays = dict[str, Any]
ROOT = Path(__file__).resolve().parents[1]


def make_checkpoint(path: Path, optimizer: str = "adam") -> None:
    """A short run of a model with biases, its checkpoint written to `path`."""
    config = TrainConfig(hidden=4, batch=8, steps=12, bias=True, optimizer=optimizer)
    train(config, log=None, checkpoint=lambda s: save_checkpoint(path, s))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ck") / "ck.npz"
    make_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def good(checkpoint: Path) -> Arrays:
    """The checkpoint's entries, as plain arrays to mutate."""
    with np.load(checkpoint) as npz:
        return {key: npz[key] for key in npz.files}


def meta_of(arrays: Arrays) -> dict[str, Any]:
    return json.loads(str(arrays["meta"]))


def with_meta(arrays: Arrays, change: Callable[[dict[str, Any]], None]) -> Arrays:
    meta = meta_of(arrays)
    change(meta)
    return {**arrays, "meta": np.array(json.dumps(meta))}


def write(path: Path, arrays: Arrays) -> Path:
    np.savez(path, **arrays)  # allow_pickle is on when saving: object arrays get pickled
    return path


# --- what is written comes back exactly --------------------------------------------------


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_checkpoint_round_trip_is_exact(tmp_path: Path, optimizer: str) -> None:
    path = tmp_path / "ck.npz"
    config = TrainConfig(hidden=4, batch=8, steps=20, optimizer=optimizer, bias=True)
    captured = []

    def keep(state: Any) -> None:
        save_checkpoint(path, state)
        captured.append(state)

    train(config, log=None, checkpoint=keep)
    state, loaded = captured[-1], load_checkpoint(path)
    assert loaded.config == state.config and loaded.step == state.step == 20
    assert loaded.history == state.history
    assert loaded.rng.bit_generator.state == state.rng.bit_generator.state
    for name, w in state.model.params.items():
        assert np.array_equal(loaded.model.params[name], w)
    expected = state.optimizer.state_arrays(state.model.params)
    found = loaded.optimizer.state_arrays(loaded.model.params)
    assert expected.keys() == found.keys()
    assert len(expected) == {"sgd": 0, "momentum": 5, "adam": 11}[optimizer]  # 5 params
    for key, a in expected.items():
        assert np.array_equal(found[key], a)


def test_a_plain_model_file_loads_but_cannot_be_resumed(tmp_path: Path, checkpoint: Path) -> None:
    model, history = modelfile.load(checkpoint)  # a checkpoint is also a model file
    path = tmp_path / "model.npz"
    modelfile.save(path, model, history)
    again, history_again = modelfile.load(path)
    assert history_again == history
    for name, w in model.params.items():
        assert np.array_equal(again.params[name], w) and again.params[name].dtype == w.dtype
    with pytest.raises(ModelFileError, match="without training state"):
        load_checkpoint(path)


def test_a_compressed_archive_is_read_too(tmp_path: Path, good: Arrays) -> None:
    path = tmp_path / "small.npz"
    np.savez_compressed(path, **good)
    assert load_checkpoint(path).step == 12


def test_save_refuses_non_finite_weights_and_writes_nothing(
    tmp_path: Path, checkpoint: Path
) -> None:
    model, _ = modelfile.load(checkpoint)
    model.params["W_hh"][0, 0] = np.nan
    path = tmp_path / "bad.npz"
    with pytest.raises(ModelFileError, match="non-finite"):
        modelfile.save(path, model)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_save_leaves_the_old_file_whole(
    tmp_path: Path, checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.npz"
    model, _ = modelfile.load(checkpoint)
    modelfile.save(path, model)
    before = path.read_bytes()

    def savez_then_die(f: io.BufferedWriter, **arrays: Any) -> None:
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing

    monkeypatch.setattr(np, "savez", savez_then_die)
    with pytest.raises(KeyboardInterrupt):
        modelfile.save(path, model)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left


def test_writing_where_no_file_can_go_is_a_model_file_error(
    tmp_path: Path, checkpoint: Path
) -> None:
    model, _ = modelfile.load(checkpoint)
    for where in (tmp_path / "missing" / "m.npz", tmp_path):
        with pytest.raises(ModelFileError, match="cannot write"):
            modelfile.save(where, model)


# --- every kind of bad file is refused ---------------------------------------------------


class RunsCode:
    """Unpickling this would create a file: proof that a pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (self.path,))


def huge_header_npy(shape: tuple[int, ...]) -> bytes:
    """A .npy entry whose header declares `shape` of float64 but stores 8 bytes."""
    f = io.BytesIO()
    npy.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return f.getvalue() + b"\0" * 8


def drop(key: str) -> Callable[[Arrays], Arrays]:
    return lambda a: {k: v for k, v in a.items() if k != key}


def rename(key: str, new: str) -> Callable[[Arrays], Arrays]:
    return lambda a: {(new if k == key else k): v for k, v in a.items()}


def put(key: str, value: Callable[[Any], Any]) -> Callable[[Arrays], Arrays]:
    return lambda a: {**a, key: value(a.get(key))}


def meta(change: Callable[[dict[str, Any]], None]) -> Callable[[Arrays], Arrays]:
    return lambda a: with_meta(a, change)


def set_in(*keys: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        for key in keys[:-1]:
            m = m[key]
        m[keys[-1]] = value

    return change


def delete_in(*keys: str) -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        for key in keys[:-1]:
            m = m[key]
        del m[keys[-1]]

    return change


def nan_at(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flat[0] = np.nan
    return a


#: (what is wrong, how to make it from a good checkpoint, a fragment of the message)
MUTATIONS: list[tuple[str, Callable[[Arrays], Arrays], str]] = [
    ("no meta", drop("meta"), "no meta entry"),
    ("meta not a string", put("meta", lambda m: np.array([1.0])), "no meta entry"),
    ("meta not JSON", put("meta", lambda m: np.array("{not json")), "not valid JSON"),
    ("meta a JSON list", put("meta", lambda m: np.array("[1, 2]")), "not an rnn-manual"),
    ("meta NaN literal", meta(set_in("hidden_size", value=float("nan"))), "NaN is not allowed"),
    ("meta nested deeply", put("meta", lambda m: np.array("[" * 60000)), "meta entry"),
    ("meta too long", put("meta", lambda m: np.array(" " * 70000)), "longer than"),
    ("another format", meta(set_in("format", value="keras")), "not an rnn-manual"),
    ("future version", meta(set_in("version", value=2)), "version 2, this program reads"),
    ("version a float", meta(set_in("version", value=1.0)), "version 1.0, this program reads"),
    ("version true", meta(set_in("version", value=True)), "version True, this program reads"),
    ("version missing", meta(delete_in("version")), "version None"),
    ("unknown meta key", meta(set_in("exec", value="rm -rf /")), "unknown meta keys"),
    ("unknown cell", meta(set_in("cell", value="transformer")), "unknown cell"),
    ("hidden size missing", meta(delete_in("hidden_size")), "hidden_size must be"),
    ("hidden size zero", meta(set_in("hidden_size", value=0)), "hidden_size must be"),
    ("hidden size a float", meta(set_in("hidden_size", value=4.0)), "hidden_size must be"),
    ("hidden size true", meta(set_in("hidden_size", value=True)), "hidden_size must be"),
    ("hidden size huge", meta(set_in("hidden_size", value=10**12)), "exceed the limits"),
    ("input size huge", meta(set_in("input_size", value=10**9)), "exceed the limits"),
    ("sizes disagree", meta(set_in("hidden_size", value=5)), "has shape"),
    ("bias a string", meta(set_in("bias", value="yes")), "bias must be"),
    ("unknown activation", meta(set_in("activation", value="softmax")), "activation must be"),
    ("dtype float16", meta(set_in("dtype", value="float16")), "dtype must be"),
    ("dtype missing", meta(delete_in("dtype")), "dtype must be"),
    ("parameter missing", drop("param/W_hh"), "do not match"),
    ("parameter renamed", rename("param/W_hh", "param/W_hx"), "do not match"),
    ("extra parameter", put("param/W_extra", lambda _: np.zeros(3)), "do not match"),
    ("unknown entry", put("payload", lambda _: np.zeros(3)), "unexpected entries"),
    ("shape transposed", put("param/W_xh", lambda w: w.T.copy()), "has shape"),
    ("extra axis", put("param/W_hh", lambda w: w[None]), "has shape"),
    ("dtype float32", put("param/W_hh", lambda w: w.astype(np.float32)), "has dtype"),
    ("dtype int", put("param/W_hh", lambda w: w.astype(np.int64)), "has dtype"),
    ("dtype complex", put("param/W_hh", lambda w: w.astype(np.complex128)), "has dtype"),
    ("big-endian", put("param/W_hh", lambda w: w.astype(">f8")), "has dtype"),
    ("NaN weight", put("param/W_hh", nan_at), "non-finite"),
    ("inf weight", put("param/b_h", lambda w: w + np.inf), "non-finite"),
    ("pickled weight", put("param/W_hh", lambda w: np.array([1.0], dtype=object)), "pickled"),
    ("history partial", drop("history/eval_step"), "must hold exactly"),
    ("history NaN loss", put("history/loss", nan_at), "non-finite losses"),
    ("history accuracy > 1", put("history/batch_accuracy", lambda a: a + 2), "outside [0, 1]"),
    ("history lengths", put("history/loss", lambda a: a[:-1]), "different lengths"),
    ("history 2-D", put("history/loss", lambda a: a[:, None]), "shapes or dtypes"),
    ("eval step late", put("history/eval_step", lambda _: np.array([99])), "different lengths"),
    ("checkpoint not a dict", meta(set_in("checkpoint", value=[1])), "exactly step, config"),
    ("step negative", meta(set_in("checkpoint", "step", value=-1)), "non-negative integer"),
    ("step disagrees", meta(set_in("checkpoint", "step", value=11)), "history of 11 steps"),
    ("config key missing", meta(delete_in("checkpoint", "config", "lr")), "must hold exactly"),
    ("config key extra", meta(set_in("checkpoint", "config", "x", value=1)), "must hold exactly"),
    ("config lr negative", meta(set_in("checkpoint", "config", "lr", value=-1)), "lr must be"),
    ("config lr a string", meta(set_in("checkpoint", "config", "lr", value="1")), "lr must be"),
    (
        "config optimizer",
        meta(set_in("checkpoint", "config", "optimizer", value="lbfgs")),
        "one of",
    ),
    ("config huge batch", meta(set_in("checkpoint", "config", "batch", value=10**9)), "limit"),
    ("config seed negative", meta(set_in("checkpoint", "config", "seed", value=-5)), "seed must"),
    ("config vs model", meta(set_in("checkpoint", "config", "hidden", value=5)), "describes"),
    (
        "config other optimizer",
        meta(set_in("checkpoint", "config", "optimizer", value="sgd")),
        "optimizer state",
    ),
    (
        "rng other generator",
        meta(set_in("checkpoint", "rng", "bit_generator", value="MT19937")),
        "PCG64",
    ),
    ("rng state negative", meta(set_in("checkpoint", "rng", "state", "state", value=-1)), "PCG64"),
    ("rng state huge", meta(set_in("checkpoint", "rng", "state", "inc", value=1 << 130)), "PCG64"),
    ("rng missing", meta(delete_in("checkpoint", "rng")), "exactly step, config"),
    ("optimizer state missing", drop("optim/m/W_hh"), "optimizer state"),
    ("optimizer state shape", put("optim/v/W_xh", lambda a: a.T.copy()), "optimizer state"),
    ("optimizer state NaN", put("optim/m/b_y", nan_at), "non-finite"),
    ("optimizer steps differ", put("optim/steps", lambda a: a + 1), "optimizer made 13 steps"),
    ("optimizer steps float", put("optim/steps", lambda a: a.astype(float)), "optimizer state"),
    ("optimizer state pickled", put("optim/steps", lambda a: np.array(None)), "pickled"),
]


@pytest.mark.parametrize(
    "mutate, fragment", [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS]
)
def test_a_mutated_checkpoint_is_refused(
    tmp_path: Path, good: Arrays, mutate: Callable[[Arrays], Arrays], fragment: str
) -> None:
    path = write(tmp_path / "bad.npz", mutate(good))
    with pytest.raises(ModelFileError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert fragment in message, message


def test_a_pickle_in_a_model_file_is_refused_unrun(tmp_path: Path, good: Arrays) -> None:
    proof = tmp_path / "pickle-ran"
    path = write(tmp_path / "evil.npz", {**good, "param/W_hh": np.array([RunsCode(proof)])})
    for load in (modelfile.load, load_checkpoint):
        with pytest.raises(ModelFileError, match="pickled"):
            load(path)
    assert not proof.exists()


def test_an_entry_declaring_a_huge_array_is_refused_before_allocating(
    tmp_path: Path, checkpoint: Path
) -> None:
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(checkpoint) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "param/W_hh.npy":
                data = huge_header_npy((10**6, 10**6))  # 8 TB if allocated
            dst.writestr(name, data)
    with pytest.raises(ModelFileError, match="declares"):
        modelfile.load(path)


def test_an_archive_that_unpacks_too_large_is_refused(
    tmp_path: Path, good: Arrays, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, **{**good, "history/loss": np.zeros(10**5)})
    monkeypatch.setattr(npz, "MAX_FILE_BYTES", path.stat().st_size * 4)
    with pytest.raises(ModelFileError, match="unpacks to more than"):
        modelfile.load(path)


def make_zip(path: Path, entries: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of duplicate names, which are wanted here
        for name, data in entries:
            z.writestr(name, data)
    return path


def file_with(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def npy_bytes(a: np.ndarray) -> bytes:
    f = io.BytesIO()
    np.save(f, a)
    return f.getvalue()


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda p: p / "missing.npz", "no such file"),
        (lambda p: p, "is a directory"),
        (lambda p: file_with(p / "empty.npz", b""), "not an .npz"),
        (lambda p: file_with(p / "t.npz", b"hello"), "not an .npz"),
        (lambda p: file_with(p / "a.npy", npy_bytes(np.zeros(3))), "not an .npz"),
        (lambda p: make_zip(p / "z.npz", [("README.txt", b"hi")]), "unexpected entry"),
        (lambda p: make_zip(p / "z.npz", [("meta.npy", b"\x93NUMPY\x09\x00")]), "npy version"),
        (lambda p: make_zip(p / "z.npz", [("a.npy", npy_bytes(np.zeros(2)))] * 2), "entries"),
        (lambda p: make_zip(p / "z.npz", [(f"{i}.npy", b"") for i in range(300)]), "entries"),
        (lambda p: make_zip(p / "z.npz", []), "not an .npz"),
        (lambda p: make_zip(p / "z.npz", [("a.npy", npy_bytes(np.zeros(2)))]), "no meta"),
    ],
    ids=[
        "missing",
        "directory",
        "empty",
        "text",
        "npy not npz",
        "foreign entry",
        "bad npy version",
        "duplicate entries",
        "too many entries",
        "empty zip",
        "no meta",
    ],
)
def test_what_is_not_a_model_file_is_refused(
    tmp_path: Path, make: Callable[[Path], Path], fragment: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(ModelFileError, match=fragment):
        modelfile.load(path)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    signal.alarm(30)  # should it block after all: fail the test rather than hang CI
    try:
        with pytest.raises(ModelFileError, match="not a regular file"):
            modelfile.load(fifo)
    finally:
        signal.alarm(0)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_truncated_file_is_refused(checkpoint: Path, tmp_path: Path, data: st.DataObject) -> None:
    raw = checkpoint.read_bytes()
    keep = data.draw(st.integers(0, len(raw) - 1), label="bytes kept")
    path = tmp_path / "cut.npz"
    path.write_bytes(raw[:keep])
    with pytest.raises(ModelFileError):
        load_checkpoint(path)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_bit_flip_is_refused_or_harmless(
    checkpoint: Path, tmp_path: Path, data: st.DataObject
) -> None:
    """A flipped bit is caught (zip CRC, checks) unless it lies where nothing is read, such
    as a timestamp: then the same run must come back."""
    raw = bytearray(checkpoint.read_bytes())
    at = data.draw(st.integers(0, len(raw) - 1), label="byte")
    raw[at] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(raw))
    try:
        state = load_checkpoint(path)
    except ModelFileError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e)
        return
    original = load_checkpoint(checkpoint)
    assert state.step == original.step and state.history == original.history
    assert state.config == original.config
    assert state.rng.bit_generator.state == original.rng.bit_generator.state
    for name, w in original.model.params.items():
        assert np.array_equal(state.model.params[name], w)


@given(text=st.text(max_size=300))
def test_any_meta_text_is_refused_cleanly(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    path = tmp_path_factory.mktemp("meta") / "m.npz"
    np.savez(path, meta=np.array(text), **{"param/W_xh": np.zeros((2, 4))})
    with pytest.raises(ModelFileError):
        modelfile.load(path)


NPY_HEADERS = [
    "(" * 300,  # NumPy's header parser raised tokenize.TokenError on this
    "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (2**62, 2**62), }",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (1.5,), }",
    "{'descr': '|V100000000000', 'fortran_order': False, 'shape': (), }",
    "{'descr': '<U1000000000', 'fortran_order': False, 'shape': (), }",
    "{'descr': [('a', 'O')], 'fortran_order': False, 'shape': (1,), }",
]


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.one_of(st.sampled_from(NPY_HEADERS), st.text(max_size=80)),
    body=st.binary(max_size=16),
)
def test_any_npy_header_is_refused_cleanly(tmp_path: Path, header: str, body: bytes) -> None:
    text = header.encode("latin1", "replace")
    raw = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + body
    path = make_zip(tmp_path / "h.npz", [("meta.npy", raw)])
    with pytest.raises(ModelFileError):
        modelfile.load(path)


# --- what a file can cost ------------------------------------------------------------------


def test_a_meta_entry_too_long_is_refused_from_its_header_unread(
    tmp_path: Path, good: Arrays, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "long.npz", {**good, "meta": np.array(" " * 200_000)})
    read = []
    real_read_array = npz.npy.read_array

    def spy(f: Any, **kwargs: Any) -> Any:
        a = real_read_array(f, **kwargs)
        read.append(a.dtype)
        return a

    monkeypatch.setattr(npz.npy, "read_array", spy)
    with pytest.raises(ModelFileError, match="meta entry is longer than 65536 characters"):
        modelfile.load(path)
    assert np.dtype("<U200000") not in read  # refused before its 800 KB were decoded


def test_files_from_before_long_sums_and_truncation_still_load(
    checkpoint: Path, tmp_path: Path
) -> None:
    """A history without eval_long_accuracy, and a checkpoint config without truncate and
    long_bits, as written before those existed: they load as the runs they were (long sums
    not measured; full BPTT, no long sums), and resume."""
    with np.load(checkpoint) as f:
        arrays = {k: f[k] for k in f.files if k != "history/eval_long_accuracy"}
    meta = json.loads(str(arrays["meta"]))
    for name in ("truncate", "long_bits"):
        del meta["checkpoint"]["config"][name]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "old.npz", **arrays)
    state = load_checkpoint(tmp_path / "old.npz")
    assert (state.config.truncate, state.config.long_bits) == (None, 0)
    evaluations = len(state.history.eval_step)
    assert np.isnan(state.history.eval_long_accuracy).all()
    assert len(state.history.eval_long_accuracy) == evaluations


def test_a_loaded_history_is_held_in_compact_arrays(checkpoint: Path) -> None:
    _, history = modelfile.load(checkpoint)
    assert history is not None
    for key in modelfile.HISTORY_KEYS:
        curve = getattr(history, key)
        assert isinstance(curve, array.array) and curve.itemsize == 8, key


def peak_mib(*argv: str) -> int:
    """Peak memory (resident set, MiB) of `python -m rnn_manual *argv` in a fresh process."""
    code = (
        "import resource, sys\n"
        "from rnn_manual.app.cli import main\n"
        "main(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    return int(result.stderr.splitlines()[-1])


@pytest.mark.parametrize("command", ["add", "plot"])
def test_a_long_history_costs_memory_in_proportion_to_its_size(
    tmp_path: Path, command: str
) -> None:
    """A small file (zeros compress) whose history holds 2 x 8M values, 128 MiB as float64:
    loading it once held them as Python floats, four times that, and plot drew every step
    (a 2 x 60M history took `plot` to 10.9 GB); it now draws at most plot.CURVE_POINTS."""
    from rnn_manual import RNN

    model = RNN(2, 4, 1)
    modelfile.save(tmp_path / "small.npz", model)
    with np.load(tmp_path / "small.npz") as f:
        arrays = {k: f[k] for k in f.files}
    steps = 8 * 2**20
    arrays["history/loss"] = arrays["history/batch_accuracy"] = np.zeros(steps)
    arrays["history/eval_step"] = np.zeros(0, dtype=np.int64)
    arrays["history/eval_accuracy"] = np.zeros(0)
    np.savez_compressed(tmp_path / "long.npz", **arrays)
    assert (tmp_path / "long.npz").stat().st_size < 2**20

    def args(name: str) -> list[str]:
        rest = ["3", "4"] if command == "add" else ["--out", str(tmp_path / name)]
        return [command, "--model", str(tmp_path / f"{name}.npz"), *rest]

    baseline = peak_mib(*args("small"))
    peak = peak_mib(*args("long"))
    history_mib = 2 * steps * 8 / 2**20
    assert peak - baseline < 2 * history_mib, (baseline, peak)


# --- the parameters a model computes with, however they were set --------------------------


def set_param(name: str, make: Any) -> RNN:
    """An RNN(4, 4, 1) (W_xh and W_hh of one shape) whose parameter `name` is
    make(model.params): what an API caller (or a file loaded and then edited) may set."""
    model = RNN(4, 4, 1)
    model.params[name] = make(model.params)
    return model


@pytest.mark.parametrize(
    "name, make, message",
    [
        (
            "W_hh",
            lambda p: p["W_hh"].astype(np.int64),
            "params['W_hh'] must be an array of float64, got int64",
        ),
        (
            "W_hh",
            lambda p: p["W_hh"].astype(complex),
            "params['W_hh'] must be an array of float64, got complex128",
        ),
        (
            "W_hh",
            lambda p: p["W_hh"].astype(np.float16),
            "params['W_hh'] must be an array of float64, got float16",
        ),
        (
            "W_hh",  # the model's dtype: float64
            lambda p: p["W_hh"].astype(np.float32),
            "params['W_hh'] must be an array of float64, got float32",
        ),
        ("W_hh", lambda p: np.full((4, 4), np.nan), "params['W_hh'] is not finite: it holds NaN"),
        ("W_hy", lambda p: np.full((4, 1), -np.inf), "params['W_hy'] is not finite: it holds NaN"),
        ("W_hh", lambda p: p["W_xh"], "params['W_xh'] and params['W_hh'] share their memory"),
        ("W_hh", lambda p: p["W_xh"][::-1], "params['W_xh'] and params['W_hh'] share their memory"),
    ],
    ids=["int", "complex", "float16", "two dtypes", "NaN", "inf", "one array", "a view"],
)
def test_parameters_of_another_dtype_not_finite_or_shared_are_refused_in_one_line(
    name: str, make: Any, message: str
) -> None:
    model = set_param(name, make)
    x, y = np.zeros((3, 2, 4)), np.zeros((3, 2, 1))
    for call in (lambda: model.forward(x), lambda: model.loss_and_grads(x, y)):
        with pytest.raises(ValueError) as refused:
            call()
        assert message in str(refused.value) and "\n" not in str(refused.value)
        assert not isinstance(refused.value, Overflow)  # a NaN weight is not "too large"


@pytest.mark.parametrize("optimizer", [SGD(0.1), SGD(0.1, momentum=0.9), Adam(0.1), Adagrad(0.1)])
def test_an_optimizer_refuses_one_array_given_as_two_parameters(optimizer: Any) -> None:
    """Stepped once for each name, the array would move twice as far as any other."""
    w = np.ones((2, 2))
    grads = {"a": np.ones((2, 2)), "b": np.ones((2, 2))}
    for params in ({"a": w, "b": w}, {"a": w, "b": w.T}):
        with pytest.raises(ValueError, match="share their memory"):
            optimizer.step(params, grads)
        assert (w == 1.0).all()  # refused before any change


def test_parameters_with_no_dtype_asked_must_share_one() -> None:
    """check_params without the model's dtype (an API caller's own params) wants one dtype."""
    shapes = {"a": (2,), "b": (2,)}
    with pytest.raises(ValueError, match="the parameters must all have one dtype"):
        check_params({"a": np.zeros(2), "b": np.zeros(2, np.float32)}, shapes)
    check_params({"a": np.zeros(2, np.float32), "b": np.zeros(2, np.float32)}, shapes)
