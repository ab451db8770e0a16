"""What only the PostgreSQL registry has to get right: schema creation by racing processes, connection
errors that hide the password, reconnecting, rollback, and selection through ``registry.path``."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from pitstop import FeatureStore
from pitstop.errors import RegistryError
from pitstop.registry.factory import is_postgres_url, open_registry
from pitstop.registry.postgres import _SCHEMA, PostgresRegistry, redact_url
from pitstop.registry.sqlite import SQLiteRegistry
from pitstop.settings import load_settings
from tests.integration.redis_server import free_port
from tests.support.online_repo import make_repo
from tests.support.postgres import admin_url, scratch_database

pytestmark = pytest.mark.integration

SPECS = {"entity": {"driver": {"join_keys": ["driver_id"]}}}


class Summer:
    """A pyfunc model for the FeatureStore-level test."""

    def predict(self, data: Any) -> np.ndarray:
        return np.asarray(data, dtype=float).sum(axis=1)


@pytest.fixture
def registry(postgres_url: str) -> Iterator[PostgresRegistry]:
    reg = PostgresRegistry(postgres_url, f"t{uuid.uuid4().hex[:10]}")
    yield reg
    reg.close()


def _open_and_apply(url: str, project: str, start: Any, out: Any) -> None:
    try:
        start.wait(30)
        registry = PostgresRegistry(url, project)
        try:
            out.put(("ok", registry.apply_specs(SPECS, {})))
        finally:
            registry.close()
    except BaseException as exc:  # reported by the parent
        out.put(("error", repr(exc)))


@pytest.mark.slow
def test_processes_creating_the_schema_at_once_all_succeed() -> None:
    with scratch_database() as url:
        ctx = multiprocessing.get_context("spawn")
        start, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_open_and_apply, args=(url, "shared", start, out)) for _ in range(4)]
        for p in procs:
            p.start()
        time.sleep(1.0)
        start.set()
        reports = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(30)
        out.close()
        out.join_thread()
        assert sorted(reports) == [("ok", 1), ("ok", 2), ("ok", 3), ("ok", 4)]
        with psycopg.connect(url) as conn:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'pitstop\\_%'").fetchone()
        expected = sum(1 for statement in _SCHEMA if statement.lstrip().startswith("CREATE TABLE"))
        assert expected >= 8  # objects, applies, watermarks, runs, model versions, aliases, locks, api keys
        assert tables == (expected,)


def test_connection_errors_name_the_url_without_the_password() -> None:
    url = f"postgresql://pitstop:s3cret-pw@127.0.0.1:{free_port()}/registry"
    with pytest.raises(RegistryError) as info:
        PostgresRegistry(url, "p")
    message = str(info.value)
    assert "cannot connect to the PostgreSQL registry at postgresql://pitstop:***@127.0.0.1:" in message
    assert "s3cret" not in message and info.value.__cause__ is None
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_a_lost_connection_is_reopened(registry: PostgresRegistry) -> None:
    registry.apply_specs(SPECS, {})

    def kill_connection() -> None:
        assert registry._conn is not None
        with psycopg.connect(admin_url(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (registry._conn.info.backend_pid,))
        time.sleep(0.1)

    kill_connection()
    assert registry.version() == 1  # reads retry once on a new connection
    kill_connection()
    with pytest.raises(RegistryError, match="apply .*failed in the PostgreSQL registry"):
        registry.apply_specs(SPECS, {})  # writes are not retried: the commit may have happened
    assert registry.apply_specs(SPECS, {}) == 2


def test_a_failed_apply_changes_nothing(registry: PostgresRegistry) -> None:
    registry.apply_specs(SPECS, {})
    broken = {"entity": {"ok": {}, "bad\x00name": {}}}  # PostgreSQL text cannot hold NUL
    with pytest.raises(RegistryError, match="rolled back"):
        registry.apply_specs(broken, {})
    assert registry.version() == 1 and registry.load_specs() == SPECS and len(registry.history()) == 1


def test_registry_path_selects_the_backend(tmp_path: Path, postgres_url: str) -> None:
    (tmp_path / "pitstop.yaml").write_text("project: p\n")
    assert is_postgres_url("postgres://h/db") and is_postgres_url(" PostgreSQL://h/db")
    assert not is_postgres_url("data/registry.db")
    default = open_registry(load_settings(tmp_path, environ={}))
    assert isinstance(default, SQLiteRegistry) and default.path == tmp_path.resolve() / "data/registry.db"
    default.close()
    shared = open_registry(load_settings(tmp_path, environ={"PITSTOP_REGISTRY_PATH": postgres_url}))
    assert isinstance(shared, PostgresRegistry) and shared.project == "p"
    shared.close()


@pytest.mark.slow
def test_feature_store_and_cli_share_a_postgres_registry(tmp_path: Path, postgres_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PITSTOP_REGISTRY_PATH", postgres_url)
    monkeypatch.setenv("PITSTOP_PROJECT", f"t{uuid.uuid4().hex[:10]}")
    with make_repo(tmp_path / "repo") as store:  # applies through the PostgreSQL registry
        assert isinstance(store.registry, PostgresRegistry)
        assert not (tmp_path / "repo" / "data" / "registry.db").exists()
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        cli = subprocess.run([sys.executable, "-m", "pitstop.cli", "-r", str(tmp_path / "repo"),
                              "materialize-incremental", end.isoformat()],
                             capture_output=True, text=True, env=dict(os.environ), timeout=120)
        assert cli.returncode == 0, cli.stderr
        assert store.registry.watermarks()["stats"] == end  # written by the other process
        mv = store.models.register("summer", Summer(), "pyfunc", "svc", {"mae": 0.5})
        store.models.set_alias("summer", "production", mv.version)
    with FeatureStore(tmp_path / "repo") as fresh:
        assert fresh.registry.version() == 1 and "stats" in fresh.definitions().views
        assert fresh.models.resolve("summer@production").version == 1
        assert fresh.models.load("summer@production").predict(np.ones((2, 3))).tolist() == [3.0, 3.0]
