"""How far `pitstop ingest` is behind a stream-fed view's topic: per partition, the end offset minus
the ingester group's committed offset, asked of the brokers themselves (kafka-python's admin client).

Best effort and bounded: answers within a few seconds or says why not (Kafka not installed, brokers
unreachable); results are cached for ``CACHE_SECONDS`` so a busy page does not hammer the brokers.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

CACHE_SECONDS = 5.0
TIMEOUT_MS = 3000


@dataclass(frozen=True)
class StreamLag:
    """Messages the ingester group has not committed yet, per partition (None where it never committed)."""

    topic: str
    group: str
    partitions: dict[int, int | None]
    error: str | None = None

    @property
    def total(self) -> int | None:
        known = [v for v in self.partitions.values() if v is not None]
        return sum(known) if known else None


_cache: dict[tuple[str, str, str], tuple[float, StreamLag]] = {}
_lock = threading.Lock()


def stream_lag(kafka: Any, topic: str) -> StreamLag:
    """The ingester group's lag on ``topic`` (``kafka``: the ``kafka`` settings section)."""
    key = (kafka.bootstrap_servers, kafka.group_id, topic)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
    lag = _ask(kafka, topic)
    with _lock:
        _cache[key] = (time.monotonic(), lag)
    return lag


def _ask(kafka: Any, topic: str) -> StreamLag:
    try:
        from kafka import KafkaConsumer, TopicPartition
        from kafka.admin import KafkaAdminClient
    except ImportError:
        return StreamLag(topic, kafka.group_id, {}, "the kafka extra is not installed here")
    common = {"bootstrap_servers": kafka.bootstrap_servers.split(","), "request_timeout_ms": TIMEOUT_MS,
              **kafka.security}
    admin = consumer = None
    try:
        admin = KafkaAdminClient(client_id="pitstop-ui", **common)
        # kafka-python 3 renamed list_consumer_group_offsets; both answer {TopicPartition: OffsetAndMetadata}
        if hasattr(admin, "list_group_offsets"):
            committed = admin.list_group_offsets([kafka.group_id]).get(kafka.group_id, {})
        else:
            committed = admin.list_consumer_group_offsets(kafka.group_id)
        consumer = KafkaConsumer(client_id="pitstop-ui", group_id=None, enable_auto_commit=False, **common)
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = consumer.end_offsets(tps) if tps else {}
        lags: dict[int, int | None] = {}
        for tp in tps:
            done = committed.get(tp)
            lags[tp.partition] = None if done is None or done.offset < 0 else max(0, ends[tp] - done.offset)
        if not tps:
            return StreamLag(topic, kafka.group_id, {}, f"topic {topic!r} has no partitions on the brokers")
        return StreamLag(topic, kafka.group_id, lags)
    except Exception as exc:  # noqa: BLE001 - any client or network failure is shown, never raised
        return StreamLag(topic, kafka.group_id, {}, f"cannot reach Kafka at {kafka.bootstrap_servers}: "
                                                    f"{type(exc).__name__}: {str(exc)[:200]}")
    finally:
        for client in (consumer, admin):
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001
                    pass
