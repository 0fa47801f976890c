"""Running a learner's loss_and_grads on the probes: a file in a child process with a time
limit, or a function in this process.

All probes go to one child (rnn_torch/diagnose/child.py, run by this Python with -I), which
answers them in order, writing each answer to a job folder as it goes; this side gives the
file `seconds` from the moment the child starts loading it (the child says so on a pipe of
its own: Python's and NumPy's start do not count), then ends the child and keeps the answers
given. Whatever the file does, the result is a `Run`: the answers, one line for anything
that stopped the file from running at all, and notes. What a file cannot do to diagnose:

- leave a process running. On Linux this process is a child subreaper while a file runs
  (prctl PR_SET_CHILD_SUBREAPER, set back after), so that a process the file starts stays
  this process's descendant however it detaches (setsid, setpgid, a double fork); when the
  child ends, or the time is up, every process of the file is found in /proc and killed
  (SIGKILL through a pidfd, checked against its start time, until none is left), and those
  it left running are named in a note. The file's processes are the child's descendants
  and the orphans this process adopts while the file runs: those outside this process's
  own session (the child starts a session of its own, and no process can join another
  session) started after the child. Elsewhere, the child's process group is killed.
- make diagnose hang. Its stdout and stderr are pipes read with poll() and a deadline,
  never to their end; its answers are read from regular files only (a FIFO, a link or a
  folder put in their place is one line), opened without blocking.
- crash or fool the reading of its answers. The job folder is read as untrusted input:
  sizes bounded before reading, JSON nesting before parsing, an .npy header's claimed size
  before any allocation (against the values the probe expects); a malformed answer is one
  line naming it, and the answers end there. Folders are listed and removed without
  recursion, however deep.
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
"""

from __future__ import annotations

import ctypes
import io
import json
import math
import os
import re
import select
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from . import child, styles
from .probes import Probe
from .styles import Unit

Array = NDArray[np.floating]

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
#: How long ending every process of the file may take before the rest are named.
END_SECONDS = 5.0
#: How long the child may take to start (Python, NumPy) before the time limit's count
#: begins: it counts the learner's code alone.
START_SECONDS = 60.0
#: Bounds on what is read back from the job folder: a status line, its nesting, an .npy
#: header, the folders listed (entries, depth).
LINE_BYTES = 1 << 16
DEPTH = 16
HEADER_BYTES = 4096
LISTED = 5000
LISTED_DEPTH = 32
STATUSES = ("ok", "error", "todo", "exit")
LINUX = sys.platform.startswith("linux") and os.path.exists("/proc/self/stat")


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
    """An Answer from what child.call returns (or the child wrote, once validated)."""
    loss = float(arrays["loss"].reshape(())) if "loss" in arrays else None
    grads = {k.split(":", 1)[1]: v for k, v in arrays.items() if k.startswith("grad:")}
    problems = [(str(a), str(b), str(c)) for a, b, c in status.get("problems", [])]
    message = status.get("message", "")
    group = status.get("group", message)
    changed = [str(c) for c in status.get("changed", [])]
    return Answer(status["status"], message, loss, grads, problems, group, changed)


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
        answers.append(answer(status, arrays))
    return Run(answers)


def copy(params: dict[str, Array]) -> dict[str, Array]:
    return {name: w.copy() for name, w in params.items()}


# ---- the file's processes --------------------------------------------------------------


def libc() -> Any:
    """The C library, for prctl (None where there is none to load)."""
    try:
        return ctypes.CDLL(None, use_errno=True)
    except (OSError, TypeError):  # pragma: no cover - no C library by that name
        return None


PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37


class Subreaper:
    """This process as a child subreaper while any file runs (Linux), then as it was: the
    orphans of the file's processes become this process's children instead of init's."""

    lock = threading.Lock()
    users = 0
    was = False

    def __enter__(self) -> Subreaper:
        with Subreaper.lock:
            if Subreaper.users == 0 and LINUX:
                c = libc()
                if c is not None:
                    flag = ctypes.c_int(0)
                    c.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0)
                    Subreaper.was = bool(flag.value)
                    c.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
            Subreaper.users += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with Subreaper.lock:
            Subreaper.users -= 1
            if Subreaper.users == 0 and LINUX and not Subreaper.was:
                c = libc()
                if c is not None:
                    c.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


@dataclass(frozen=True)
class Process:
    """One line of /proc/PID/stat."""

    pid: int
    ppid: int
    sid: int
    start: int  # clock ticks after boot: with the pid, names one process for good
    zombie: bool


def stat_of(pid: int | str) -> Process | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            data = file.read(4096)
        fields = data[data.rindex(b")") + 2 :].split()
        state, ppid, sid, start = fields[0], int(fields[1]), int(fields[3]), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None
    return Process(int(pid), ppid, sid, start, state in (b"Z", b"X"))


def process_table() -> dict[int, Process]:
    """Every process /proc shows."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return {}
    found = (stat_of(name) for name in names if name.isdigit())
    return {p.pid: p for p in found if p is not None}


def kill_exactly(process: Process) -> None:
    """SIGKILL to that process, and not to one that took its pid since (a pidfd, where the
    platform has them, opened and checked against the start time before signalling)."""
    try:
        fd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        fd = -1
    try:
        now = stat_of(process.pid)
        if now is None or now.start != process.start:
            return
        if fd >= 0:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        else:  # pragma: no cover - kernels before 5.3
            os.kill(process.pid, signal.SIGKILL)
    except OSError:
        pass
    finally:
        if fd >= 0:
            os.close(fd)


def write_count(pid: int) -> int | None:
    """Bytes the process has passed to write() and the like (/proc/PID/io's wchar)."""
    try:
        with open(f"/proc/{pid}/io", "rb") as file:
            text = file.read(4096)
        found = re.search(rb"^wchar:\s*(\d+)", text, re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) if found else None


def files_open_for_writing(pid: int, inside: str) -> list[str]:
    """The regular files the process holds open for writing, outside `inside`."""
    found = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    for fd in fds[:1024]:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if not target.startswith("/") or target.startswith(inside):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as file:
                flags = re.search(rb"^flags:\s*([0-7]+)", file.read(4096), re.MULTILINE)
            if flags is None or int(flags.group(1), 8) & 3 == os.O_RDONLY:
                continue
            if stat.S_ISREG(os.stat(f"/proc/{pid}/fd/{fd}").st_mode):
                found.append(target)
        except OSError:
            continue
    return found


class Family:
    """The processes of one run of a learner's file: the child, its descendants, and the
    orphans of theirs this process adopted (it is a subreaper meanwhile: see Subreaper).
    Runs side by side (threads) keep apart: an orphan known to another run, or in the
    session of another run's child, is that run's."""

    lock = threading.Lock()  # around every look at /proc, and a child's start
    running: ClassVar[list[Family]] = []

    def __init__(self) -> None:
        self.me, self.session = os.getpid(), os.getsid(0)
        table = process_table() if LINUX else {}
        # children this process had before the run are not the file's
        self.before = {(p.pid, p.start) for p in table.values() if p.ppid == self.me}
        self.root: subprocess.Popen[bytes] | None = None
        self.root_start = 0
        self.known: dict[int, int] = {}  # pid -> start, of every process seen as the file's
        self.wrote: dict[tuple[int, int], int] = {}  # (pid, start) -> wchar last seen
        self.parent: dict[tuple[int, int], int] = {}  # (pid, start) -> ppid last seen
        self.outside: dict[str, None] = {}  # files held open for writing outside the job
        self.signalled: set[tuple[int, int]] = set()

    def adopt(self, process: subprocess.Popen[bytes]) -> None:
        """The child, just started (with Family.lock held since before it started: no other
        run may take it for an orphan of its own meanwhile)."""
        self.root = process
        found = stat_of(process.pid) if LINUX else None
        self.root_start = found.start if found is not None else 0
        if found is not None:
            self.known[process.pid] = found.start
        Family.running.append(self)

    def leave(self) -> None:
        """No longer running (its processes all ended)."""
        with Family.lock:
            if self in Family.running:
                Family.running.remove(self)

    def members(self) -> list[Process]:
        """The file's processes now (zombies included)."""
        if not LINUX or self.root is None:
            return []
        with Family.lock:
            return self.find(process_table())

    def find(self, table: dict[int, Process]) -> list[Process]:
        others = [f for f in Family.running if f is not self]
        theirs = {pid for f in others for pid in f.known}
        sessions = {f.root.pid for f in others if f.root is not None}
        children: dict[int, list[Process]] = {}
        for p in table.values():
            children.setdefault(p.ppid, []).append(p)
        roots = [
            p
            for p in table.values()
            if self.known.get(p.pid) == p.start
            or (
                p.ppid == self.me
                and p.sid != self.session
                and p.start >= self.root_start
                and (p.pid, p.start) not in self.before
                and p.pid not in theirs
                and p.sid not in sessions
            )
        ]
        found: dict[int, Process] = {}
        while roots:
            p = roots.pop()
            if p.pid not in found:
                found[p.pid] = p
                roots += children.get(p.pid, [])
        for p in found.values():
            self.known[p.pid] = p.start
        return list(found.values())

    def look(self, inside: str) -> list[Process]:
        """members(), noting what each has written and the files it holds open for writing
        outside `inside` (the job folder)."""
        members = self.members()
        present = {(p.pid, p.start) for p in members}
        for key in [k for k in self.wrote if k not in present]:
            if self.parent.get(key) != self.me:  # reaped by its parent, whose count holds it
                del self.wrote[key]
        for p in members:
            self.count_writes(p)
            if p.zombie:
                continue
            for path in files_open_for_writing(p.pid, inside):
                if len(self.outside) < LISTED:
                    self.outside[path] = None
        return members

    def count_writes(self, p: Process) -> None:
        """What the process has written so far (wchar). The kernel adds a reaped child's
        count to its parent's: so a process gone is counted by its parent (and dropped here,
        see look), but where this process reaped it (the child, an adopted orphan), whose
        count is read while it is a zombie, before reaping. Nothing the file's processes
        write goes uncounted, but what a process writes after the last look before its
        parent (the file's) ends, all within one poll."""
        count = write_count(p.pid)
        if count is not None:
            key = (p.pid, p.start)
            self.wrote[key] = max(count, self.wrote.get(key, 0))
            self.parent[key] = p.ppid

    def written(self) -> int:
        return sum(self.wrote.values())

    def end(self) -> list[int]:
        """Kill every process of the file until none is left (END_SECONDS at most) and reap
        those this process adopted; the pids of any still alive then."""
        if self.root is None:
            return []
        if not LINUX:  # pragma: no cover - the child's process group, as far as it goes
            try:
                os.killpg(self.root.pid, signal.SIGKILL)
            except (OSError, AttributeError):
                self.root.kill()
            return []
        deadline = time.monotonic() + END_SECONDS
        while True:
            members = self.members()
            alive = [p for p in members if not p.zombie]
            for p in members:  # the adopted ones: their exit statuses are this process's
                if p.zombie and p.ppid == self.me and p.pid != self.root.pid:
                    self.count_writes(p)
                    try:
                        os.waitpid(p.pid, os.WNOHANG)
                    except ChildProcessError:
                        pass
            if not alive or time.monotonic() > deadline:
                return [p.pid for p in alive]
            for p in alive:
                self.signalled.add((p.pid, p.start))
                kill_exactly(p)
            time.sleep(0.002)

    def left(self) -> int:
        """How many processes, the child apart, end() had to kill."""
        assert self.root is not None
        return len({pid for pid, _ in self.signalled} - {self.root.pid})


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


# ---- the job folder --------------------------------------------------------------------


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


class Unreadable(Exception):
    """What the child left in the job folder cannot be read as its answers: one line why."""


KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def kind_of_entry(mode: int) -> str:
    return KINDS.get(stat.S_IFMT(mode), "not a regular file")


def not_a_file(path: Path) -> str | None:
    """None where `path` is a regular file (or a link to one); else one line on what it is
    (found without opening it: a FIFO would block)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return f"no such file: {path}"
    except OSError as error:
        return f"cannot read {path}: {error.strerror}"
    if stat.S_ISREG(info.st_mode):
        return None
    return f"{path} is {kind_of_entry(info.st_mode)}, not a Python file"


def read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of the regular file `path`, at most `limit` of them; None where there is
    no such file. A FIFO, a link, a folder or a larger file is Unreadable, found out
    without blocking and before reading."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise Unreadable(f"{path.name} cannot be read: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise Unreadable(f"{path.name} is {kind_of_entry(info.st_mode)}, not a file")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as error:
        raise Unreadable(f"{path.name} cannot be read: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable(f"{path.name} is {kind_of_entry(info.st_mode)}, not a file")
        if info.st_size > limit:
            raise Unreadable(f"{path.name} holds {size(info.st_size)}, more than {size(limit)}")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise Unreadable(f"{path.name} holds more than {size(limit)}")
        return b"".join(chunks)
    except OSError as error:
        raise Unreadable(f"{path.name} cannot be read: {error.strerror}") from None
    finally:
        os.close(fd)


STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def nesting(text: str) -> int:
    """How deep the brackets of a JSON text go (strings apart), without parsing it."""
    depth = deepest = 0
    for c in NOT_BRACKETS.sub("", STRINGS.sub("", text)):
        depth += 1 if c in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def parse_line(line: bytes, number: int) -> dict[str, Any]:
    """One line of status.jsonl as a dict: its length and nesting bounded before parsing."""
    where = f"status.jsonl line {number}"
    if len(line) > LINE_BYTES:
        raise Unreadable(f"{where} is {size(len(line))} long, more than {size(LINE_BYTES)}")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise Unreadable(f"{where} is not UTF-8 text") from None
    depth = nesting(text)
    if depth > DEPTH:
        raise Unreadable(f"{where} is nested {depth} deep, more than {DEPTH}")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise Unreadable(f"{where} is not JSON") from None
    if not isinstance(value, dict):
        raise Unreadable(f"{where} is {child.kind_of(value)}, not a JSON object")
    return value


def field_of(status: dict[str, Any], key: str, kind: type, number: int, default: Any) -> Any:
    """status[key], which must be a `kind` (default where it is absent and not None)."""
    if key not in status:
        if default is None:
            raise Unreadable(f"status.jsonl line {number} has no {key!r}")
        return default
    value = status[key]
    if not isinstance(value, kind):
        raise Unreadable(
            f"status.jsonl line {number}: its {key!r} is {child.kind_of(value)}, "
            f"not a {kind.__name__}"
        )
    return value


def valid_status(status: dict[str, Any], number: int, allowed: set[str]) -> dict[str, Any]:
    """An answer's status line checked for what answer() and read_answers use: the status
    one of STATUSES, the arrays named once each among `allowed`, the texts texts."""
    where = f"status.jsonl line {number}"
    word = field_of(status, "status", str, number, None)
    if word not in STATUSES:
        raise Unreadable(f"{where}: its status {child.short(word, 40)!r} is none of {STATUSES}")
    arrays = field_of(status, "arrays", list, number, None)
    for name in arrays:
        if not isinstance(name, str) or name not in allowed:
            what = child.short(name, 40)
            raise Unreadable(f"{where} names an array the probe has none of: {what!r}")
    if len(set(arrays)) < len(arrays):
        raise Unreadable(f"{where} names an array twice")
    message = field_of(status, "message", str, number, "")
    checked: dict[str, Any] = {"status": word, "arrays": arrays, "message": message}
    checked["group"] = field_of(status, "group", str, number, message)
    problems = field_of(status, "problems", list, number, [])
    for problem in problems:
        if not (
            isinstance(problem, list)
            and len(problem) == 3
            and all(isinstance(p, str) for p in problem)
        ):
            raise Unreadable(f"{where}: a problem that is not three texts")
    checked["problems"] = problems
    changed = field_of(status, "changed", list, number, [])
    if not all(isinstance(c, str) for c in changed):
        raise Unreadable(f"{where}: 'changed' holds something other than texts")
    checked["changed"] = changed
    return checked


def read_array(data: bytes, stream: io.BytesIO, most: int, where: str) -> Array:
    """The next .npy array of `data`: a float64 array of at most `most` values (a loss: one),
    its header's claims checked before anything is allocated."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(stream, max_header_size=HEADER_BYTES)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(stream, max_header_size=HEADER_BYTES)
        else:
            raise Unreadable(f"{where} is an .npy array of version {version}")
    except Unreadable:
        raise
    except Exception as error:  # numpy's header reader: ValueError, EOFError, SyntaxError...
        raise Unreadable(f"{where} is not an .npy array ({child.short(error, 80)})") from None
    if dtype.hasobject or dtype.kind != "f" or dtype.itemsize != 8 or dtype.shape != ():
        raise Unreadable(f"{where} holds {child.short(dtype, 40)}, not float64")
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise Unreadable(f"{where} has shape {child.short(shape, 60)}")
    count = math.prod(shape)
    if count > most or (most == 1 and count != 1):
        raise Unreadable(
            f"{where} claims {count} values (shape {child.short(shape, 60)}); "
            f"{'one' if most == 1 else f'at most {most}'} expected"
        )
    start = stream.tell()
    if len(data) - start < count * 8:
        raise Unreadable(f"{where} ends after {len(data) - start} of its {count * 8} bytes")
    stream.seek(start + count * 8)
    array = np.frombuffer(data, dtype=dtype, count=count, offset=start)
    return array.reshape(shape, order="F" if fortran else "C").astype(np.float64)


def read_answers(
    out: Path, probes: list[Probe]
) -> tuple[dict[str, Any] | None, list[Answer | None], str | None]:
    """The child's load status (None: none written), the answers it wrote (None where there
    is none) and, where what it left cannot be read as answers, the first reason why
    (the answers end there). A line cut short by a kill ends them silently."""
    answers: list[Answer | None] = [None] * len(probes)
    most = [
        {"loss": 1, **{f"grad:{k}": math.prod(s) for k, s in p.expected().items()}} for p in probes
    ]
    try:
        text = read_regular(out / "status.jsonl", (len(probes) + 1) * (LINE_BYTES + 1))
        limit = sum(sum(m.values()) * 8 + len(m) * (HEADER_BYTES + 16) for m in most)
        data = read_regular(out / "answers.bin", limit) or b""
    except Unreadable as error:
        return None, answers, str(error)
    if text is None:
        return None, answers, None
    lines = text.split(b"\n")[:-1]  # the last piece: empty, or a line cut short
    stream = io.BytesIO(data)
    loaded: dict[str, Any] | None = None
    try:
        for number, line in enumerate(lines, 1):
            status = parse_line(line, number)
            if number == 1:
                if status.get("stage") != "load":
                    raise Unreadable("status.jsonl line 1 is not the load status")
                word = field_of(status, "status", str, 1, None)
                if word not in STATUSES:
                    raise Unreadable(f"status.jsonl line 1: its status {child.short(word, 40)!r}")
                loaded = {"status": word, "message": field_of(status, "message", str, 1, "")}
                continue
            i = number - 2
            if loaded["status"] != "ok" or i >= len(probes):  # type: ignore[index]
                break
            checked = valid_status(status, number, set(most[i]))
            arrays = {}
            for name in checked["arrays"]:
                where = f"answers.bin's {name!r} for probe {i + 1}"
                arrays[name] = read_array(data, stream, most[i][name], where)
            answers[i] = answer(checked, arrays)
    except Unreadable as error:
        return loaded, answers, str(error)
    return loaded, answers, None


def walk(top: Path, depth: int, skip: str = "") -> Iterator[tuple[str, os.stat_result]]:
    """(path relative to top, lstat) of what lies in `top`, breadth first, `depth` levels
    deep at most, LISTED entries at most; never following a link; `skip`: a folder left out."""
    queue, seen = [("", 1)], 0
    while queue and seen < LISTED:
        relative, level = queue.pop(0)
        folder = os.path.join(top, relative)
        if skip and os.path.abspath(folder) == skip:
            continue
        try:
            with os.scandir(folder) as entries:
                found = [(e.name, e.stat(follow_symlinks=False)) for e in islice(entries, LISTED)]
        except OSError:
            continue
        for name, info in sorted(found):
            seen += 1
            if seen > LISTED:
                break
            path = os.path.join(relative, name)
            yield path, info
            if stat.S_ISDIR(info.st_mode) and level < depth:
                queue.append((path, level + 1))


def listing(top: Path) -> tuple[list[str], bool, int]:
    """The files and folders in `top` (relative, sorted), whether there are more than were
    looked at (LISTED entries, LISTED_DEPTH levels), and the bytes in its regular files."""
    found = list(walk(top, LISTED_DEPTH))
    held = sum(info.st_size for _, info in found if stat.S_ISREG(info.st_mode))
    return sorted(path for path, _ in found), len(found) >= LISTED, held


def held(path: Path) -> int:
    """The size of `path` where it is a regular file, else 0."""
    try:
        info = os.lstat(path)
    except OSError:
        return 0
    return info.st_size if stat.S_ISREG(info.st_mode) else 0


def snapshot(places: list[tuple[Path, int]], skip: str) -> dict[str, tuple[int, int, int]]:
    """The regular files of `places` (a folder, levels deep): path -> inode, size, mtime."""
    found = {}
    for top, depth in places:
        for relative, info in walk(top, depth, skip):
            if stat.S_ISREG(info.st_mode):
                path = str(top / relative)
                found[path] = (info.st_ino, info.st_size, info.st_mtime_ns)
    return found


def remove_tree(top: Path) -> bool:
    """Remove the folder `top` and all in it, however deep (no recursion, two descriptors
    open at most): each sub-folder met is moved up to `top`, emptied there and removed.
    Whether it is gone."""
    flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0)
    try:
        top_fd = os.open(top, flags)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    moved = 0
    try:
        pending = [""]
        while pending:
            name = pending.pop()
            try:
                if name:
                    os.chmod(name, 0o700, dir_fd=top_fd, follow_symlinks=False)
                fd = os.open(name, flags, dir_fd=top_fd) if name else top_fd
            except OSError:
                continue
            try:
                with os.scandir(fd) as entries:
                    found = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
                for entry, is_folder in found:
                    try:
                        if not is_folder:
                            os.unlink(entry, dir_fd=fd)
                        elif not name:
                            pending.append(entry)
                        else:
                            while True:
                                moved += 1
                                up = f".removing-{moved}"
                                try:
                                    os.stat(up, dir_fd=top_fd, follow_symlinks=False)
                                except FileNotFoundError:
                                    break
                            os.rename(entry, up, src_dir_fd=fd, dst_dir_fd=top_fd)
                            pending.append(up)
                    except OSError:
                        continue
            finally:
                if fd != top_fd:
                    os.close(fd)
            if name:
                try:
                    os.rmdir(name, dir_fd=top_fd)
                except OSError:
                    pending.insert(0, name)  # its sub-folders first; tried again last
                    if pending.count(name) > 1:
                        pending.remove(name)
                        pending.pop(0)
    finally:
        os.close(top_fd)
    try:
        os.rmdir(top)
    except OSError:
        return False
    return True


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


def size(count: int) -> str:
    """Bytes in words: '812 bytes', '3.1 MB'."""
    return f"{count} bytes" if count < 100_000 else f"{count / 1e6:.1f} MB"


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
    name = path.name
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
