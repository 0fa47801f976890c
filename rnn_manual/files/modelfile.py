"""Model files and training checkpoints: what the entries of one .npz archive mean.

The archive itself is read and written by files/npz.py (no pickles, size limits, headers
checked before reading; written whole or not at all); this module is the schema on top.

Layout (every entry a plain array; nothing in a file is ever unpickled or executed):

    meta                 0-d string, JSON: {"format": "rnn-manual", "version": 1, "cell": "rnn"
                         | "lstm" | "gru", "input_size", "hidden_size", "output_size",
                         "activation" (rnn only), "bias", "dtype"}, and in a checkpoint also
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

Loading checks everything (keys, shapes, dtypes, finiteness, version, sizes against the
limits) and raises ModelFileError, one line, for anything else. A history is loaded into
History's compact arrays (8 bytes a value), never into Python lists.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..cells import CELLS
from ..core import backend
from ..core.limits import MAX_HIDDEN, MAX_LAYER
from ..core.validate import DTYPE_NAMES, check_choice, check_size
from ..training.optim import Adam
from ..training.state import History, Model, TrainConfig, TrainState, make_optimizer
from . import npz
from .atomic import WriteError

FORMAT = "rnn-manual"
VERSION = 1
#: The history/ entries: History's fields, each stored as a 1-D array of its own type.
HISTORY_KEYS = tuple(f.name for f in fields(History))
#: TrainConfig fields added after checkpoints were first written, with the value that makes
#: an older checkpoint resume as the run that wrote it: full BPTT, no long sums.
LATER_FIELDS = {"truncate": None, "long_bits": 0}
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
    "checkpoint",
}

MAX_META_CHARS = 1 << 16


class ModelFileError(ValueError):
    """A model file that cannot be read or is not a valid model."""


# --- writing -------------------------------------------------------------------------------


def save(path: str | os.PathLike[str], model: Model, history: History | None = None) -> None:
    """Write `model` (and its training history) to `path`, whole or not at all."""
    path = Path(path)
    _savez(path, _arrays(path, _meta(model), model, history))


def save_checkpoint(path: str | os.PathLike[str], state: TrainState) -> None:
    """Write everything needed to continue the run in `state` exactly, whole or not at all."""
    path = Path(path)
    meta = _meta(state.model)
    meta["checkpoint"] = {
        "step": state.step,
        "config": asdict(state.config),
        "rng": state.rng.bit_generator.state,
    }
    arrays = _arrays(path, meta, state.model, state.history)
    for key, a in state.optimizer.state_arrays(state.model.params).items():
        arrays[f"optim/{key}"] = a
    _savez(path, arrays)


def _meta(model: Model) -> dict[str, Any]:
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "cell": model.name,
        "input_size": model.input_size,
        "hidden_size": model.hidden_size,
        "output_size": model.output_size,
        "bias": model.bias,
        "dtype": model.dtype.name,
    }
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
    model, history, _ = _load(Path(path))
    return model, history


def load_checkpoint(path: str | os.PathLike[str]) -> TrainState:
    """The training run saved in the checkpoint at `path`, ready to continue exactly."""
    path = Path(path)
    _, _, state = _load(path)
    if state is None:
        raise ModelFileError(f"{path}: a model file without training state, cannot resume it")
    return state


def _load(path: Path) -> tuple[Model, History | None, TrainState | None]:
    """Every part of the file at `path`, each checked; ModelFileError naming what is wrong."""
    try:
        arrays = npz.read(path, "model file", _check_entry)
    except npz.NpzError as e:
        raise ModelFileError(str(e)) from None
    try:
        meta = _parse_meta(arrays)
        found = set(arrays)
        allowed = {"meta"} | {k for k in found if k.startswith(("param/", "history/"))}
        if "checkpoint" in meta:
            allowed |= {k for k in found if k.startswith("optim/")}
        if found - allowed:
            raise ValueError(f"unexpected entries {sorted(found - allowed)}")
        model = _model(meta, arrays)
        history = _history(arrays)
        state = None
        if "checkpoint" in meta:
            optim = {
                k.removeprefix("optim/"): a for k, a in arrays.items() if k.startswith("optim/")
            }
            state = _training_state(meta["checkpoint"], model, history, optim)
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: {e}") from None
    return model, history, state


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
    # Check what is stored against the description before building anything of that size.
    _check_params(cls.param_shapes(I, H, O, bias), np.dtype(dtype), arrays)
    options = {"activation": activation} if cls.activations else {}
    model = cls(I, H, O, bias=bias, dtype=dtype, **options)
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


def _history(arrays: dict[str, NDArray[Any]]) -> History | None:
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


def _training_state(
    checkpoint: object, model: Model, history: History | None, optim: dict[str, NDArray[Any]]
) -> TrainState:
    """The run a checkpoint describes, every part checked against the others."""
    if not isinstance(checkpoint, dict) or set(checkpoint) != {"step", "config", "rng"}:
        raise ValueError("its checkpoint entry must hold exactly step, config and rng")
    stored = checkpoint["config"]
    names = {f.name for f in fields(TrainConfig)}
    if isinstance(stored, dict) and set(stored) == names - set(LATER_FIELDS):
        stored = {**stored, **LATER_FIELDS}  # a checkpoint from before these fields
    if not isinstance(stored, dict) or set(stored) != names:
        raise ValueError(f"its training config must hold exactly {sorted(names)}")
    config = TrainConfig(**stored)
    activation = config.activation if CELLS[config.cell].activations else None
    described = (config.cell, 2, config.hidden, 1, activation, config.bias, config.dtype)
    found = (
        model.name,
        model.input_size,
        model.hidden_size,
        model.output_size,
        model.activation,
        model.bias,
        model.dtype.name,
    )
    if described != found:
        raise ValueError(f"its training config describes {described}, the model is {found}")
    step = checkpoint["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"checkpoint step must be a non-negative integer, got {step!r}")
    if history is None or len(history.loss) != step:
        raise ValueError(f"a checkpoint needs a training history of {step} steps")
    optimizer = make_optimizer(config)
    optimizer.load_state_arrays(optim, model.params)
    if isinstance(optimizer, Adam) and optimizer.steps != step:
        raise ValueError(f"optimizer made {optimizer.steps} steps, the checkpoint says {step}")
    return TrainState(config, model, optimizer, _generator(checkpoint["rng"]), step, history)


def _generator(state: object) -> np.random.Generator:
    """A PCG64 Generator in `state`, as bit_generator.state gives it, after checking it."""

    def uint(value: object, bits: int) -> bool:
        return type(value) is int and 0 <= value < 1 << bits

    if not (
        isinstance(state, dict)
        and set(state) == {"bit_generator", "state", "has_uint32", "uinteger"}
        and state["bit_generator"] == "PCG64"
        and isinstance(state["state"], dict)
        and set(state["state"]) == {"state", "inc"}
        and all(uint(v, 128) for v in state["state"].values())
        and uint(state["has_uint32"], 1)
        and uint(state["uinteger"], 32)
    ):
        raise ValueError("its random generator state is not a valid PCG64 state")
    rng = np.random.Generator(np.random.PCG64(0))
    rng.bit_generator.state = state
    return rng
