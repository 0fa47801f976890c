"""What a run of a learner's code gives back: an Answer for each probe, and the Run of them.

Whatever the file does (or the function, run in this process), the result is a `Run`: the
answers, one line for anything that stopped the file from running at all, and notes. An
Answer is made by answer() alone, from what child.call returns or from what the child wrote
in the job folder once it is validated (jobfolder.py): one shape for both ways of running.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]


@dataclass
class Answer:
    """The learner's answer to one probe."""

    status: str  # ok, error, todo (NotImplementedError), exit (sys.exit)
    message: str = ""  # one line, for any status but ok
    loss: float | None = None  # None: no usable loss
    grads: dict[str, Array] = field(default_factory=dict)  # the keys usable
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # kind, key, text
    group: str = ""  # answers whose failures share a group are alike: one line for them
    changed: list[str] = field(default_factory=list)  # "function: argument" changed in place


@dataclass
class Run:
    """Everything a learner's file did with the probes."""

    answers: list[Answer | None]  # by probe; None: never answered
    fatal: str | None = None  # one line: why the file could not be run at all
    errors: list[str] = field(default_factory=list)  # probes left unanswered, and why
    notes: list[str] = field(default_factory=list)  # things that did not stop it
    timed_out: bool = False


def answer(
    status: dict[str, Any], arrays: dict[str, Array], expected: Mapping[str, tuple[int, ...]]
) -> Answer:
    """An Answer from what child.call returns (or the child wrote, once validated), with
    only the gradients the parent can judge: float64 arrays of exactly the `expected` shapes.
    The child's checks run beside the learner's code, which can replace them, so every other
    array is dropped here, with a problem saying why, unless the child's checks said it."""
    loss = float(arrays["loss"].reshape(())) if "loss" in arrays else None
    problems = [(str(a), str(b), str(c)) for a, b, c in status.get("problems", [])]
    told = {(kind, key) for kind, key, _ in problems}
    grads: dict[str, Array] = {}
    for name, array in arrays.items():
        key = name.split(":", 1)[1] if name.startswith("grad:") else None
        if key is None or key not in expected:
            continue  # not judged; the child's checks note extra keys
        if not isinstance(array, np.ndarray) or array.dtype != np.float64:
            kind, text = "type", f"grads[{key!r}] did not come back as float64 numbers"
        elif array.shape != tuple(expected[key]):
            kind = "shape"
            text = f"grads[{key!r}] has shape {array.shape}, expected {tuple(expected[key])}"
        else:
            grads[key] = array
            continue
        if (kind, key) not in told:
            problems.append((kind, key, text))
    message = status.get("message", "")
    group = status.get("group", message)
    changed = [str(c) for c in status.get("changed", [])]
    return Answer(status["status"], message, loss, grads, problems, group, changed)
