"""Saving and loading models: one NumPy .npz file, no pickles, written atomically.

Layout of a model file (every entry a plain array, loaded with allow_pickle=False):

    meta           0-d string: JSON {"format": "rnn-manual", "version": 1, "cell": "rnn",
                   "input_size", "hidden_size", "output_size", "activation", "bias", "dtype"}
    param/<name>   each parameter, e.g. param/W_xh (I, H), in the model's dtype
    history/<name> optional training curves: history/loss, history/batch_accuracy (steps,)
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .rnn import RNN, check_dtype, check_size, param_shapes
from .train import History

FORMAT = "rnn-manual"
VERSION = 1
HISTORY_KEYS = ("loss", "batch_accuracy")


class ModelFileError(ValueError):
    """A model file that cannot be read or is not a valid model."""


def _meta(model: RNN) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "cell": "rnn",
        "input_size": model.input_size,
        "hidden_size": model.hidden_size,
        "output_size": model.output_size,
        "activation": model.activation,
        "bias": model.bias,
        "dtype": model.dtype.name,
    }


def save(path: str | os.PathLike[str], model: RNN, history: History | None = None) -> None:
    """Write `model` (and its training history) to `path`, whole or not at all."""
    arrays: dict[str, NDArray[Any]] = {"meta": np.array(json.dumps(_meta(model)))}
    for name, w in model.params.items():
        arrays[f"param/{name}"] = w
    if history is not None:
        for key in HISTORY_KEYS:
            arrays[f"history/{key}"] = np.asarray(getattr(history, key), dtype=np.float64)
    atomic_savez(Path(path), arrays)


def atomic_savez(path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    """np.savez into a temporary file beside `path`, flushed to disk, then renamed over it."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _read(path: Path) -> dict[str, NDArray[Any]]:
    """Every array in the .npz archive at `path`; nothing in it is unpickled."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic != b"PK\x03\x04":
            raise ModelFileError(f"{path}: not a valid model file (not an .npz archive)")
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a directory") from None
    except PermissionError:
        raise ModelFileError(f"{path}: permission denied") from None
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise ModelFileError(f"{path}: refused, it holds pickled objects") from None
        raise ModelFileError(f"{path}: not a valid model file ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise ModelFileError(f"{path}: not a valid model file ({e or type(e).__name__})") from None


def load(path: str | os.PathLike[str]) -> tuple[RNN, History | None]:
    """The model in `path` and its training history, or ModelFileError saying what is wrong."""
    path = Path(path)
    arrays = _read(path)
    if "meta" not in arrays or arrays["meta"].shape != () or arrays["meta"].dtype.kind != "U":
        raise ModelFileError(f"{path}: not a model file (no meta entry)")
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: its meta entry is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an {FORMAT} model file")
    if meta.get("version") != VERSION:
        raise ModelFileError(
            f"{path}: format version {meta.get('version')!r}, this program reads version {VERSION}"
        )
    if meta.get("cell") != "rnn":
        raise ModelFileError(f"{path}: unknown cell {meta.get('cell')!r}")
    try:
        I = check_size("input_size", meta["input_size"])
        H = check_size("hidden_size", meta["hidden_size"])
        O = check_size("output_size", meta["output_size"])
        if not isinstance(meta["bias"], bool):
            raise ValueError(f"bias must be true or false, got {meta['bias']!r}")
        dtype = check_dtype(meta["dtype"])
        shapes = param_shapes(I, H, O, meta["bias"])
    except (KeyError, ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: invalid model description ({e})") from None

    # Check what is stored against the description before allocating anything of that size.
    expected = {f"param/{name}" for name in shapes}
    found = {key for key in arrays if key.startswith("param/")}
    if found != expected:
        raise ModelFileError(
            f"{path}: parameters {sorted(found)} do not match the model's {sorted(expected)}"
        )
    for name, shape in shapes.items():
        stored = arrays[f"param/{name}"]
        if stored.shape != shape:
            raise ModelFileError(f"{path}: {name} has shape {stored.shape}, expected {shape}")
        if stored.dtype != dtype:
            raise ModelFileError(f"{path}: {name} has dtype {stored.dtype}, expected {dtype}")
        if not np.isfinite(stored).all():
            raise ModelFileError(f"{path}: {name} holds non-finite values")
    try:
        model = RNN(I, H, O, str(meta.get("activation")), meta["bias"], dtype)
    except ValueError as e:
        raise ModelFileError(f"{path}: invalid model description ({e})") from None
    for name, w in model.params.items():
        w[...] = arrays[f"param/{name}"]

    history = None
    if all(f"history/{key}" in arrays for key in HISTORY_KEYS):
        curves = [arrays[f"history/{key}"] for key in HISTORY_KEYS]
        if any(c.ndim != 1 or c.dtype != np.float64 for c in curves):
            raise ModelFileError(f"{path}: its training history is malformed")
        history = History(loss=curves[0].tolist(), batch_accuracy=curves[1].tolist())
    return model, history
