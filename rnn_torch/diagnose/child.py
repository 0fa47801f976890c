"""Runs a learner's file on the diagnosis's probes, in a process of its own.

    python -I child.py JOB_DIR [READY_FD]

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

Before the learner's code runs, it caps its own memory, file sizes, CPU time and core dumps
where the platform allows (resource), soft and hard limit alike, so that neither the file nor
a process it starts can raise them again; as root it first gives up CAP_SYS_RESOURCE (which
would allow it) and, everywhere, the gaining of privileges through set-user-ID programs
(PR_SET_NO_NEW_PRIVS). None of this is a security boundary: the file runs as the user who
runs diagnose, with their files and environment; the point is that a mistake in it (a loop,
a crash, sys.exit, a huge print, a process left running) cannot take the diagnosis down with
it. The parent ends every process the file starts (processes.py) and reads what it wrote
here as untrusted input (jobfolder.py).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import signal
import sys
import time
import traceback
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

#: Address space and file size allowed to the child and every process it starts (hard
#: limits: none of them can raise them); its CPU seconds are the time limit's, plus two.
MEMORY_BYTES = 16 << 30
FILE_BYTES = 64 << 20
#: The capability that allows raising a hard limit (linux/capability.h).
CAP_SYS_RESOURCE = 24
#: Where the learner's module is registered while it loads.
MODULE_NAME = "learner_file"
FUNCTION = "loss_and_grads"


def text_of(value: object) -> str:
    """str(value), or what it is where its __str__ raises or returns no str (the learner's
    exceptions may define any __str__)."""
    try:
        text = str(value)
        if isinstance(text, str):
            return str.__str__(text)  # a str subclass could override its methods
    except BaseException as error:  # anything the learner's __str__ raises
        return f"<its message cannot be shown: str() raised {type(error).__name__}>"
    return f"<its message cannot be shown: str() returned {type(text).__name__}>"


def short(text: object, limit: int = 200) -> str:
    """One printable line, at most `limit` characters."""
    text = text_of(text)
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
    return f" ({short(os.path.basename(path))} line {line})" if line is not None else ""


def failure(error: BaseException, path: str) -> dict[str, str]:
    """A raised exception as a status: todo (NotImplementedError), exit or error; "group"
    is the exception's type and place, without its message (which may name shapes that
    change from probe to probe). Whatever the exception's own methods do (a __str__ that
    raises, a __bool__ that raises), the status names at least its type."""
    kind = short(type(error).__name__, 80)
    try:
        return describe(error, kind, path)
    except BaseException:  # the exception's own code raised
        return {"status": "error", "message": kind, "group": kind}


def describe(error: BaseException, kind: str, path: str) -> dict[str, str]:
    """failure's work, which a hostile exception may make raise."""
    message = short(error, 300)
    if isinstance(error, NotImplementedError):
        return {"status": "todo", "message": message}
    if isinstance(error, SystemExit):
        return {"status": "exit", "message": f"called sys.exit({short(error.code)})"}
    if isinstance(error, SyntaxError):
        name = error.filename if isinstance(error.filename, str) and error.filename else path
        # a SyntaxError raised by the file's own code may carry no line number
        line = f" line {error.lineno}" if isinstance(error.lineno, int) else ""
        place = f" ({short(os.path.basename(name))}{line})"
        return {"status": "error", "message": f"SyntaxError: {short(error.msg)}{place}"}
    place = where(error.__traceback__, path)
    text = f"{kind}: {message}" if message else kind
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
    interruptible: bool = False,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """One probe: function(*args, **kwargs), checked; a raised exception becomes a status.
    interruptible: a KeyboardInterrupt is not an answer but goes on up (in the caller's own
    process, where it is Ctrl-C)."""
    start = time.perf_counter()
    try:
        result = function(*args, **kwargs)
        status, arrays = check(result, expected)
    except BaseException as error:  # the learner's code may raise anything, even SystemExit
        if interruptible and isinstance(error, KeyboardInterrupt):
            raise
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
    """Cap memory, file size, CPU time and core dumps where `resource` exists (POSIX), the
    hard limits too; first give up what would allow raising them again (drop_privileges)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return
    drop_privileges()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too large write fails with OSError
    cpu = int(min(seconds, 1e6)) + 2
    for limit, value, hard_value in (
        (resource.RLIMIT_AS, MEMORY_BYTES, MEMORY_BYTES),
        (resource.RLIMIT_FSIZE, FILE_BYTES, FILE_BYTES),
        (resource.RLIMIT_CPU, cpu, cpu),  # SIGKILL there (the wall clock's limit comes first)
        (resource.RLIMIT_CORE, 0, 0),
    ):
        try:
            hard = resource.getrlimit(limit)[1]
            if hard != resource.RLIM_INFINITY:
                value, hard_value = min(value, hard), min(hard_value, hard)
            resource.setrlimit(limit, (value, hard_value))
        except (ValueError, OSError, OverflowError):  # not allowed here: go without
            pass


def drop_privileges() -> None:
    """On Linux: no more privileges through set-user-ID programs (PR_SET_NO_NEW_PRIVS), and
    where this process may raise hard limits (root's CAP_SYS_RESOURCE), that capability
    dropped from every set (bounding, effective, permitted, inheritable, ambient), for this
    process and all it starts. Best effort: elsewhere, or where refused, nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
        prctl.argtypes = [ctypes.c_int, *[ctypes.c_ulong] * 4]
        prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
        prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL
        prctl(24, CAP_SYS_RESOURCE, 0, 0, 0)  # PR_CAPBSET_DROP (needs CAP_SETPCAP)

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [(n, ctypes.c_uint32) for n in ("effective", "permitted", "inheritable")]

        header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
        if libc.capget(ctypes.byref(header), data) != 0:
            return
        bit = 1 << CAP_SYS_RESOURCE
        if (data[0].effective | data[0].permitted | data[0].inheritable) & bit:
            for field in ("effective", "permitted", "inheritable"):
                setattr(data[0], field, getattr(data[0], field) & ~bit)
            libc.capset(ctypes.byref(header), data)
    except (OSError, AttributeError, ValueError):  # pragma: no cover - no libc, no prctl
        pass


def main(job_dir: str, ready: int | None = None) -> None:
    """Answer the job's probes. ready: a pipe's end to write one byte to, and close, when the
    learner's file is about to load (the parent's time limit counts from then)."""
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
    if ready is not None:
        try:
            os.write(ready, b".")
            os.close(ready)
        except OSError:
            pass
    if hasattr(signal, "setitimer"):  # SIGALRM ends this process at the time limit: the
        signal.setitimer(signal.ITIMER_REAL, job["seconds"])  # parent's watch is the backstop
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
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # without waiting for threads or exit handlers the learner's file left
