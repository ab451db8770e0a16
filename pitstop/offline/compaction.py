"""Compaction of the small Parquet files that streaming and push append to batch-source folders.

The ingester writes one file per event date every ``ingest.offline_roll_seconds`` (thousands a
day) and every push with ``to="online_and_offline"`` writes one more; scans of many small files
dominate training-set and materialization time. Compaction rewrites, per directory, every
``part-*.parquet`` and earlier ``compacted-*.parquet`` file older than ``min_age`` into one
``compacted-<utc stamp>-<random>.parquet``.

Invariants:
  * Nothing is lost: the new file is written under a hidden temporary name, fsynced and renamed
    into place (and the directory fsynced) before any input is deleted, and only the files that
    were read are deleted. A crash in between leaves exact duplicate rows, which change neither a
    point-in-time join nor materialization (equal rows give equal answers); the next run merges them.
  * Files younger than ``min_age`` are left alone, so a file being written or just renamed by an
    ingester is never touched; late events that land in an old date folder later are compacted
    by a later run.
  * Inputs are streamed file by file into the output, so memory stays at about one input file.
  * A file whose columns cannot be cast to the directory's first schema is left in place and
    reported, never dropped.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pitstop.definitions import DeltaSource, KafkaSource, PushSource
from pitstop.errors import OfflineStoreError
from pitstop.offline.append_folder import append_folder, fsync_path

__all__ = ["CompactionOutcome", "compact_folder", "compaction_targets"]

INPUT_PATTERNS = ("part-*.parquet", "compacted-*.parquet")
Progress = Callable[[str, int, int], None]


@dataclass
class CompactionOutcome:
    """What compaction did (or, in a dry run, would do) to one source's folder."""

    source: str
    folder: Path
    directories: int = 0
    files_before: int = 0
    files_after: int = 0
    rows: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)
    """Files left in place, each with the reason."""


def compaction_targets(sources: Mapping[str, object], root: Path | str, names: list[str] | None = None) -> dict[str, Path]:
    """Source name -> the folder that streaming or push appends to, for Kafka and Push sources.

    Raises:
        OfflineStoreError: a name is not a Kafka or Push source, or its batch source is not a folder.
    """
    appendable = {name: s for name, s in sources.items() if isinstance(s, KafkaSource | PushSource)}
    chosen = names or sorted(appendable)
    unknown = [n for n in chosen if n not in appendable]
    if unknown:
        raise OfflineStoreError(
            f"cannot compact {unknown[0]!r}: only Kafka and Push sources receive appended files "
            f"(these do: {', '.join(sorted(appendable)) or 'none'})"
        )
    out: dict[str, Path] = {}
    for name in chosen:
        batch = appendable[name].batch_source
        if isinstance(batch, DeltaSource):  # compacted by its own optimize (offline/delta_append.py)
            continue
        path = append_folder(batch, root)
        if path is None:
            raise OfflineStoreError(f"source {name!r}: batch source path {batch.path!r} is a file or a glob, not a folder")
        out[name] = path
    return out


def compact_folder(source: str, folder: Path, *, min_age: timedelta, dry_run: bool = False,
                   progress: Progress | None = None, now: float | None = None) -> CompactionOutcome:
    """Compact every directory under ``folder`` (itself included) holding two or more old inputs.

    Raises:
        OfflineStoreError: a file cannot be read or the output cannot be written; inputs of the
            directory being compacted stay in place (a half-written output is removed).
    """
    started = time.perf_counter()
    outcome = CompactionOutcome(source, folder)
    if not folder.exists():
        return outcome
    cutoff = (now if now is not None else time.time()) - min_age.total_seconds()
    groups: list[list[Path]] = []
    for directory in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        old = sorted(p for pattern in INPUT_PATTERNS for p in directory.glob(pattern)
                     if p.is_file() and p.stat().st_mtime < cutoff)
        if len(old) >= 2:
            groups.append(old)
    for done, files in enumerate(groups):
        if progress:
            progress(f"{source}: {files[0].parent.name}", done, len(groups))
        before = sum(p.stat().st_size for p in files)
        outcome.directories += 1
        outcome.files_before += len(files)
        outcome.bytes_before += before
        if dry_run:
            outcome.files_after += 1
            outcome.rows += sum(pq.ParquetFile(p).metadata.num_rows for p in files)
            continue
        rows, written, left = _merge(files)
        outcome.rows += rows
        outcome.files_after += 1 + len(left)
        outcome.bytes_after += written.stat().st_size + sum(p.stat().st_size for p, _ in left)
        outcome.skipped += [f"{p}: {why}" for p, why in left]
    if progress and groups:
        progress(f"{source}: done", len(groups), len(groups))
    outcome.seconds = time.perf_counter() - started
    return outcome


def _merge(files: list[Path]) -> tuple[int, Path, list[tuple[Path, str]]]:
    """Stream ``files`` into one new file next to them; delete the inputs that went in."""
    directory = files[0].parent
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = directory / f"compacted-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
    tmp = directory / f".{target.name}.tmp"
    merged: list[Path] = []
    left: list[tuple[Path, str]] = []
    rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        for path in files:
            try:
                table = pq.read_table(path)
            except (OSError, pa.ArrowException) as exc:
                raise OfflineStoreError(f"compaction: cannot read {path}: {exc}") from exc
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            elif table.schema != writer.schema:
                try:
                    table = table.select(writer.schema.names).cast(writer.schema)
                except (KeyError, pa.ArrowException) as exc:
                    left.append((path, f"columns differ from {merged[0].name} ({exc}); left in place"))
                    continue
            writer.write_table(table)
            merged.append(path)
            rows += table.num_rows
        assert writer is not None
        writer.close()
        writer = None
        fsync_path(tmp)
        os.replace(tmp, target)
        fsync_path(directory)
    except BaseException as exc:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OfflineStoreError(f"compaction of {directory} failed, inputs left in place: {exc}") from exc
        raise
    for path in merged:
        path.unlink(missing_ok=True)
    fsync_path(directory)
    return rows, target, left
