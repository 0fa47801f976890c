"""The job folder: the job written for the child (child.py), and what it leaves there
read back, listed and removed.

What the child leaves is read as untrusted input. Its answers are read from regular files
only (a FIFO, a link or a folder put in their place is one line), opened without blocking,
so that it cannot make diagnose hang; sizes are bounded before reading, JSON nesting before
parsing, an .npy header's claimed size before any allocation (against the values the probe
expects), so that it cannot crash or fool the reading: a malformed answer is one line
naming it, and the answers end there. Folders are listed (the scratch folder; the folders
compared before and after a run) and removed without recursion, however deep.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import sys
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from . import child
from .answers import Answer, Array, answer
from .probes import Probe
from .styles import Unit

#: Bounds on what is read back from the job folder: a status line, its nesting, an .npy
#: header, the folders listed (entries, depth).
LINE_BYTES = 1 << 16
DEPTH = 16
HEADER_BYTES = 4096
LISTED = 5000
LISTED_DEPTH = 32
STATUSES = ("ok", "error", "todo", "exit")


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


def size(count: int) -> str:
    """Bytes in words: '812 bytes', '3.1 MB'."""
    return f"{count} bytes" if count < 100_000 else f"{count / 1e6:.1f} MB"


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
            answers[i] = answer(checked, arrays, probes[i].expected())
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
