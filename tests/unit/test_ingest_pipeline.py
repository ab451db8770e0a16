"""The ingestion pipeline with in-memory client fakes and the SQLite online store: ordering and retries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pitstop import FeatureStore
from pitstop.errors import CommitLostError, ConfigError, IngestError, StreamUnavailableError
from pitstop.ingestion import Ingester
from pitstop.ingestion.base import Partition, StreamMessage
from pitstop.offline.source_check import source_files
from pitstop.settings import load_settings
from tests.support.ingest_fakes import TOPIC, FakeConsumer, FakeProducer, FlakyOnline
from tests.support.stream_repo import event, make_stream_repo

NOW = datetime.now(UTC).replace(microsecond=0)


def msgs(values: list[dict[str, Any] | bytes]) -> list[StreamMessage]:
    out = []
    for i, v in enumerate(values):
        data = v if isinstance(v, bytes) else json.dumps(v).encode()
        out.append(StreamMessage(TOPIC, i % 2, i // 2, data, None, -1))
    return out


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    s = make_stream_repo(tmp_path, online_url="sqlite:///data/online.db", bootstrap="unused:9092", topic=TOPIC,
                         group="g")
    yield s
    s.close()


def speeds(store: FeatureStore, drivers: list[int]) -> list[Any]:
    return store.get_online_features(["trips:speed"], {"driver_id": drivers}).to_dict()["speed"]


def run(store: FeatureStore, consumer: FakeConsumer, producer: FakeProducer | None = None) -> Ingester:
    ingester = Ingester(store, consumer=consumer, producer=producer or FakeProducer())

    def stop_when_done() -> None:
        if not ingester._pending and ingester._inflight is None and not ingester._processed:  # all committed
            ingester.stop()

    consumer.on_empty = stop_when_done
    ingester.run(max_seconds=30)
    return ingester


def test_offsets_are_committed_only_after_the_online_and_offline_writes(store: FeatureStore) -> None:
    consumer = FakeConsumer(msgs([event(d, NOW.isoformat(), speed=d / 2) for d in range(6)]))
    seen: list[tuple[list[Any], int]] = []

    def check(offsets: dict[Partition, int]) -> None:
        files = source_files(store.definitions().views["trips"].source.batch, store.settings.offline_root)
        seen.append((speeds(store, list(range(6))), len(files)))

    consumer.on_commit = check
    ingester = run(store, consumer)
    assert consumer.commits == [{(TOPIC, 0): 3, (TOPIC, 1): 3}]
    assert seen == [([d / 2 for d in range(6)], 1)]
    assert consumer.closed and ingester.stats.events == 6
    assert ingester.metrics.value("pitstop_ingest_lag_messages", topic=TOPIC, partition="0") in (0.0,)


def test_a_failing_online_store_is_retried_and_the_batch_is_kept(store: FeatureStore) -> None:
    flaky = FlakyOnline(store.online, failures=2)
    store._online = flaky  # type: ignore[assignment]
    consumer = FakeConsumer(msgs([event(1, NOW.isoformat(), speed=3.0)]))
    ingester = run(store, consumer)
    assert flaky.calls == 3 and ingester.metrics.value("pitstop_ingest_retries_total", operation="online write") == 2
    assert speeds(store, [1]) == [3.0] and consumer.commits == [{(TOPIC, 0): 1}]


def test_stopping_during_an_outage_commits_nothing(store: FeatureStore) -> None:
    store._online = FlakyOnline(store.online, failures=-1)  # type: ignore[assignment]
    consumer = FakeConsumer(msgs([event(1, NOW.isoformat(), speed=3.0)]))
    ingester = Ingester(store, consumer=consumer, producer=FakeProducer())
    original = consumer.poll

    def poll_then_stop(timeout_s: float, max_messages: int) -> list[StreamMessage]:
        got = original(timeout_s, max_messages)
        if got:
            ingester.stop()  # SIGTERM arrives while Redis is down
        return got

    consumer.poll = poll_then_stop  # type: ignore[method-assign]
    ingester.run(max_seconds=30)
    assert consumer.commits == [] and consumer.closed
    assert ingester.stats.events == 0


def test_commit_failures_are_retried_and_a_lost_partition_is_not_fatal(store: FeatureStore) -> None:
    consumer = FakeConsumer(msgs([event(d, NOW.isoformat(), speed=1.0) for d in range(4)]))
    consumer.commit_failures = [StreamUnavailableError("coordinator not available")]
    run(store, consumer)
    assert consumer.commits == [{(TOPIC, 0): 2, (TOPIC, 1): 2}]
    consumer = FakeConsumer(msgs([event(d, NOW.isoformat(), speed=1.0) for d in range(2)]))
    consumer.commit_failures = [CommitLostError("rebalanced")]
    ingester = run(store, consumer)
    assert consumer.commits == [] and ingester.stats.events == 2


def test_dead_letters_are_confirmed_before_their_offsets_are_committed(store: FeatureStore) -> None:
    producer = FakeProducer()
    producer.flush_failures = 1
    consumer = FakeConsumer(msgs([event(1, NOW.isoformat(), speed=1.0), b"oops", event(2, "later", speed=1.0)]))
    ingester = run(store, consumer, producer)
    assert sorted(producer.delivered) == sorted([b"oops", json.dumps(event(2, "later", speed=1.0)).encode()])
    assert consumer.commits == [{(TOPIC, 0): 2, (TOPIC, 1): 1}]
    assert ingester.stats.dead_letters == 2 and ingester.stats.events == 1
    assert ingester.metrics.value("pitstop_ingest_dead_letters_total", topic=TOPIC) == 2


def test_out_of_order_events_in_one_batch_keep_the_newest(store: FeatureStore) -> None:
    late = [event(1, (NOW - timedelta(minutes=m)).isoformat(), speed=float(m)) for m in (5, 1, 9)]
    run(store, FakeConsumer(msgs(late)))
    assert speeds(store, [1]) == [1.0]
    run(store, FakeConsumer(msgs([event(1, (NOW - timedelta(hours=1)).isoformat(), speed=60.0)])))
    assert speeds(store, [1]) == [1.0]


def test_views_must_exist_and_be_stream_views(store: FeatureStore) -> None:
    with pytest.raises(IngestError, match="unknown feature view 'nope'; stream views: trips"):
        Ingester(store, ["nope"], consumer=FakeConsumer([]), producer=FakeProducer())


def test_kafka_and_ingest_settings_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "pitstop.yaml").write_text("project: p\n")
    env = {"PITSTOP_KAFKA_SECURITY": '{"security_protocol": "SSL"}', "PITSTOP_KAFKA_CLIENT": "confluent-kafka",
           "PITSTOP_KAFKA_API_VERSION": "3.5.0", "PITSTOP_INGEST_BATCH_SIZE": "10", "PITSTOP_INGEST_METRICS_PORT": "0"}
    settings = load_settings(tmp_path, env)
    assert settings.kafka.security == {"security_protocol": "SSL"} and settings.kafka.client == "confluent-kafka"
    assert settings.kafka.api_version == "3.5.0" and settings.ingest.batch_size == 10
    assert settings.ingest.metrics_port == 0
    with pytest.raises(ConfigError, match="kafka.security must be a JSON object"):
        load_settings(tmp_path, {"PITSTOP_KAFKA_SECURITY": "{nope"})
    with pytest.raises(ConfigError, match="kafka.client"):
        load_settings(tmp_path, {"PITSTOP_KAFKA_CLIENT": "aiokafka"})


def test_api_version_parsing() -> None:
    from pitstop.ingestion.kafka_python_client import api_version

    assert api_version("auto") is None and api_version("2.8.1") == (2, 8, 1)
    with pytest.raises(ConfigError, match="'x.y' is not 'auto'"):
        api_version("x.y")


def test_the_cli_without_stream_views_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pitstop.cli.app import main
    from tests.support.online_repo import make_repo

    make_repo(tmp_path).close()
    with pytest.raises(SystemExit) as exited:
        main(["-r", str(tmp_path), "ingest"])
    assert exited.value.code == 1
    out = capsys.readouterr()
    assert "no feature view is fed by a KafkaSource" in out.out + out.err

