"""The folders that streamed and pushed rows are appended to, and making renames in them durable."""

from __future__ import annotations

import os
from pathlib import Path

from pitstop.definitions import ParquetSource

__all__ = ["append_folder", "fsync_path"]


def append_folder(source: ParquetSource, root: Path) -> Path | None:
    """``source``'s folder (relative paths resolved against ``root``), or None when its path is a file or a glob."""
    path = Path(source.path).expanduser()
    path = path if path.is_absolute() else root / path
    if path.suffix == ".parquet" or any(ch in source.path for ch in "*?["):
        return None
    return path


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a directory's entries (so a rename in it survives a power cut), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
