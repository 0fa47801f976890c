"""Running a learner's loss_and_grads on the probes: a file in a child process with a time
limit, or a function in this process.

All probes go to one child (rnn_torch/diagnose/child.py, run by this Python with -I), which
answers them in order, writing each answer to a job folder as it goes; this side gives the
file `seconds` from the moment the child starts loading it (the child says so on a pipe of
its own: Python's and NumPy's start do not count), then ends the child and keeps the answers
given. Whatever the file does, the result is a `Run` (answers.py). What a file cannot do to
diagnose:

- leave a process running: when the child ends, or the time is up, every process of the
  file is killed, and those it left running are named in a note (processes.py).
- make diagnose hang. Its stdout and stderr are pipes read with poll() and a deadline,
  never to their end; its answers are read without blocking (jobfolder.py).
- crash or fool the reading of its answers: the job folder is read as untrusted input
  (jobfolder.py).
- raise its limits (child.py sets the hard ones) or write without bound. What its processes
  write (/proc/PID/io's wchar, less what they print) is looked at every POLL_SECONDS (more
  where /proc lists very many processes), and past WRITE_BYTES in all they are stopped.
  Every file they write outside the scratch folder is named, where it is seen: a file held
  open for writing when a poll looks (anywhere), and the files new or changed, while they
  wrote more than their answers, in the learner's file's folder (two levels) and the
  current folder (one level).
- outlive an interrupt. Any exception here (KeyboardInterrupt, the command line's SIGTERM)
  ends every process of the file and removes the job folder before it goes on up; a second
  signal meanwhile waits until that is done.

The child's working directory and TMPDIR are a scratch folder in the job folder (files the
learner's code writes there are listed, then deleted), and its stdin is empty. None of this
is a security boundary: the file runs as the user running diagnose, sees their environment
and files, can signal or ptrace this process, and a file written and closed elsewhere
between two polls, outside the folders compared, is not named.

    answers.py    what a run gives back: Answer (one probe's), Run (all of them)
    processes.py  the file's processes: found in /proc, their writes counted, all killed
    jobfolder.py  the job folder: the job written, the answers read back, listed, removed
"""

from __future__ import annotations

import math
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import numpy as np

from . import child, styles
from .answers import Answer, Array, Run, answer
from .jobfolder import (
    held,
    listing,
    not_a_file,
    read_answers,
    remove_tree,
    size,
    snapshot,
    write_job,
)
from .probes import Probe
from .processes import Family, Subreaper
from .styles import Unit

CHILD = Path(child.__file__).resolve()
#: Output of the learner's file kept to quote (the rest is only counted).
KEEP_BYTES = 4096
#: How long to read the rest of the output once every process of the file has ended.
DRAIN_SECONDS = 2.0
#: The time limits a file can be given, in seconds: from what the limit's polling can hold
#: to a day.
MIN_TIMEOUT = 0.1
MAX_TIMEOUT = 86400.0
#: What the file's processes may write in all (files, pipes; not what they print).
WRITE_BYTES = 256_000_000
#: How often the file's processes are looked at (the time limit, the writes).
POLL_SECONDS = 0.1
#: How long the child may take to start (Python, NumPy) before the time limit's count
#: begins: it counts the learner's code alone.
START_SECONDS = 60.0


def check_timeout(seconds: object) -> float:
    """`seconds` as a time limit, or ValueError in one line: a finite number of seconds
    from MIN_TIMEOUT (what the polling can hold) to MAX_TIMEOUT."""
    try:
        value = float(seconds)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(seconds, bool) or not MIN_TIMEOUT <= value <= MAX_TIMEOUT:
        raise ValueError(
            f"timeout must be from {MIN_TIMEOUT:g} to {MAX_TIMEOUT:g} seconds, got {seconds!r}"
        )
    return value


def run_function(function: Callable[..., object], probes: list[Probe]) -> Run:
    """`function` on every probe, in this process: no time limit and no sandbox (it is the
    caller's own code), but every exception it raises is one answer's message; but Ctrl-C
    (KeyboardInterrupt), which goes on up."""
    path = getattr(getattr(function, "__code__", None), "co_filename", "")
    watched = styles.native(function)
    answers: list[Answer | None] = []
    for probe in probes:
        args = (copy(probe.params), probe.x.copy(), probe.y.copy())
        kwargs = {
            k: v.copy() if isinstance(v, np.ndarray) else v for k, v in probe.keywords().items()
        }
        status, arrays = child.call(
            watched, args, kwargs, probe.expected(), path, interruptible=True
        )
        status["changed"] = sorted(set(watched.changed))
        watched.changed.clear()
        answers.append(answer(status, arrays, probe.expected()))
    return Run(answers)


def copy(params: dict[str, Array]) -> dict[str, Array]:
    return {name: w.copy() for name, w in params.items()}


class Output(threading.Thread):
    """Reads the child's stdout and stderr from the pipes' raw ends with poll(), never
    blocking: keeps the first KEEP_BYTES of each and counts the rest, until both end or
    finish()'s deadline (a process nobody could end may hold a pipe open for good)."""

    def __init__(self, fds: list[int]) -> None:
        super().__init__(daemon=True)
        self.fds = fds
        self.head = [b"" for _ in fds]  # by stream: stdout, stderr
        self.total = [0 for _ in fds]
        self.until: float | None = None
        for fd in fds:
            os.set_blocking(fd, False)

    def run(self) -> None:
        poller = select.poll()
        index = {fd: i for i, fd in enumerate(self.fds)}
        for fd in index:
            poller.register(fd, select.POLLIN)
        while index and (self.until is None or time.monotonic() < self.until):
            for fd, _ in poller.poll(POLL_SECONDS * 1000):
                try:
                    chunk = os.read(fd, 1 << 16)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                i = index.get(fd)
                if i is None:
                    continue
                if not chunk:
                    del index[fd]
                    poller.unregister(fd)
                    continue
                if len(self.head[i]) < KEEP_BYTES:
                    self.head[i] += chunk[: KEEP_BYTES - len(self.head[i])]
                self.total[i] += len(chunk)

    def finish(self) -> None:
        """Read what is left for DRAIN_SECONDS at most, then close the pipes."""
        if self.until is None:
            self.until = time.monotonic() + DRAIN_SECONDS
        if self.is_alive():
            self.join()
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []

    def printed(self) -> int:
        return sum(self.total)


def exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether the process has ended, without reaping it (its /proc entry stays readable)."""
    if not hasattr(os, "waitid"):  # pragma: no cover - no waitid: reaped at once
        return process.poll() is not None
    try:
        found = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # reaped already
        return True
    return found is not None


class Watch(threading.Thread):
    """Looks at the file's processes every POLL_SECONDS until the child ends, its time is
    up or they have written WRITE_BYTES; then ends every one of them."""

    def __init__(
        self, family: Family, output: Output, ready: int, seconds: float, inside: str
    ) -> None:
        super().__init__(daemon=True)
        self.family, self.output, self.inside = family, output, inside
        self.ready, self.seconds = ready, seconds
        self.deadline = time.monotonic() + START_SECONDS  # until the child is ready
        self.started = False  # the child said it loads the learner's file
        self.halt = threading.Event()
        self.timed_out = self.overwrote = False
        self.survivors: list[int] = []

    def run(self) -> None:
        process = self.family.root
        assert process is not None
        while True:
            ended = exited(process)
            begun = time.monotonic()
            self.family.look(self.inside)  # the child's last counts too, before it is reaped
            # a fifth of a core at most for looking, however many processes /proc shows
            interval = max(POLL_SECONDS, 4 * (time.monotonic() - begun))
            if not self.started and self.ready_now():
                self.started = True
                self.deadline = time.monotonic() + self.seconds
            if ended:
                break
            if time.monotonic() >= self.deadline:
                self.timed_out = True
                break
            if self.family.written() - self.output.printed() > WRITE_BYTES:
                self.overwrote = True
                break
            if self.halt.wait(min(interval, max(0.0, self.deadline - time.monotonic()))):
                break
        self.survivors = self.family.end()

    def ready_now(self) -> bool:
        try:
            return os.read(self.ready, 1) == b"."
        except OSError:  # not yet (BlockingIOError)
            return False

    def stop(self) -> None:
        self.halt.set()
        if self.is_alive():
            self.join()


class Deferred:
    """Signals that would interrupt (SIGINT, SIGTERM, SIGHUP) held while the body runs, in
    the main thread, and delivered after it: cleaning up cannot be cut short. When the body
    ends by an exception (an interrupt being handled, say), the held signal is dropped."""

    SIGNALS = tuple(
        getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
    )

    def __enter__(self) -> Deferred:
        self.held: list[int] = []
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                if signal.getsignal(signum) is None:  # set outside Python: left alone
                    continue
                try:
                    self.previous[signum] = signal.signal(signum, self.hold)
                except (ValueError, OSError):  # pragma: no cover - not settable here
                    pass
        return self

    def hold(self, signum: int, frame: FrameType | None) -> None:
        self.held.append(signum)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        if self.held and kind is None:
            signum = self.held[0]
            handler = self.previous.get(signum)
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


# ---- a file's run ----------------------------------------------------------------------


def ending(status: int) -> str:
    """'status 5', or the signal that ended the process: 'SIGXCPU, its CPU time ran out'."""
    if status >= 0:
        return f"status {status}"
    try:
        name = signal.Signals(-status).name
    except ValueError:
        return f"signal {-status}"
    return f"{name}, its CPU time ran out" if name == "SIGXCPU" else name


def listed(paths: list[str], limit: int = 40) -> str:
    """'a, b, c, d, e and 3 more' (each shortened to one printable line)."""
    shown = ", ".join(child.short(p, limit) for p in paths[:5])
    return shown + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


class Job:
    """One run of the child: its processes (Family), its output (Output), their Watch."""

    def __init__(self, folder: Path, seconds: float) -> None:
        self.folder, self.seconds = folder, seconds
        self.family = Family()  # after this process became a subreaper: see run_child
        self.process: subprocess.Popen[bytes] | None = None
        self.output: Output | None = None
        self.watch: Watch | None = None
        self.ready = -1  # the pipe's end the child says it is ready on
        self.survivors: list[int] = []
        # what is read once every process has ended
        self.loaded: dict[str, Any] | None = None  # the load status
        self.unreadable: str | None = None  # why the answers cannot be read
        self.written: list[str] = []  # in the scratch folder
        self.more_written = False  # and more than were looked at
        self.outside: list[str] = []  # files written outside the scratch folder
        self.excess = 0  # bytes written beyond the answers, the output and the scratch files
        self.removed = False  # the job folder

    def start(self) -> None:
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        work = str(self.folder / "work")
        env.update(MKL_NUM_THREADS="1", TMPDIR=work, TMP=work, TEMP=work)
        pipes = [os.pipe(), os.pipe(), os.pipe()]  # stdout, stderr, ready
        self.output = Output([read_end for read_end, _ in pipes[:2]])
        self.ready = pipes[2][0]
        os.set_blocking(self.ready, False)
        try:
            with Family.lock:
                self.process = subprocess.Popen(
                    [sys.executable, "-I", str(CHILD), str(self.folder), str(pipes[2][1])],
                    cwd=work,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=pipes[0][1],
                    stderr=pipes[1][1],
                    pass_fds=(pipes[2][1],),
                    start_new_session=True,
                )
                self.family.adopt(self.process)
        finally:
            for _, write_end in pipes:
                os.close(write_end)
        self.output.start()
        inside = str(self.folder) + os.sep
        self.watch = Watch(self.family, self.output, self.ready, self.seconds, inside)
        self.watch.start()

    def stop(self) -> None:
        """End every process of the file, reap the child, read the rest of its output."""
        if self.watch is not None:
            self.watch.stop()
            self.survivors += self.watch.survivors
        if self.process is not None:
            self.survivors += self.family.end()
            self.process.wait()
        self.family.leave()
        if self.output is not None:
            self.output.finish()
        if self.ready >= 0:
            os.close(self.ready)
            self.ready = -1


def run_child(
    path: Path,
    probes: list[Probe],
    seconds: float,
    meanwhile: Callable[[], object] | None,
    unit: Unit | None,
) -> tuple[Job, Run]:
    """The child on the probes, to its end: the job, and the Run of what it answered (its
    errors and notes the caller's); every process it started has ended and the job folder
    is removed, whatever happens here (an exception goes on up once that is done)."""
    folder = Path(tempfile.mkdtemp(prefix="rnn-diagnose-")).resolve()
    places = [(path.parent, 2)]
    try:
        places.append((Path.cwd(), 1))
    except OSError:  # a current folder removed
        pass
    try:
        (folder / "out").mkdir()
        (folder / "work").mkdir()
        write_job(folder, path, probes, seconds, unit)
        before = snapshot(places, str(folder))
        with Subreaper():  # until the last process is reaped: orphans must come here
            job = Job(folder, seconds)
            try:
                job.start()
                if meanwhile is not None:
                    meanwhile()
                assert job.watch is not None
                job.watch.join()
            finally:
                with Deferred():
                    job.stop()
        job.loaded, answers, job.unreadable = read_answers(folder / "out", probes)
        job.written, job.more_written, scratch = listing(folder / "work")
        after = snapshot(places, str(folder))
        changed = [p for p, v in after.items() if before.get(p) != v]
        # a change is the file's only where its processes wrote more than the child's own
        # answers, their output and what lies in the scratch folder (others may write there)
        answered = held(folder / "out" / "status.jsonl") + held(folder / "out" / "answers.bin")
        assert job.output is not None
        job.excess = job.family.written() - job.output.printed() - answered - scratch
        job.outside = list(job.family.outside)
        job.outside += [p for p in changed if job.excess > 0 and p not in job.family.outside]
    finally:
        with Deferred():
            removed = remove_tree(folder)
    job.removed = removed
    return job, Run(answers)


def run_file(
    path: Path,
    probes: list[Probe],
    seconds: float,
    meanwhile: Callable[[], object] | None = None,
    unit: Unit | None = None,
) -> Run:
    """The learner's file on every probe in one child process, for at most `seconds`;
    `meanwhile` is called while the child runs (other work, done in parallel)."""
    name = child.short(path.name)  # one line: a newline in it is escaped
    refusal = not_a_file(path)
    if refusal is not None:
        return Run([None] * len(probes), fatal=refusal)
    seconds = check_timeout(seconds)
    job, run = run_child(path.resolve(), probes, seconds, meanwhile, unit)
    assert job.process is not None and job.watch is not None and job.output is not None
    answers, loaded, watch = run.answers, job.loaded, job.watch
    # the child's own alarm (child.py) ends it at the limit; the watch is the backstop
    returncode = job.process.returncode
    timed_out = watch.timed_out or returncode == -signal.SIGALRM
    run.timed_out = timed_out
    done = sum(a is not None for a in answers)
    overwrote = (
        f"its processes wrote more than {size(WRITE_BYTES)}, the most a diagnosis lets a file write"
    )
    if job.unreadable is not None:
        where = "" if loaded is None else f" from probe {done + 1} on"
        line = (
            f"the answers of {name} cannot be read{where}: {job.unreadable} (only diagnose's "
            "child writes in its job folder)"
        )
        if loaded is None:
            run.fatal = line
        else:
            run.errors.append(line)
    if loaded is None:
        if run.fatal is not None:
            pass
        elif watch.overwrote:
            run.fatal = f"stopped while loading {name}: {overwrote}"
        elif timed_out and not watch.started:
            run.fatal = (
                f"the process to run {name} did not start within {START_SECONDS:g} s, before "
                "loading it (a machine too busy?)"
            )
        elif timed_out:
            run.fatal = f"loading {name} took longer than {seconds:g} s (a loop at import?)"
        else:
            stderr = job.output.head[1].decode(errors="replace").strip().splitlines()
            last = child.short(stderr[-1]) if stderr else "no message"
            run.fatal = (
                f"the process running {name} ended ({ending(returncode)}) before loading it: {last}"
            )
    elif loaded["status"] != "ok":
        if loaded["status"] == "exit":
            what = loaded["message"]
        elif loaded["status"] == "todo":
            what = f"raised NotImplementedError: {loaded['message']}"
        else:
            what = f"raised {loaded['message']}"
        run.fatal = f"{name} cannot be loaded: it {what} while loading"
    elif job.unreadable is not None:
        pass
    elif watch.overwrote:
        run.errors.append(
            f"stopped: {overwrote}; loss_and_grads had answered {done} of {len(probes)} probes"
        )
    elif timed_out and done < len(probes):
        run.errors.append(
            f"stopped after {seconds:g} s: loss_and_grads had answered {done} of {len(probes)} "
            "probes (an endless loop, or far too slow; --timeout gives it longer)"
        )
    elif done < len(probes):
        run.errors.append(
            f"the process running {name} ended ({ending(returncode)}) after answering "
            f"{done} of {len(probes)} probes, without an exception (os._exit, or a crash)"
        )
    for i, stream in enumerate(("stdout", "stderr")):
        if job.output.total[i]:
            first = job.output.head[i].decode(errors="replace").strip().splitlines()
            quote = f"; its first line: {child.short(first[0], 80)!r}" if first else ""
            run.notes.append(f"{name} printed {size(job.output.total[i])} to {stream}{quote}")
    if job.written:
        more = " (and more not looked at)" if job.more_written else ""
        run.notes.append(
            f"{name} wrote files in the folder it ran in (a scratch folder, now deleted): "
            f"{listed(job.written)}{more}"
        )
    if job.outside:
        run.notes.append(f"{name} wrote outside the folder it ran in: {listed(job.outside, 200)}")
    left = job.family.left()
    if left and not timed_out and not watch.overwrote:
        run.notes.append(
            f"{name} left {left} process{'es' if left > 1 else ''} running after its child "
            "process ended (started by it, detached or not); diagnose ended "
            f"{'them' if left > 1 else 'it'}"
        )
    if job.survivors:
        run.notes.append(
            f"{len(job.survivors)} processes started by {name} could not be ended: pids "
            f"{listed([str(p) for p in job.survivors])}"
        )
    if not job.removed:
        run.notes.append(f"diagnose's job folder could not be removed (a file of {name}'s?)")
    return run
