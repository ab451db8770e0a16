"""``StreamConsumer`` and ``DeadLetterProducer`` on kafka-python (the default client).

kafka-python decodes records in Python, so it tops out around 25-35k small messages per second
per process; ``confluent_client`` is the faster choice (see docs/ingestion.md).
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError
from kafka.structs import OffsetAndMetadata

from pitstop.errors import CommitLostError, ConfigError, StreamUnavailableError
from pitstop.ingestion.base import Partition, RebalanceCallback, StreamMessage
from pitstop.log import get_logger
from pitstop.settings import KafkaSettings

log = get_logger(__name__)


def api_version(text: str) -> tuple[int, ...] | None:
    """``"auto"`` -> None (probe the broker); ``"3.5.0"`` -> (3, 5, 0)."""
    if text.strip().lower() == "auto":
        return None
    try:
        return tuple(int(part) for part in text.strip().split("."))
    except ValueError:
        raise ConfigError(f"kafka.api_version {text!r} is not 'auto' or a version like '3.5.0'") from None


def _common(settings: KafkaSettings) -> dict[str, Any]:
    config: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers.split(","), "client_id": "pitstop-ingest"}
    version = api_version(settings.api_version)
    if version is not None:
        config["api_version"] = version
    config.update(settings.security)
    return config


class _Listener(ConsumerRebalanceListener):  # kafka-python ships no type hints
    def __init__(self, on_assign: RebalanceCallback, on_revoke: RebalanceCallback) -> None:
        self._on_assign, self._on_revoke = on_assign, on_revoke

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._on_revoke([(tp.topic, tp.partition) for tp in revoked])

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._on_assign([(tp.topic, tp.partition) for tp in assigned])


class KafkaPythonConsumer:
    """A consumer-group member on kafka-python; see ``StreamConsumer``."""

    def __init__(self, settings: KafkaSettings, *, max_poll_records: int) -> None:
        try:
            self._consumer = KafkaConsumer(
                group_id=settings.group_id,
                enable_auto_commit=False,
                auto_offset_reset=settings.auto_offset_reset,
                session_timeout_ms=settings.session_timeout_ms,
                heartbeat_interval_ms=settings.heartbeat_interval_ms,
                fetch_max_wait_ms=settings.fetch_max_wait_ms,
                max_poll_records=max_poll_records,
                **_common(settings),
            )
        except KafkaError as exc:
            raise StreamUnavailableError(f"cannot connect to Kafka at {settings.bootstrap_servers}: {exc!r}") from exc

    def subscribe(self, topics: list[str], on_assign: RebalanceCallback, on_revoke: RebalanceCallback) -> None:
        self._consumer.subscribe(topics, listener=_Listener(on_assign, on_revoke))

    def poll(self, timeout_s: float, max_messages: int) -> list[StreamMessage]:
        try:
            got = self._consumer.poll(timeout_ms=max(int(timeout_s * 1000), 0), max_records=max_messages)
        except KafkaError as exc:
            raise StreamUnavailableError(f"fetching from Kafka failed: {exc!r}") from exc
        out: list[StreamMessage] = []
        for records in got.values():
            out.extend(StreamMessage(r.topic, r.partition, r.offset, r.value, r.key, r.timestamp) for r in records)
        return out

    def commit(self, offsets: dict[Partition, int]) -> None:
        payload = {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
        try:
            self._consumer.commit(payload)
        except (CommitFailedError, RebalanceInProgressError) as exc:
            raise CommitLostError(f"commit of {_shown(offsets)} refused after a rebalance: {exc!r}") from exc
        except KafkaError as exc:
            raise StreamUnavailableError(f"commit of {_shown(offsets)} failed: {exc!r}") from exc

    def highwater(self, partition: Partition) -> int | None:
        value = self._consumer.highwater(TopicPartition(*partition))
        return None if value is None else int(value)

    def close(self) -> None:
        self._consumer.close()  # sends LeaveGroup


class KafkaPythonProducer:
    """Dead-letter producer on kafka-python; see ``DeadLetterProducer``."""

    def __init__(self, settings: KafkaSettings) -> None:
        try:
            self._producer = KafkaProducer(acks="all", linger_ms=5, **_common(settings))
        except KafkaError as exc:
            raise StreamUnavailableError(f"cannot connect to Kafka at {settings.bootstrap_servers}: {exc!r}") from exc
        self._futures: list[Any] = []

    def send(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        try:
            self._futures.append(self._producer.send(topic, value=value, key=key, headers=headers))
        except KafkaError as exc:
            raise StreamUnavailableError(f"sending a dead letter to {topic!r} failed: {exc!r}") from exc

    def flush(self, timeout_s: float) -> None:
        futures, self._futures = self._futures, []
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            raise StreamUnavailableError(f"flushing dead letters failed: {exc!r}") from exc
        failed = [f.exception for f in futures if not f.is_done or f.failed()]
        if failed:
            raise StreamUnavailableError(f"{len(failed)} dead letter(s) were not delivered: {failed[0]!r}")

    def close(self) -> None:
        self._producer.close(timeout=5)


def _shown(offsets: dict[Partition, int]) -> str:
    return ", ".join(f"{t}[{p}]@{o}" for (t, p), o in sorted(offsets.items()))
