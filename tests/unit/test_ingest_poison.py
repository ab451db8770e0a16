"""The ingester never crashes on data: poison messages are dead-lettered with a reason, the batch goes on,
and offsets move past them (in-memory client fakes, SQLite online store)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import pitstop.ingestion.pipeline as pipeline
from pitstop import FeatureStore
from tests.support.ingest_fakes import TOPIC, FakeConsumer, FakeProducer
from tests.support.stream_repo import event, make_stream_repo
from tests.unit.test_ingest_pipeline import msgs, run, speeds

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    s = make_stream_repo(tmp_path, online_url="sqlite:///data/online.db", bootstrap="unused:9092", topic=TOPIC,
                         group="g")
    yield s
    s.close()


class Capture(FakeProducer):
    """A producer that keeps what it delivered with the headers."""

    def __init__(self) -> None:
        super().__init__()
        self.letters: list[tuple[str, bytes, dict[str, str]]] = []

    def send(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        super().send(topic, key, value, headers)
        self.letters.append((topic, value, {k: v.decode() for k, v in headers}))


def test_poison_timestamps_go_to_the_dead_letter_topic_and_the_batch_goes_on(store: FeatureStore) -> None:
    stamp = int((NOW - timedelta(minutes=1)).timestamp())
    poison = [
        event(11, stamp * 1_000_000, speed=9.0),  # type: ignore[arg-type]  epoch µs in a seconds source
        event(12, stamp * 1_000, speed=9.0),  # type: ignore[arg-type]  epoch ms
        event(13, (NOW + timedelta(days=365)).isoformat(), speed=9.0),  # far future
        event(14, "now", speed=9.0),
        event(15, "", speed=9.0),
    ]
    good = [event(d, NOW.isoformat(), speed=d / 2) for d in range(4)]
    producer = Capture()
    consumer = FakeConsumer(msgs([good[0], *poison[:3], good[1], *poison[3:], good[2], good[3]]))
    ingester = run(store, consumer, producer)
    assert speeds(store, [0, 1, 2, 3]) == [0.0, 0.5, 1.0, 1.5]
    assert speeds(store, [11, 12, 13, 14, 15]) == [None] * 5
    assert ingester.stats.events == 4 and ingester.stats.dead_letters == 5
    reasons = {json.loads(value)["driver_id"]: headers["pitstop.reason"] for _, value, headers in producer.letters}
    assert "set timestamp_unit='us'" in reasons[11]
    assert "set timestamp_unit='ms'" in reasons[12]
    assert "later than the latest accepted time" in reasons[13]
    assert "'now' is not an ISO-8601 time" in reasons[14] and "'' is not" in reasons[15]
    assert {topic for topic, _, _ in producer.letters} == {TOPIC + ".dlq"}
    assert consumer.commits[-1] == {(TOPIC, 0): 5, (TOPIC, 1): 4}  # every offset, poison included, is committed


class RefusingOnline:
    """An online store that refuses (with a non-outage error) any batch holding driver 13."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def write(self, batches: Any) -> Any:
        for batch in batches:
            if 13 in batch.keys.column(0).to_pylist():
                raise ValueError("cannot encode this value")
        return self.inner.write(batches)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_write_refused_for_one_message_dead_letters_only_that_message(store: FeatureStore) -> None:
    store._online = RefusingOnline(store.online)  # type: ignore[assignment]
    producer = Capture()
    consumer = FakeConsumer(msgs([event(d, NOW.isoformat(), speed=float(d)) for d in (12, 13, 14)]))
    ingester = run(store, consumer, producer)
    assert speeds(store, [12, 13, 14]) == [12.0, None, 14.0]
    assert ingester.stats.dead_letters == 1 and ingester.stats.events == 2
    assert "the online store refused its values: ValueError: cannot encode this value" in \
        producer.letters[0][2]["pitstop.reason"]
    assert sum(consumer.commits[-1].values()) == 3


def test_rows_that_cannot_be_keyed_are_found_one_by_one(store: FeatureStore, monkeypatch) -> None:
    real = pipeline.latest_per_key

    def fussy(view: Any, table: Any) -> Any:
        if 13 in table.column("driver_id").to_pylist():
            raise OverflowError("int too big to convert")
        return real(view, table)

    monkeypatch.setattr(pipeline, "latest_per_key", fussy)
    producer = Capture()
    consumer = FakeConsumer(msgs([event(d, NOW.isoformat(), speed=float(d)) for d in (12, 13, 14)]))
    ingester = run(store, consumer, producer)
    assert speeds(store, [12, 13, 14]) == [12.0, None, 14.0]
    assert ingester.stats.dead_letters == 1
    assert "cannot be written: OverflowError: int too big to convert" in producer.letters[0][2]["pitstop.reason"]
