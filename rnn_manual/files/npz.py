"""A small, safe reader and an atomic writer of NumPy `.npz` archives of plain arrays.

`read` trusts nothing in the file: it refuses pickles (object arrays), anything that is not a
zip archive of `.npy` entries, more than MAX_ENTRIES entries, files or content over
MAX_FILE_BYTES once unpacked, and an entry whose header declares more (or less) data than
it stores, each checked before anything is allocated; a caller's `check` sees every entry's
shape and dtype before its data is read. `savez` writes an archive whole or not at all
(files/atomic.py). What the arrays mean is the caller's business (files/modelfile.py).
"""

from __future__ import annotations

import math
import os
import stat
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy
from numpy.typing import NDArray

from . import atomic

#: Files, or their content once unpacked, larger than this are refused unread.
MAX_FILE_BYTES = 1 << 30
MAX_ENTRIES = 256

#: A caller's check of one entry from its header, before its data is read: (key, shape,
#: dtype); it raises ValueError to refuse the file.
EntryCheck = Callable[[str, tuple[int, ...], np.dtype], None]


class NpzError(ValueError):
    """An archive that cannot be read, or that is not what it claims to be."""


def savez(path: str | os.PathLike[str], arrays: dict[str, NDArray[Any]]) -> None:
    """np.savez of `arrays` to `path`, whole or not at all; atomic.WriteError if it cannot."""
    atomic.write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]


def read(
    path: str | os.PathLike[str], what: str = "npz archive", check: EntryCheck | None = None
) -> dict[str, NDArray[Any]]:
    """Every array in the .npz archive at `path`, its size checked before it is read.

    NpzError, one line naming the file, for anything else; `what` names the kind of file
    expected in those messages ("not a valid model file").
    """
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise NpzError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise NpzError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    if stat.S_ISDIR(info.st_mode):
        raise NpzError(f"{path}: is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise NpzError(f"{path}: not a regular file")
    if info.st_size > MAX_FILE_BYTES:
        raise NpzError(f"{path}: {info.st_size} bytes, larger than {MAX_FILE_BYTES}")
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise NpzError(f"{path}: not a valid {what} (not an .npz archive)")
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            names = [m.filename for m in members]
            if len(members) > MAX_ENTRIES or len(set(names)) != len(names):
                raise NpzError(f"{path}: not a valid {what} (entries)")
            if sum(m.file_size for m in members) > MAX_FILE_BYTES:
                raise NpzError(f"{path}: unpacks to more than {MAX_FILE_BYTES} bytes")
            arrays = {}
            for member in members:
                if not member.filename.endswith(".npy"):
                    raise NpzError(f"{path}: unexpected entry {member.filename!r}")
                key = member.filename.removesuffix(".npy")
                with archive.open(member) as f:
                    shape, dtype = _check_npy_header(f, member.file_size, f"{path}: {key}")
                if check is not None:
                    try:
                        check(key, shape, dtype)
                    except ValueError as e:
                        raise NpzError(f"{path}: {e}") from None
                with archive.open(member) as f:
                    arrays[key] = npy.read_array(f, allow_pickle=False)
            return arrays
    except NpzError:
        raise
    except PermissionError:
        raise NpzError(f"{path}: permission denied") from None
    except (
        OSError,
        EOFError,
        ValueError,
        RuntimeError,  # an encrypted entry
        NotImplementedError,  # an unknown compression method
        zipfile.BadZipFile,
        zlib.error,
        struct.error,
        SyntaxError,  # an .npy header that does not parse
        tokenize.TokenError,  # likewise, in NumPy's fallback parser
    ) as e:
        raise NpzError(f"{path}: not a valid {what} ({str(e) or type(e).__name__})") from None


def _check_npy_header(f: IO[bytes], stored_bytes: int, where: str) -> tuple[Any, np.dtype]:
    """The shape and dtype an .npy entry declares, or NpzError unless it holds plain numbers
    or text whose declared size is exactly what the archive stores: nothing pickled,
    nothing larger than the file."""
    version = npy.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = npy.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = npy.read_array_header_2_0(f)
    else:
        raise NpzError(f"{where}: unsupported .npy version {version}")
    if dtype.hasobject:
        raise NpzError(f"{where}: refused, it holds pickled Python objects")
    declared = math.prod(shape) * dtype.itemsize
    if f.tell() + declared != stored_bytes:
        raise NpzError(
            f"{where}: not valid, it declares {shape} of {dtype} ({declared} bytes) "
            f"but stores {stored_bytes - f.tell()} bytes"
        )
    return shape, dtype
