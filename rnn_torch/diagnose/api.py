"""diagnose(): the Python API of the diagnosis, for a file in any style or a function.

A file's style is read from what it defines (detect.py) unless `style` says it: native
files (loss_and_grads) go to diagnosis.diagnose, the course styles to courses.py.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from .courses import diagnose_style
from .detect import StyleError, detect
from .diagnosis import DEFAULT_TIMEOUT
from .diagnosis import diagnose as diagnose_native
from .report import Report, StyleReport
from .sandbox import check_timeout
from .styles import STYLES

#: The largest learner's file read (a course file is some kilobytes).
MAX_SOURCE_BYTES = 16 << 20


def read_source(path: Path) -> str | None:
    """The file's text; None where there is no regular file (a folder, a FIFO: the native
    diagnosis says what it is), found without blocking; ValueError in one line where it is
    not UTF-8 text or larger than MAX_SOURCE_BYTES."""
    try:  # what it is, first without opening it (a device may act on an open)
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # replaced meanwhile
        os.close(fd)
        return None
    with os.fdopen(fd, "rb") as file:
        if info.st_size > MAX_SOURCE_BYTES:
            raise ValueError(
                f"{path.name} holds {info.st_size / 1e6:.1f} MB; a learner's file of more than "
                f"{MAX_SOURCE_BYTES >> 20} MB is not read"
            )
        try:
            data = file.read(MAX_SOURCE_BYTES + 1)
        except OSError as error:
            raise ValueError(f"cannot read {path}: {error.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path.name} is not UTF-8 text (byte {error.start})") from None


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
    per function judged, in seconds, from sandbox.MIN_TIMEOUT to sandbox.MAX_TIMEOUT).
    Raises ValueError for what makes no sense, in one line. Ctrl-C (KeyboardInterrupt) goes
    on up, a file's processes ended and its job folder removed first.
    """
    timeout = check_timeout(timeout)
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
