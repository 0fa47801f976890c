"""diagnose(): the Python API of the diagnosis, for a file in any style or a function.

A file's style is read from what it defines (detect.py) unless `style` says it: native
files (loss_and_grads) go to diagnosis.diagnose, the course styles to courses.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .courses import diagnose_style
from .detect import StyleError, detect
from .diagnosis import DEFAULT_TIMEOUT
from .diagnosis import diagnose as diagnose_native
from .report import Report, StyleReport
from .styles import STYLES


def read_source(path: Path) -> str | None:
    """The file's text; None where there is no file (the native diagnosis says so);
    ValueError in one line where it is not UTF-8 text."""
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path.name} is not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None


def diagnose(
    fn: str | os.PathLike[str] | Callable[..., object],
    cell: str | None = None,
    *,
    style: str | None = None,
    activation: str | None = None,
    loss: str = "both",
    bias: bool | None = None,
    seed: int = 0,
    timeout: float = DEFAULT_TIMEOUT,
    hold_out: tuple[str, ...] = (),
) -> Report | StyleReport:
    """Judge, localize and name the bugs of a learner's backward pass.

    fn: a path to a Python file, or a loss_and_grads function (called in this process).
    style: "native", "cs231n", "dls" or "minchar"; None reads it from the file. cell,
    activation, loss and bias choose the probes of a native loss_and_grads (see
    diagnosis.diagnose; cell "rnn" unless given); a course style's functions fix them, and
    giving them for one is a ValueError. seed, timeout, hold_out: for every style (timeout
    per function judged). Raises ValueError for what makes no sense, in one line.
    """
    if style is not None and style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    if callable(fn):
        if style not in (None, "native"):
            raise ValueError("a function is judged as loss_and_grads (native); give a file")
    else:
        path = Path(fn)
        source = read_source(path)
        if source is not None:
            try:
                found = detect(source, path.name, style)
            except StyleError as error:
                raise ValueError(str(error)) from None
            if found.style != "native":
                given = [
                    option
                    for option, value in (
                        ("cell", cell),
                        ("activation", activation),
                        ("loss", None if loss == "both" else loss),
                        ("bias", bias),
                    )
                    if value is not None
                ]
                if given:
                    raise ValueError(
                        f"{', '.join(given)}: for loss_and_grads files; {path.name} is in the "
                        f"{found.style} style, whose functions fix them"
                    )
                return diagnose_style(path, found, seed, timeout, hold_out)
    options = {"activation": activation, "loss": loss, "bias": bias, "seed": seed}
    return diagnose_native(fn, cell or "rnn", timeout=timeout, hold_out=hold_out, **options)  # type: ignore[arg-type]
