"""The processes of one run of a learner's file: found in /proc, their writes counted,
every one of them killed.

On Linux this process is a child subreaper while a file runs (prctl PR_SET_CHILD_SUBREAPER,
set back after), so that a process the file starts stays this process's descendant however
it detaches (setsid, setpgid, a double fork); when the child ends, or the time is up, every
process of the file is found in /proc and killed (SIGKILL through a pidfd, checked against
its start time, until none is left), and those it left running are named in a note. The
file's processes are the child's descendants and the orphans this process adopts while the
file runs: those outside this process's own session (the child starts a session of its
own, and no process can join another session) started after the child. Elsewhere, the
child's process group is killed.

What they write is counted from /proc/PID/io's wchar (sandbox.py stops them past its
bound), and every regular file one of them holds open for writing outside the job folder
when a look finds it is noted, wherever it is.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from .jobfolder import LISTED

#: How long ending every process of the file may take before the rest are named.
END_SECONDS = 5.0
LINUX = sys.platform.startswith("linux") and os.path.exists("/proc/self/stat")


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
