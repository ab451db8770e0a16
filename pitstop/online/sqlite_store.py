"""Embedded online store in one SQLite file: the default for a single machine and for tests.

Table ``online_values(project, view, entity_key, event_us, created_us, value)`` with primary key
(project, view, entity_key); ``entity_key`` is the ``keys`` entity part and ``value`` a ``codec``
record, the same bytes the Redis store keeps. Table ``online_generation(project, generation)`` holds
each project's generation marker (a new file has none).

Invariants:
  * The write guard is the upsert's WHERE clause: a row is replaced only when the incoming
    (event_us, created_us) is not older, and SQLite runs each statement atomically under the
    database write lock, so concurrent writers (threads or processes) never clobber newer values.
  * One transaction per ``write`` call (``BEGIN IMMEDIATE``: takes the write lock up front, so two
    processes never deadlock upgrading read locks); other processes wait up to the busy timeout.
  * One connection per store, used under a lock: the store is safe to share between threads.
  * WAL journal: readers do not block the writer and vice versa.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa

from pitstop.errors import OnlineStoreError
from pitstop.online.base import ViewRead, ViewResult, WriteBatch, WriteResult, merge_reads
from pitstop.online.codec import layout_for
from pitstop.online.keys import encode_entity_parts
from pitstop.sqlite_wal import enable_wal

__all__ = ["SQLiteOnlineStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_values (
    project    TEXT    NOT NULL,
    view       TEXT    NOT NULL,
    entity_key BLOB    NOT NULL,
    event_us   INTEGER NOT NULL,
    created_us INTEGER NOT NULL,
    value      BLOB    NOT NULL,
    PRIMARY KEY (project, view, entity_key)
) WITHOUT ROWID
"""
_GENERATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_generation (
    project    TEXT NOT NULL PRIMARY KEY,
    generation TEXT NOT NULL
)
"""
_UPSERT = """
INSERT INTO online_values (project, view, entity_key, event_us, created_us, value)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (project, view, entity_key) DO UPDATE SET
    event_us = excluded.event_us, created_us = excluded.created_us, value = excluded.value
WHERE excluded.event_us > online_values.event_us
   OR (excluded.event_us = online_values.event_us AND excluded.created_us >= online_values.created_us)
"""
# Rows encoded at a time inside a write transaction: bounds memory for million-row writes.
_ROWS_PER_STATEMENT = 50_000
# Stay well below SQLite's bound-parameter limit (32766 in current builds, 999 in old ones).
_KEYS_PER_QUERY = 900


class SQLiteOnlineStore:
    """Online store in a SQLite file; several projects may share one file.

    Args:
        path: the database file (created with its table on first use; parent directory must exist).
        project: the feature-repo project whose rows this store reads and writes.
        busy_timeout: seconds to wait for another process's write lock before failing.
    """

    def __init__(self, path: str | Path, project: str, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.project = project
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            with self._lock:
                enable_wal(self._conn, busy_timeout)
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.execute(_SCHEMA)
                self._conn.execute(_GENERATION_SCHEMA)
        except sqlite3.Error as exc:
            raise OnlineStoreError(f"SQLite online store {self.path}: cannot open: {exc}") from exc

    def __repr__(self) -> str:
        return f"SQLiteOnlineStore({str(self.path)!r}, project={self.project!r})"

    @contextmanager
    def _connection(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise OnlineStoreError(f"SQLite online store {self.path}: {what} failed: {exc}") from exc

    def write(self, batches: list[WriteBatch]) -> WriteResult:
        """Upsert every row through the guard, all batches in one transaction; see ``OnlineStore.write``.

        Raises:
            OnlineStoreError: a value cannot be stored as its dtype, or the database is locked
                beyond the busy timeout or cannot be written (nothing of this call is stored then).
        """
        for batch in batches:
            batch.check()
        total = sum(len(batch) for batch in batches)
        if total == 0:
            return WriteResult()
        with self._connection("guarded write") as conn:
            before = conn.total_changes
            conn.execute("BEGIN IMMEDIATE")
            try:
                for batch in batches:
                    for start in range(0, len(batch), _ROWS_PER_STATEMENT):
                        conn.executemany(_UPSERT, self._rows(batch, start, min(start + _ROWS_PER_STATEMENT, len(batch))))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            written = conn.total_changes - before
        return WriteResult(written=written, stale=total - written)

    def _rows(self, batch: WriteBatch, start: int, stop: int) -> Iterator[tuple[object, ...]]:
        """Upsert parameters for rows ``start:stop`` of ``batch`` (encoded per slice to bound memory)."""
        n = stop - start
        records = layout_for(batch.view.features).encode(
            batch.values.slice(start, n), batch.event_us[start:stop], batch.created_us[start:stop]
        )
        parts = encode_entity_parts(batch.keys.slice(start, n), batch.view.join_keys)
        project, view = self.project, batch.view.name
        events = np.asarray(batch.event_us[start:stop], dtype=np.int64).tolist()
        createds = np.asarray(batch.created_us[start:stop], dtype=np.int64).tolist()
        for part, event, created, record in zip(parts, events, createds, records.to_list(), strict=True):
            yield project, view, part, event, created, record

    def read(self, entity_keys: pa.Table, reads: list[ViewRead]) -> dict[str, ViewResult]:
        """Latest values per entity row and view (one query per view and 900 distinct keys).

        Raises:
            EntityKeyError: a join key is missing from ``entity_keys``, null, or of an unsupported type.
            FeatureRefError: a requested feature is not in its view's schema.
            OnlineStoreError: the database cannot be read.
        """
        views = merge_reads(reads)
        n = entity_keys.num_rows
        if n == 0:
            return {name: ViewResult.empty(n, features) for name, (_, features) in views.items()}
        parts_by_keys: dict[tuple[str, ...], list[bytes]] = {}
        out: dict[str, ViewResult] = {}
        with self._connection("read") as conn:
            for name, (schema, features) in views.items():
                join_keys = tuple(sorted(schema.join_keys))
                if join_keys not in parts_by_keys:
                    parts_by_keys[join_keys] = encode_entity_parts(entity_keys, join_keys)
                parts = parts_by_keys[join_keys]
                distinct = list(dict.fromkeys(parts))
                stored: dict[bytes, bytes] = {}
                for start in range(0, len(distinct), _KEYS_PER_QUERY):
                    chunk = distinct[start : start + _KEYS_PER_QUERY]
                    sql = (
                        "SELECT entity_key, value FROM online_values WHERE project = ? AND view = ? "
                        f"AND entity_key IN ({','.join('?' * len(chunk))})"
                    )
                    stored.update(conn.execute(sql, (self.project, name, *chunk)).fetchall())
                decoded = layout_for(schema.features).decode([stored.get(p) for p in parts], features)
                out[name] = ViewResult(found=decoded.found, event_us=decoded.event_us, values=decoded.values)
        return out

    def delete_views(self, views: list[str]) -> None:
        """Remove every stored value of the named views in this project.

        Raises:
            OnlineStoreError: the database cannot be written.
        """
        if not views:
            return
        with self._connection("deleting views") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "DELETE FROM online_values WHERE project = ? AND view = ?", [(self.project, v) for v in views]
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def generation(self, create: bool = False) -> str | None:
        """This project's generation marker; see ``OnlineStore.generation``.

        Raises:
            OnlineStoreError: the database cannot be read or written.
        """
        with self._connection("reading the store generation") as conn:
            if create:
                conn.execute("INSERT OR IGNORE INTO online_generation (project, generation) VALUES (?, ?)",
                             (self.project, secrets.token_hex(16)))
            row = conn.execute("SELECT generation FROM online_generation WHERE project = ?", (self.project,)).fetchone()
        return None if row is None else str(row[0])

    def ping(self) -> None:
        """Raise OnlineStoreError naming the file when the database cannot be queried."""
        with self._connection("ping") as conn:
            conn.execute("SELECT count(*) FROM online_values WHERE 0").fetchone()

    def close(self) -> None:
        """Close the connection; later calls raise OnlineStoreError."""
        with self._lock:
            self._conn.close()
