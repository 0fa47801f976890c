"""Files written whole or not at all, with the permissions any new file gets.

`write(path, fill)` has `fill` write into a temporary file beside the target, named
`.NAME.PID.RANDOM.tmp`, flushes it to disk and renames it over the target: an interrupted
write leaves the old file (if any) as it was, never a partial one. The temporary file is
created with mode 0o666 less the process's umask, as open() would create the target; the
rename keeps that mode. Its writer holds its lock (locks.py) until the rename is done, so a
temporary file whose lock no one holds was left by a killed writer: the next write to the
same target removes it.

What may be replaced: a regular file, or nothing yet. A target that exists and is not a
regular file (a folder, a device such as /dev/null, a FIFO, a socket) is refused. A symbolic
link is followed: the file it names is replaced and the link stays a link.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO

from . import locks


class WriteError(ValueError):
    """A file that cannot be written (its folder is missing or read-only, it is a device...)."""


def target(path: str | os.PathLike[str]) -> Path:
    """The file that writing to `path` replaces (symbolic links followed), after checking
    that a file can go there: WriteError, naming `path`, if not.

    Call it before long work whose result is to be written, so that a bad path is refused
    before the work rather than after it.
    """
    real = _replaceable(path)
    try:  # the one sure test that the folder takes new files (read-only, full...): make one
        fd, tmp = _create_temporary(real)
    except OSError as e:
        raise WriteError(f"{path}: cannot write a file there ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(tmp)
    return real


def _replaceable(path: str | os.PathLike[str]) -> Path:
    """The real path of `path` if it names a regular file or nothing in an existing folder."""
    try:
        real = Path(os.path.realpath(path))
        mode: int | None = real.stat().st_mode
    except FileNotFoundError:
        mode = None
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        raise WriteError(
            f"{path}: cannot write a file there ({getattr(e, 'strerror', None) or e})"
        ) from None
    if mode is not None and not stat.S_ISREG(mode):
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise WriteError(f"{path}: cannot write a file there ({what})")
    if not real.parent.is_dir():
        raise WriteError(f"{path}: cannot write a file there (no such folder)")
    return real


def write(path: str | os.PathLike[str], fill: Callable[[IO[bytes]], None]) -> None:
    """Write the file at `path` whole or not at all: `fill` writes its content into the binary
    file it is given. WriteError, naming `path`, for anything the system refuses; any other
    exception from `fill` (Ctrl-C included) leaves the old file as it was and propagates."""
    real = _replaceable(path)
    _remove_stale_temporaries(real)
    try:
        fd, tmp = _create_temporary(real)
    except OSError as e:
        raise WriteError(f"{path}: cannot write ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, real)  # before the close that lets go of the lock
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise WriteError(f"{path}: cannot write ({e.strerror or e})") from None
        raise


def _create_temporary(real: Path) -> tuple[int, str]:
    """A new, empty temporary file beside `real`, open for writing and locked: (descriptor,
    path)."""
    while True:
        tmp = real.parent / f".{real.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            # 0o666: the kernel applies the umask, exactly as for a file open() creates.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:  # 2**32 names per process: try another
            continue
        if locks.try_lock(fd) and os.fstat(fd).st_nlink:
            return fd, str(tmp)
        # Another writer's cleanup took it for a killed writer's between the open and the
        # lock, and removes it: make another.
        os.close(fd)


def _remove_stale_temporaries(real: Path) -> None:
    """Delete the temporary files of `real` whose writer no longer runs (killed mid-write):
    those whose lock no one holds. Only names this module makes are looked at."""
    ours = re.compile(re.escape(f".{real.name}.") + r"[0-9]+\.[0-9a-f]{8}\.tmp")
    with os.scandir(real.parent) as entries:
        found = [entry.path for entry in entries if ours.fullmatch(entry.name)]
    for tmp in found:
        try:
            fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue  # renamed by its writer meanwhile, or not ours to open: left alone
        try:
            if locks.try_lock(fd) and os.path.samestat(os.fstat(fd), os.stat(tmp)):
                os.unlink(tmp)
        except OSError:
            pass  # gone already, or not ours to remove: harmless
        finally:
            os.close(fd)
