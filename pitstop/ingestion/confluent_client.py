"""``StreamConsumer`` and ``DeadLetterProducer`` on confluent-kafka (librdkafka): the fast client.

Chosen with ``kafka.client: confluent-kafka``; install it with ``pip install 'pitstop[kafka]'``.
``kafka.security`` keys are librdkafka's dotted names (``security.protocol``, ``sasl.mechanism``...).
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from pitstop.errors import CommitLostError, StreamUnavailableError
from pitstop.ingestion.base import Partition, RebalanceCallback, StreamMessage
from pitstop.log import get_logger
from pitstop.settings import KafkaSettings

log = get_logger(__name__)

_LOST = {KafkaError.REBALANCE_IN_PROGRESS, KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION,
         KafkaError._ASSIGNMENT_LOST}  # noqa: SLF001 - librdkafka's own name for a local error code


def _common(settings: KafkaSettings) -> dict[str, Any]:
    config: dict[str, Any] = {"bootstrap.servers": settings.bootstrap_servers, "client.id": "pitstop-ingest"}
    if settings.api_version.strip().lower() != "auto":
        config["api.version.request"] = False
        config["broker.version.fallback"] = settings.api_version.strip()
    config.update(settings.security)
    return config


class ConfluentConsumer:
    """A consumer-group member on confluent-kafka; see ``StreamConsumer``."""

    def __init__(self, settings: KafkaSettings, *, max_poll_records: int) -> None:
        del max_poll_records  # consume() takes the count per call
        config = {
            **_common(settings),
            "group.id": settings.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": settings.auto_offset_reset,
            "session.timeout.ms": settings.session_timeout_ms,
            "heartbeat.interval.ms": settings.heartbeat_interval_ms,
            "fetch.wait.max.ms": settings.fetch_max_wait_ms,
            "enable.partition.eof": False,
        }
        try:
            self._consumer = Consumer(config)
        except KafkaException as exc:
            raise StreamUnavailableError(f"cannot create a Kafka consumer for {settings.bootstrap_servers}: {exc}") from exc
        self._closed = False

    def subscribe(self, topics: list[str], on_assign: RebalanceCallback, on_revoke: RebalanceCallback) -> None:
        def assigned(_: Any, partitions: list[TopicPartition]) -> None:
            on_assign([(tp.topic, tp.partition) for tp in partitions])

        def revoked(_: Any, partitions: list[TopicPartition]) -> None:
            on_revoke([(tp.topic, tp.partition) for tp in partitions])

        self._consumer.subscribe(topics, on_assign=assigned, on_revoke=revoked, on_lost=revoked)

    def poll(self, timeout_s: float, max_messages: int) -> list[StreamMessage]:
        try:
            records = self._consumer.consume(num_messages=max_messages, timeout=max(timeout_s, 0.0))
        except KafkaException as exc:
            raise StreamUnavailableError(f"fetching from Kafka failed: {exc}") from exc
        out: list[StreamMessage] = []
        for r in records:
            error = r.error()
            if error is not None:
                if error.fatal():
                    raise StreamUnavailableError(f"Kafka consumer failed: {error}")
                log.warning("kafka consumer: %s", error)  # transient; librdkafka retries by itself
                continue
            # topic, partition and offset are set on every message that carries no error
            out.append(StreamMessage(str(r.topic()), int(r.partition() or 0), int(r.offset() or 0), r.value(), r.key(),
                                     r.timestamp()[1]))
        return out

    def commit(self, offsets: dict[Partition, int]) -> None:
        payload = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            self._consumer.commit(offsets=payload, asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() in _LOST:
                raise CommitLostError(f"commit refused after a rebalance: {error}") from exc
            raise StreamUnavailableError(f"commit failed: {exc}") from exc

    def highwater(self, partition: Partition) -> int | None:
        try:
            _, high = self._consumer.get_watermark_offsets(TopicPartition(*partition), cached=True)
        except KafkaException:
            return None
        return None if high is None or high < 0 else int(high)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._consumer.close()  # leaves the group


class ConfluentProducer:
    """Dead-letter producer on confluent-kafka; see ``DeadLetterProducer``."""

    def __init__(self, settings: KafkaSettings) -> None:
        try:
            self._producer = Producer({**_common(settings), "acks": "all", "linger.ms": 5})
        except KafkaException as exc:
            raise StreamUnavailableError(f"cannot create a Kafka producer for {settings.bootstrap_servers}: {exc}") from exc
        self._errors: list[str] = []

    def _delivered(self, error: Any, _: Any) -> None:
        if error is not None:
            self._errors.append(str(error))

    def send(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        headers_: list[tuple[str, str | bytes | None]] = list(headers)
        try:
            self._producer.produce(topic, value=value, key=key, headers=headers_, on_delivery=self._delivered)
        except BufferError:
            self._producer.poll(1.0)
            self._producer.produce(topic, value=value, key=key, headers=headers_, on_delivery=self._delivered)
        except KafkaException as exc:
            raise StreamUnavailableError(f"sending a dead letter to {topic!r} failed: {exc}") from exc

    def flush(self, timeout_s: float) -> None:
        left = self._producer.flush(timeout_s)
        errors, self._errors = self._errors, []
        if left or errors:
            detail = errors[0] if errors else f"{left} still queued after {timeout_s}s"
            raise StreamUnavailableError(f"dead letters were not delivered: {detail}")

    def close(self) -> None:
        self._producer.flush(5)
