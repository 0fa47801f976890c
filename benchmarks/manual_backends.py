"""The hand-written BPTT run by other array libraries: torch on the CPU, torch on CUDA, CuPy.

The manual cells are written against the array API standard, so `model.to(torch)` runs the
very same loss_and_grads on torch tensors (`model.to(torch, "cuda")` on the GPU, and
`model.to(cupy)` with CuPy). Each variant here is such a pass on a copy of the grid point's
NumPy model, moved once, and fed x and y placed on its device once, so that a timed call does
no copying. The NumPy model itself is never moved.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

import numpy as np

from rnn_manual.cells import Cell
from rnn_manual.core import backend
from rnn_torch.graphs import CapturedPass

from . import torch_models

#: A manual pass: () -> (loss, gradients), the gradients in the pass's own array library.
ManualPass = Callable[[], tuple[float, dict[str, Any]]]
R = TypeVar("R")

MANUAL_CUPY = "manual CuPy"


def torch_name(device: str = "cpu") -> str:
    """The name of the manual-BPTT-on-torch variant: "manual torch CPU" or "manual torch (CUDA)"."""
    return "manual torch CPU" if device == "cpu" else "manual torch (CUDA)"


def cupy_or_none() -> ModuleType | None:
    """CuPy, if it is installed and sees a GPU; None otherwise."""
    try:
        cupy = importlib.import_module("cupy")
        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy
    except Exception:  # not installed, no driver, no GPU (CUDARuntimeError), a broken install
        pass
    return None


def manual_pass(
    model: Cell, x: np.ndarray, y: np.ndarray, library: str, device: str | None = None
) -> ManualPass:
    """loss_and_grads of a copy of `model` moved to `library` ("torch", "cupy") on `device`,
    on x and y placed there once."""
    moved = copy.deepcopy(model).to(library, device)
    placed = backend.move({"x": x, "y": y}, library, device)
    x_there, y_there = placed["x"], placed["y"]
    return lambda: moved.loss_and_grads(x_there, y_there, "mse")


def cupy_synchronized(one_pass: Callable[[], R], cupy: ModuleType) -> Callable[[], R]:
    """The pass followed by a wait for CuPy's current stream."""

    def waited() -> R:
        result = one_pass()
        cupy.cuda.get_current_stream().synchronize()
        return result

    return waited


def manual_passes(
    model: Cell, x: np.ndarray, y: np.ndarray, device: str = "cpu"
) -> dict[str, ManualPass]:
    """The manual pass on torch on `device` ("cpu" or "cuda"), and on CUDA also with CuPy when
    it is installed; the CUDA ones wait for the GPU before they return."""
    if device == "cpu":
        return {torch_name("cpu"): manual_pass(model, x, y, "torch", "cpu")}
    on_torch = manual_pass(model, x, y, "torch", device)
    passes = {torch_name(device): torch_models.synchronized(on_torch)}
    cupy = cupy_or_none()
    if cupy is not None:
        passes[MANUAL_CUPY] = cupy_synchronized(manual_pass(model, x, y, "cupy"), cupy)
    return passes


def graph_name(device: str = "cuda") -> str:
    """The name of the captured variant: "manual torch graph (CUDA)" (on a CPU, where there
    are no graphs and the same pass runs directly, "manual torch graph (CPU, none)")."""
    return "manual torch graph (CPU, none)" if device == "cpu" else "manual torch graph (CUDA)"


def captured_pass(model: Cell, x: np.ndarray, y: np.ndarray, device: str) -> ManualPass:
    """The manual pass on torch on `device`, captured as a CUDA graph (rnn_torch.graphs) on
    its first call and replayed on every later one; the loss comes back as a 0-d tensor.
    Capturing on the first call lets a refusal (the size cap, say) show where the other
    passes' do."""
    moved = copy.deepcopy(model).to("torch", device)
    placed = backend.move({"x": x, "y": y}, "torch", device)
    made: list[CapturedPass] = []

    def replay() -> tuple[Any, dict[str, Any]]:
        if not made:
            made.append(CapturedPass(moved, placed["x"], placed["y"], "mse"))
        return made[0]()

    return replay


def as_numpy(result: tuple[float, dict[str, Any]]) -> tuple[float, dict[str, np.ndarray]]:
    """A manual pass's (loss, gradients) with NumPy copies of the gradients, for checking."""
    loss, grads = result
    return float(loss), {name: backend.to_numpy(g) for name, g in grads.items()}
