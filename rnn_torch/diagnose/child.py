"""Runs a learner's file on the diagnosis's probes, in a process of its own.

    python -I child.py JOB_DIR

JOB_DIR holds job.json (the file, sys.path, and for each probe the names of its arrays,
its keyword arguments and the gradient shapes expected) and probes.bin (every probe's
arrays, one np.save after the other, in that order). For each probe, in order, the child
calls the file's loss_and_grads, checks what comes back (a pair, one number, a dict with
the expected keys and shapes), appends the arrays it keeps to JOB_DIR/out/answers.bin and
then a line naming them to JOB_DIR/out/status.jsonl, so that the parent keeps every answer
given before a time-out. No file is ever unpickled.

For a course style (job.json's "style" and "unit"), the function called is the learner's
functions wrapped into the same protocol by styles.py, on the file's definitions only.

This module imports only the standard library and NumPy (no torch: it starts in a tenth of
a second), and of its package only styles.py, by path (itself NumPy-only), so that it runs
as a script; the parent also imports it, to judge a function given in-process with the
same checks (`call`).

It limits its own memory, file sizes and CPU time where the platform allows (resource).
None of this is a security boundary: a learner's file is the learner's own code, and the
point is that a mistake in it (a loop, a crash, sys.exit, a huge print) cannot take the
diagnosis down with it.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import sys
import time
import traceback
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

#: Address space, file size and CPU seconds allowed to the child.
MEMORY_BYTES = 16 << 30
FILE_BYTES = 64 << 20
#: Where the learner's module is registered while it loads.
MODULE_NAME = "learner_file"
FUNCTION = "loss_and_grads"


def short(text: object, limit: int = 200) -> str:
    """One printable line, at most `limit` characters."""
    text = str(text)
    text = text if len(text) <= limit else text[:limit] + "..."
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def kind_of(value: object) -> str:
    """'None', 'a float', 'a list of 3', ... for messages about what came back."""
    if value is None:
        return "None"
    name = type(value).__name__
    if isinstance(value, (tuple, list, dict)):
        return f"a {name} of {len(value)}"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def where(tb: TracebackType | None, path: str) -> str:
    """' (rnn.py line 42)': the deepest frame of the learner's file in a traceback."""
    line = None
    for frame, lineno in traceback.walk_tb(tb):
        if os.path.realpath(frame.f_code.co_filename) == path:
            line = lineno
    return f" ({os.path.basename(path)} line {line})" if line is not None else ""


def failure(error: BaseException, path: str) -> dict[str, str]:
    """A raised exception as a status: todo (NotImplementedError), exit or error; "group"
    is the exception's type and place, without its message (which may name shapes that
    change from probe to probe)."""
    if isinstance(error, NotImplementedError):
        return {"status": "todo", "message": short(error or "NotImplementedError", 300)}
    if isinstance(error, SystemExit):
        return {"status": "exit", "message": f"called sys.exit({short(error.code)!s})"}
    if isinstance(error, SyntaxError):
        place = f" ({os.path.basename(error.filename or path)} line {error.lineno})"
        return {"status": "error", "message": f"SyntaxError: {short(error.msg)}{place}"}
    kind, place = type(error).__name__, where(error.__traceback__, path)
    text = f"{kind}: {short(error)}" if str(error) else kind
    return {"status": "error", "message": text + place, "group": kind + place}


def check(
    result: object, expected: Mapping[str, tuple[int, ...]]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """What loss_and_grads returned, checked: (status, arrays to keep), the arrays being
    'loss' and 'grad:<key>' in float64. Problems with single keys are listed in the status
    as [kind, key, text], kind one of missing, shape, type, dtype, extra."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return {"status": "error", "message": f"returned {kind_of(result)}, not (loss, grads)"}, {}
    loss, grads = result
    problems: list[list[str]] = []
    arrays: dict[str, np.ndarray] = {}
    try:
        value = np.asarray(loss)
        if value.size != 1 or value.dtype.kind not in "fiu":
            problems.append(["type", "loss", f"the loss is {kind_of(loss)}, not one number"])
        else:
            arrays["loss"] = value.astype(np.float64).reshape(())
    except Exception as error:
        problems.append(["type", "loss", f"the loss is {kind_of(loss)}: {short(error)}"])
    if not isinstance(grads, Mapping):
        message = f"returned grads as {kind_of(grads)}, not a dict keyed like params"
        return {"status": "error", "message": message, "problems": problems}, arrays
    for key, shape in expected.items():
        if key not in grads:
            problems.append(["missing", key, f"grads has no {key!r}"])
            continue
        try:
            array = np.asarray(grads[key])
        except Exception as error:
            problems.append(["type", key, f"grads[{key!r}] is not an array: {short(error)}"])
            continue
        if array.dtype.kind not in "fiu":
            problems.append(["type", key, f"grads[{key!r}] holds {array.dtype}, not numbers"])
        elif array.shape != tuple(shape):
            text = f"grads[{key!r}] has shape {array.shape}, expected {tuple(shape)}"
            problems.append(["shape", key, text])
        else:
            if array.dtype != np.float64:
                text = f"grads[{key!r}] is {array.dtype}; float64 is needed to judge it"
                problems.append(["dtype", key, text])
            arrays[f"grad:{key}"] = array.astype(np.float64)
    extra = [short(k, 30) for k in grads if k not in expected]
    if extra:
        problems.append(["extra", "", f"grads has keys params does not: {', '.join(extra[:8])}"])
    return {"status": "ok", "problems": problems}, arrays


def call(
    function: Callable[..., object],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    expected: Mapping[str, tuple[int, ...]],
    path: str,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """One probe: function(*args, **kwargs), checked; a raised exception becomes a status."""
    start = time.perf_counter()
    try:
        result = function(*args, **kwargs)
        status, arrays = check(result, expected)
    except BaseException as error:  # the learner's code may raise anything, even SystemExit
        status, arrays = failure(error, path), {}
    status["seconds"] = time.perf_counter() - start
    return status, arrays


def load_styles() -> types.ModuleType:
    """styles.py, beside this file, by its path (this runs as a script, outside its package)."""
    name = "rnn_diagnose_styles"
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("styles.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look a module up by name
    spec.loader.exec_module(module)
    return module


def load_module(path: str, styles: types.ModuleType, definitions_only: bool) -> types.ModuleType:
    """The learner's file as a module; raises what loading it raises. definitions_only: its
    imports and definitions alone (styles.definitions), for the course styles.

    The file is compiled from its text each time, never from (or into) a __pycache__: a
    cached .pyc is trusted when the source's size and modification second are unchanged,
    so an edit of the same length within a second would otherwise run the old code."""
    with open(path, "rb") as file:
        source = file.read()
    module = types.ModuleType(MODULE_NAME)
    module.__file__ = path
    sys.modules[MODULE_NAME] = module  # dataclasses and pickle look a module up by name
    code: Any = source
    if definitions_only:
        code = styles.definitions(ast.parse(source, path))
    beside = os.path.join(os.path.dirname(path), "rnn_utils.py")
    if "rnn_utils" not in sys.modules and not os.path.exists(beside):
        sys.modules["rnn_utils"] = styles.rnn_utils()  # the Coursera notebook's helpers
    exec(compile(code, path, "exec"), module.__dict__)
    return module


def load(path: str, styles: types.ModuleType) -> Callable[..., object]:
    """The learner's loss_and_grads; raises what loading the file raises, or TypeError."""
    module = load_module(path, styles, definitions_only=False)
    function = getattr(module, FUNCTION, None)
    if function is None:
        raise TypeError(
            f"the file defines no function {FUNCTION}, nor a course's functions (CS231n's "
            "rnn_forward ..., the Coursera notebook's rnn_cell_forward ..., min-char-rnn's "
            "lossFun): see --style"
        )
    if not callable(function):
        raise TypeError(f"{FUNCTION} is {kind_of(function)}, not a function")
    return function


def limit_resources(seconds: float) -> None:
    """Cap memory, file size and CPU time where `resource` exists (POSIX)."""
    try:
        import resource
        import signal
    except ImportError:  # pragma: no cover - Windows
        return
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too large write fails with OSError
    cpu = int(seconds) + 2
    for limit, value in (
        (resource.RLIMIT_AS, MEMORY_BYTES),
        (resource.RLIMIT_FSIZE, FILE_BYTES),
        (resource.RLIMIT_CPU, cpu),
    ):
        try:
            hard = resource.getrlimit(limit)[1]
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(limit, (value, hard))
        except (ValueError, OSError):  # not allowed here: go without
            pass


def main(job_dir: str) -> None:
    folder = Path(job_dir)
    job = json.loads((folder / "job.json").read_text())
    out = folder / "out"
    limit_resources(job["seconds"])
    sys.dont_write_bytecode = True  # nor for the modules the learner's file imports
    path = os.path.realpath(job["file"])
    sys.path[:0] = [os.path.dirname(path), *job["sys_path"]]
    log = open(out / "status.jsonl", "w")  # held for the whole run

    def write(status: dict[str, Any]) -> None:
        log.write(json.dumps(status) + "\n")
        log.flush()

    sys.argv = [path]
    styles = load_styles()
    try:
        if job["style"] == "native":
            function = styles.native(load(path, styles))
        else:
            unit = styles.unit(job["style"], job["unit"])
            function = unit.adapted(load_module(path, styles, definitions_only=True))
    except BaseException as error:
        write({"stage": "load", **failure(error, path)})
        return
    write({"stage": "load", "status": "ok"})
    with open(folder / "probes.bin", "rb") as data, open(out / "answers.bin", "wb") as answers:
        for probe in job["probes"]:
            given = {name: np.load(data, allow_pickle=False) for name in probe["arrays"]}
            params = {name: given[f"params/{name}"] for name in probe["params"]}
            kwargs: dict[str, Any] = dict(probe["kwargs"])
            for state in ("h0", "c0"):
                if state in kwargs:
                    kwargs[state] = given.get(state)  # None: zeros
            args = (params, given["x"], given["y"])
            status, arrays = call(function, args, kwargs, probe["expected"], path)
            status["changed"] = sorted(set(function.changed))
            function.changed.clear()
            for array in arrays.values():
                np.save(answers, array, allow_pickle=False)
            answers.flush()  # before the status line that announces them
            write({**status, "arrays": list(arrays)})


if __name__ == "__main__":
    main(sys.argv[1])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # without waiting for threads or exit handlers the learner's file left
