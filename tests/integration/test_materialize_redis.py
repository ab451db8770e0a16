"""Materialization, online reads and push against a real Redis: a private redis-server and a private 3-node Cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import redis

from pitstop import FeatureStore
from pitstop.errors import MaterializationError
from pitstop.online.keys import generation_key
from pitstop.push import latest_per_key
from tests.integration.redis_server import RedisServer
from tests.support import local_server
from tests.support.online_repo import make_repo, now_hour
from tests.unit.test_materialize import FailingOnce, online

pytestmark = pytest.mark.integration
REFS = ["stats:rate", "stats:trips", "stats:city", "forever:signup"]


@pytest.fixture(params=["redis_url", "redis_cluster_url"], ids=["redis", "redis-cluster"])
def online_url(request: pytest.FixtureRequest) -> str:
    """The online store URL: standalone Redis, then Redis Cluster (same tests, same expectations)."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def repo(online_url: str) -> Iterator[Callable[[Path], FeatureStore]]:
    """Builds example repos on the online store, closing their connections after the test.

    A cluster client left to the garbage collector closes its sockets in an arbitrary order,
    which Python reports as unclosed-socket warnings (errors under this suite's settings).
    """
    opened: list[FeatureStore] = []

    def make(root: Path) -> FeatureStore:
        opened.append(make_repo(root, online_url))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


def test_materialize_and_read_through_redis(tmp_path: Path, repo: Callable[[Path], FeatureStore]) -> None:
    store = repo(tmp_path)
    now = now_hour()
    outcomes = {o.view: o.rows for o in store.materialize(now - timedelta(days=500), now + timedelta(hours=1))}
    assert outcomes == {"stats": 3, "pushed": 0, "forever": 2}
    got = online(store, [1, 2, 3, 4], REFS)
    assert got["values"]["rate"] == [0.2, None, 0.7, None]
    assert got["statuses"]["rate"] == ["PRESENT", "OUTSIDE_MAX_AGE", "PRESENT", "NOT_FOUND"]
    assert got["values"]["signup"] == [2019, 2025, None, None]
    # re-running the same window is harmless: every row is an equal replay
    again = store.materialize(now - timedelta(days=500), now + timedelta(hours=1))
    assert sum(o.rows + o.stale for o in again) == 5
    assert online(store, [1, 2, 3, 4], REFS) == got


def test_incremental_failure_then_rerun_matches_uninterrupted_run_on_redis(tmp_path: Path, repo: Callable[[Path], FeatureStore]) -> None:
    end = now_hour() + timedelta(hours=1)
    clean = repo(tmp_path / "clean")
    clean.materialize_incremental(end)
    broken = repo(tmp_path / "broken")
    broken._online = FailingOnce(broken.online, fail_on=1)
    with pytest.raises(MaterializationError):
        broken.materialize_incremental(end)
    broken.materialize_incremental(end)
    assert broken.registry.watermarks() == clean.registry.watermarks()
    assert online(broken, [1, 2, 3], REFS) == online(clean, [1, 2, 3], REFS)


def test_batch_materialization_never_clobbers_a_newer_pushed_value(tmp_path: Path, repo: Callable[[Path], FeatureStore]) -> None:
    store = repo(tmp_path)
    now = now_hour()
    newer = pd.DataFrame({"driver_id": [1], "event_timestamp": [now + timedelta(minutes=1)], "created": [now],
                          "rate": [0.99], "trips": [99], "city": ["fresh"]})
    # stats is not a push view, so write the fresh value through the same guarded path directly
    store.online.write([latest_per_key(store.definitions().views["stats"], pa.Table.from_pandas(newer, preserve_index=False))])
    result = store.materialize(now - timedelta(days=1), now + timedelta(hours=1), views=["stats"])
    assert result[0].stale == 1  # driver 1's batch row is older than the fresh one
    assert online(store, [1], ["stats:rate"])["values"]["rate"] == [0.99]


def test_apply_drops_online_values_of_a_retyped_view(tmp_path: Path, repo: Callable[[Path], FeatureStore]) -> None:
    store = repo(tmp_path)
    now = now_hour()
    store.materialize(now - timedelta(days=500), now + timedelta(hours=1), views=["forever"])
    assert online(store, [1], ["forever:signup"])["values"]["signup"] == [2019]
    defs = tmp_path / "defs.py"
    defs.write_text(defs.read_text().replace('Field("signup", Int64)', 'Field("signup", Int64, description="year")')
                    .replace('schema=[Field("signup", Int64, description="year")]',
                             'schema=[Field("signup", Int64, description="year"), Field("driver_id", Int64)]'))
    store.apply()
    assert online(store, [1], ["forever:signup"])["statuses"]["signup"] == ["NOT_FOUND"]


# --- self-healing online state (issue 10) -----------------------------------------------------------


def _project_keys(store: FeatureStore) -> list[bytes]:
    """Every key of the store's project, on every primary (the cluster client scans them all)."""
    from pitstop.online.keys import project_prefix

    client = store.online._commands()  # type: ignore[attr-defined]
    return list(client.scan_iter(match=f"{project_prefix(store.settings.project)}*", count=1000))


def _drop_project(store: FeatureStore) -> None:
    """The project's keys vanish, as on a failover to an empty replica, without disturbing other tests' keys."""
    client = store.online._commands()  # type: ignore[attr-defined]
    for key in _project_keys(store):
        client.delete(key)


def _assert_back(store: FeatureStore, before: dict) -> None:
    got = online(store, [1, 2, 3], REFS)
    assert got == before
    assert got["statuses"]["signup"][:2] == ["PRESENT", "PRESENT"]


def test_project_keys_lost_then_incremental_refills(tmp_path: Path, repo: Callable[[Path], FeatureStore]) -> None:
    store = repo(tmp_path)
    end = datetime.now(UTC)
    store.materialize_incremental(end)
    before = online(store, [1, 2, 3], REFS)
    _drop_project(store)
    assert online(store, [1], ["forever:signup"])["statuses"]["signup"] == ["NOT_FOUND"]
    outcomes = store.materialize_incremental(end + timedelta(minutes=1))
    assert {o.reason for o in outcomes} == {"refill: store generation changed"}
    _assert_back(store, before)


def test_flushall_then_incremental_refills(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        store = make_repo(tmp_path / "repo", server.url)
        try:
            end = datetime.now(UTC)
            assert {o.reason for o in store.materialize_incremental(end)} == {"first run"}
            before = online(store, [1, 2, 3], REFS)
            redis.Redis.from_url(server.url).flushall()
            assert online(store, [1, 2], ["forever:signup"])["statuses"]["signup"] == ["NOT_FOUND", "NOT_FOUND"]
            store.materialize_incremental(end + timedelta(minutes=1))
            _assert_back(store, before)
            assert [r.reason for r in store.registry.runs(limit=3)] == ["refill: store generation changed"] * 3
        finally:
            store.close()


def test_restart_without_persistence_then_incremental_refills(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PITSTOP_ONLINE_STORE_KEY_TTL_SECONDS", "3600")
    with RedisServer(tmp_path / "redis") as server:
        store = make_repo(tmp_path / "repo", server.url)
        try:
            end = datetime.now(UTC)
            store.materialize_incremental(end)
            before = online(store, [1, 2, 3], REFS)
            marker = generation_key(store.settings.project)
            assert redis.Redis.from_url(server.url).ttl(marker) == -1  # key_ttl_seconds never expires the marker
            port = server.port
            server.stop()
            monkeypatch.setattr(local_server, "free_port", lambda: port)  # the same address, an empty server
            server.start()
            store.materialize_incremental(end + timedelta(minutes=1))
            _assert_back(store, before)
            assert {r.reason for r in store.registry.runs(limit=3)} == {"refill: store generation changed"}
        finally:
            store.close()


def test_schema_change_then_incremental_refills(tmp_path: Path, repo: Callable[[Path], FeatureStore]) -> None:
    store = repo(tmp_path)
    end = datetime.now(UTC)
    store.materialize_incremental(end)
    pd.read_parquet(tmp_path / "data/signup.parquet").assign(plan=["gold", "free"]).to_parquet(
        tmp_path / "data/signup.parquet", index=False)
    defs = tmp_path / "defs.py"
    defs.write_text(defs.read_text().replace('Field("signup", Int64)', 'Field("signup", Int64), Field("plan", String)'))
    store.apply()
    assert online(store, [1], ["forever:signup"])["statuses"]["signup"] == ["NOT_FOUND"]
    outcomes = {o.view: o for o in store.materialize_incremental(end + timedelta(minutes=1))}
    assert outcomes["forever"].reason == "refill: view changed" and outcomes["stats"].reason == "incremental"
    got = online(store, [1, 2], ["forever:signup", "forever:plan"])
    assert got["values"]["signup"] == [2019, 2025] and got["values"]["plan"] == ["gold", "free"]
    assert got["statuses"]["plan"] == ["PRESENT", "PRESENT"]


def test_late_landing_rows_within_the_lookback_arrive(tmp_path: Path, repo: Callable[[Path], FeatureStore]) -> None:
    store = repo(tmp_path)
    end = datetime.now(UTC)
    store.materialize_incremental(end)
    late = pd.DataFrame({"driver_id": [7, 8], "event_timestamp": [end - timedelta(minutes=20), end - timedelta(hours=3)],
                         "speed": [70.0, 80.0]})
    late.to_parquet(tmp_path / "data/speed/part-late.parquet", index=False)
    outcomes = {o.view: o for o in store.materialize_incremental(end + timedelta(minutes=5))}
    assert outcomes["pushed"].reason == "incremental" and outcomes["pushed"].rows == 1
    got = online(store, [7, 8], ["pushed:speed"])
    assert got["values"]["speed"] == [70.0, None] and got["statuses"]["speed"] == ["PRESENT", "NOT_FOUND"]
