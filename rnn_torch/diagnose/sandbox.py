"""Running a learner's loss_and_grads on the probes: a file in a child process with a time
limit, or a function in this process.

All probes go to one child (rnn_torch/diagnose/child.py, run by this Python with -I), which
answers them in order, writing each answer to a job folder as it goes; this side waits at
most `seconds`, then kills the child's whole process group and keeps the answers given.
The child's working directory is a scratch folder (files the learner's code writes there
are listed, then deleted), its output is read into a bounded buffer (only the first bytes
are kept, the rest counted), and its stdin is empty. Whatever the file does, the result is
a `Run`: the answers, one line for anything that stopped the file from running at all, and
notes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from . import child, styles
from .probes import Probe
from .styles import Unit

Array = NDArray[np.floating]

CHILD = Path(child.__file__).resolve()
#: Output of the learner's file kept to quote (the rest is only counted).
KEEP_BYTES = 4096
#: How long to wait for the pipes to close after the child has ended.
DRAIN_SECONDS = 2.0


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


def answer(status: dict[str, Any], arrays: dict[str, Array]) -> Answer:
    """An Answer from what child.call returns (or the child wrote)."""
    loss = float(arrays["loss"]) if "loss" in arrays else None
    grads = {k.split(":", 1)[1]: v for k, v in arrays.items() if k.startswith("grad:")}
    problems = [(str(a), str(b), str(c)) for a, b, c in status.get("problems", [])]
    message = status.get("message", "")
    group = status.get("group", message)
    changed = [str(c) for c in status.get("changed", [])]
    return Answer(status["status"], message, loss, grads, problems, group, changed)


def run_function(function: Callable[..., object], probes: list[Probe]) -> Run:
    """`function` on every probe, in this process: no time limit and no sandbox (it is the
    caller's own code), but every exception it raises is one answer's message."""
    path = getattr(getattr(function, "__code__", None), "co_filename", "")
    watched = styles.native(function)
    answers: list[Answer | None] = []
    for probe in probes:
        args = (copy(probe.params), probe.x.copy(), probe.y.copy())
        kwargs = {
            k: v.copy() if isinstance(v, np.ndarray) else v for k, v in probe.keywords().items()
        }
        status, arrays = child.call(watched, args, kwargs, probe.expected(), path)
        status["changed"] = sorted(set(watched.changed))
        watched.changed.clear()
        answers.append(answer(status, arrays))
    return Run(answers)


def copy(params: dict[str, Array]) -> dict[str, Array]:
    return {name: w.copy() for name, w in params.items()}


class Drain(threading.Thread):
    """Reads a pipe to its end, keeping the first KEEP_BYTES and counting the rest."""

    def __init__(self, pipe: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self.pipe, self.head, self.total = pipe, b"", 0

    def run(self) -> None:
        try:
            while chunk := self.pipe.read1(1 << 16):  # type: ignore[attr-defined]
                if len(self.head) < KEEP_BYTES:
                    self.head += chunk[: KEEP_BYTES - len(self.head)]
                self.total += len(chunk)
        except (OSError, ValueError):
            pass


def write_job(
    folder: Path, path: Path, probes: list[Probe], seconds: float, unit: Unit | None
) -> None:
    """job.json and probes.bin for the child (see child.py): the file's loss_and_grads on
    the probes, or the functions of a course style's unit (styles.py)."""
    entries = []
    with open(folder / "probes.bin", "wb") as data:
        for probe in probes:
            arrays = {f"params/{name}": w for name, w in probe.params.items()}
            arrays.update(x=probe.x, y=probe.y)
            kwargs: dict[str, Any] = {}
            for name, value in probe.keywords().items():
                if isinstance(value, np.ndarray):
                    arrays[name] = value  # travels in probes.bin; kwargs[name] stays None
                    value = None
                kwargs[name] = value
            for array in arrays.values():
                np.save(data, array, allow_pickle=False)
            expected = {k: list(v) for k, v in probe.expected().items()}
            entries.append(
                {
                    "arrays": list(arrays),
                    "params": list(probe.params),
                    "kwargs": kwargs,
                    "expected": expected,
                }
            )
    sys_path = [p for p in sys.path if p and Path(p).is_dir()]
    job = {"file": str(path), "sys_path": sys_path, "seconds": seconds, "probes": entries}
    job["style"], job["unit"] = ("native", None) if unit is None else (unit.style, unit.name)
    (folder / "job.json").write_text(json.dumps(job))


def read_answers(out: Path, count: int) -> tuple[dict[str, Any] | None, list[Answer | None]]:
    """The child's load status and the answers it wrote (None where there is none); the
    answers end at the first line or array cut short by a kill."""
    loaded: dict[str, Any] | None = None
    answers: list[Answer | None] = [None] * count
    try:
        lines = (out / "status.jsonl").read_text().splitlines()
    except OSError:
        return None, answers
    results = out / "answers.bin"
    with open(results, "rb") if results.exists() else open(os.devnull, "rb") as stream:
        i = 0
        for line in lines:
            try:
                status = json.loads(line)
                if status.get("stage") == "load":
                    loaded = status
                    continue
                arrays = {name: np.load(stream, allow_pickle=False) for name in status["arrays"]}
            except (ValueError, KeyError, TypeError, OSError, EOFError):
                break
            if i < count:
                answers[i] = answer(status, arrays)
            i += 1
    return loaded, answers


def kill(process: subprocess.Popen[bytes]) -> None:
    """The child and everything it started (its own process group)."""
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def ending(status: int) -> str:
    """'status 5', or the signal that ended the process: 'SIGXCPU, its CPU time ran out'."""
    if status >= 0:
        return f"status {status}"
    try:
        name = signal.Signals(-status).name
    except ValueError:
        return f"signal {-status}"
    return f"{name}, its CPU time ran out" if name == "SIGXCPU" else name


def size(count: int) -> str:
    """Bytes in words: '812 bytes', '3.1 MB'."""
    return f"{count} bytes" if count < 100_000 else f"{count / 1e6:.1f} MB"


def run_file(
    path: Path,
    probes: list[Probe],
    seconds: float,
    meanwhile: Callable[[], object] | None = None,
    unit: Unit | None = None,
) -> Run:
    """The learner's file on every probe in one child process, for at most `seconds`;
    `meanwhile` is called while the child runs (other work, done in parallel)."""
    name = path.name
    if not path.is_file():
        return Run([None] * len(probes), fatal=f"no such file: {path}")
    with tempfile.TemporaryDirectory(prefix="rnn-diagnose-", ignore_cleanup_errors=True) as tmp:
        folder = Path(tmp)
        (folder / "out").mkdir()
        work = folder / "work"
        work.mkdir()
        write_job(folder, path.resolve(), probes, seconds, unit)
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        env["MKL_NUM_THREADS"] = "1"
        process = subprocess.Popen(
            [sys.executable, "-I", str(CHILD), str(folder)],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert process.stdout is not None and process.stderr is not None
        drains = [Drain(process.stdout), Drain(process.stderr)]
        for drain in drains:
            drain.start()
        start = time.monotonic()
        if meanwhile is not None:
            meanwhile()
        timed_out = False
        try:
            process.wait(timeout=max(0.0, seconds - (time.monotonic() - start)))
        except subprocess.TimeoutExpired:
            timed_out = True
        kill(process)  # also whatever it left running
        for drain, pipe in zip(drains, (process.stdout, process.stderr), strict=True):
            drain.join(DRAIN_SECONDS)
            pipe.close()  # a drain still reading (a grandchild holds the pipe) then stops
        loaded, answers = read_answers(folder / "out", len(probes))
        written = sorted(str(p.relative_to(work)) for p in work.rglob("*"))
    run = Run(answers, timed_out=timed_out)
    done = sum(a is not None for a in answers)
    if loaded is None:
        if timed_out:
            run.fatal = f"loading {name} took longer than {seconds:g} s (a loop at import?)"
        else:
            stderr = drains[1].head.decode(errors="replace").strip().splitlines()
            last = child.short(stderr[-1]) if stderr else "no message"
            run.fatal = (
                f"the process running {name} ended ({ending(process.returncode)}) before "
                f"loading it: {last}"
            )
    elif loaded["status"] != "ok":
        if loaded["status"] == "exit":
            what = loaded["message"]
        elif loaded["status"] == "todo":
            what = f"raised NotImplementedError: {loaded['message']}"
        else:
            what = f"raised {loaded['message']}"
        run.fatal = f"{name} cannot be loaded: it {what} while loading"
    elif timed_out and done < len(probes):
        run.errors.append(
            f"stopped after {seconds:g} s: loss_and_grads had answered {done} of {len(probes)} "
            "probes (an endless loop, or far too slow; --timeout gives it longer)"
        )
    elif done < len(probes):
        run.errors.append(
            f"the process running {name} ended ({ending(process.returncode)}) after answering "
            f"{done} of {len(probes)} probes, without an exception (os._exit, or a crash)"
        )
    for drain, stream in zip(drains, ("stdout", "stderr"), strict=True):
        if drain.total:
            first = drain.head.decode(errors="replace").strip().splitlines()
            quote = f"; its first line: {child.short(first[0], 80)!r}" if first else ""
            run.notes.append(f"{name} printed {size(drain.total)} to {stream}{quote}")
    if written:
        shown = ", ".join(child.short(w, 40) for w in written[:5])
        more = f" and {len(written) - 5} more" if len(written) > 5 else ""
        run.notes.append(
            f"{name} wrote files in the folder it ran in (a scratch folder, now deleted): "
            f"{shown}{more}"
        )
    return run
