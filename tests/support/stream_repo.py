"""A feature repo with a Kafka-fed view, plus helpers to produce, read back and run ingesters in tests."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pitstop import FeatureStore
from tests.support.repos import write_repo

DEFS = """
from datetime import timedelta
from pitstop import Entity, FeatureView, Field, Float64, Int64, KafkaSource, ParquetSource, String

driver = Entity("driver", join_keys=["driver_id"])
trips_stream = KafkaSource(
    "trips_stream", topic="{topic}", timestamp_field="event_timestamp",
    batch_source=ParquetSource("trips_files", path="data/trips", created_timestamp_column="created"),
)
trips = FeatureView("trips", entities=[driver],
                    schema=[Field("speed", Float64), Field("trips", Int64), Field("city", String)],
                    source=trips_stream, ttl=timedelta(days=3))
"""

YAML = """project: {project}
registry:
  path: data/registry.db
online_store:
  url: {online_url}
offline_store:
  memory_limit: 1GB
kafka:
  bootstrap_servers: {bootstrap}
  group_id: {group}
  client: {client}
  session_timeout_ms: 6000
  heartbeat_interval_ms: 2000
ingest:
  batch_ms: 100
  offline_roll_seconds: 0.5
  metrics_port: {metrics_port}
  retry_backoff_max_s: 1
auth:
  enabled: false  # loopback-only test repos; the auth tests turn it on
"""


def make_stream_repo(root: Path, *, online_url: str, bootstrap: str, topic: str, group: str,
                     client: str = "kafka-python", metrics_port: int = 0, delta: bool = False) -> FeatureStore:
    """Write and apply the repo; its project name is unique, so tests sharing one Redis stay apart.

    ``delta``: the stream's batch source is a Delta table instead of a Parquet folder."""
    defs = DEFS.replace("{topic}", topic)
    if delta:
        defs = defs.replace('ParquetSource("trips_files", path="data/trips"', 'DeltaSource("trips_files", path="data/trips"')
        defs = defs.replace("KafkaSource, ParquetSource", "DeltaSource, KafkaSource")
    write_repo(root, {"defs.py": defs})
    (root / "pitstop.yaml").write_text(YAML.format(
        project=f"s{uuid.uuid4().hex[:10]}", online_url=online_url, bootstrap=bootstrap, group=group, client=client,
        metrics_port=metrics_port))
    store = FeatureStore(root)
    store.apply()
    return store


def event(driver: int, ts: str, speed: float, trips: int = 1, city: str = "x") -> dict[str, Any]:
    return {"driver_id": driver, "event_timestamp": ts, "speed": speed, "trips": trips, "city": city}


def produce(bootstrap: str, topic: str, messages: list[dict[str, Any] | bytes]) -> None:
    """Send ``messages`` (dicts become JSON), keyed by driver so one driver stays on one partition."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for m in messages:
            if isinstance(m, dict):
                producer.send(topic, key=str(m.get("driver_id")).encode(), value=json.dumps(m).encode())
            else:
                producer.send(topic, key=b"raw", value=m)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=5)


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 20.0) -> list[Any]:
    """Every record of ``topic`` (no consumer group: partitions assigned by hand), once ``expected`` arrived."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while not partitions and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                time.sleep(0.1)
        assert partitions, f"topic {topic!r} does not exist"
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Running:
    """An ``Ingester`` running on a thread."""

    ingester: Any
    thread: threading.Thread
    errors: list[BaseException] = field(default_factory=list)


@contextmanager
def running_ingester(store: FeatureStore, **kwargs: Any) -> Iterator[Running]:
    """Run ``Ingester(store, **kwargs)`` on a thread; stop it gracefully (commit, leave) on exit."""
    from pitstop.ingestion import Ingester

    ingester = Ingester(store, **kwargs)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            ingester.run()
        except BaseException as exc:  # surfaced by the test, not lost on the thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="ingester", daemon=True)
    run = Running(ingester, thread, errors)
    thread.start()
    try:
        yield run
    finally:
        ingester.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the ingester did not stop within 30 s"
    if errors:
        raise errors[0]
