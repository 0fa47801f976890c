"""Checkpoints of a run on a text (training/language.py): a model file (modelfile.py) whose
meta holds the model's vocabulary and a "text" entry, with these entries beside the
parameters:

    meta "text"          {"step", "position", "config" (the TextConfig), "digest" (sha256 of
                         the text trained on: a run resumes on the same text only)}
    text/losses          (step,) float64 nats per character, per step
    text/state/<name>    the states the last chunk ended in, h0 (and c0), (B, H)
    optim/<key>          the optimizer's state, as in an addition checkpoint

Loading checks every part against the others and raises ModelFileError, one line.
"""

from __future__ import annotations

import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..core import backend
from ..training.language import TextConfig, TextState, make_text_optimizer
from ..training.optim import Adagrad, Adam
from .modelfile import ModelFileError, meta_for, read, write


def save_text_checkpoint(
    path: str | os.PathLike[str], state: TextState, vocabulary: str, digest: str
) -> None:
    """Write everything needed to continue the run in `state` exactly, whole or not at all."""
    path = Path(path)
    meta = meta_for(state.model, vocabulary)
    meta["text"] = {
        "step": state.step,
        "position": state.position,
        "config": asdict(state.config),
        "digest": digest,
    }
    more: dict[str, NDArray[Any]] = {"text/losses": np.array(state.losses, dtype=np.float64)}
    for name, s in zip(state.model.states, state.states, strict=True):
        more[f"text/state/{name}"] = backend.to_numpy(s).copy()
    for key, a in state.optimizer.state_arrays(state.model.params).items():
        more[f"optim/{key}"] = a
    write(path, meta, state.model, more=more)


def load_text_checkpoint(path: str | os.PathLike[str]) -> tuple[TextState, str, str]:
    """The run saved at `path`, ready to continue exactly, its vocabulary and the digest of
    the text it trains on."""
    path = Path(path)
    stored = read(path)
    if "text" not in stored.meta:
        raise ModelFileError(f"{path}: not a checkpoint of a text run, cannot resume it")
    try:
        return _text_state(stored.meta, stored.model, stored.arrays)
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: {e}") from None


def _text_state(
    meta: dict[str, Any], model: Any, arrays: dict[str, NDArray[Any]]
) -> tuple[TextState, str, str]:
    entry, vocabulary = meta["text"], meta.get("vocabulary")
    if not isinstance(entry, dict) or set(entry) != {"step", "position", "config", "digest"}:
        raise ValueError("its text entry must hold exactly step, position, config and digest")
    stored = entry["config"]
    names = {f.name for f in fields(TextConfig)}
    if not isinstance(stored, dict) or set(stored) != names:
        raise ValueError(f"its text config must hold exactly {sorted(names)}")
    config = TextConfig(**stored)
    if not isinstance(vocabulary, str):
        raise ValueError("a text checkpoint needs the model's vocabulary")
    V = len(vocabulary)
    described = (config.cell, V, config.hidden, V, config.dtype, True, "softmax")
    found = (
        model.name,
        model.input_size,
        model.hidden_size,
        model.output_size,
        model.dtype.name,
        model.bias,
        model.output,
    )
    if described != found or model.activation not in (None, "tanh"):
        raise ValueError(f"its text config describes {described}, the model is {found}")
    step, position, digest = entry["step"], entry["position"], entry["digest"]
    for name, value in (("step", step), ("position", position)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"checkpoint {name} must be a non-negative integer, got {value!r}")
    if not (isinstance(digest, str) and len(digest) == 64):
        raise ValueError("its text digest is not a sha256 digest")
    losses = arrays.get("text/losses")
    if losses is None or losses.shape != (step,) or losses.dtype != np.float64:
        raise ValueError(f"a text checkpoint needs text/losses of {step} float64 values")
    if not np.isfinite(losses).all():
        raise ValueError("its losses are not all finite")
    expected = {f"text/state/{name}" for name in model.states} | {"text/losses"}
    found_keys = {k for k in arrays if k.startswith("text/")}
    if found_keys != expected:
        raise ValueError(f"its text entries {sorted(found_keys)}, expected {sorted(expected)}")
    states = []
    for name in model.states:
        s = arrays[f"text/state/{name}"]
        if s.shape != (config.batch, config.hidden) or s.dtype != model.dtype:
            raise ValueError(f"its state {name} is {s.dtype} {s.shape}, not the run's")
        if not np.isfinite(s).all():
            raise ValueError(f"its state {name} holds non-finite values")
        states.append(np.array(s))
    optim = {k.removeprefix("optim/"): a for k, a in arrays.items() if k.startswith("optim/")}
    optimizer = make_text_optimizer(config)
    optimizer.load_state_arrays(optim, model.params)
    if isinstance(optimizer, (Adam, Adagrad)) and optimizer.steps != step:
        raise ValueError(f"optimizer made {optimizer.steps} steps, the checkpoint says {step}")
    state = TextState(config, model, optimizer, states, step, position)
    state.losses.frombytes(np.ascontiguousarray(losses).data.cast("B"))
    return state, vocabulary, digest
