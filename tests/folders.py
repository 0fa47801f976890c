"""Places on disk that the file tests need."""

from __future__ import annotations

import os
from pathlib import Path


def unwritable_folder(folder: Path) -> Path:
    """A folder that takes no new file: a read-only one made in `folder`, or /proc for root,
    whom no mode stops (no file can be created in /proc)."""
    if os.geteuid() == 0:
        return Path("/proc")
    readonly = folder / "read-only"
    readonly.mkdir()
    readonly.chmod(0o555)
    return readonly
