"""PostgresRegistry: the registry in a PostgreSQL database, shared by every host of a deployment.

Invariants (the same as ``SQLiteRegistry``; the contract tests run both):

* Each project's rows carry a ``project`` column, so several projects share one database; tables
  are named ``pitstop_*`` so they can sit beside an application's own tables.
* ``apply_specs`` replaces a project's specs and appends its history row in one transaction. Apply
  numbers and model versions are allocated under a transaction-scoped advisory lock keyed by the
  project (and model name), so concurrent writers on any host get distinct, consecutive numbers.
* A lock is taken by one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` statement, which is atomic
  across connections; expiry is measured by the database server's clock, so hosts with skewed
  clocks still agree on who holds it.
* The schema is created on first use under an advisory lock, so processes starting at the same
  moment do not race on ``CREATE TABLE IF NOT EXISTS``.
* One connection per registry object, guarded by a thread lock (like the SQLite registry). A broken
  connection is dropped and reopened on the next call; read-only calls are retried once on a fresh
  connection, writes are not (a lost commit acknowledgement must not register a model twice).

Connection errors become ``RegistryError`` whose message names the URL without its password.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pitstop.errors import ConfigError, RegistryError
from pitstop.log import get_logger
from pitstop.redaction import redact_text, redact_url
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

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresRegistry", "redact_url"]

log = get_logger(__name__)
T = TypeVar("T")

CONNECT_TIMEOUT_SECONDS = 10

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS pitstop_api_keys (
        project TEXT NOT NULL,
        key_id TEXT NOT NULL,
        name TEXT NOT NULL,
        scopes TEXT NOT NULL,
        digest TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        last_used_at TIMESTAMPTZ,
        revoked_at TIMESTAMPTZ,
        PRIMARY KEY (project, key_id)
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS pitstop_api_keys_active_name ON pitstop_api_keys (project, name) "
    "WHERE revoked_at IS NULL",
    """CREATE TABLE IF NOT EXISTS pitstop_datasets (
        project TEXT NOT NULL,
        dataset_id TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (project, dataset_id)
    )""",
    """CREATE TABLE IF NOT EXISTS pitstop_objects (
        project TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        updated_version INTEGER NOT NULL,
        PRIMARY KEY (project, kind, name)
    )""",
    """CREATE TABLE IF NOT EXISTS pitstop_applies (
        project TEXT NOT NULL,
        version INTEGER NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL,
        summary TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        PRIMARY KEY (project, version)
    )""",
    """CREATE TABLE IF NOT EXISTS pitstop_watermarks (
        project TEXT NOT NULL,
        view TEXT NOT NULL,
        watermark TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (project, view)
    )""",
    """CREATE TABLE IF NOT EXISTS pitstop_materialization_runs (
        id BIGSERIAL PRIMARY KEY,
        project TEXT NOT NULL,
        view TEXT NOT NULL,
        start_ts TIMESTAMPTZ NOT NULL,
        end_ts TIMESTAMPTZ NOT NULL,
        rows BIGINT NOT NULL,
        stale BIGINT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS pitstop_materialization_runs_project ON pitstop_materialization_runs (project, id)",
    """CREATE TABLE IF NOT EXISTS pitstop_model_versions (
        project TEXT NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        flavor TEXT NOT NULL,
        artifact_path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        feature_service TEXT,
        signature TEXT NOT NULL,
        training_fingerprint TEXT,
        metrics TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        serving TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (project, name, version)
    )""",
    """CREATE TABLE IF NOT EXISTS pitstop_model_aliases (
        project TEXT NOT NULL,
        name TEXT NOT NULL,
        alias TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (project, name, alias)
    )""",
    """CREATE TABLE IF NOT EXISTS pitstop_locks (
        project TEXT NOT NULL,
        name TEXT NOT NULL,
        owner TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (project, name)
    )""",
]

_ADDED_COLUMNS = [
    # (table, column, declaration): columns newer than the tables, added to older databases on connect
    ("pitstop_watermarks", "generation", "TEXT"),
    ("pitstop_watermarks", "resets", "INTEGER NOT NULL DEFAULT 0"),
    ("pitstop_watermarks", "reset_reason", "TEXT"),
    ("pitstop_materialization_runs", "reason", "TEXT"),
    ("pitstop_model_versions", "dataset_id", "TEXT"),
    ("pitstop_model_versions", "origin", "TEXT"),
]

_MODEL_COLUMNS = ("name, version, flavor, artifact_path, sha256, feature_service, signature, training_fingerprint, "
                  "metrics, created_at, description, serving, dataset_id, origin")


def _add_columns(conn: psycopg.Connection[Any]) -> None:
    """Add ``_ADDED_COLUMNS`` missing from tables made by an older pitstop (ALTER only when missing: it locks)."""
    present = set(conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
        (sorted({table for table, _, _ in _ADDED_COLUMNS}),)).fetchall())
    for table, column, declaration in _ADDED_COLUMNS:
        if (table, column) not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {declaration}")


def _lock_key(*parts: str) -> int:
    """A signed 64-bit advisory-lock key for ``parts`` (stable across processes and hosts)."""
    digest = hashlib.blake2b("\x1f".join(("pitstop", *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresRegistry:
    """Registry in a PostgreSQL database; one project's rows, next to any other project's.

    Args:
        url: ``postgresql://user[:password]@host[:port]/database[?param=value]``. A password may
            also come from libpq's usual sources (``PGPASSWORD``, ``~/.pgpass``).
        project: the feature-repo project whose rows this registry reads and writes.

    Raises:
        ConfigError: the ``psycopg`` package is not installed.
        RegistryError: the database cannot be reached or the schema cannot be created.
    """

    def __init__(self, url: str, project: str) -> None:
        try:
            import psycopg  # noqa: F401  (imported here so the SQLite default never loads it)
        except ModuleNotFoundError as exc:
            if exc.name != "psycopg":
                raise
            raise ConfigError(
                "the registry is a PostgreSQL URL but psycopg is not installed; "
                "install it with: pip install 'pitstop[postgres]'"
            ) from None
        self.url = url
        self.project = project
        self.shown_url = redact_url(url)
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        with self._lock:
            self._connection()

    # --- connection handling ---------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                   application_name="pitstop")
        except psycopg.Error as exc:
            raise RegistryError(f"cannot connect to the PostgreSQL registry at {self.shown_url}: "
                                f"{self._scrub(exc)}") from None
        try:
            conn.execute("SET TIME ZONE 'UTC'")
            with conn.transaction():
                # CREATE TABLE IF NOT EXISTS races with itself; the first process creates, the rest wait
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("schema"),))
                for statement in _SCHEMA:
                    conn.execute(statement)
                _add_columns(conn)
        except psycopg.Error as exc:
            conn.close()
            raise RegistryError(f"cannot create the registry tables in {self.shown_url}: {self._scrub(exc)}") from None
        return conn

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def _scrub(self, exc: BaseException) -> str:
        return redact_text(str(exc).strip(), self.url)

    def _run(self, what: str, work: Callable[[psycopg.Connection[Any]], T], *, read_only: bool = False) -> T:
        """Run ``work`` on the connection under the thread lock; map database errors to RegistryError."""
        import psycopg

        with self._lock:
            for attempt in range(2):
                conn = self._connection()
                try:
                    return work(conn)
                except psycopg.Error as exc:
                    broken = conn.broken or conn.closed
                    if broken:
                        conn.close()
                        self._conn = None
                    if broken and read_only and attempt == 0:
                        log.warning("registry connection to %s was lost; reconnecting", self.shown_url)
                        continue
                    raise RegistryError(f"{what} failed in the PostgreSQL registry at {self.shown_url}: "
                                        f"{self._scrub(exc)}") from exc
        raise AssertionError("unreachable")

    @contextmanager
    def _locked_transaction(self, conn: psycopg.Connection[Any], *key: str) -> Iterator[psycopg.Cursor[Any]]:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(self.project, *key),))
            yield cur

    # --- definitions -----------------------------------------------------------------------------

    def version(self) -> int:
        def work(conn: psycopg.Connection[Any]) -> int:
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM pitstop_applies WHERE project = %s",
                               (self.project,)).fetchone()
            return int(row[0]) if row else 0

        return self._run("reading the registry version", work, read_only=True)

    def load_specs(self) -> Specs:
        def work(conn: psycopg.Connection[Any]) -> Specs:
            rows = conn.execute("SELECT kind, name, spec FROM pitstop_objects WHERE project = %s ORDER BY kind, name",
                                (self.project,)).fetchall()
            specs: Specs = {}
            for kind, name, spec in rows:
                specs.setdefault(kind, {})[name] = json.loads(spec)
            return specs

        return self._run("reading definitions", work, read_only=True)

    def apply_specs(self, specs: Specs, summary: dict[str, Any]) -> int:
        def work(conn: psycopg.Connection[Any]) -> int:
            with self._locked_transaction(conn, "apply") as cur:
                cur.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM pitstop_applies WHERE project = %s",
                            (self.project,))
                version = int(cur.fetchone()[0])  # type: ignore[index]
                cur.execute(
                    "INSERT INTO pitstop_applies (project, version, applied_at, summary, snapshot) "
                    "VALUES (%s, %s, now(), %s, %s)",
                    (self.project, version, json.dumps(summary), json.dumps(specs, sort_keys=True)),
                )
                cur.execute("DELETE FROM pitstop_objects WHERE project = %s", (self.project,))
                cur.executemany(
                    "INSERT INTO pitstop_objects (project, kind, name, spec, updated_version) VALUES (%s, %s, %s, %s, %s)",
                    [(self.project, kind, name, json.dumps(spec, sort_keys=True), version)
                     for kind, table in specs.items() for name, spec in table.items()],
                )
            return version

        return self._run("apply (rolled back)", work)

    def history(self, limit: int = 50) -> list[ApplyRecord]:
        def work(conn: psycopg.Connection[Any]) -> list[ApplyRecord]:
            rows = conn.execute(
                "SELECT version, applied_at, summary FROM pitstop_applies WHERE project = %s "
                "ORDER BY version DESC LIMIT %s", (self.project, limit)).fetchall()
            return [ApplyRecord(int(v), t, json.loads(s)) for v, t, s in rows]

        return self._run("reading apply history", work, read_only=True)

    # --- materialization -------------------------------------------------------------------------

    def watermarks(self) -> dict[str, datetime]:
        def work(conn: psycopg.Connection[Any]) -> dict[str, datetime]:
            rows = conn.execute("SELECT view, watermark FROM pitstop_watermarks WHERE project = %s "
                                "AND reset_reason IS NULL", (self.project,)).fetchall()
            return dict(rows)

        return self._run("reading watermarks", work, read_only=True)

    def watermark_states(self) -> dict[str, Watermark]:
        def work(conn: psycopg.Connection[Any]) -> dict[str, Watermark]:
            rows = conn.execute("SELECT view, watermark, generation, resets, reset_reason FROM pitstop_watermarks "
                                "WHERE project = %s", (self.project,)).fetchall()
            return {view: Watermark(None if reason is not None else value, generation, int(resets), reason)
                    for view, value, generation, resets, reason in rows}

        return self._run("reading watermarks", work, read_only=True)

    def set_watermark(self, view: str, value: datetime, *, generation: str | None = None,
                      resets: int | None = None) -> bool:
        args = (self.project, view, value.astimezone(UTC), generation)
        upsert = ("INSERT INTO pitstop_watermarks AS w (project, view, watermark, updated_at, generation) "
                  "VALUES (%s, %s, %s, now(), %s) ON CONFLICT (project, view) DO UPDATE SET "
                  "watermark = EXCLUDED.watermark, updated_at = EXCLUDED.updated_at, generation = EXCLUDED.generation, "
                  "reset_reason = NULL")

        def work(conn: psycopg.Connection[Any]) -> bool:
            if resets is None:
                cur = conn.execute(upsert, args)
            elif resets == 0:  # a view without a state, or one never reset: insert or update while still 0
                cur = conn.execute(upsert + " WHERE w.resets = 0", args)
            else:
                cur = conn.execute("UPDATE pitstop_watermarks SET watermark = %s, updated_at = now(), generation = %s, "
                                   "reset_reason = NULL WHERE project = %s AND view = %s AND resets = %s",
                                   (value.astimezone(UTC), generation, self.project, view, resets))
            return cur.rowcount > 0

        return self._run("moving a watermark", work)

    def reset_watermarks(self, views: list[str], reason: str) -> None:
        def work(conn: psycopg.Connection[Any]) -> None:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO pitstop_watermarks AS w (project, view, watermark, updated_at, generation, resets, "
                    "reset_reason) VALUES (%s, %s, 'epoch', now(), NULL, 1, %s) ON CONFLICT (project, view) DO UPDATE "
                    "SET updated_at = EXCLUDED.updated_at, generation = NULL, resets = w.resets + 1, "
                    "reset_reason = EXCLUDED.reset_reason",
                    [(self.project, view, reason) for view in views])

        self._run("resetting watermarks", work)

    def delete_watermarks(self, views: list[str]) -> None:
        self._run("deleting watermarks", lambda conn: conn.execute(
            "DELETE FROM pitstop_watermarks WHERE project = %s AND view = ANY(%s)", (self.project, list(views))))

    def record_run(self, run: MaterializationRun) -> None:
        self._run("recording a materialization run", lambda conn: conn.execute(
            "INSERT INTO pitstop_materialization_runs "
            "(project, view, start_ts, end_ts, rows, stale, status, error, started_at, finished_at, reason) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (self.project, run.view, run.start, run.end, run.rows, run.stale, run.status, run.error,
             run.started_at, run.finished_at, run.reason)))

    def runs(self, limit: int = 50) -> list[MaterializationRun]:
        def work(conn: psycopg.Connection[Any]) -> list[MaterializationRun]:
            rows = conn.execute(
                "SELECT view, start_ts, end_ts, rows, stale, status, error, started_at, finished_at, reason "
                "FROM pitstop_materialization_runs WHERE project = %s ORDER BY id DESC LIMIT %s",
                (self.project, limit)).fetchall()
            return [MaterializationRun(v, s, e, int(r), int(st), status, err, a, b, reason)
                    for v, s, e, r, st, status, err, a, b, reason in rows]

        return self._run("reading materialization runs", work, read_only=True)

    # --- locks -----------------------------------------------------------------------------------

    def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        def work(conn: psycopg.Connection[Any]) -> bool:
            row = conn.execute(
                "INSERT INTO pitstop_locks AS l (project, name, owner, expires_at) "
                "VALUES (%s, %s, %s, clock_timestamp() + make_interval(secs => %s)) "
                "ON CONFLICT (project, name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at "
                "WHERE l.owner = EXCLUDED.owner OR l.expires_at <= clock_timestamp() "
                "RETURNING owner",
                (self.project, name, owner, float(ttl_seconds))).fetchone()
            return row is not None

        return self._run(f"taking lock {name!r}", work)

    def release_lock(self, name: str, owner: str) -> None:
        self._run(f"releasing lock {name!r}", lambda conn: conn.execute(
            "DELETE FROM pitstop_locks WHERE project = %s AND name = %s AND owner = %s", (self.project, name, owner)))

    # --- models ----------------------------------------------------------------------------------

    def add_model_version(self, record: ModelVersionRecord) -> int:
        def work(conn: psycopg.Connection[Any]) -> int:
            with self._locked_transaction(conn, "model", record.name) as cur:
                cur.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM pitstop_model_versions "
                            "WHERE project = %s AND name = %s", (self.project, record.name))
                version = int(cur.fetchone()[0])  # type: ignore[index]
                cur.execute(
                    f"INSERT INTO pitstop_model_versions (project, {_MODEL_COLUMNS}) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (self.project, record.name, version, record.flavor,
                     record.artifact_path.replace("{version}", str(version)), record.sha256, record.feature_service,
                     json.dumps(record.signature), record.training_fingerprint,
                     json.dumps(record.metrics, sort_keys=True), record.created_at.astimezone(UTC),
                     record.description, json.dumps(record.serving, sort_keys=True), record.dataset_id,
                     json.dumps(record.origin, sort_keys=True)),
                )
            return version

        return self._run(f"registering model {record.name!r}", work)

    def model_versions(self, name: str | None = None) -> list[ModelVersionRecord]:
        query = f"SELECT {_MODEL_COLUMNS} FROM pitstop_model_versions WHERE project = %s"
        args: tuple[Any, ...] = (self.project,)
        if name is not None:
            query += " AND name = %s"
            args += (name,)

        def work(conn: psycopg.Connection[Any]) -> list[ModelVersionRecord]:
            return [_model_record(row) for row in conn.execute(query + " ORDER BY name, version", args).fetchall()]

        return self._run("reading model versions", work, read_only=True)

    def model_version_page(self, name: str, offset: int, limit: int) -> tuple[list[ModelVersionRecord], int]:
        def work(conn: psycopg.Connection[Any]) -> tuple[list[ModelVersionRecord], int]:
            rows = conn.execute(f"SELECT {_MODEL_COLUMNS} FROM pitstop_model_versions WHERE project = %s AND name = %s "
                                "ORDER BY version DESC LIMIT %s OFFSET %s", (self.project, name, limit, offset)).fetchall()
            total = conn.execute("SELECT COUNT(*) FROM pitstop_model_versions WHERE project = %s AND name = %s",
                                 (self.project, name)).fetchone()
            return [_model_record(row) for row in rows], int(total[0]) if total else 0

        return self._run("reading model versions", work, read_only=True)

    def model_summaries(self, offset: int, limit: int) -> tuple[list[tuple[str, int, int]], int]:
        def work(conn: psycopg.Connection[Any]) -> tuple[list[tuple[str, int, int]], int]:
            rows = conn.execute("SELECT name, COUNT(*), MAX(version) FROM pitstop_model_versions WHERE project = %s "
                                "GROUP BY name ORDER BY name LIMIT %s OFFSET %s", (self.project, limit, offset)).fetchall()
            total = conn.execute("SELECT COUNT(DISTINCT name) FROM pitstop_model_versions WHERE project = %s",
                                 (self.project,)).fetchone()
            return [(str(n), int(c), int(v)) for n, c, v in rows], int(total[0]) if total else 0

        return self._run("reading model summaries", work, read_only=True)

    def model_version(self, name: str, version: int) -> ModelVersionRecord | None:
        def work(conn: psycopg.Connection[Any]) -> ModelVersionRecord | None:
            row = conn.execute(
                f"SELECT {_MODEL_COLUMNS} FROM pitstop_model_versions WHERE project = %s AND name = %s AND version = %s",
                (self.project, name, version)).fetchone()
            return None if row is None else _model_record(row)

        return self._run(f"reading model {name!r}", work, read_only=True)

    def set_model_alias(self, name: str, alias: str, version: int) -> None:
        self._run(f"moving alias {name}@{alias}", lambda conn: conn.execute(
            "INSERT INTO pitstop_model_aliases (project, name, alias, version, updated_at) VALUES (%s, %s, %s, %s, now()) "
            "ON CONFLICT (project, name, alias) DO UPDATE SET version = EXCLUDED.version, updated_at = EXCLUDED.updated_at",
            (self.project, name, alias, version)))

    def model_aliases(self, name: str | None = None) -> list[ModelAliasRecord]:
        query = "SELECT name, alias, version, updated_at FROM pitstop_model_aliases WHERE project = %s"
        args: tuple[Any, ...] = (self.project,)
        if name is not None:
            query += " AND name = %s"
            args += (name,)

        def work(conn: psycopg.Connection[Any]) -> list[ModelAliasRecord]:
            rows = conn.execute(query + " ORDER BY name, alias", args).fetchall()
            return [ModelAliasRecord(n, a, int(v), t) for n, a, v, t in rows]

        return self._run("reading model aliases", work, read_only=True)

    # --- API keys ---------------------------------------------------------------------------------

    def add_api_key(self, record: ApiKeyRecord) -> None:
        import psycopg

        def work(conn: psycopg.Connection[Any]) -> None:
            try:
                conn.execute("INSERT INTO pitstop_api_keys (project, key_id, name, scopes, digest, created_at) "
                             "VALUES (%s, %s, %s, %s, %s, %s)",
                             (self.project, record.key_id, record.name, json.dumps(list(record.scopes)),
                              record.digest, record.created_at))
            except psycopg.errors.UniqueViolation:
                raise RegistryError(f"an active API key named {record.name!r} exists; revoke it first "
                                    f"(`pitstop auth revoke {record.name}`) or choose another name") from None

        self._run(f"creating API key {record.name!r}", work)

    def add_dataset(self, record: DatasetRecord) -> None:
        self._run(f"recording dataset {record.dataset_id}", lambda conn: conn.execute(
            "INSERT INTO pitstop_datasets (project, dataset_id, created_at, body) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING", (self.project, record.dataset_id, record.created_at, dataset_body(record))))

    def dataset(self, dataset_id: str) -> DatasetRecord | None:
        row = self._run(f"reading dataset {dataset_id}", lambda conn: conn.execute(
            "SELECT created_at, body FROM pitstop_datasets WHERE project = %s AND dataset_id = %s",
            (self.project, dataset_id)).fetchone())
        return None if row is None else dataset_from_body(dataset_id, row[0], row[1])

    def api_keys(self) -> list[ApiKeyRecord]:
        def work(conn: psycopg.Connection[Any]) -> list[ApiKeyRecord]:
            rows = conn.execute("SELECT key_id, name, scopes, digest, created_at, last_used_at, revoked_at "
                                "FROM pitstop_api_keys WHERE project = %s ORDER BY created_at",
                                (self.project,)).fetchall()
            return [ApiKeyRecord(k, n, tuple(json.loads(s)), d, c, u, r) for k, n, s, d, c, u, r in rows]

        return self._run("reading API keys", work, read_only=True)

    def revoke_api_key(self, name_or_id: str, when: datetime) -> int:
        def work(conn: psycopg.Connection[Any]) -> int:
            cur = conn.execute("UPDATE pitstop_api_keys SET revoked_at = %s WHERE project = %s "
                               "AND (name = %s OR key_id = %s) AND revoked_at IS NULL",
                               (when, self.project, name_or_id, name_or_id))
            return cur.rowcount

        return self._run(f"revoking API key {name_or_id!r}", work)

    def touch_api_keys(self, used: Mapping[str, datetime]) -> None:
        def work(conn: psycopg.Connection[Any]) -> None:
            with conn.cursor() as cur:
                cur.executemany("UPDATE pitstop_api_keys SET last_used_at = GREATEST(COALESCE(last_used_at, %s), %s) "
                                "WHERE project = %s AND key_id = %s",
                                [(t, t, self.project, k) for k, t in used.items()])

        self._run("recording API key use", work)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()


def _model_record(row: tuple[Any, ...]) -> ModelVersionRecord:
    name, version, flavor, path, sha, service, signature, fingerprint, metrics, created, description, serving, ds, \
        origin = row
    return ModelVersionRecord(name, int(version), flavor, path, sha, service, json.loads(signature), fingerprint,
                              json.loads(metrics), created, description, json.loads(serving), ds,
                              json.loads(origin or "{}"))
