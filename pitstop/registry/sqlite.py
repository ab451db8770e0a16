"""SQLiteRegistry: the registry in one SQLite file (WAL mode, so readers never block the writer)."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pitstop.errors import RegistryError
from pitstop.registry.base import ApplyRecord, Specs

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
"""


class SQLiteRegistry:
    """Registry backed by a SQLite file; safe to share between threads of one process and between processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)
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

    def close(self) -> None:
        with self._lock:
            self._conn.close()
