"""The registry contract: one set of tests, run against SQLiteRegistry and PostgresRegistry.

Both must behave the same: transactional apply with history, watermarks, run records, expiring
locks that exactly one of several racing processes gets, model versions that concurrent
registrations number without gaps or duplicates, and aliases. PostgreSQL-only behaviour (schema
creation racing, connection errors, reconnecting) is tested at the end of this module.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pitstop.registry.base import MaterializationRun, ModelVersionRecord, Registry, Watermark

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPECS = {"entity": {"driver": {"join_keys": ["driver_id"]}},
         "feature view": {"stats": {"ttl_seconds": 3600.0, "schema": [{"name": "rate", "dtype": "float64"}]}}}


def open_backend(kind: str, location: str, project: str) -> Registry:
    """A registry of ``kind`` for ``project``: a SQLite file per project in ``location``, or one shared database."""
    if kind == "sqlite":
        from pitstop.registry.sqlite import SQLiteRegistry

        return SQLiteRegistry(Path(location) / f"{project}.db")
    from pitstop.registry.postgres import PostgresRegistry

    return PostgresRegistry(location, project)


@dataclass
class Backend:
    """Opens registries of one implementation; every project name gets a prefix unique to the test."""

    kind: str
    location: str
    prefix: str
    opened: list[Registry]

    def project(self, name: str = "p") -> str:
        return f"{self.prefix}_{name}"

    def open(self, name: str = "p") -> Registry:
        registry = open_backend(self.kind, self.location, self.project(name))
        self.opened.append(registry)
        return registry


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    location = str(tmp_path) if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    b = Backend(request.param, location, f"t{uuid.uuid4().hex[:10]}", [])
    yield b
    for registry in b.opened:
        registry.close()


@pytest.fixture
def registry(backend: Backend) -> Registry:
    return backend.open()


def model(name: str = "eta", **changes: Any) -> ModelVersionRecord:
    fields: dict[str, Any] = {
        "name": name, "version": 0, "flavor": "pyfunc", "artifact_path": f"{name}/{{version}}/model.pkl",
        "sha256": "ab" * 32, "feature_service": "svc", "signature": ["stats:rate", "stats:trips"],
        "training_fingerprint": "f" * 16, "metrics": {"auc": 0.71}, "created_at": T0, "description": "first",
    }
    if "serving" in {f.name for f in dataclasses.fields(ModelVersionRecord)}:  # the serving policy, where records have it
        fields["serving"] = {"predict_method": "predict_proba", "defaults": {"stats:rate": 0.0}}
    fields.update(changes)
    return ModelVersionRecord(**fields)


# --- definitions ---------------------------------------------------------------------------------


def test_apply_replaces_specs_in_order_and_keeps_history(registry: Registry) -> None:
    assert registry.version() == 0 and registry.load_specs() == {} and registry.history() == []
    assert registry.apply_specs(SPECS, {"add": 2, "change": 0, "remove": 0}) == 1
    assert registry.load_specs() == SPECS
    smaller = {"entity": SPECS["entity"]}
    assert registry.apply_specs(smaller, {"add": 0, "change": 0, "remove": 1}) == 2
    assert registry.load_specs() == smaller
    assert registry.version() == 2
    history = registry.history()
    assert [h.version for h in history] == [2, 1]
    assert history[0].summary == {"add": 0, "change": 0, "remove": 1}
    assert history[0].applied_at >= history[1].applied_at and history[0].applied_at.tzinfo is not None
    assert [h.version for h in registry.history(limit=1)] == [2]


def test_a_second_handle_sees_every_write(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    first.apply_specs(SPECS, {})
    first.set_watermark("stats", T0)
    first.add_model_version(model())
    first.set_model_alias("eta", "production", 1)
    assert second.version() == 1 and second.load_specs() == SPECS
    assert second.watermarks() == {"stats": T0}
    assert [(a.alias, a.version) for a in second.model_aliases("eta")] == [("production", 1)]
    assert second.add_model_version(model()) == 2


def test_projects_do_not_see_each_other(backend: Backend) -> None:
    a, b = backend.open("a"), backend.open("b")
    a.apply_specs(SPECS, {})
    a.set_watermark("stats", T0)
    a.add_model_version(model())
    a.set_model_alias("eta", "production", 1)
    assert a.acquire_lock("materialize", "host-a", 60)
    assert b.version() == 0 and b.load_specs() == {} and b.history() == []
    assert b.watermarks() == {} and b.model_versions() == [] and b.model_aliases() == []
    assert b.acquire_lock("materialize", "host-b", 60)  # a lock is per project
    assert b.add_model_version(model()) == 1


# --- materialization -----------------------------------------------------------------------------


def test_watermarks_move_per_view_in_utc_and_survive_apply(registry: Registry) -> None:
    registry.set_watermark("stats", T0)
    registry.set_watermark("other", datetime(2026, 1, 1, 3, tzinfo=UTC))
    registry.set_watermark("stats", T0 + timedelta(hours=1, microseconds=7))
    registry.apply_specs(SPECS, {})
    marks = registry.watermarks()
    assert marks == {"stats": T0 + timedelta(hours=1, microseconds=7), "other": datetime(2026, 1, 1, 3, tzinfo=UTC)}
    assert all(m.utcoffset() == timedelta(0) for m in marks.values())


def test_runs_are_recorded_newest_first(registry: Registry) -> None:
    for k in range(3):
        registry.record_run(MaterializationRun(f"v{k}", T0, T0 + timedelta(hours=k), 10 * k, k,
                                               "success" if k != 1 else "failed", "boom" if k == 1 else None,
                                               T0 + timedelta(seconds=k), T0 + timedelta(seconds=k + 1)))
    runs = registry.runs()
    assert [r.view for r in runs] == ["v2", "v1", "v0"]
    assert (runs[1].status, runs[1].error, runs[1].rows, runs[1].stale) == ("failed", "boom", 10, 1)
    assert runs[0].end == T0 + timedelta(hours=2) and runs[0].finished_at == T0 + timedelta(seconds=3)
    assert [r.view for r in registry.runs(limit=2)] == ["v2", "v1"]


def test_watermarks_record_the_online_generation_they_were_written_against(registry: Registry) -> None:
    assert registry.set_watermark("stats", T0, generation="g1")
    registry.set_watermark("legacy", T0)
    assert registry.watermark_states() == {"stats": Watermark(T0, "g1"), "legacy": Watermark(T0, None)}
    assert registry.set_watermark("stats", T0 + timedelta(hours=1), generation="g2")
    assert registry.watermark_states()["stats"] == Watermark(T0 + timedelta(hours=1), "g2")


def test_reset_voids_a_watermark_until_a_run_that_saw_the_reset_moves_it(registry: Registry) -> None:
    registry.set_watermark("stats", T0, generation="g1")
    registry.set_watermark("other", T0, generation="g1")
    registry.reset_watermarks(["stats", "never_run"], "view changed")
    assert registry.watermarks() == {"other": T0}  # reset views have no watermark
    states = registry.watermark_states()
    assert states["stats"] == Watermark(None, None, 1, "view changed")
    assert states["never_run"] == Watermark(None, None, 1, "view changed")
    # a run that read the state before the reset (counter 0) must not move it
    assert not registry.set_watermark("stats", T0 + timedelta(hours=1), generation="g1", resets=0)
    assert registry.watermark_states()["stats"].reset_reason == "view changed"
    assert registry.set_watermark("stats", T0 + timedelta(hours=2), generation="g1", resets=1)
    assert registry.watermark_states()["stats"] == Watermark(T0 + timedelta(hours=2), "g1", 1, None)
    registry.reset_watermarks(["stats"], "view changed")
    assert registry.watermark_states()["stats"].resets == 2
    # counter 0 matches a view without a state (first run) and one never reset
    assert registry.set_watermark("fresh", T0, generation="g1", resets=0)
    assert registry.set_watermark("other", T0 + timedelta(hours=1), generation="g1", resets=0)
    assert not registry.set_watermark("gone", T0, resets=3)
    assert "gone" not in registry.watermark_states()


def test_deleted_watermarks_are_forgotten(registry: Registry) -> None:
    registry.set_watermark("stats", T0, generation="g1")
    registry.set_watermark("other", T0, generation="g1")
    registry.delete_watermarks(["stats", "not_there"])
    assert registry.watermarks() == {"other": T0} and set(registry.watermark_states()) == {"other"}


def test_runs_record_why_their_window_was_chosen(registry: Registry) -> None:
    registry.record_run(MaterializationRun("v", T0, T0, 0, 0, "success", None, T0, T0))
    registry.record_run(MaterializationRun("v", T0, T0, 1, 0, "success", None, T0, T0,
                                           "refill: online store generation changed"))
    assert [r.reason for r in registry.runs()] == ["refill: online store generation changed", None]


OLD_TABLES = {  # the two tables as an older pitstop created them, before generations and reasons
    "sqlite": ["CREATE TABLE watermarks (view TEXT PRIMARY KEY, watermark TEXT NOT NULL, updated_at TEXT NOT NULL)",
               'CREATE TABLE materialization_runs (id INTEGER PRIMARY KEY AUTOINCREMENT, view TEXT NOT NULL, '
               'start TEXT NOT NULL, "end" TEXT NOT NULL, rows INTEGER NOT NULL, stale INTEGER NOT NULL, '
               "status TEXT NOT NULL, error TEXT, started_at TEXT NOT NULL, finished_at TEXT NOT NULL)",
               "INSERT INTO watermarks VALUES ('stats', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')",
               "INSERT INTO materialization_runs (view, start, \"end\", rows, stale, status, started_at, finished_at) "
               "VALUES ('stats', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', 1, 0, 'success', "
               "'2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')"],
    "postgres": ["CREATE TABLE pitstop_watermarks (project TEXT NOT NULL, view TEXT NOT NULL, "
                 "watermark TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (project, view))",
                 "CREATE TABLE pitstop_materialization_runs (id BIGSERIAL PRIMARY KEY, project TEXT NOT NULL, "
                 "view TEXT NOT NULL, start_ts TIMESTAMPTZ NOT NULL, end_ts TIMESTAMPTZ NOT NULL, rows BIGINT NOT NULL, "
                 "stale BIGINT NOT NULL, status TEXT NOT NULL, error TEXT, started_at TIMESTAMPTZ NOT NULL, "
                 "finished_at TIMESTAMPTZ NOT NULL)",
                 "INSERT INTO pitstop_watermarks VALUES ('p', 'stats', '2026-01-01T00:00:00Z', now())",
                 "INSERT INTO pitstop_materialization_runs (project, view, start_ts, end_ts, rows, stale, status, "
                 "started_at, finished_at) VALUES ('p', 'stats', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', "
                 "1, 0, 'success', now(), now())"],
}


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def test_a_registry_made_by_an_older_pitstop_is_upgraded_in_place(kind: str, tmp_path: Path) -> None:
    with _old_registry(kind, tmp_path) as location:
        registry = open_backend(kind, location, "p")
        try:
            assert registry.watermarks() == {"stats": T0}
            assert registry.watermark_states() == {"stats": Watermark(T0, None)}  # generation unknown: refill once
            assert [(r.view, r.rows, r.reason) for r in registry.runs()] == [("stats", 1, None)]
            assert registry.set_watermark("stats", T0 + timedelta(hours=1), generation="g", resets=0)
            registry.reset_watermarks(["stats"], "view changed")
            assert registry.watermark_states()["stats"].resets == 1
        finally:
            registry.close()
        again = open_backend(kind, location, "p")  # opening an upgraded registry changes nothing
        try:
            assert again.watermark_states()["stats"].reset_reason == "view changed"
        finally:
            again.close()


@contextmanager
def _old_registry(kind: str, tmp_path: Path) -> Iterator[str]:
    """A registry location whose watermark and run tables have an older pitstop's columns and one row each."""
    if kind == "sqlite":
        import sqlite3

        conn = sqlite3.connect(tmp_path / "p.db")
        for statement in OLD_TABLES["sqlite"]:
            conn.execute(statement)
        conn.commit()
        conn.close()
        yield str(tmp_path)
        return
    import psycopg

    from tests.support.postgres import ServerMissingError, scratch_database

    try:
        database = scratch_database()
        url = database.__enter__()
    except ServerMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in OLD_TABLES["postgres"]:
                conn.execute(statement)
        yield url
    finally:
        database.__exit__(None, None, None)


# --- locks ---------------------------------------------------------------------------------------


def test_lock_is_exclusive_reentrant_and_released_by_its_owner_only(backend: Backend) -> None:
    here, there = backend.open(), backend.open()
    assert here.acquire_lock("materialize", "host-1", 60)
    assert here.acquire_lock("materialize", "host-1", 60)  # re-entrant (and extends the expiry)
    assert not there.acquire_lock("materialize", "host-2", 60)
    there.release_lock("materialize", "host-2")  # not the owner: nothing happens
    assert not there.acquire_lock("materialize", "host-2", 60)
    here.release_lock("materialize", "host-1")
    assert there.acquire_lock("materialize", "host-2", 60)
    assert here.acquire_lock("other", "host-1", 60)  # locks are independent by name


def test_an_expired_lock_can_be_taken(registry: Registry) -> None:
    assert registry.acquire_lock("materialize", "crashed", 0.2)
    assert not registry.acquire_lock("materialize", "alive", 60)
    time.sleep(0.3)
    assert registry.acquire_lock("materialize", "alive", 60)
    assert not registry.acquire_lock("materialize", "crashed", 60)


# --- models --------------------------------------------------------------------------------------


def test_model_versions_are_numbered_per_model_and_read_back_intact(registry: Registry) -> None:
    assert registry.add_model_version(model(version=42)) == 1  # the record's version is ignored
    assert registry.add_model_version(model(description="second", metrics={"auc": 0.75, "nan": float("nan")})) == 2
    assert registry.add_model_version(model("churn", feature_service=None, training_fingerprint=None)) == 1
    first = registry.model_version("eta", 1)
    assert first is not None
    assert first == model(version=1, artifact_path="eta/1/model.pkl")
    second = registry.model_version("eta", 2)
    assert second is not None and second.metrics["auc"] == 0.75 and second.metrics["nan"] != second.metrics["nan"]
    assert registry.model_version("eta", 3) is None and registry.model_version("nope", 1) is None
    assert [(m.name, m.version) for m in registry.model_versions()] == [("churn", 1), ("eta", 1), ("eta", 2)]
    assert [m.version for m in registry.model_versions("eta")] == [1, 2]
    churn = registry.model_version("churn", 1)
    assert churn is not None and churn.feature_service is None and churn.training_fingerprint is None
    assert not hasattr(registry, "update_model_version") and not hasattr(registry, "delete_model_version")


def test_aliases_are_created_and_moved(registry: Registry) -> None:
    for _ in range(2):
        registry.add_model_version(model())
    registry.add_model_version(model("churn"))
    registry.set_model_alias("eta", "production", 1)
    registry.set_model_alias("eta", "staging", 2)
    registry.set_model_alias("churn", "production", 1)
    before = {(a.name, a.alias): a for a in registry.model_aliases()}
    registry.set_model_alias("eta", "production", 2)
    after = registry.model_aliases("eta")
    assert [(a.alias, a.version) for a in after] == [("production", 2), ("staging", 2)]
    assert after[0].updated_at >= before[("eta", "production")].updated_at
    assert [(a.name, a.alias, a.version) for a in registry.model_aliases()] == [
        ("churn", "production", 1), ("eta", "production", 2), ("eta", "staging", 2)]


# --- races between processes ---------------------------------------------------------------------


def _in_child(work: Callable[[Registry], list[Any]], kind: str, location: str, project: str,
              start: Any, out: Any) -> None:
    try:
        registry = open_backend(kind, location, project)
        try:
            start.wait(30)
            out.put(("ok", work(registry)))
        finally:
            registry.close()
    except BaseException as exc:  # the parent reports it instead of waiting for a result
        out.put(("error", repr(exc)))


def _register_many(kind: str, location: str, project: str, count: int, start: Any, out: Any) -> None:
    _in_child(lambda r: [r.add_model_version(model(description=f"{k}")) for k in range(count)],
              kind, location, project, start, out)


def _try_lock(kind: str, location: str, project: str, owner: str, start: Any, out: Any) -> None:
    _in_child(lambda r: [owner] if r.acquire_lock("materialize", owner, 60) else [], kind, location, project, start, out)


def _race(target: Callable[..., None], args: list[tuple[Any, ...]], in_parent: Callable[[], list[Any]]) -> list[list[Any]]:
    """Start one spawned process per ``args``, release them together (with ``in_parent`` too), collect their lists."""
    ctx = multiprocessing.get_context("spawn")  # fork would copy this process's connections
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, start, out)) for a in args]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let the children import and connect, so they really start together
    start.set()
    results = [in_parent()]
    reports = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    out.close()
    out.join_thread()
    assert [error for status, error in reports if status != "ok"] == []
    return results + [result for _, result in reports]


@pytest.mark.slow
def test_concurrent_registrations_get_distinct_consecutive_versions(backend: Backend) -> None:
    processes, threads, each = 3, 2, 5
    handles = [backend.open() for _ in range(threads)]

    def in_parent() -> list[int]:
        got: list[list[int]] = [[] for _ in handles]

        def work(k: int) -> None:
            got[k] = [handles[k].add_model_version(model(description=f"t{k}")) for _ in range(each)]

        workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return [v for g in got for v in g]

    args = [(backend.kind, backend.location, backend.project(), each) for _ in range(processes)]
    results = _race(_register_many, args, in_parent)
    allocated = sorted(v for r in results for v in r)
    assert allocated == list(range(1, (processes + threads) * each + 1))
    assert [m.version for m in handles[0].model_versions("eta")] == allocated
    assert {m.artifact_path for m in handles[0].model_versions("eta")} == {f"eta/{v}/model.pkl" for v in allocated}


@pytest.mark.slow
def test_exactly_one_of_racing_processes_gets_the_lock(backend: Backend) -> None:
    args = [(backend.kind, backend.location, backend.project(), f"host-{k}") for k in range(4)]
    results = _race(_try_lock, args, lambda: [])
    winners = [owner for r in results for owner in r]
    assert len(winners) == 1
    assert not backend.open().acquire_lock("materialize", "late", 60)


def test_api_keys_are_stored_revoked_and_touched(backend: Backend) -> None:
    from pitstop.errors import RegistryError
    from pitstop.registry.base import ApiKeyRecord

    registry, other = backend.open(), backend.open("other")
    first = ApiKeyRecord("a" * 12, "billing", ("predict", "features:read"), "d" * 64, T0)
    registry.add_api_key(first)
    with pytest.raises(RegistryError, match="active API key named 'billing'"):
        registry.add_api_key(ApiKeyRecord("b" * 12, "billing", ("predict",), "e" * 64, T0))
    assert other.api_keys() == []  # keys belong to one project
    (stored,) = registry.api_keys()
    assert stored.scopes == ("predict", "features:read") and stored.digest == "d" * 64 and stored.active
    registry.touch_api_keys({"a" * 12: T0 + timedelta(hours=2)})
    registry.touch_api_keys({"a" * 12: T0 + timedelta(hours=1)})  # older: ignored
    assert registry.api_keys()[0].last_used_at == T0 + timedelta(hours=2)
    assert registry.revoke_api_key("nobody", T0) == 0
    assert registry.revoke_api_key("billing", T0 + timedelta(hours=3)) == 1
    assert registry.revoke_api_key("a" * 12, T0 + timedelta(hours=4)) == 0  # already revoked
    assert registry.api_keys()[0].revoked_at == T0 + timedelta(hours=3)
    registry.add_api_key(ApiKeyRecord("c" * 12, "billing", ("predict",), "f" * 64, T0 + timedelta(hours=5)))
    assert [k.active for k in registry.api_keys()] == [False, True]  # the name is free again after revoking


def test_dataset_records_round_trip_and_are_idempotent(backend: Backend) -> None:
    from pitstop.registry.base import new_dataset_record

    registry, other = backend.open(), backend.open("other")
    sources = {"trips": [{"ref": "s3://b/trips/part-0.parquet", "size": 10, "version": "etag-1"}]}
    record = new_dataset_record(3, ["trips:speed"], sources, {"entity": {"driver": {"join_keys": ["driver_id"]}}})
    assert record.dataset_id.startswith("ds_")
    assert new_dataset_record(3, ["trips:speed"], sources, record.definitions).dataset_id == record.dataset_id
    assert new_dataset_record(4, ["trips:speed"], sources, record.definitions).dataset_id != record.dataset_id
    registry.add_dataset(record)
    registry.add_dataset(record)  # the same reads again: no error, one record
    stored = registry.dataset(record.dataset_id)
    assert stored is not None
    assert (stored.definitions_version, stored.features, stored.sources, stored.definitions) == (
        3, ["trips:speed"], sources, record.definitions)
    assert registry.dataset("ds_missing") is None
    assert other.dataset(record.dataset_id) is None  # datasets belong to one project


def test_model_versions_keep_their_dataset(registry: Registry) -> None:
    version = registry.add_model_version(model(dataset_id="ds_abc"))
    assert registry.model_version("eta", version).dataset_id == "ds_abc"  # type: ignore[union-attr]
    plain = registry.add_model_version(model())
    assert registry.model_version("eta", plain).dataset_id is None  # type: ignore[union-attr]


def test_model_versions_page_and_model_summaries(registry: Registry) -> None:
    for _ in range(7):
        registry.add_model_version(model())
    registry.add_model_version(model("churn", origin={"kind": "mlflow", "version": "3"}))
    page, total = registry.model_version_page("eta", 2, 3)
    assert total == 7 and [m.version for m in page] == [5, 4, 3]  # newest first
    assert registry.model_version_page("eta", 6, 5)[0][0].version == 1
    assert registry.model_version_page("nope", 0, 5) == ([], 0)
    assert registry.model_summaries(0, 10) == ([("churn", 1, 1), ("eta", 7, 7)], 2)
    assert registry.model_summaries(1, 10) == ([("eta", 7, 7)], 2)
    churn = registry.model_version("churn", 1)
    assert churn is not None and churn.origin == {"kind": "mlflow", "version": "3"}
