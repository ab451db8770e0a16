"""Materialization, online reads, push and the scheduler on the embedded SQLite online store."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pitstop import FeatureStore
from pitstop.errors import MaterializationError, NotFoundError, RetrievalError
from pitstop.online.base import WriteBatch, WriteResult
from pitstop.scheduler import Scheduler
from tests.support.online_repo import make_repo, now_hour


@pytest.fixture
def store(tmp_path: Path, offline_engine: str) -> FeatureStore:
    """The repo, once per offline engine (materialization is part of the engine contract)."""
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
    with pytest.raises(NotFoundError, match="unknown feature view 'nope'"):
        store.materialize(now, now, views=["nope"])


def test_incremental_moves_watermarks_and_reruns_are_harmless(store: FeatureStore) -> None:
    end = now_hour() + timedelta(hours=1)
    first = {o.view: o for o in store.materialize_incremental(end)}
    assert first["stats"].start == end - timedelta(hours=2)  # first run: end - ttl
    assert first["forever"].start < end - timedelta(days=399)  # no ttl: from the earliest data
    assert store.registry.watermarks()["stats"] == end
    again = {o.view: o for o in store.materialize_incremental(end)}
    assert all(o.skipped for o in again.values())
    store.apply()  # an apply that changes nothing leaves watermarks alone
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


# --- self-healing online state (issue 10) -----------------------------------------------------------

REFS_ALL = ["stats:rate", "forever:signup"]


def empty_sqlite_online_store(store: FeatureStore) -> None:
    """What a lost disk or a new machine does to the embedded store: the file is gone."""
    store.close()
    for path in (store.repo_path / "data").glob("online.db*"):
        path.unlink()


def reasons(store: FeatureStore, n: int) -> dict[str, str | None]:
    return {r.view: r.reason for r in reversed(store.registry.runs(limit=n))}


def test_incremental_refills_a_store_that_came_back_empty(store: FeatureStore) -> None:
    end = datetime.now(UTC)
    first = {o.view: o for o in store.materialize_incremental(end)}
    assert {v: o.reason for v, o in first.items()} == {"stats": "first run", "pushed": "first run", "forever": "first run"}
    before = online(store, [1, 2, 3], REFS_ALL)
    generation = store.online.generation()
    assert generation is not None
    empty_sqlite_online_store(store)
    assert online(store, [1], ["stats:rate"])["statuses"]["rate"] == ["NOT_FOUND"]
    later = end + timedelta(minutes=5)
    again = {o.view: o for o in store.materialize_incremental(later)}
    assert again["stats"].reason == "refill: store generation changed" and again["stats"].refill
    assert again["stats"].start == later - timedelta(hours=2)  # refilled like a first run: end - ttl
    assert again["forever"].rows == 2  # no ttl: from the earliest data
    assert online(store, [1, 2, 3], REFS_ALL) == before
    assert store.online.generation() not in (None, generation)
    assert reasons(store, 3) == {"stats": "refill: store generation changed", "pushed": "refill: store generation changed",
                                 "forever": "refill: store generation changed"}
    assert {o.reason for o in store.materialize_incremental(later + timedelta(minutes=5))} == {"incremental"}


def test_watermarks_of_an_older_pitstop_refill_once(store: FeatureStore) -> None:
    end = datetime.now(UTC)
    store.materialize_incremental(end)
    for view in ("stats", "pushed", "forever"):
        store.registry.set_watermark(view, end)  # no generation: written before generations existed
    outcomes = store.materialize_incremental(end + timedelta(minutes=1))
    assert {o.reason for o in outcomes} == {"refill: store generation unknown"}
    assert {o.reason for o in store.materialize_incremental(end + timedelta(minutes=2))} == {"incremental"}


RETYPED = ('Field("signup", Int64)', 'Field("signup", Int64), Field("plan", String)')


def test_apply_that_changes_a_view_resets_its_watermark_and_the_next_run_refills_it(store: FeatureStore, tmp_path: Path) -> None:
    end = datetime.now(UTC)
    store.materialize_incremental(end)
    data = pd.read_parquet(tmp_path / "data/signup.parquet").assign(plan=["gold", "free"])
    data.to_parquet(tmp_path / "data/signup.parquet", index=False)
    defs = tmp_path / "defs.py"
    defs.write_text(defs.read_text().replace(*RETYPED))
    store.apply()
    assert "forever" not in store.registry.watermarks() and "stats" in store.registry.watermarks()
    assert online(store, [1], ["forever:signup"])["statuses"]["signup"] == ["NOT_FOUND"]  # values dropped by apply
    outcomes = {o.view: o for o in store.materialize_incremental(end + timedelta(minutes=1))}
    assert outcomes["forever"].reason == "refill: view changed" and outcomes["forever"].rows == 2
    assert outcomes["stats"].reason == "incremental"
    got = online(store, [1, 2], ["forever:signup", "forever:plan"])
    assert got["values"]["plan"] == ["gold", "free"] and got["statuses"]["signup"] == ["PRESENT", "PRESENT"]
    assert reasons(store, 3)["forever"] == "refill: view changed"


def test_apply_that_only_edits_descriptions_keeps_watermarks(store: FeatureStore, tmp_path: Path) -> None:
    end = datetime.now(UTC)
    store.materialize_incremental(end)
    defs = tmp_path / "defs.py"
    defs.write_text(defs.read_text().replace('ttl=timedelta(days=1))', 'ttl=timedelta(days=1), tags={"team": "x"})'))
    assert not store.apply().is_empty
    assert set(store.registry.watermarks()) == {"stats", "pushed", "forever"}


def test_removed_views_lose_their_watermark(store: FeatureStore, tmp_path: Path) -> None:
    store.materialize_incremental(datetime.now(UTC))
    defs = tmp_path / "defs.py"
    text = defs.read_text()
    start = text.index("forever = FeatureView")
    defs.write_text(text[:start] + text[text.index("req = RequestSource"):])
    store.apply()
    assert set(store.registry.watermarks()) == {"stats", "pushed"}
    assert "forever" not in store.registry.watermark_states()


def test_late_rows_within_the_lookback_arrive_on_the_next_run(store: FeatureStore, tmp_path: Path) -> None:
    end = datetime.now(UTC)
    store.materialize_incremental(end)
    late = pd.DataFrame({"driver_id": [7, 8], "event_timestamp": [end - timedelta(minutes=20), end - timedelta(hours=3)],
                         "speed": [70.0, 80.0]})
    late.to_parquet(tmp_path / "data/speed/part-late.parquet", index=False)  # lands after the run, dated before it
    outcomes = {o.view: o for o in store.materialize_incremental(end + timedelta(minutes=5))}
    assert outcomes["pushed"].reason == "incremental"
    assert outcomes["pushed"].start == end - timedelta(hours=1)  # materialize.lookback_seconds default: 1 h
    got = online(store, [7, 8], ["pushed:speed"])
    assert got["values"]["speed"] == [70.0, None]  # 3 h late is beyond the lookback


def test_lookback_zero_reads_only_from_the_watermark(tmp_path: Path) -> None:
    store = make_repo(tmp_path)
    with (tmp_path / "pitstop.yaml").open("a") as f:
        f.write("materialize:\n  lookback_seconds: 0\n")
    store = FeatureStore(tmp_path)
    end = datetime.now(UTC)
    store.materialize_incremental(end)
    pd.DataFrame({"driver_id": [7], "event_timestamp": [end - timedelta(minutes=20)], "speed": [70.0]}).to_parquet(
        tmp_path / "data/speed/part-late.parquet", index=False)
    assert {o.view: o.start for o in store.materialize_incremental(end + timedelta(minutes=5))}["pushed"] == end
    assert online(store, [7], ["pushed:speed"])["statuses"]["speed"] == ["NOT_FOUND"]


class ResettingDuringRun:
    """A store that lets an ``apply`` of a changed view reset its watermark after the run read the watermarks."""

    def __init__(self, inner, registry, view: str) -> None:
        self.inner, self.registry, self.view = inner, registry, view

    def generation(self, create: bool = False) -> str | None:
        self.registry.reset_watermarks([self.view], "view changed")
        return self.inner.generation(create)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def test_a_view_changed_during_a_run_keeps_its_watermark_void(store: FeatureStore) -> None:
    end = datetime.now(UTC)
    store.materialize_incremental(end)
    store._online = ResettingDuringRun(store.online, store.registry, "stats")
    store.materialize_incremental(end + timedelta(minutes=5))
    assert "stats" not in store.registry.watermarks()  # the run read it before the reset: it must not move it
    assert store.registry.watermark_states()["stats"].reset_reason == "view changed"
    store._online = store._online.inner
    assert {o.view: o.reason for o in store.materialize_incremental(end + timedelta(minutes=6))}["stats"] == \
        "refill: view changed"


def test_a_run_refuses_definitions_older_than_the_registry(store: FeatureStore) -> None:
    from pitstop import materialize as mat

    views = list(store.definitions().views.values())
    with pytest.raises(MaterializationError, match="definitions changed"):
        mat.run(engine=store.offline, online=store.online, registry=store.registry, views=views,
                root=store.settings.offline_root, end=datetime.now(UTC), definitions_version=store.registry.version() - 1)
    assert store.registry.runs() == []


def test_lookback_never_reaches_past_the_ttl() -> None:
    from pitstop.materialize import incremental_start
    from pitstop.registry.base import Watermark

    class View:
        ttl = timedelta(hours=2)

    end = datetime(2026, 1, 1, 12, tzinfo=UTC)
    hour = timedelta(hours=1)
    assert incremental_start(View, end - hour, end, 3 * hour) == end - 2 * hour  # type: ignore[arg-type]
    assert incremental_start(View, end - 5 * hour, end, hour) == end - 5 * hour  # a gap: never skip data  # type: ignore[arg-type]
    View.ttl = None  # type: ignore[assignment]
    assert incremental_start(View, end - hour, end, 3 * hour) == end - 4 * hour  # type: ignore[arg-type]
    assert Watermark(end, "g").resets == 0


def test_apply_that_changes_a_views_source_resets_the_views_reading_it(store: FeatureStore, tmp_path: Path) -> None:
    store.materialize_incremental(datetime.now(UTC))
    (tmp_path / "data/stats.parquet").rename(tmp_path / "data/stats_v2.parquet")
    defs = tmp_path / "defs.py"
    defs.write_text(defs.read_text().replace('path="data/stats.parquet"', 'path="data/stats_v2.parquet"'))
    store.apply()
    assert store.registry.watermark_states()["stats"].reset_reason == "view changed"
    assert set(store.registry.watermarks()) == {"pushed", "forever"}


def test_views_to_refill_follows_sources_and_entities_but_not_descriptions() -> None:
    from pitstop.definitions.contents import KINDS
    from pitstop.registry.plan import diff_specs, views_to_refill

    old = {
        "entity": {"driver": {"join_keys": ["driver_id"], "description": ""}},
        "source": {"files": {"type": "parquet", "path": "a"}, "push": {"type": "push", "batch_source": "files"},
                   "other": {"type": "parquet", "path": "b"}},
        "feature view": {"pushed": {"source": "push", "entities": ["driver"], "ttl_seconds": 60, "tags": {}},
                         "plain": {"source": "other", "entities": [], "ttl_seconds": 60, "description": ""}},
    }

    def refill(**changes: dict) -> list[str]:
        new = {kind: {name: {**spec, **changes.get(name, {})} for name, spec in table.items()} for kind, table in old.items()}
        return views_to_refill(diff_specs(old, new, KINDS), new)

    assert refill(plain={"description": "docs only"}, pushed={"tags": {"team": "x"}}) == []
    assert refill(files={"path": "a2"}) == ["pushed"]  # the push source's batch source moved
    assert refill(driver={"join_keys": ["driver_id", "region"]}) == ["pushed"]
    assert refill(plain={"ttl_seconds": 120}) == ["plain"]
