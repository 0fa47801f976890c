"""The file layer under the model files: atomic writes (files/atomic.py) and the safe .npz
reader (files/npz.py). The model-file schema on top of them is tests/test_modelfile.py's."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np
import pytest
from folders import unwritable_folder

from rnn_manual.files import atomic, npz

ROOT = Path(__file__).resolve().parents[1]


def fill_with(data: bytes) -> Callable[[IO[bytes]], None]:
    def fill(f: IO[bytes]) -> None:
        f.write(data)

    return fill


# --- what a write leaves behind ------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_a_new_file_gets_the_mode_open_would_give_it(tmp_path: Path, mask: int) -> None:
    previous = os.umask(mask)
    try:
        atomic.write(tmp_path / "f.bin", fill_with(b"data"))
        expected = 0o666 & ~mask
        assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == expected
        # ... and so does a file that replaces one of another mode.
        (tmp_path / "f.bin").chmod(0o600)
        atomic.write(tmp_path / "f.bin", fill_with(b"again"))
        assert stat.S_IMODE((tmp_path / "f.bin").stat().st_mode) == expected
    finally:
        os.umask(previous)


def test_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path: Path) -> None:
    # Temporaries whose writer has ended: no one holds their lock.
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead = int(done.stdout)
    stale = [tmp_path / f".m.npz.{dead}.{k:08x}.tmp" for k in range(12)]
    for path in stale:
        path.write_bytes(b"half a model")
    live = tmp_path / f".m.npz.{os.getpid()}.0000beef.tmp"  # a writer still at work: kept
    other = tmp_path / f".other.npz.{dead}.00000000.tmp"  # another target's: not ours
    unnamed = tmp_path / ".m.npz.k3j_x81a.tmp"  # not a name atomic.py makes: kept
    for path in (live, other, unnamed):
        path.write_bytes(b"")
    with live.open("rb") as writing:  # a writer at work holds its temporary file's lock
        fcntl.flock(writing, fcntl.LOCK_EX)
        atomic.write(tmp_path / "m.npz", fill_with(b"model"))
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["m.npz", live.name, other.name, unnamed.name])


def test_a_killed_save_leaves_nothing_the_next_save_keeps(tmp_path: Path) -> None:
    """The issue's case: processes killed while saving (12 kills left 12 files). Each one's
    temporary file stays only until the next write to the same file, which removes it."""
    script = (
        "import os, signal, sys\n"
        "from rnn_manual.files import atomic\n"
        "def die(f):\n"
        "    f.write(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "atomic.write(sys.argv[1], die)\n"
    )
    target = tmp_path / "m.npz"
    for _ in range(4):
        subprocess.run([sys.executable, "-c", script, str(target)], cwd=ROOT, timeout=60)
    assert len(list(tmp_path.glob(".m.npz.*.tmp"))) == 1 and not target.exists()  # the last
    atomic.write(target, fill_with(b"whole"))
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]
    assert target.read_bytes() == b"whole"


# --- what may be replaced ------------------------------------------------------------------


def test_a_target_that_is_not_a_regular_file_is_refused_untouched(tmp_path: Path) -> None:
    # Never the real /dev/null here: a regression would replace it with a file, as root.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    targets = [fifo, tmp_path]
    if os.geteuid() == 0:  # a device of our own: /dev/null's numbers, in tmp_path
        device = tmp_path / "null"
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        targets.append(device)
    for path in targets:
        with pytest.raises(atomic.WriteError, match="cannot write a file there"):
            atomic.write(path, fill_with(b"x"))
        with pytest.raises(atomic.WriteError, match="cannot write a file there"):
            atomic.target(path)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    if os.geteuid() == 0:
        assert stat.S_ISCHR(device.stat().st_mode)
    link = tmp_path / "to-pipe"
    link.symlink_to(fifo)  # a link is followed: to a FIFO, refused
    with pytest.raises(atomic.WriteError, match="not a regular file"):
        atomic.write(link, fill_with(b"x"))
    assert link.is_symlink() and stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_symbolic_link_is_followed_and_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "models" / "m.npz"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "latest.npz"
    link.symlink_to(real)
    atomic.write(link, fill_with(b"new"))
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == b"new"
    assert sorted(p.name for p in real.parent.iterdir()) == ["m.npz"]  # temporary beside it


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc when run as root")
def test_target_refuses_a_folder_that_takes_no_new_file(tmp_path: Path) -> None:
    folder = unwritable_folder(tmp_path)
    with pytest.raises(atomic.WriteError, match="cannot write a file there"):
        atomic.target(folder / "m.npz")


def test_target_leaves_nothing_behind(tmp_path: Path) -> None:
    assert atomic.target(tmp_path / "m.npz") == (tmp_path / "m.npz").resolve()
    assert list(tmp_path.iterdir()) == []


def test_an_exception_while_filling_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    path.write_bytes(b"old")

    def fail(f: IO[bytes]) -> None:
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic.write(path, fail)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["m.npz"]


# --- the reader ----------------------------------------------------------------------------


def test_savez_and_read_round_trip(tmp_path: Path) -> None:
    arrays = {"a": np.arange(6.0).reshape(2, 3), "b/c": np.array("text"), "d": np.int64(3)}
    npz.savez(tmp_path / "x.npz", {k: np.asarray(v) for k, v in arrays.items()})
    back = npz.read(tmp_path / "x.npz")
    assert back.keys() == arrays.keys()
    for key, value in arrays.items():
        assert np.array_equal(back[key], value) and back[key].dtype == np.asarray(value).dtype


def test_the_entry_check_sees_each_header_before_the_data_is_read(tmp_path: Path) -> None:
    np.savez(tmp_path / "x.npz", small=np.zeros(3), big=np.zeros(10**6))
    seen = []

    def check(key: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        seen.append((key, shape, dtype.str))
        if shape[0] > 1000:
            raise ValueError(f"{key} is too long")

    with pytest.raises(npz.NpzError, match=r"x\.npz: big is too long"):
        npz.read(tmp_path / "x.npz", check=check)
    assert ("small", (3,), "<f8") in seen and ("big", (10**6,), "<f8") in seen


def test_the_reader_names_the_kind_of_file_it_expected(tmp_path: Path) -> None:
    (tmp_path / "t.npz").write_bytes(b"text")
    with pytest.raises(npz.NpzError, match="not a valid npz archive"):
        npz.read(tmp_path / "t.npz")
    with pytest.raises(npz.NpzError, match="not a valid model file"):
        npz.read(tmp_path / "t.npz", "model file")
