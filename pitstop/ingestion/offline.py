"""Rolling, date-partitioned Parquet appends of streamed rows to a source's batch folder.

Layout: ``<batch_source.path>/<YYYY-MM-DD>/part-<UTC yyyymmddThhmmss>-<random>.parquet``, one file per
event date per roll. The offline engine reads a folder source recursively (``**/*.parquet``), so
training sets built afterwards include these rows. The date folders carry no ``key=value`` name on
purpose: DuckDB would otherwise add a hive-partition column to the scan.

Invariant (readers never see a partial file): a file is written under a hidden temporary name
that does not end in ``.parquet``, fsynced, then renamed into place (atomic on POSIX), and the
folder is fsynced so the rename survives a power cut.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pitstop.definitions import DeltaSource, ParquetSource
from pitstop.errors import IngestError, OfflineStoreError
from pitstop.offline.append_folder import append_folder, fsync_path
from pitstop.offline.delta_append import append_delta

__all__ = ["RollingDeltaWriter", "RollingParquetWriter", "batch_folder"]


def batch_folder(source: ParquetSource, root: Path | str, stream_source: str) -> Path:
    """The folder streamed rows of ``stream_source`` are appended to.

    Raises:
        IngestError: the batch source is one file or a glob (appends need a folder).
    """
    path = append_folder(source, root)
    if path is None:
        raise IngestError(f"Kafka source {stream_source!r}: its batch_source {source.name!r} path {source.path!r} "
                          "is a file or a glob; point it at a folder, which receives the streamed rows")
    return path


class _RowBuffer:
    """Decoded rows of one stream source waiting for the next roll."""

    def __init__(self) -> None:
        self._pending: list[pa.Table] = []
        self.rows = 0
        self.oldest: float | None = None
        """``time.monotonic()`` when the oldest buffered row arrived."""

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self.oldest is None:
            self.oldest = time.monotonic()
        self._pending.append(table)
        self.rows += table.num_rows

    def _buffered(self) -> pa.Table | None:
        return pa.concat_tables(self._pending).combine_chunks() if self._pending else None

    def _clear(self) -> None:
        self._pending.clear()
        self.rows = 0
        self.oldest = None


class RollingParquetWriter(_RowBuffer):
    """Buffers decoded rows of one stream source and writes them out as one file per event date.

    Args:
        folder: the batch source's folder.
        schema: the rows' Arrow schema (``StreamSchema.arrow_schema()``).
        ts_column: the event-time column (decides the date folder).
    """

    def __init__(self, folder: Path, schema: pa.Schema, ts_column: str) -> None:
        super().__init__()
        self.folder = folder
        self.schema = schema
        self.ts_column = ts_column

    def flush(self) -> list[Path]:
        """Write the buffered rows (one file per event date); the buffer is cleared only on success.

        Raises:
            OSError: the folder cannot be written (the caller retries; nothing is lost or half-visible).
        """
        table = self._buffered()
        if table is None:
            return []
        dates = pc.cast(table.column(self.ts_column), pa.date32())
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        written: list[Path] = []
        days = pc.unique(dates).to_pylist()
        for day in days:
            part = table if len(days) == 1 else table.filter(pc.equal(dates, pa.scalar(day, pa.date32())))
            folder = self.folder / day.isoformat()
            written.append(_write_atomically(part, folder, f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"))
        self._clear()
        return written


def _write_atomically(table: pa.Table, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    tmp = folder / f".{name}.tmp"
    try:
        pq.write_table(table, tmp, compression="zstd")
        fsync_path(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(folder)
    return target


class RollingDeltaWriter(_RowBuffer):
    """Buffers decoded rows of one stream source and appends them to its Delta table, one commit per roll.

    The same interface as ``RollingParquetWriter``; ``flush`` returns the table's location once per commit.
    """

    def __init__(self, source: DeltaSource, root: Path | str) -> None:
        super().__init__()
        self.source = source
        self.root = root

    def flush(self) -> list[Path]:
        """Commit the buffered rows; the buffer is cleared only on success.

        Raises:
            OSError: the commit failed (the caller retries; a failed commit is invisible to readers).
        """
        table = self._buffered()
        if table is None:
            return []
        try:
            append_delta(self.source, self.root, table)
        except OfflineStoreError as exc:  # retried like a disk failure
            raise OSError(str(exc)) from exc
        self._clear()
        return [Path(self.source.path)]
