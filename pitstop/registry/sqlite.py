"""SQLiteRegistry: the registry in one SQLite file (WAL mode, so readers never block the writer)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pitstop.errors import RegistryError
from pitstop.registry.base import (
    ApiKeyRecord,
    ApplyRecord,
    DatasetRecord,
    MaterializationRun,
    ModelAliasRecord,
    ModelVersionRecord,
    Specs,
    Watermark,
    dataset_body,
    dataset_from_body,
)
from pitstop.sqlite_wal import enable_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    updated_version INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE IF NOT EXISTS applies (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    applied_at TEXT NOT NULL,
    summary TEXT NOT NULL,
    snapshot TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS watermarks (
    view TEXT PRIMARY KEY,
    watermark TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    generation TEXT,
    resets INTEGER NOT NULL DEFAULT 0,
    reset_reason TEXT
);
CREATE TABLE IF NOT EXISTS materialization_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    view TEXT NOT NULL,
    start TEXT NOT NULL,
    "end" TEXT NOT NULL,
    rows INTEGER NOT NULL,
    stale INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS model_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    flavor TEXT NOT NULL,
    artifact_path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    feature_service TEXT,
    signature TEXT NOT NULL,
    training_fingerprint TEXT,
    metrics TEXT NOT NULL,
    created_at TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    serving TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS model_aliases (
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (name, alias)
);
CREATE TABLE IF NOT EXISTS locks (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    digest TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;
CREATE TABLE IF NOT EXISTS datasets (
    dataset_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL
);
"""


class SQLiteRegistry:
    """Registry backed by a SQLite file; safe to share between threads of one process and between processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
            enable_wal(self._conn, 30)
            self._conn.executescript(_SCHEMA)
            _migrate(self._conn)
        except (OSError, sqlite3.Error) as exc:
            raise RegistryError(f"cannot open the registry at {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    def version(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT COALESCE(MAX(version), 0) FROM applies").fetchone()
        return int(row[0])

    def load_specs(self) -> Specs:
        with self._lock:
            rows = self._conn.execute("SELECT kind, name, spec FROM objects ORDER BY kind, name").fetchall()
        specs: Specs = {}
        for kind, name, spec in rows:
            specs.setdefault(kind, {})[name] = json.loads(spec)
        return specs

    def apply_specs(self, specs: Specs, summary: dict[str, Any]) -> int:
        now = datetime.now(UTC).isoformat()
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                cur = self._conn.execute(
                    "INSERT INTO applies (applied_at, summary, snapshot) VALUES (?, ?, ?)",
                    (now, json.dumps(summary), json.dumps(specs, sort_keys=True)),
                )
                version = int(cur.lastrowid or 0)
                self._conn.execute("DELETE FROM objects")
                self._conn.executemany(
                    "INSERT INTO objects (kind, name, spec, updated_version) VALUES (?, ?, ?, ?)",
                    [
                        (kind, name, json.dumps(spec, sort_keys=True), version)
                        for kind, table in specs.items()
                        for name, spec in table.items()
                    ],
                )
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                raise RegistryError(f"apply to the registry at {self.path} failed and was rolled back: {exc}") from exc
        return version

    def history(self, limit: int = 50) -> list[ApplyRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT version, applied_at, summary FROM applies ORDER BY version DESC LIMIT ?", (limit,)
            ).fetchall()
        return [ApplyRecord(v, datetime.fromisoformat(t), json.loads(s)) for v, t, s in rows]

    def watermarks(self) -> dict[str, datetime]:
        with self._lock:
            rows = self._conn.execute("SELECT view, watermark FROM watermarks WHERE reset_reason IS NULL").fetchall()
        return {view: datetime.fromisoformat(value) for view, value in rows}

    def watermark_states(self) -> dict[str, Watermark]:
        with self._lock:
            rows = self._conn.execute("SELECT view, watermark, generation, resets, reset_reason FROM watermarks").fetchall()
        return {view: Watermark(None if reason is not None else datetime.fromisoformat(value), generation, int(resets),
                                reason)
                for view, value, generation, resets, reason in rows}

    def set_watermark(self, view: str, value: datetime, *, generation: str | None = None,
                      resets: int | None = None) -> bool:
        args = (view, value.astimezone(UTC).isoformat(), datetime.now(UTC).isoformat(), generation)
        upsert = ("INSERT INTO watermarks (view, watermark, updated_at, generation) VALUES (?, ?, ?, ?) "
                  "ON CONFLICT (view) DO UPDATE SET watermark = excluded.watermark, updated_at = excluded.updated_at, "
                  "generation = excluded.generation, reset_reason = NULL")
        with self._lock:
            if resets is None:
                cur = self._conn.execute(upsert, args)
            elif resets == 0:  # a view without a state, or one never reset: insert or update while still 0
                cur = self._conn.execute(upsert + " WHERE watermarks.resets = 0", args)
            else:
                cur = self._conn.execute(
                    "UPDATE watermarks SET watermark = ?, updated_at = ?, generation = ?, reset_reason = NULL "
                    "WHERE view = ? AND resets = ?", (*args[1:], view, resets))
        return cur.rowcount > 0

    def reset_watermarks(self, views: list[str], reason: str) -> None:
        now = datetime.now(UTC).isoformat()
        with self._lock:
            self._conn.executemany(
                "INSERT INTO watermarks (view, watermark, updated_at, generation, resets, reset_reason) "
                "VALUES (?, ?, ?, NULL, 1, ?) ON CONFLICT (view) DO UPDATE SET updated_at = excluded.updated_at, "
                "generation = NULL, resets = watermarks.resets + 1, reset_reason = excluded.reset_reason",
                [(view, _NO_WATERMARK, now, reason) for view in views],
            )

    def delete_watermarks(self, views: list[str]) -> None:
        with self._lock:
            self._conn.executemany("DELETE FROM watermarks WHERE view = ?", [(view,) for view in views])

    def record_run(self, run: MaterializationRun) -> None:
        with self._lock:
            self._conn.execute(
                'INSERT INTO materialization_runs (view, start, "end", rows, stale, status, error, started_at, finished_at, '
                "reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run.view, run.start.isoformat(), run.end.isoformat(), run.rows, run.stale, run.status, run.error,
                 run.started_at.isoformat(), run.finished_at.isoformat(), run.reason),
            )

    def runs(self, limit: int = 50) -> list[MaterializationRun]:
        with self._lock:
            rows = self._conn.execute(
                'SELECT view, start, "end", rows, stale, status, error, started_at, finished_at, reason '
                "FROM materialization_runs ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [
            MaterializationRun(v, datetime.fromisoformat(s), datetime.fromisoformat(e), r, st, status, err,
                               datetime.fromisoformat(a), datetime.fromisoformat(b), reason)
            for v, s, e, r, st, status, err, a, b, reason in rows
        ]

    def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        now = time.time()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute("SELECT owner, expires_at FROM locks WHERE name = ?", (name,)).fetchone()
                if row is not None and row[0] != owner and row[1] > now:
                    self._conn.execute("ROLLBACK")
                    return False
                self._conn.execute(
                    "INSERT INTO locks (name, owner, expires_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at",
                    (name, owner, now + ttl_seconds),
                )
                self._conn.execute("COMMIT")
                return True
            except sqlite3.Error:
                self._conn.execute("ROLLBACK")
                raise

    def release_lock(self, name: str, owner: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))

    def add_model_version(self, record: ModelVersionRecord) -> int:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                row = self._conn.execute(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = ?", (record.name,)
                ).fetchone()
                version = int(row[0])
                self._conn.execute(
                    f"INSERT INTO model_versions ({_MODEL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (record.name, version, record.flavor, record.artifact_path.replace("{version}", str(version)),
                     record.sha256, record.feature_service,
                     json.dumps(record.signature), record.training_fingerprint,
                     json.dumps(record.metrics, sort_keys=True), record.created_at.astimezone(UTC).isoformat(),
                     record.description, json.dumps(record.serving, sort_keys=True), record.dataset_id,
                     json.dumps(record.origin, sort_keys=True)),
                )
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                raise RegistryError(f"cannot register model {record.name!r} in {self.path}: {exc}") from exc
        return version

    def model_versions(self, name: str | None = None) -> list[ModelVersionRecord]:
        query = f"SELECT {_MODEL_COLUMNS} FROM model_versions"
        args: tuple[Any, ...] = ()
        if name is not None:
            query += " WHERE name = ?"
            args = (name,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY name, version", args).fetchall()
        return [_model_record(row) for row in rows]

    def model_version_page(self, name: str, offset: int, limit: int) -> tuple[list[ModelVersionRecord], int]:
        with self._lock:
            rows = self._conn.execute(f"SELECT {_MODEL_COLUMNS} FROM model_versions WHERE name = ? "
                                      "ORDER BY version DESC LIMIT ? OFFSET ?", (name, limit, offset)).fetchall()
            total = self._conn.execute("SELECT COUNT(*) FROM model_versions WHERE name = ?", (name,)).fetchone()[0]
        return [_model_record(row) for row in rows], int(total)

    def model_summaries(self, offset: int, limit: int) -> tuple[list[tuple[str, int, int]], int]:
        with self._lock:
            rows = self._conn.execute("SELECT name, COUNT(*), MAX(version) FROM model_versions GROUP BY name "
                                      "ORDER BY name LIMIT ? OFFSET ?", (limit, offset)).fetchall()
            total = self._conn.execute("SELECT COUNT(DISTINCT name) FROM model_versions").fetchone()[0]
        return [(str(n), int(c), int(v)) for n, c, v in rows], int(total)

    def model_version(self, name: str, version: int) -> ModelVersionRecord | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_MODEL_COLUMNS} FROM model_versions WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
        return None if row is None else _model_record(row)

    def set_model_alias(self, name: str, alias: str, version: int) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO model_aliases (name, alias, version, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
                (name, alias, version, datetime.now(UTC).isoformat()),
            )

    def model_aliases(self, name: str | None = None) -> list[ModelAliasRecord]:
        query = "SELECT name, alias, version, updated_at FROM model_aliases"
        args: tuple[Any, ...] = ()
        if name is not None:
            query += " WHERE name = ?"
            args = (name,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY name, alias", args).fetchall()
        return [ModelAliasRecord(n, a, int(v), datetime.fromisoformat(t)) for n, a, v, t in rows]

    # --- API keys ---------------------------------------------------------------------------------

    def add_api_key(self, record: ApiKeyRecord) -> None:
        try:
            with self._lock:
                self._conn.execute(
                    "INSERT INTO api_keys (key_id, name, scopes, digest, created_at) VALUES (?, ?, ?, ?, ?)",
                    (record.key_id, record.name, json.dumps(list(record.scopes)), record.digest,
                     record.created_at.astimezone(UTC).isoformat()))
        except sqlite3.IntegrityError:
            raise RegistryError(f"an active API key named {record.name!r} exists; revoke it first "
                                f"(`pitstop auth revoke {record.name}`) or choose another name") from None

    def add_dataset(self, record: DatasetRecord) -> None:
        with self._lock, self._conn:
            self._conn.execute("INSERT OR IGNORE INTO datasets (dataset_id, created_at, body) VALUES (?, ?, ?)",
                               (record.dataset_id, record.created_at.astimezone(UTC).isoformat(),
                                dataset_body(record)))

    def dataset(self, dataset_id: str) -> DatasetRecord | None:
        with self._lock:
            row = self._conn.execute("SELECT created_at, body FROM datasets WHERE dataset_id = ?",
                                     (dataset_id,)).fetchone()
        return None if row is None else dataset_from_body(dataset_id, datetime.fromisoformat(row[0]), row[1])

    def api_keys(self) -> list[ApiKeyRecord]:
        with self._lock:
            rows = self._conn.execute("SELECT key_id, name, scopes, digest, created_at, last_used_at, revoked_at "
                                      "FROM api_keys ORDER BY created_at").fetchall()
        return [ApiKeyRecord(k, n, tuple(json.loads(s)), d, _time(c), _time(u), _time(r))  # type: ignore[arg-type]
                for k, n, s, d, c, u, r in rows]

    def revoke_api_key(self, name_or_id: str, when: datetime) -> int:
        with self._lock:
            cur = self._conn.execute("UPDATE api_keys SET revoked_at = ? WHERE (name = ? OR key_id = ?) "
                                     "AND revoked_at IS NULL", (when.astimezone(UTC).isoformat(), name_or_id, name_or_id))
        return cur.rowcount

    def touch_api_keys(self, used: Mapping[str, datetime]) -> None:
        with self._lock:
            self._conn.executemany(
                "UPDATE api_keys SET last_used_at = ? WHERE key_id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
                [(t.astimezone(UTC).isoformat(), k, t.astimezone(UTC).isoformat()) for k, t in used.items()])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a registry file made by an older pitstop up to the current schema (only ever adds columns)."""
    _add_column(conn, "model_versions", "serving", "TEXT NOT NULL DEFAULT '{}'")
    _add_column(conn, "model_versions", "dataset_id", "TEXT")
    _add_column(conn, "model_versions", "origin", "TEXT")
    _add_column(conn, "watermarks", "generation", "TEXT")
    _add_column(conn, "watermarks", "resets", "INTEGER NOT NULL DEFAULT 0")
    _add_column(conn, "watermarks", "reset_reason", "TEXT")
    _add_column(conn, "materialization_runs", "reason", "TEXT")


def _add_column(conn: sqlite3.Connection, table: str, column: str, declaration: str) -> None:
    if column in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
        return
    try:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    except sqlite3.OperationalError as exc:  # another process opening the same old file added it first
        if "duplicate column" not in str(exc):
            raise


_NO_WATERMARK = datetime(1970, 1, 1, tzinfo=UTC).isoformat()
"""Stored in place of a watermark for a view reset before it had one (never shown: reset rows have no value)."""


_MODEL_COLUMNS = ("name, version, flavor, artifact_path, sha256, feature_service, signature, training_fingerprint, "
                  "metrics, created_at, description, serving, dataset_id, origin")


def _model_record(row: tuple[Any, ...]) -> ModelVersionRecord:
    name, version, flavor, path, sha, service, signature, fingerprint, metrics, created, description, serving, ds, \
        origin = row
    return ModelVersionRecord(name, int(version), flavor, path, sha, service, json.loads(signature), fingerprint,
                              json.loads(metrics), datetime.fromisoformat(created), description, json.loads(serving),
                              ds, json.loads(origin or "{}"))
