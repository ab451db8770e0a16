"""Materialization, online reads, push and the scheduler on the embedded SQLite online store."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pitstop import FeatureStore
from pitstop.errors import MaterializationError, RetrievalError
from pitstop.online.base import WriteBatch, WriteResult
from pitstop.scheduler import Scheduler
from tests.support.online_repo import make_repo, now_hour


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    return make_repo(tmp_path)


def online(store: FeatureStore, ids: list[int], refs: list[str]) -> dict[str, list]:
    resp = store.get_online_features(refs, [{"driver_id": i} for i in ids])
    return {"values": resp.to_dict(), "statuses": resp.statuses}


def test_materialize_writes_latest_row_and_reads_report_statuses(store: FeatureStore) -> None:
    now = now_hour()
    outcomes = store.materialize(now - timedelta(days=500), now + timedelta(hours=1))
    assert {o.view: o.rows for o in outcomes} == {"stats": 3, "pushed": 0, "forever": 2}
    got = online(store, [1, 2, 3, 4], ["stats:rate", "stats:city", "forever:signup"])
    # driver 1: the 30-minute-old row beats the late correction of the hour-old row
    assert got["values"]["rate"] == [0.2, None, 0.7, None]
    assert got["values"]["city"] == ["b", None, None, None]
    assert got["statuses"]["rate"] == ["PRESENT", "OUTSIDE_MAX_AGE", "PRESENT", "NOT_FOUND"]
    assert got["values"]["signup"] == [2019, 2025, None, None]  # no ttl: never too old


def test_end_is_exclusive_and_views_can_be_chosen(store: FeatureStore) -> None:
    now = now_hour()
    store.materialize(now - timedelta(days=1), now - timedelta(minutes=30), views=["stats"])
    got = online(store, [1, 3], ["stats:rate", "forever:signup"])
    assert got["values"]["rate"] == [0.9, None]  # the 30-minute row is at `end`: excluded
    assert got["statuses"]["signup"] == ["NOT_FOUND", "NOT_FOUND"]
    with pytest.raises(RetrievalError, match="unknown feature view 'nope'"):
        store.materialize(now, now, views=["nope"])


def test_incremental_moves_watermarks_and_reruns_are_harmless(store: FeatureStore) -> None:
    end = now_hour() + timedelta(hours=1)
    first = {o.view: o for o in store.materialize_incremental(end)}
    assert first["stats"].start == end - timedelta(hours=2)  # first run: end - ttl
    assert first["forever"].start < end - timedelta(days=399)  # no ttl: from the earliest data
    assert store.registry.watermarks()["stats"] == end
    again = {o.view: o for o in store.materialize_incremental(end)}
    assert all(o.skipped for o in again.values())
    store.apply()  # apply never resets watermarks
    assert store.registry.watermarks()["stats"] == end
    assert [r.status for r in store.registry.runs()][:3] == ["success"] * 3


class FailingOnce:
    """Fault injection around a real store: the n-th write raises once."""

    def __init__(self, inner, fail_on: int) -> None:
        self.inner, self.fail_on, self.calls = inner, fail_on, 0

    def write(self, batches: list[WriteBatch]) -> WriteResult:
        self.calls += 1
        if self.calls == self.fail_on:
            raise ConnectionError("injected failure")
        return self.inner.write(batches)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def test_failure_mid_run_then_rerun_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    end = now_hour() + timedelta(hours=1)
    clean = make_repo(tmp_path / "clean")
    clean.materialize_incremental(end)
    broken = make_repo(tmp_path / "broken")
    broken._online = FailingOnce(broken.online, fail_on=2)
    with pytest.raises(MaterializationError, match="injected failure"):
        broken.materialize_incremental(end)
    assert "forever" not in broken.registry.watermarks() or "stats" not in broken.registry.watermarks()
    broken.materialize_incremental(end)
    assert broken.registry.watermarks() == clean.registry.watermarks()
    refs = ["stats:rate", "stats:trips", "stats:city", "forever:signup"]
    assert online(broken, [1, 2, 3], refs) == online(clean, [1, 2, 3], refs)


def test_push_is_guarded_and_can_append_offline(store: FeatureStore, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    newer = pd.DataFrame({"driver_id": [1, 1], "event_timestamp": [now - timedelta(minutes=2), now - timedelta(minutes=1)],
                          "speed": [50.0, 60.0]})
    result = store.push("speed_push", newer, to="online_and_offline")
    assert result.written == 1  # latest row per entity
    older = pd.DataFrame({"driver_id": [1], "event_timestamp": [now - timedelta(minutes=10)], "speed": [10.0]})
    assert store.push("speed_push", older).stale == 1
    assert online(store, [1], ["pushed:speed"])["values"]["speed"] == [60.0]
    [appended] = [f for f in (tmp_path / "data" / "speed").glob("part-*.parquet") if f.name != "part-0.parquet"]
    assert pd.read_parquet(appended)["speed"].tolist() == [50.0, 60.0]
    with pytest.raises(RetrievalError, match="lack column 'speed'"):
        store.push("speed_push", pd.DataFrame({"driver_id": [1], "event_timestamp": [now]}))


def test_online_on_demand_and_feature_service(store: FeatureStore) -> None:
    now = now_hour()
    store.materialize(now - timedelta(days=1), now + timedelta(hours=1))
    resp = store.get_online_features(feature_service="svc", entity_rows={"driver_id": [1, 4], "bonus": [1.0, 2.0]})
    assert resp.feature_names == ["driver_id", "rate", "trips", "rate_plus"]
    assert resp.to_dict()["rate_plus"] == [pytest.approx(1.2), None]
    assert resp.statuses["rate_plus"] == ["PRESENT", "NOT_FOUND"]
    with pytest.raises(RetrievalError, match="request data lacks 'bonus'"):
        store.get_online_features(feature_service="svc", entity_rows=[{"driver_id": 1}])
    with pytest.raises(RetrievalError, match="lack join key 'driver_id'"):
        store.get_online_features(["stats:rate"], [{"driver": 1}])


def test_scheduler_lock_retries_and_stop(store: FeatureStore) -> None:
    calls: list[int] = []

    def flaky() -> list:
        calls.append(1)
        if len(calls) < 3:
            raise MaterializationError("boom")
        return []

    sched = Scheduler("* * * * *", flaky, store.registry, backoff_seconds=0.01)
    assert sched.run_once() and len(calls) == 3
    assert store.registry.acquire_lock("materialize", "someone-else", 60)
    assert sched.run_once() is False
    store.registry.release_lock("materialize", "someone-else")
    assert sched.next_time(datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)) == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    loop = threading.Thread(target=sched.serve_forever)
    loop.start()
    time.sleep(0.2)
    started = time.perf_counter()
    sched.stop()
    loop.join(5)
    assert not loop.is_alive() and time.perf_counter() - started < 2
