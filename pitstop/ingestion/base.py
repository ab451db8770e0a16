"""The consumer seam: what the ingestion pipeline needs from a Kafka client library, and nothing more.

Two implementations ship: ``kafka-python`` (the default, pure Python) and ``confluent-kafka``
(librdkafka, much faster); ``kafka.client`` in pitstop.yaml picks one through ``open_clients``. A
third library plugs in by implementing these two Protocols; the pipeline does not change.

Contract every implementation keeps:
  * ``poll`` returns messages of assigned partitions in offset order per partition, and never
    commits anything by itself (auto-commit is off);
  * ``commit(offsets)`` commits exactly the given "next offset to read" per partition, synchronously;
    it raises ``CommitLostError`` when the group was rebalanced away from this member (the new owner
    replays from the last commit, which the online write guard makes harmless), and
    ``StreamUnavailableError`` when the broker cannot be reached (the caller retries);
  * the rebalance callbacks run inside ``poll``, on the caller's thread, before partitions move;
  * ``close`` leaves the consumer group (LeaveGroup), so partitions move at once, not after the
    session timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["DeadLetterProducer", "Partition", "StreamConsumer", "StreamMessage"]

Partition = tuple[str, int]
"""(topic, partition)."""

RebalanceCallback = Callable[[list[Partition]], None]


@dataclass(slots=True)
class StreamMessage:
    """One consumed record."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None
    timestamp_ms: int
    """The record's Kafka timestamp (producer or broker time), -1 when unknown."""


class StreamConsumer(Protocol):
    """A consumer-group member reading the ingested topics."""

    def subscribe(self, topics: list[str], on_assign: RebalanceCallback, on_revoke: RebalanceCallback) -> None:
        """Join the group for ``topics``; the callbacks run inside ``poll`` when partitions move."""
        ...

    def poll(self, timeout_s: float, max_messages: int) -> list[StreamMessage]:
        """Up to ``max_messages`` messages, waiting at most ``timeout_s`` for the first one."""
        ...

    def commit(self, offsets: dict[Partition, int]) -> None:
        """Commit the next offset to read of each partition (synchronously)."""
        ...

    def highwater(self, partition: Partition) -> int | None:
        """The partition's high watermark as of the last fetch (None before one); never ListOffsets."""
        ...

    def close(self) -> None:
        """Leave the group and release the connections."""
        ...


class DeadLetterProducer(Protocol):
    """Sends rejected messages to dead-letter topics."""

    def send(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        """Queue one record (asynchronous; ``flush`` confirms delivery)."""
        ...

    def flush(self, timeout_s: float) -> None:
        """Wait until every queued record is acknowledged.

        Raises:
            StreamUnavailableError: some records were not delivered (they are queued again on retry
                by the caller, which still holds them).
        """
        ...

    def close(self) -> None:
        """Release the connections."""
        ...
