"""In-memory fakes of the ingestion client seams (StreamConsumer, DeadLetterProducer) and a flaky online store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pitstop.errors import OnlineStoreError, StreamUnavailableError
from pitstop.ingestion.base import Partition, StreamMessage

TOPIC = "trips"


class FakeConsumer:
    """Serves queued messages; records commits; stops the ingester once everything was served."""

    def __init__(self, messages: list[StreamMessage]) -> None:
        self.queue = list(messages)
        self.commits: list[dict[Partition, int]] = []
        self.commit_failures: list[Exception] = []
        self.on_commit: Callable[[dict[Partition, int]], None] | None = None
        self.on_empty: Callable[[], None] | None = None
        self.closed = False
        self.highwaters: dict[Partition, int] = {}

    def subscribe(self, topics: list[str], on_assign: Any, on_revoke: Any) -> None:
        assert topics == [TOPIC]
        on_assign([(TOPIC, 0), (TOPIC, 1)])

    def poll(self, timeout_s: float, max_messages: int) -> list[StreamMessage]:
        out, self.queue = self.queue[:max_messages], self.queue[max_messages:]
        for m in out:
            self.highwaters[(m.topic, m.partition)] = max(self.highwaters.get((m.topic, m.partition), 0), m.offset + 1)
        if not out and self.on_empty:
            self.on_empty()
        return out

    def commit(self, offsets: dict[Partition, int]) -> None:
        if self.commit_failures:
            raise self.commit_failures.pop(0)
        if self.on_commit:
            self.on_commit(offsets)
        self.commits.append(dict(offsets))

    def highwater(self, partition: Partition) -> int | None:
        return self.highwaters.get(partition)

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = []
        self.delivered: list[bytes] = []
        self.flush_failures = 0

    def send(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.sent.append((topic, key, value, headers))

    def flush(self, timeout_s: float) -> None:
        if self.flush_failures:
            self.flush_failures -= 1
            self.sent.clear()  # what was queued is lost with the failed connection
            raise StreamUnavailableError("broker down")
        self.delivered += [value for _, _, value, _ in self.sent]
        self.sent.clear()

    def close(self) -> None:
        pass


class FlakyOnline:
    """Wraps an online store; its first ``failures`` writes raise OnlineStoreError (forever if -1)."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner, self.failures, self.calls = inner, failures, 0

    def write(self, batches: Any) -> Any:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise OnlineStoreError("Redis online store at redis://x: connection refused")
        return self.inner.write(batches)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
