"""Is a file in use by a running process? It is while that process holds the file's
exclusive lock (flock(2)).

The kernel releases a lock when its holder closes the file or ends, however it ends (killed,
crashed), so no lock outlives its process, and no process ID that the system may since have
given to another process (or that belongs to another container) is ever consulted. Both
users of files hold one: atomic.py's writers their temporary file's, while they write, and a
run that keeps a checkpoint the checkpoint's sidecar lock file (`claim`), while it runs.

POSIX only (Linux, macOS); on a network file system a lock is only as good as its flock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType


def try_lock(fd: int) -> bool:
    """Take the exclusive lock of the open file `fd`: True, or False at once if another open
    file holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class Busy(Exception):
    """A file whose lock another process holds; `pid` is that process's ID, if it said."""

    def __init__(self, path: Path, pid: int | None) -> None:
        super().__init__(f"{path}: held by {'another process' if pid is None else pid}")
        self.pid = pid


class Claim:
    """The lock of `path`'s sidecar file, `.NAME.lock` beside it, held by this process
    until `release` (or the end of a `with` block, or of the process).

    The sidecar holds the holder's process ID, for the message of whoever is refused, and is
    removed on release. One left behind by a killed process holds no lock, and is taken over.
    OSError if the sidecar cannot be made; Busy if another process holds it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path.parent / f".{path.name}.lock"
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            if not try_lock(fd):
                pid = _pid_in(fd)
                os.close(fd)
                raise Busy(path, pid)
            if _still_named(fd, self.path):
                break
            # Its holder removed it between our open and our lock: that file is no one's
            # now, and the next holder makes a new one.
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd: int | None = fd

    def release(self) -> None:
        """Remove the sidecar, then let go of its lock (in that order: whoever opened it
        meanwhile sees, once they hold it, that it is gone, and opens a new one)."""
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass  # gone, or its folder made read-only meanwhile: the lock goes all the same
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> Claim:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _still_named(fd: int, path: Path) -> bool:
    """Is the open file `fd` the file that `path` names now?"""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _pid_in(fd: int) -> int | None:
    """The process ID a holder wrote into the sidecar `fd`, or None (not written yet)."""
    text = os.pread(fd, 24, 0).decode("ascii", "replace").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None
