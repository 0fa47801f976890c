"""The array libraries the manual models are tested on.

NumPy and PyTorch on the CPU always; PyTorch on CUDA and CuPy only where a GPU is present
(skipped elsewhere, and marked `gpu`, so that `pytest -m gpu` runs just them). A test takes
one with `@pytest.mark.parametrize("backend", BACKENDS)` and runs its model through
`on_backend`, which leaves the NumPy model it was given untouched for the judges.
"""

from __future__ import annotations

import copy
from typing import TypeVar

import pytest
import torch

Model = TypeVar("Model")


def _cupy_with_gpu() -> str | None:
    """None if CuPy is installed and sees a GPU, else why not (the skip reason)."""
    try:
        import cupy  # type: ignore[import-not-found]

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return None
        return "CuPy sees no GPU"
    except Exception as error:  # not installed, no driver, no device: all mean "not here"
        return f"no CuPy with a GPU here ({type(error).__name__}: {str(error)[:120]})"


NO_CUDA = not torch.cuda.is_available()
CUPY_MISSING = _cupy_with_gpu()
GPU = [pytest.mark.gpu]

#: (library, device) pairs, as model.to takes them.
BACKENDS = [
    pytest.param(("numpy", None), id="numpy"),
    pytest.param(("torch", "cpu"), id="torch-cpu"),
    pytest.param(
        ("torch", "cuda"),
        id="torch-cuda",
        marks=[*GPU, pytest.mark.skipif(NO_CUDA, reason="no CUDA GPU here")],
    ),
    pytest.param(
        ("cupy", None),
        id="cupy",
        marks=[*GPU, pytest.mark.skipif(CUPY_MISSING is not None, reason=str(CUPY_MISSING))],
    ),
]


def on_backend(model: Model, backend: tuple[str, str | None]) -> Model:
    """A copy of `model` whose parameters live in `backend`'s library and device."""
    library, device = backend
    return copy.deepcopy(model).to(library, device)  # type: ignore[attr-defined,no-any-return]
