"""Stream ingestion against a real Kafka-protocol broker (Tansu) and a real Redis: no mocks."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pitstop.offline.source_check import source_files
from tests.integration.kafka_broker import create_topic, unique_name
from tests.integration.redis_server import free_port
from tests.support.stream_repo import (
    event,
    make_stream_repo,
    produce,
    read_topic,
    running_ingester,
    wait_until,
)

pytestmark = pytest.mark.integration


def iso(t: datetime) -> str:
    return t.isoformat()


def online(store, drivers: list[int]) -> dict[int, tuple]:
    got = store.get_online_features(["trips:speed", "trips:trips", "trips:city"],
                                    {"driver_id": drivers}).to_dict()
    return {d: (s, t, c) for d, s, t, c in zip(got["driver_id"], got["speed"], got["trips"], got["city"], strict=True)}


def offline_rows(store) -> pd.DataFrame:
    source = store.definitions().views["trips"].source.batch
    files = source_files(source, store.settings.offline_root)
    return pd.concat([pq.read_table(f).to_pandas() for f in files]) if files else pd.DataFrame()

def new_stream(root: Path, online_url: str, bootstrap: str, **options: Any) -> tuple[str, Any]:
    """A fresh 3-partition topic and an applied repo reading it, in a group of its own."""
    topic = unique_name("trips")
    create_topic(bootstrap, topic, partitions=3)
    store = make_stream_repo(root, online_url=online_url, bootstrap=bootstrap, topic=topic,
                             group=unique_name("g"), **options)
    return topic, store



@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_produce_ingest_read_online_offline_and_dead_letters(tmp_path: Path, redis_url: str, kafka_bootstrap: str,
                                                             client: str) -> None:
    port = free_port()
    topic, store = new_stream(tmp_path, redis_url, kafka_bootstrap, client=client, metrics_port=port)
    now = datetime.now(UTC).replace(microsecond=0)
    newest = [event(d, iso(now - timedelta(minutes=10)), speed=d + 0.5, trips=d, city=f"c{d}") for d in range(10)]
    older = [event(d, iso(now - timedelta(minutes=20 + d)), speed=-1.0, trips=-1) for d in range(10)]
    bad = [b"{not json", json.dumps({"event_timestamp": iso(now), "speed": 1.0}).encode(),
           json.dumps(event(1, iso(now), speed="fast")).encode()]  # type: ignore[arg-type]
    with store, running_ingester(store) as run:
        metrics = run.ingester.metrics
        produce(kafka_bootstrap, topic, [*older[:5], *newest, *bad])
        wait_until(lambda: run.ingester.stats.events == 15 and run.ingester.stats.dead_letters == 3, 30, "first round")
        # late events for drivers 5..9 arrive after their newer values: the guard keeps the newer ones
        produce(kafka_bootstrap, topic, older[5:])
        wait_until(lambda: run.ingester.stats.events == 20, 30, "late events")
        wait_until(lambda: run.ingester.stats.commits >= 1 and not run.ingester._processed, 10, "the commit")
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert f'pitstop_ingest_events_total{{topic="{topic}"}} 20.0' in body
        assert "pitstop_ingest_freshness_seconds_bucket" in body and "pitstop_ingest_lag_messages" in body
        assert metrics.value("pitstop_ingest_dead_letters_total", topic=topic) == 3
        assert metrics.value("pitstop_ingest_stale_rows_total") >= 5

        values = online(store, list(range(10)))
        assert values == {d: (d + 0.5, d, f"c{d}") for d in range(10)}

        rows = offline_rows(store)
        assert len(rows) == 20 and set(rows["driver_id"]) == set(range(10))
        files = list((tmp_path / "data" / "trips").rglob("*"))
        assert not [f for f in files if f.name.startswith(".")], "no temporary file may be left visible"
        event_days = {f"{t:%Y-%m-%d}" for t in pd.to_datetime(rows["event_timestamp"], utc=True)}
        assert {f.parent.name for f in files if f.suffix == ".parquet"} == event_days  # date-partitioned

        # a training set built afterwards includes the streamed rows (point in time: the newest before then)
        entity = pd.DataFrame({"driver_id": list(range(10)), "event_timestamp": [now + timedelta(hours=1)] * 10})
        training = store.get_historical_features(entity, ["trips:speed", "trips:trips"]).to_pandas()
        assert training.sort_values("driver_id")["speed"].tolist() == [d + 0.5 for d in range(10)]

        letters = read_topic(kafka_bootstrap, f"{topic}.dlq", expected=3)
        reasons = sorted(dict(r.headers)["pitstop.reason"].decode() for r in letters)
        assert len(letters) == 3
        assert any("not valid JSON" in r for r in reasons)
        assert any("join key 'driver_id' is missing" in r for r in reasons)
        assert any("feature 'speed': expected a number" in r for r in reasons)
        for r in letters:
            headers = dict(r.headers)
            assert headers["pitstop.topic"].decode() == topic
            assert int(headers["pitstop.offset"]) >= 0 and int(headers["pitstop.partition"]) in (0, 1, 2)
        assert sorted(r.value for r in letters) == sorted(bad)


def _paced_producer(bootstrap: str, topic: str, messages: list[dict], seconds: float) -> threading.Thread:
    def send() -> None:
        chunk = max(len(messages) // 20, 1)
        for start in range(0, len(messages), chunk):
            produce(bootstrap, topic, messages[start:start + chunk])
            time.sleep(seconds / 20)

    thread = threading.Thread(target=send, name="producer", daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_restarting_the_ingester_mid_stream_loses_nothing(tmp_path: Path, redis_url: str, kafka_bootstrap: str) -> None:
    topic, store = new_stream(tmp_path, redis_url, kafka_bootstrap)
    now = datetime.now(UTC).replace(microsecond=0)
    messages = [event(d, iso(now - timedelta(minutes=5)), speed=float(d), trips=d) for d in range(400)]
    with store:
        producer = _paced_producer(kafka_bootstrap, topic, messages, seconds=4)
        with running_ingester(store) as first:
            wait_until(lambda: first.ingester.stats.events >= 40, 30, "the first ingester to ingest some events")
        # the first ingester finished its batch, committed and left while events kept arriving
        assert first.ingester.stats.commits >= 1
        with running_ingester(store) as second:
            producer.join(timeout=30)
            wait_until(lambda: first.ingester.stats.events + second.ingester.stats.events >= 400, 40, "all events")
            time.sleep(1.0)  # anything replayed twice would show up now
        assert first.ingester.stats.events < 400
        assert first.ingester.stats.events + second.ingester.stats.events == 400  # graceful: no replay
        assert online(store, list(range(400))) == {d: (float(d), d, "x") for d in range(400)}
        rows = offline_rows(store)
        assert len(rows) == 400 and rows["driver_id"].nunique() == 400


@pytest.mark.slow
def test_kill9_between_the_writes_and_the_commit_replays_harmlessly(tmp_path: Path, redis_url: str,
                                                                   kafka_bootstrap: str) -> None:
    topic, store = new_stream(tmp_path, redis_url, kafka_bootstrap)
    now = datetime.now(UTC).replace(microsecond=0)
    messages = [event(d, iso(now - timedelta(minutes=5)), speed=d / 10, trips=d) for d in range(50)]
    produce(kafka_bootstrap, topic, messages)
    crashing = Path(__file__).resolve().parents[1] / "support" / "crashing_ingest.py"
    with subprocess.Popen([sys.executable, str(crashing), str(tmp_path)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
        try:
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err
    assert "fault injection" in err
    with store:
        expected = {d: (d / 10, d, "x") for d in range(50)}
        assert online(store, list(range(50))) == expected  # written before the crash
        assert len(offline_rows(store)) == 50
        # nothing was committed: the next member of the group gets every message again
        with running_ingester(store) as replay:
            wait_until(lambda: replay.ingester.stats.events >= 50, 40, "the replay")
            wait_until(lambda: replay.ingester.stats.commits >= 1, 10, "the commit")
        assert replay.ingester.stats.events == 50
        assert online(store, list(range(50))) == expected
        rows = offline_rows(store)
        assert len(rows) == 100  # each row twice: the offline copy is at-least-once too
        entity = pd.DataFrame({"driver_id": list(range(50)), "event_timestamp": [now + timedelta(hours=1)] * 50})
        training = store.get_historical_features(entity, ["trips:speed", "trips:trips"]).to_pandas()
        assert len(training) == 50  # duplicates collapse in the point-in-time join
        assert training["speed"].tolist() == [d / 10 for d in range(50)]


@pytest.mark.slow
def test_two_ingesters_in_one_group_share_the_partitions(tmp_path: Path, redis_url: str, kafka_bootstrap: str) -> None:
    from pitstop import FeatureStore

    topic, store = new_stream(tmp_path, redis_url, kafka_bootstrap)
    other = FeatureStore(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    with store, other, running_ingester(store) as a, running_ingester(other) as b:
        def split() -> bool:
            mine, theirs = a.ingester.assigned, b.ingester.assigned
            return bool(mine) and bool(theirs) and not (mine & theirs) and len(mine | theirs) == 3

        wait_until(split, 40, "both members to own partitions")
        produce(kafka_bootstrap, topic, [event(d, iso(now - timedelta(minutes=1)), speed=1.0) for d in range(300)])
        wait_until(lambda: a.ingester.stats.events + b.ingester.stats.events >= 300, 30, "all events")
        assert a.ingester.stats.events > 0 and b.ingester.stats.events > 0
        assert a.ingester.stats.events + b.ingester.stats.events == 300
        assert all(v[0] == 1.0 for v in online(store, list(range(300))).values())


@pytest.mark.slow
def test_a_redis_outage_is_retried_and_loses_nothing(tmp_path: Path, kafka_bootstrap: str) -> None:
    import shutil

    from tests.integration.redis_server import RedisServer

    topic = unique_name("trips")
    create_topic(kafka_bootstrap, topic, partitions=3)
    redis = RedisServer(tmp_path / "redis").start()
    port = redis.port
    replacement = None
    try:
        store = make_stream_repo(tmp_path / "repo", online_url=redis.url, bootstrap=kafka_bootstrap, topic=topic,
                                 group=unique_name("g"))
        now = datetime.now(UTC).replace(microsecond=0)
        with store, running_ingester(store) as run:
            produce(kafka_bootstrap, topic, [event(d, iso(now), speed=1.0) for d in range(10)])
            wait_until(lambda: run.ingester.stats.events == 10, 30, "the first events")
            redis.stop()
            produce(kafka_bootstrap, topic, [event(d, iso(now), speed=2.0) for d in range(10, 20)])
            retries = lambda: run.ingester.metrics.value("pitstop_ingest_retries_total", operation="online write")  # noqa: E731
            wait_until(lambda: retries() >= 2, 30, "retries of the online write")
            assert run.ingester.stats.events == 10  # held, not skipped
            replacement = subprocess.Popen(
                [shutil.which("redis-server") or "redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                 "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_until(lambda: run.ingester.stats.events == 20, 30, "the held batch after Redis came back")
            assert online(store, list(range(10, 20))) == dict.fromkeys(range(10, 20), (2.0, 1, "x"))
            wait_until(lambda: not run.ingester._processed, 10, "the commit")
        assert len(offline_rows(store)) == 20
    finally:
        redis.stop()
        if replacement is not None:
            replacement.terminate()
            replacement.wait(timeout=10)


@pytest.mark.slow
def test_sigterm_finishes_the_batch_commits_and_exits_cleanly(tmp_path: Path, redis_url: str,
                                                              kafka_bootstrap: str) -> None:
    topic, store = new_stream(tmp_path, redis_url, kafka_bootstrap)
    now = datetime.now(UTC).replace(microsecond=0)
    produce(kafka_bootstrap, topic, [event(d, iso(now), speed=7.0) for d in range(20)])
    with subprocess.Popen([sys.executable, "-m", "pitstop.cli", "-r", str(tmp_path), "ingest"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            with store:
                wait_until(lambda: all(v[0] == 7.0 for v in online(store, list(range(20))).values()), 40,
                           "the events online")
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert "received SIGTERM" in err and "ingester stopped: 20 events, 0 dead letters" in err
    assert "events" in out
    # everything was committed: a new member of the group reads nothing again
    with store, running_ingester(store) as again:
        wait_until(lambda: len(again.ingester.assigned) == 3, 30, "the partitions")
        time.sleep(1.0)
        assert again.ingester.stats.events == 0


def test_poison_messages_are_dead_lettered_and_never_replayed_across_restarts(tmp_path: Path, redis_url: str,
                                                                               kafka_bootstrap: str) -> None:
    """Issue 10: epoch µs / ms and far-future event times between good events. Good ones land online and
    offline, poison goes to the DLQ with its reason, the ingester keeps running, and a restart neither
    crashes nor replays them (the offsets moved past them)."""
    topic, store = new_stream(tmp_path, redis_url, kafka_bootstrap)
    now = datetime.now(UTC).replace(microsecond=0)
    stamp = int((now - timedelta(minutes=2)).timestamp())
    good = [event(d, iso(now - timedelta(minutes=1)), speed=d + 0.25, trips=d) for d in range(6)]
    poison = [event(100, stamp * 1_000_000, speed=1.0),  # type: ignore[arg-type]  epoch µs (the reported crash)
              event(101, stamp * 1_000, speed=1.0),  # type: ignore[arg-type]  epoch ms (read as year ~58,000)
              event(102, iso(now + timedelta(days=365)), speed=1.0),  # pins the key forever if accepted
              event(103, "now", speed=1.0)]
    with store:
        with running_ingester(store) as first:
            produce(kafka_bootstrap, topic, [good[0], poison[0], good[1], poison[1], good[2], poison[2], good[3],
                                             poison[3], good[4], good[5]])
            wait_until(lambda: first.ingester.stats.events == 6 and first.ingester.stats.dead_letters == 4, 30,
                       "good events and dead letters")
            wait_until(lambda: first.ingester.stats.commits >= 1 and not first.ingester._processed, 10, "the commit")
        assert online(store, list(range(6))) == {d: (d + 0.25, d, "x") for d in range(6)}
        assert online(store, [100, 101, 102, 103]) == dict.fromkeys((100, 101, 102, 103), (None, None, None))
        rows = offline_rows(store)
        assert sorted(rows["driver_id"]) == list(range(6))
        letters = read_topic(kafka_bootstrap, f"{topic}.dlq", expected=4)
        reasons = {json.loads(r.value)["driver_id"]: dict(r.headers)["pitstop.reason"].decode() for r in letters}
        assert "set timestamp_unit='us'" in reasons[100]
        assert "set timestamp_unit='ms'" in reasons[101]
        assert "later than the latest accepted time" in reasons[102]
        assert "'now' is not an ISO-8601 time" in reasons[103]

        # a restart replays nothing (the poison was committed with the rest) and goes on ingesting
        with running_ingester(store) as second:
            produce(kafka_bootstrap, topic, [event(6, iso(now), speed=6.25, trips=6)])
            wait_until(lambda: second.ingester.stats.events == 1, 30, "the new event")
            time.sleep(1.0)  # a replay would show up now
            assert second.ingester.stats.dead_letters == 0 and second.ingester.stats.events == 1
        assert online(store, [6]) == {6: (6.25, 6, "x")}

        # the same source declared in milliseconds accepts epoch milliseconds
        defs = tmp_path / "defs.py"
        defs.write_text(defs.read_text().replace('timestamp_field="event_timestamp",',
                                                 'timestamp_field="event_timestamp", timestamp_unit="ms",', 1))
        assert store.plan().changes, "declaring the unit is a change"
        store.apply()
        with running_ingester(store) as third:
            produce(kafka_bootstrap, topic, [event(7, stamp * 1_000, speed=7.25, trips=7)])  # type: ignore[arg-type]
            wait_until(lambda: third.ingester.stats.events == 1, 30, "the ms event")
            assert third.ingester.stats.dead_letters == 0
        assert online(store, [7]) == {7: (7.25, 7, "x")}


@pytest.mark.slow
def test_two_ingesters_append_to_one_delta_table_and_lose_nothing(tmp_path: Path, redis_url: str,
                                                                   kafka_bootstrap: str) -> None:
    from deltalake import DeltaTable

    from pitstop import FeatureStore

    topic, store = new_stream(tmp_path, redis_url, kafka_bootstrap, delta=True)
    other = FeatureStore(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    with store, other, running_ingester(store) as a, running_ingester(other) as b:
        wait_until(lambda: bool(a.ingester.assigned) and bool(b.ingester.assigned), 40, "both members to own partitions")
        produce(kafka_bootstrap, topic, [event(d, iso(now - timedelta(minutes=1)), speed=2.0) for d in range(300)])
        wait_until(lambda: a.ingester.stats.commits + b.ingester.stats.commits >= 2
                   and len(offline_rows(store)) >= 300, 40, "all rows committed to the Delta table")
        assert a.ingester.stats.events > 0 and b.ingester.stats.events > 0
    rows = offline_rows(store)
    assert len(rows) == 300 and sorted(rows["driver_id"]) == list(range(300))
    assert DeltaTable(str(tmp_path / "data/trips")).version() >= 1  # one commit per roll and member

