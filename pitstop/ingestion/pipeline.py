"""The ingestion loop: poll -> decode and validate -> guarded online write -> offline append -> commit.

Invariants:
  * At-least-once. An offset is committed only after every message before it is either in the
    online store *and* in an offline Parquet file, or acknowledged on its dead-letter topic. A crash
    anywhere before the commit replays those messages; the online write guard (event time, then
    created time) makes the replay harmless online, and a replayed offline row is an exact duplicate
    that the point-in-time join collapses.
  * Data never stops the ingester. Whatever goes wrong turning a message into rows (decoding,
    validation, building the Arrow table, keying, casting, even a write the online store refuses
    for that message's values) sends that message to the dead-letter topic with the reason, and
    the rest of the batch goes on; its offset is committed like any other, so a poison message
    is never replayed forever.
  * Nothing is skipped. A failing broker, online store or disk is retried with capped exponential
    backoff, holding the same batch, until it succeeds or the ingester is told to stop; stopping
    then leaves those messages uncommitted, to be replayed.
  * Online freshness does not wait for offline files. Every micro-batch (``ingest.batch_size``
    messages or ``ingest.batch_ms``) is written online at once; offline rows are buffered and
    rolled into one file per event date every ``ingest.offline_roll_seconds`` (or
    ``offline_roll_rows``), and the commit follows each roll. A rebalance or SIGTERM rolls and
    commits first.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pyarrow as pa

from pitstop.boundary import latest_us
from pitstop.definitions import DeltaSource, FeatureView, KafkaSource
from pitstop.errors import CommitLostError, ConfigError, IngestError, OnlineStoreError, StreamUnavailableError
from pitstop.ingestion.base import (
    DeadLetterProducer,
    Partition,
    StreamConsumer,
    StreamMessage,
)
from pitstop.ingestion.decoding import MessageRef, StreamSchema, decode_batch, stream_schema
from pitstop.ingestion.metrics import IngestMetrics, serve, stop_serving
from pitstop.ingestion.offline import RollingDeltaWriter, RollingParquetWriter, batch_folder
from pitstop.log import get_logger
from pitstop.online.base import WriteBatch
from pitstop.push import latest_per_key

if TYPE_CHECKING:
    from pitstop.store import FeatureStore

__all__ = ["IngestStats", "Ingester", "stream_views"]

log = get_logger(__name__)
T = TypeVar("T")

LAG_EVERY_S = 1.0


class _Abandoned(Exception):
    """A retry loop gave up because the ingester is stopping (the work stays uncommitted)."""


@dataclass
class IngestStats:
    """Totals of one ``Ingester.run``."""

    events: int = 0
    dead_letters: int = 0
    batches: int = 0
    commits: int = 0
    offline_files: int = 0
    stale: int = 0


@dataclass
class _Source:
    schema: StreamSchema
    views: list[FeatureView]
    writer: RollingParquetWriter | RollingDeltaWriter


@dataclass
class _Written:
    """What the writer thread did with one micro-batch."""

    messages: list[StreamMessage]
    decoded: list[tuple[_Source, pa.Table]]
    rejected: list[tuple[StreamMessage, str]]
    stale: int
    written_us: int
    started: float


@dataclass
class _Topic:
    """One topic's share of a micro-batch while it is turned into writes.

    ``valid`` tables hold one row per message of ``accepted`` (message indexes, in order);
    ``reasons`` holds the rejected ones.
    """

    topic: str
    msgs: list[StreamMessage]
    valid: list[tuple[_Source, pa.Table]]
    reasons: dict[int, str]
    accepted: list[int]
    batches: list[WriteBatch] = field(default_factory=list)

    def drop_rejected(self) -> None:
        """Remove the rows of messages rejected since ``valid`` was built."""
        keep = [i not in self.reasons for i in self.accepted]
        if all(keep):
            return
        mask = pa.array(keep, pa.bool_())
        self.valid = [(src, table.filter(mask)) for src, table in self.valid]
        self.accepted = [i for i in self.accepted if i not in self.reasons]


@dataclass
class _DeadLetter:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def stream_views(views: dict[str, FeatureView], names: list[str] | None = None) -> list[FeatureView]:
    """The views fed by a KafkaSource (all of them, or those named).

    Raises:
        IngestError: a named view does not exist or is not fed by a KafkaSource; or there is none.
    """
    streamed = {name: v for name, v in views.items() if isinstance(v.source, KafkaSource)}
    if names:
        for name in names:
            if name not in views:
                raise IngestError(f"unknown feature view {name!r}; stream views: {', '.join(sorted(streamed)) or 'none'}")
            if name not in streamed:
                raise IngestError(f"feature view {name!r} is not fed by a KafkaSource (its source is "
                                  f"{views[name].source.name!r}); stream views: {', '.join(sorted(streamed)) or 'none'}")
        return [streamed[n] for n in names]
    if not streamed:
        raise IngestError("no feature view is fed by a KafkaSource; define one and run `pitstop apply`")
    return list(streamed.values())


class Ingester:
    """Consumes the topics of stream views and writes their rows online and offline.

    Args:
        store: the feature store (registered definitions, online store, settings).
        views: only these views (default: every view fed by a KafkaSource).
        consumer, producer: client implementations to use instead of the configured library.
        metrics: instruments to use (default: a fresh set).

    Raises:
        IngestError: no stream view, a bad ``views`` name, or a batch source that is not a folder.
        DefinitionError: views on one Kafka source disagree on a field's dtype.
    """

    def __init__(self, store: FeatureStore, views: list[str] | None = None, *,
                 consumer: StreamConsumer | None = None, producer: DeadLetterProducer | None = None,
                 metrics: IngestMetrics | None = None) -> None:
        self.settings = store.settings
        self._cfg = store.settings.ingest
        self._online = store.online
        chosen = stream_views(store.definitions().views, views)
        by_source: dict[str, list[FeatureView]] = {}
        for view in chosen:
            by_source.setdefault(view.source.name, []).append(view)
        self._topics: dict[str, list[_Source]] = {}
        for views_of_source in by_source.values():
            source = views_of_source[0].source
            assert isinstance(source, KafkaSource)
            schema = stream_schema(source, views_of_source)
            writer: RollingParquetWriter | RollingDeltaWriter
            if isinstance(source.batch, DeltaSource):
                writer = RollingDeltaWriter(source.batch, store.settings.offline_root)
            else:
                folder = batch_folder(source.batch, store.settings.offline_root, source.name)
                writer = RollingParquetWriter(folder, schema.arrow_schema(), schema.ts_column)
            self._topics.setdefault(source.topic, []).append(_Source(schema, views_of_source, writer))
        self.metrics = metrics or IngestMetrics()
        self.stats = IngestStats()
        self._consumer = consumer
        self._producer = producer
        self._stop = threading.Event()
        self._pending: list[StreamMessage] = []
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pitstop-ingest-writer")
        self._inflight: Future[_Written] | None = None
        self._batch_started = 0.0
        self._processed: dict[Partition, int] = {}
        """Next offset per partition whose messages are processed but not yet committed."""
        self._positions: dict[Partition, int] = {}
        self._dead: list[_DeadLetter] = []
        self._rolls = 0
        self.assigned: set[Partition] = set()
        """Partitions this member owns right now."""
        self._last_commit = time.monotonic()
        self._last_lag = 0.0

    @property
    def topics(self) -> list[str]:
        """The topics this ingester reads."""
        return sorted(self._topics)

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Ask the loop to finish its batch, commit and leave the group (safe from a signal handler)."""
        self._stop.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the loop gracefully (call from the main thread)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: self._on_signal(signum))

    def _on_signal(self, signum: int) -> None:
        log.info("received %s: finishing the batch, committing and leaving the group", signal.Signals(signum).name)
        self.stop()

    def run(self, *, max_seconds: float | None = None) -> IngestStats:
        """Ingest until ``stop()`` (or SIGTERM), or for ``max_seconds``; returns the totals.

        Raises:
            ConfigError: the configured client library is missing, or the metrics port is taken.
        """
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        handle = None
        if self._cfg.metrics_port:
            try:
                handle = serve(self.metrics, self._cfg.metrics_host, self._cfg.metrics_port)
            except OSError as exc:
                raise ConfigError(f"cannot serve metrics on {self._cfg.metrics_host}:{self._cfg.metrics_port} "
                                  f"(ingest.metrics_port; 0 turns the endpoint off): {exc}") from exc
            log.info("metrics on http://%s:%d/metrics", self._cfg.metrics_host, self._cfg.metrics_port)
        try:
            self._open_clients()
            assert self._consumer is not None
            self._consumer.subscribe(self.topics, self._on_assign, self._on_revoke)
            log.info("ingesting topics %s as group %r (%s)", ", ".join(self.topics), self.settings.kafka.group_id,
                     self.settings.kafka.client)
            while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
                self._step()
            if self._pending:
                self._process()
            self._drain()
            self._commit(force=True)
        except _Abandoned:
            log.warning("stopped while retrying; messages after the last commit on %s will be replayed "
                        "(harmlessly) by the next ingester", _shown(list(self._processed)))
        finally:
            self._close(handle)
        log.info("ingester stopped: %d events, %d dead letters, %d commits", self.stats.events,
                 self.stats.dead_letters, self.stats.commits)
        return self.stats

    def _open_clients(self) -> None:
        from pitstop.ingestion.clients import open_consumer, open_producer

        kafka = self.settings.kafka
        if self._consumer is None:
            self._consumer = self._retry("connecting the consumer",
                                         lambda: open_consumer(kafka, max_poll_records=self._cfg.batch_size))
        if self._producer is None:
            self._producer = self._retry("connecting the dead-letter producer", lambda: open_producer(kafka))

    def _close(self, handle: Any) -> None:
        self._stop.set()  # a write still retrying gives up (its messages stay uncommitted)
        self._writer.shutdown(wait=True)
        for closer in (self._consumer, self._producer):
            if closer is not None:
                try:
                    closer.close()
                except Exception as exc:  # closing must not hide the reason we are stopping
                    log.warning("closing %s failed: %r", type(closer).__name__, exc)
        self._consumer = self._producer = None
        if handle is not None:
            stop_serving(handle)

    # ------------------------------------------------------------------ the loop

    def _step(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        batch_s = self._cfg.batch_ms / 1000
        polled_at = time.monotonic()
        timeout = batch_s if not self._pending else max(0.0, self._batch_started + batch_s - polled_at)
        room = self._cfg.batch_size - len(self._pending)
        messages = self._retry("fetching messages", lambda: consumer.poll(timeout, room))
        if messages:
            if not self._pending:
                # a client may block for the whole timeout gathering messages: the batch is as old as the poll
                self._batch_started = polled_at
            self._pending.extend(messages)
        if self._pending and (len(self._pending) >= self._cfg.batch_size
                              or time.monotonic() - self._batch_started >= batch_s):
            self._process()
        elif self._inflight is not None and self._inflight.done():
            self._drain()
        self._commit(force=False)
        if time.monotonic() - self._last_lag >= LAG_EVERY_S:
            self._update_lag()

    def _process(self) -> None:
        """Hand the pending micro-batch to the writer thread (after the previous one finished).

        One batch is in flight at a time: while the writer decodes it and waits for the online
        store, this thread goes back to polling (the client's fetching and parsing overlap the write).
        """
        messages, self._pending = self._pending, []
        self._drain()
        self._inflight = self._writer.submit(self._work, messages)

    def _work(self, messages: list[StreamMessage]) -> _Written:
        """Writer thread: decode and validate, then the guarded online write (retried until it succeeds)."""
        started = time.perf_counter()
        now_us = time.time_ns() // 1000
        if len(self._topics) == 1:
            by_topic = {next(iter(self._topics)): messages}
        else:
            by_topic = {}
            for m in messages:
                by_topic.setdefault(m.topic, []).append(m)
        latest = latest_us(self.settings.online_store.max_future_seconds, now_us)
        topics: list[_Topic] = []
        for topic, msgs in by_topic.items():
            part = self._decode_topic(topic, msgs, now_us, latest)
            self._key(part)
            topics.append(part)
        batches = [b for part in topics for b in part.batches]
        stale = 0
        if batches:
            try:
                stale = self._retry("online write", lambda: self._online.write(batches)).stale
            except _Abandoned:
                raise
            except Exception as exc:  # noqa: BLE001 - not an outage (those are retried): some message's values
                log.warning("the online store refused a batch (%s: %s); writing message by message",
                            type(exc).__name__, exc)
                stale = sum(self._write_one_by_one(part) for part in topics)
        decoded = [(src, table) for part in topics for src, table in part.valid]
        rejected = [(part.msgs[i], part.reasons[i]) for part in topics for i in sorted(part.reasons)]
        return _Written(messages, decoded, rejected, stale, time.time_ns() // 1000, started)

    def _key(self, part: _Topic) -> None:
        """The write batches (latest row per key) of ``part``; a message whose rows cannot be keyed or
        cast is rejected, found row by row when the whole batch fails."""
        try:
            part.batches = [latest_per_key(view, table) for src, table in part.valid for view in src.views]
            return
        except Exception as exc:  # noqa: BLE001 - data that decoded but cannot be keyed or cast
            log.warning("keying a batch of %s failed (%s: %s); checking message by message", part.topic,
                        type(exc).__name__, exc)
        for j, i in enumerate(part.accepted):
            for src, table in part.valid:
                try:
                    for view in src.views:
                        latest_per_key(view, table.slice(j, 1))
                except Exception as one:  # noqa: BLE001
                    part.reasons[i] = f"source {src.schema.source!r}: cannot be written: {type(one).__name__}: {one}"
                    break
        part.drop_rejected()
        try:
            part.batches = [latest_per_key(view, table) for src, table in part.valid for view in src.views]
        except Exception as exc:  # noqa: BLE001 - rows fine alone but not together: reject them all, never crash
            for i in part.accepted:
                part.reasons[i] = f"cannot be written: {type(exc).__name__}: {exc}"
            part.drop_rejected()
            part.batches = []

    def _write_one_by_one(self, part: _Topic) -> int:
        """Write ``part`` message by message after the store refused the batch; refused messages are rejected.

        Rewriting rows already written is harmless: the guard keeps the newest.
        """
        stale = 0
        for j, i in enumerate(list(part.accepted)):
            try:
                batches = [latest_per_key(view, table.slice(j, 1)) for src, table in part.valid for view in src.views]
                stale += self._retry("online write", lambda b=batches: self._online.write(b)).stale  # type: ignore[misc]
            except _Abandoned:
                raise
            except Exception as exc:  # noqa: BLE001
                part.reasons[i] = f"the online store refused its values: {type(exc).__name__}: {exc}"
        part.drop_rejected()
        return stale

    def _drain(self) -> None:
        """Wait for the batch in flight, then buffer its rows offline, queue its dead letters, move offsets.

        Raises:
            _Abandoned: the writer gave up retrying because the ingester is stopping.
        """
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return
        done = inflight.result()
        self.stats.stale += done.stale
        self.metrics.stale.inc(done.stale)
        for msg, reason in done.rejected:
            self._dead_letter(msg, reason)
        for src, table in done.decoded:
            src.writer.add(table)
            event = table.column(src.schema.ts_column).cast(pa.int64()).to_numpy()
            self.metrics.freshness.observe_many((done.written_us - event).astype(np.float64) / 1e6)
            self.metrics.events.labels(topic=src.schema.topic).inc(table.num_rows)
            self.stats.events += table.num_rows
        processed, positions = self._processed, self._positions
        for m in done.messages:  # offsets grow within a partition: the last one seen is the greatest
            processed[(m.topic, m.partition)] = m.offset + 1
        positions.update(processed)
        self.stats.batches += 1
        self.metrics.batch_seconds.observe(time.perf_counter() - done.started)

    def _decode_topic(self, topic: str, msgs: list[StreamMessage], now_us: int, latest: int) -> _Topic:
        """Rows per source of ``topic``; a message any source rejects is rejected for all (one dead letter)."""
        values = [m.value for m in msgs]

        def ref(i: int) -> MessageRef:
            return MessageRef(msgs[i].topic, msgs[i].partition, msgs[i].offset)

        results = []
        reasons: dict[int, str] = {}
        for src in self._topics.get(topic, []):
            out, bad = decode_batch(src.schema, values, ref, now_us, latest)
            for i, err in zip(bad, out.rejected, strict=True):
                reasons.setdefault(i, err.reason)
            results.append((src, out.table, set(bad)))
        valid = []
        for src, table, own_bad in results:
            if reasons.keys() - own_bad:  # rejected by another source of this topic: drop here too
                accepted = [i for i in range(len(msgs)) if i not in own_bad]
                keep = pa.array([i not in reasons for i in accepted])
                table = table.filter(keep)
            valid.append((src, table))
        return _Topic(topic, msgs, valid, reasons, [i for i in range(len(msgs)) if i not in reasons])

    def _dead_letter(self, msg: StreamMessage, reason: str) -> None:
        topic = msg.topic + self._cfg.dead_letter_suffix
        reason = reason if len(reason) <= 1000 else reason[:997] + "..."
        headers = [("pitstop.reason", reason.encode()), ("pitstop.topic", msg.topic.encode()),
                   ("pitstop.partition", str(msg.partition).encode()), ("pitstop.offset", str(msg.offset).encode())]
        letter = _DeadLetter(topic, msg.key, msg.value or b"", headers)
        log.warning("dead letter %s[%d]@%d -> %s: %s", msg.topic, msg.partition, msg.offset, topic, reason)
        self._dead.append(letter)
        assert self._producer is not None
        producer = self._producer
        self._retry("sending a dead letter", lambda: producer.send(letter.topic, letter.key, letter.value, letter.headers))
        self.metrics.dead_letters.labels(topic=msg.topic).inc()
        self.stats.dead_letters += 1

    # ------------------------------------------------------------------ commits

    def _before_commit(self) -> None:
        """Runs after a roll's online, offline and dead-letter writes, before its offsets are committed.

        Nothing happens here in pitstop; the crash test (tests/support/crashing_ingest.py) overrides it
        to die at exactly this point, which production settings cannot do.
        """

    def rolls(self) -> int:
        """How many rolls (writes, then a commit) this ingester has started."""
        return self._rolls

    def pending_offsets(self) -> dict[Any, Any]:
        """The offsets the next commit will write (what a crash before it leaves uncommitted)."""
        return dict(self._processed)

    def _due(self) -> bool:
        writers = [src.writer for sources in self._topics.values() for src in sources]
        if any(w.rows >= self._cfg.offline_roll_rows for w in writers):
            return True
        oldest = min((w.oldest for w in writers if w.oldest is not None), default=None)
        started = oldest if oldest is not None else self._last_commit
        return time.monotonic() - started >= self._cfg.offline_roll_seconds

    def _commit(self, *, force: bool) -> None:
        """Roll offline files, confirm dead letters, then commit the processed offsets."""
        if force:
            self._drain()
        if not self._processed or not (force or self._due()):
            return
        for sources in self._topics.values():
            for src in sources:
                files = self._retry("offline append", src.writer.flush)
                self.metrics.offline_files.inc(len(files))
                self.stats.offline_files += len(files)
        if self._dead:
            self._retry("delivering dead letters", self._flush_dead_letters)
        self._rolls += 1
        self._before_commit()
        offsets = dict(self._processed)
        consumer = self._consumer
        assert consumer is not None
        try:
            self._retry("committing offsets", lambda: consumer.commit(offsets))
        except CommitLostError as exc:
            log.warning("%s; the partitions' new owner replays from the last commit (harmless)", exc)
        else:
            self.metrics.commits.inc()
            self.stats.commits += 1
            log.debug("committed %s", offsets)
        self._processed.clear()
        self._last_commit = time.monotonic()

    def _flush_dead_letters(self) -> None:
        assert self._producer is not None
        try:
            self._producer.flush(10.0)
        except StreamUnavailableError:
            for letter in self._dead:  # queue them again: delivery is confirmed only by a clean flush
                self._producer.send(letter.topic, letter.key, letter.value, letter.headers)
            raise
        self._dead.clear()

    # ------------------------------------------------------------------ rebalances and lag

    def _on_assign(self, partitions: list[Partition]) -> None:
        self.assigned.update(partitions)
        log.info("assigned %s", _shown(partitions))

    def _on_revoke(self, partitions: list[Partition]) -> None:
        log.info("revoking %s: writing and committing what was read", _shown(partitions))
        try:
            if self._pending:
                self._process()
            self._drain()
            self._commit(force=True)
        except _Abandoned:
            log.warning("stopping during a rebalance: uncommitted messages will be replayed")
        finally:
            for p in partitions:
                self.assigned.discard(p)
                self._positions.pop(p, None)
                self._processed.pop(p, None)
                try:
                    self.metrics.lag.remove(p[0], str(p[1]))
                except KeyError:
                    pass

    def _update_lag(self) -> None:
        self._last_lag = time.monotonic()
        assert self._consumer is not None
        for (topic, partition), position in list(self._positions.items()):
            high = self._consumer.highwater((topic, partition))
            if high is not None:
                self.metrics.lag.labels(topic=topic, partition=str(partition)).set(max(high - position, 0))

    # ------------------------------------------------------------------ retries

    def _retry(self, operation: str, fn: Callable[[], T]) -> T:
        """``fn()``, retried with capped exponential backoff while Kafka, the online store or the disk fail."""
        delay, attempt = 0.1, 0
        while True:
            try:
                return fn()
            except (OnlineStoreError, StreamUnavailableError, OSError) as exc:
                attempt += 1
                self.metrics.retries.labels(operation=operation).inc()
                if self._stop.is_set() and attempt > 1:
                    raise _Abandoned(operation) from exc
                log.warning("%s failed (attempt %d), retrying in %.1fs: %s", operation, attempt, delay, exc)
                self._stop.wait(delay)
                delay = min(delay * 2, self._cfg.retry_backoff_max_s)


def _shown(partitions: list[Partition]) -> str:
    return ", ".join(f"{t}[{p}]" for t, p in sorted(partitions)) or "nothing"
