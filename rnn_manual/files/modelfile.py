"""Model files and training checkpoints: what the entries of one .npz archive mean.

The archive itself is read and written by files/npz.py (no pickles, size limits, headers
checked before reading; written whole or not at all); this module is the schema on top.

Layout (every entry a plain array; nothing in a file is ever unpickled or executed):

    meta                 0-d string, JSON: {"format": "rnn-manual", "version": 1, "cell": "rnn"
                         | "lstm" | "gru", "input_size", "hidden_size", "output_size",
                         "activation" (rnn only), "bias", "dtype", "output" ("sigmoid" or
                         "softmax"; files written before it: sigmoid), and a text model's
                         "vocabulary" (its V characters in order)}, and in a checkpoint also
                         "checkpoint": {"step", "config" (the TrainConfig; one without
                         LATER_FIELDS, written before they existed, gets their old
                         behaviour), "rng" (the numpy Generator's bit_generator.state)}
    param/<name>         each parameter, e.g. param/W_xh (I, H), in the model's dtype
    history/loss         (steps,) float64 training loss per step           } all five
    history/batch_accuracy (steps,) float64 exact sums per step            } or none
    history/eval_step    (n,) int64 the steps of the full evaluations      } (files
    history/eval_accuracy (n,) float64 their accuracy                      } written
    history/eval_long_accuracy (n,) float64 on long sums, NaN: not run     } before it
                                                                           } lack this one)
    optim/<key>          checkpoint only: the optimizer's state, e.g. optim/velocity/W_hh,
                         optim/m/W_xh, optim/v/W_xh, optim/steps (0-d int64)

An addition run's checkpoint (files/checkpoint.py) is a model file with the meta
"checkpoint" entry and the optim/ entries; a text run's (files/textcheckpoint.py) has a meta
"text" entry and text/ entries instead of "checkpoint" and history/.

Loading checks everything (keys, shapes, dtypes, finiteness, version, sizes against the
limits) and raises ModelFileError, one line, for anything else. A history is loaded into
History's compact arrays (8 bytes a value), never into Python lists.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..cells import CELLS
from ..cells.outputs import OUTPUTS
from ..core import backend
from ..core.limits import MAX_HIDDEN, MAX_LAYER
from ..core.validate import DTYPE_NAMES, check_choice, check_size
from ..training.state import History, Model
from . import npz
from .atomic import WriteError

FORMAT = "rnn-manual"
VERSION = 1
#: The history/ entries: History's fields, each stored as a 1-D array of its own type.
HISTORY_KEYS = tuple(f.name for f in fields(History))
META_KEYS = {
    "format",
    "version",
    "cell",
    "input_size",
    "hidden_size",
    "output_size",
    "activation",
    "bias",
    "dtype",
    "output",
    "vocabulary",
    "checkpoint",
    "text",
}

MAX_META_CHARS = 1 << 16


class ModelFileError(ValueError):
    """A model file that cannot be read or is not a valid model."""


# --- writing -------------------------------------------------------------------------------


def save(
    path: str | os.PathLike[str],
    model: Model,
    history: History | None = None,
    vocabulary: str | None = None,
) -> None:
    """Write `model` (and its training history, or a text model's vocabulary) to `path`,
    whole or not at all."""
    path = Path(path)
    write(path, meta_for(model, vocabulary), model, history)


def write(
    path: Path,
    meta: dict[str, Any],
    model: Model,
    history: History | None = None,
    more: dict[str, NDArray[Any]] | None = None,
) -> None:
    """Write a model file of `meta` (as _meta makes it, and more), the model's parameters,
    the history and the `more` entries, whole or not at all."""
    _savez(path, {**_arrays(path, meta, model, history), **(more or {})})


def meta_for(model: Model, vocabulary: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "cell": model.name,
        "input_size": model.input_size,
        "hidden_size": model.hidden_size,
        "output_size": model.output_size,
        "bias": model.bias,
        "dtype": model.dtype.name,
        "output": model.output,
    }
    if vocabulary is not None:
        meta["vocabulary"] = vocabulary
    if model.activation is not None:  # the RNN's choice; the gated cells have none
        meta["activation"] = model.activation
    return meta


def _arrays(
    path: Path, meta: dict[str, Any], model: Model, history: History | None
) -> dict[str, NDArray[Any]]:
    """The entries of a model file; ModelFileError rather than write non-finite weights."""
    arrays: dict[str, NDArray[Any]] = {"meta": np.array(json.dumps(meta, allow_nan=False))}
    for name, param in model.params.items():
        w = backend.to_numpy(param)  # saved from any library; loaded as NumPy
        if not np.isfinite(w).all():
            raise ModelFileError(f"{path}: refusing to save, {name} holds non-finite values")
        arrays[f"param/{name}"] = w
    if history is not None:
        for key in HISTORY_KEYS:  # a copy: a NumPy view would pin the growing array's size
            arrays[f"history/{key}"] = np.array(getattr(history, key))
    return arrays


def _savez(path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    try:
        npz.savez(path, arrays)
    except WriteError as e:
        raise ModelFileError(str(e)) from None


# --- reading -------------------------------------------------------------------------------


def load(path: str | os.PathLike[str]) -> tuple[Model, History | None]:
    """The model in `path` (a model file or a checkpoint) and its training history."""
    path = Path(path)
    stored = read(path)
    try:
        return stored.model, history_of(stored.arrays)
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: {e}") from None


def load_text_model(path: str | os.PathLike[str]) -> tuple[Model, str]:
    """The text model in `path` (a model file or a text checkpoint) and its vocabulary."""
    path = Path(path)
    stored = read(path)
    vocabulary = stored.meta.get("vocabulary")
    if vocabulary is None:
        raise ModelFileError(f"{path}: not a text model (no vocabulary): train one with `text`")
    return stored.model, vocabulary


@dataclass
class Stored:
    """A model file's parts, each checked: its meta, its model, and the entries beyond the
    parameters (history/, optim/, text/), which the caller reads."""

    meta: dict[str, Any]
    model: Model
    arrays: dict[str, NDArray[Any]]


def read(path: Path) -> Stored:
    """The parts of the model file at `path`; ModelFileError naming what is wrong."""
    try:
        arrays = npz.read(path, "model file", _check_entry)
    except npz.NpzError as e:
        raise ModelFileError(str(e)) from None
    try:
        meta = _parse_meta(arrays)
        found = set(arrays)
        kinds = ("param/", "history/") if "text" not in meta else ("param/", "text/")
        allowed = {"meta"} | {k for k in found if k.startswith(kinds)}
        if "checkpoint" in meta or "text" in meta:
            allowed |= {k for k in found if k.startswith("optim/")}
        if found - allowed:
            raise ValueError(f"unexpected entries {sorted(found - allowed)}")
        if "checkpoint" in meta and "text" in meta:
            raise ValueError("a checkpoint of two runs (checkpoint and text)")
        model = _model(meta, arrays)
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: {e}") from None
    return Stored(meta, model, arrays)


def _check_entry(key: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Refuse a meta entry too long to decode from its header, before reading it."""
    if key == "meta" and dtype.kind == "U" and dtype.itemsize // 4 > MAX_META_CHARS:
        raise ValueError(f"its meta entry is longer than {MAX_META_CHARS} characters")


def _parse_meta(arrays: dict[str, NDArray[Any]]) -> dict[str, Any]:
    entry = arrays.get("meta")
    if entry is None or entry.shape != () or entry.dtype.kind != "U":
        raise ValueError("not a model file (no meta entry)")
    if len(str(entry)) > MAX_META_CHARS:
        raise ValueError(f"its meta entry is longer than {MAX_META_CHARS} characters")
    try:
        meta = json.loads(str(entry), parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("its meta entry is nested too deeply") from None
    except ValueError as e:
        raise ValueError(f"its meta entry is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"not an {FORMAT} model file")
    version = meta.get("version")
    if type(version) is not int or version != VERSION:  # not 1.0, not true
        raise ValueError(f"format version {version!r}, this program reads version {VERSION}")
    if set(meta) - META_KEYS:
        raise ValueError(f"unknown meta keys {sorted(set(meta) - META_KEYS)}")
    return meta


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _model(meta: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> Model:
    """The model that meta describes, holding the stored parameters once each is checked."""
    cell = meta.get("cell")
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}, this program reads {', '.join(CELLS)}")
    I = check_size("input_size", meta.get("input_size", 0))
    H = check_size("hidden_size", meta.get("hidden_size", 0))
    O = check_size("output_size", meta.get("output_size", 0))
    if H > MAX_HIDDEN or max(I, O) > MAX_LAYER:
        raise ValueError(
            f"sizes {I}, {H}, {O} exceed the limits (hidden {MAX_HIDDEN}, in/out {MAX_LAYER})"
        )
    bias, activation, dtype = meta.get("bias"), meta.get("activation"), meta.get("dtype")
    if not isinstance(bias, bool):
        raise ValueError(f"bias must be true or false, got {bias!r}")
    cls = CELLS[cell]
    if cls.activations:
        activation = check_choice("activation", activation, cls.activations)
    elif "activation" in meta:
        raise ValueError(f"an {cell} has no activation setting")
    dtype = check_choice("dtype", dtype, DTYPE_NAMES)
    output = check_choice("output", meta.get("output", "sigmoid"), OUTPUTS)
    vocabulary = meta.get("vocabulary")
    if vocabulary is not None and not (
        isinstance(vocabulary, str)
        and len(vocabulary) == I == O
        and list(vocabulary) == sorted(set(vocabulary))
        and output == "softmax"
    ):
        raise ValueError(
            "its vocabulary must be the model's input and output size of distinct characters, "
            "in order, for a softmax output"
        )
    # Check what is stored against the description before building anything of that size.
    _check_params(cls.param_shapes(I, H, O, bias), np.dtype(dtype), arrays)
    options = {"activation": activation} if cls.activations else {}
    model = cls(I, H, O, bias=bias, dtype=dtype, output=output, **options)
    for name, w in model.params.items():
        w[...] = arrays[f"param/{name}"]
    return model


def _check_params(
    shapes: dict[str, tuple[int, ...]], dtype: np.dtype, arrays: dict[str, NDArray[Any]]
) -> None:
    expected = {f"param/{name}" for name in shapes}
    found = {key for key in arrays if key.startswith("param/")}
    if found != expected:
        raise ValueError(f"parameters {sorted(found)} do not match the model's {sorted(expected)}")
    for name, shape in shapes.items():
        stored = arrays[f"param/{name}"]
        if stored.shape != shape:
            raise ValueError(f"{name} has shape {stored.shape}, expected {shape}")
        if stored.dtype != dtype:
            raise ValueError(f"{name} has dtype {stored.dtype}, expected {dtype}")
        if not np.isfinite(stored).all():
            raise ValueError(f"{name} holds non-finite values")


def history_of(arrays: dict[str, NDArray[Any]]) -> History | None:
    """The training history stored in `arrays`, checked; its entries are moved out of
    `arrays` into the history's compact arrays, so that a long history is held once."""
    present = [key for key in HISTORY_KEYS if f"history/{key}" in arrays]
    extra = {k for k in arrays if k.startswith("history/")} - {f"history/{k}" for k in present}
    if present == list(HISTORY_KEYS[:-1]) and not extra:  # written before long sums counted
        eval_step = arrays["history/eval_step"]
        arrays["history/eval_long_accuracy"] = np.full(eval_step.shape, np.nan)
        present = list(HISTORY_KEYS)
    if extra or (present and len(present) != len(HISTORY_KEYS)):
        raise ValueError(f"its training history must hold exactly {list(HISTORY_KEYS)}")
    if not present:
        return None
    loss, batch_accuracy, eval_step, eval_accuracy, long_accuracy = (
        arrays[f"history/{key}"] for key in HISTORY_KEYS
    )
    dtypes = (np.float64, np.float64, np.int64, np.float64, np.float64)
    curves = (loss, batch_accuracy, eval_step, eval_accuracy, long_accuracy)
    if any(c.ndim != 1 or c.dtype != d for c, d in zip(curves, dtypes, strict=True)):
        raise ValueError("its training history has the wrong shapes or dtypes")
    if len({len(loss), len(batch_accuracy)}) > 1 or len({len(c) for c in curves[2:]}) > 1:
        raise ValueError("its training history has curves of different lengths")
    if not np.isfinite(loss).all():
        raise ValueError("its training history holds non-finite losses")
    measured = long_accuracy[~np.isnan(long_accuracy)]  # NaN: not measured
    for curve in (batch_accuracy, eval_accuracy, measured):
        if not ((curve >= 0) & (curve <= 1)).all():  # NaN fails both
            raise ValueError("its training history holds accuracies outside [0, 1]")
    if len(eval_step) and not (
        (np.diff(eval_step) > 0).all() and 1 <= eval_step[0] and eval_step[-1] <= len(loss)
    ):
        raise ValueError("its training history has evaluation steps out of order or range")
    del loss, batch_accuracy, eval_step, eval_accuracy, long_accuracy, measured, curves
    history = History()
    for key in HISTORY_KEYS:
        stored = arrays.pop(f"history/{key}")
        getattr(history, key).frombytes(np.ascontiguousarray(stored).data.cast("B"))
        del stored  # freed now: one curve is held twice at most, never the whole history
    return history
