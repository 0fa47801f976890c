"""Checkpoints of an addition run (training/loop.py): a model file (modelfile.py) with a
meta "checkpoint" entry {"step", "config" (the TrainConfig; one without LATER_FIELDS,
written before they existed, gets their old behaviour), "rng" (the numpy Generator's
bit_generator.state)} and the optimizer's state in optim/<key> entries (optim/velocity/W_hh,
optim/m/W_xh, optim/steps, ...), beside the parameters and the training history.

Loading checks every part against the others and raises ModelFileError, one line.
"""

from __future__ import annotations

import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..cells import CELLS
from ..training.optim import Adagrad, Adam
from ..training.state import History, Model, TrainConfig, TrainState, make_optimizer
from .modelfile import ModelFileError, history_of, meta_for, read, write

#: TrainConfig fields added after checkpoints were first written, with the value that makes
#: an older checkpoint resume as the run that wrote it: full BPTT, no long sums.
LATER_FIELDS = {"truncate": None, "long_bits": 0}


def save_checkpoint(path: str | os.PathLike[str], state: TrainState) -> None:
    """Write everything needed to continue the run in `state` exactly, whole or not at all."""
    path = Path(path)
    meta = meta_for(state.model)
    meta["checkpoint"] = {
        "step": state.step,
        "config": asdict(state.config),
        "rng": state.rng.bit_generator.state,
    }
    optim = state.optimizer.state_arrays(state.model.params)
    write(path, meta, state.model, state.history, {f"optim/{k}": a for k, a in optim.items()})


def load_checkpoint(path: str | os.PathLike[str]) -> TrainState:
    """The training run saved in the checkpoint at `path`, ready to continue exactly."""
    path = Path(path)
    stored = read(path)
    if "checkpoint" not in stored.meta:
        raise ModelFileError(f"{path}: a model file without training state, cannot resume it")
    arrays = stored.arrays
    try:
        history = history_of(arrays)
        optim = {k.removeprefix("optim/"): a for k, a in arrays.items() if k.startswith("optim/")}
        return _training_state(stored.meta["checkpoint"], stored.model, history, optim)
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: {e}") from None


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
    if model.output != "sigmoid":  # the adder's one output bit
        raise ValueError(f"an addition checkpoint of a {model.output} output")
    if described != found:
        raise ValueError(f"its training config describes {described}, the model is {found}")
    step = checkpoint["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"checkpoint step must be a non-negative integer, got {step!r}")
    if history is None or len(history.loss) != step:
        raise ValueError(f"a checkpoint needs a training history of {step} steps")
    optimizer = make_optimizer(config)
    optimizer.load_state_arrays(optim, model.params)
    if isinstance(optimizer, (Adam, Adagrad)) and optimizer.steps != step:
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
