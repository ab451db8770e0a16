"""The folders that streamed and pushed rows are appended to, and making renames in them durable."""

from __future__ import annotations

import os
from pathlib import Path

from pitstop.definitions import ParquetSource
from pitstop.storage import resolve_path

__all__ = ["append_folder", "fsync_path"]


def append_folder(source: ParquetSource, root: Path | str) -> Path | None:
    """``source``'s folder (relative paths resolved against ``root``), or None when its path is a file, a
    glob, or in object storage (appends to object storage go to Delta tables: use a DeltaSource)."""
    path = resolve_path(source.path, root)
    if isinstance(path, str):
        return None
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
