"""Prometheus instruments of one ingester, in a registry of its own (so tests can run several per process).

Exposed on ``ingest.metrics_port`` (``/metrics``):

  pitstop_ingest_events_total{topic}            valid events written (rate() = events/s)
  pitstop_ingest_dead_letters_total{topic}      messages sent to the dead-letter topic
  pitstop_ingest_lag_messages{topic,partition}  high watermark (from fetches) - next offset to process
  pitstop_ingest_freshness_seconds              histogram of online write time - event time, per row
  pitstop_ingest_batch_seconds                  histogram of micro-batch processing time
  pitstop_ingest_stale_rows_total              rows the online write guard kept out (older than stored)
  pitstop_ingest_offline_files_total            Parquet files appended
  pitstop_ingest_commits_total                  offset commits
  pitstop_ingest_retries_total{operation}       retries while Kafka, the online store or the disk failed
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

FRESHNESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


class _BulkHistogram(Collector):
    """A histogram fed a whole numpy array at once: per-row ``observe`` calls cost more than the row."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = np.asarray(buckets, dtype=np.float64)
        self._counts = np.zeros(len(buckets) + 1, dtype=np.int64)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: np.ndarray) -> None:
        if len(values) == 0:
            return
        slots = np.searchsorted(self.bounds, values, side="left")  # le semantics: value <= bound
        counts = np.bincount(slots, minlength=len(self.bounds) + 1)
        with self._lock:
            self._counts += counts
            self._sum += float(values.sum())

    def collect(self) -> Iterator[HistogramMetricFamily]:
        with self._lock:
            cumulative = np.cumsum(self._counts)
            total = self._sum
        buckets = [(_fmt(b), float(c)) for b, c in zip(self.bounds, cumulative[:-1], strict=True)]
        buckets.append(("+Inf", float(cumulative[-1])))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], buckets, total)
        yield family

    def snapshot(self) -> tuple[np.ndarray, float]:
        """(count per bucket, the last being +Inf; sum) — for tests and benchmarks."""
        with self._lock:
            return self._counts.copy(), self._sum


def _fmt(bound: float) -> str:
    return repr(float(bound))


class IngestMetrics:
    """The instruments; ``registry`` is what the HTTP endpoint serves."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter("pitstop_ingest_events", "Valid events written online and offline.", ["topic"], registry=r)
        self.dead_letters = Counter("pitstop_ingest_dead_letters", "Messages sent to the dead-letter topic.",
                                    ["topic"], registry=r)
        self.lag = Gauge("pitstop_ingest_lag_messages", "High watermark minus the next offset to process.",
                         ["topic", "partition"], registry=r)
        self.batch_seconds = Histogram("pitstop_ingest_batch_seconds", "Micro-batch processing time.", registry=r)
        self.stale = Counter("pitstop_ingest_stale_rows", "Rows the online write guard kept out (older than stored).",
                             registry=r)
        self.offline_files = Counter("pitstop_ingest_offline_files", "Parquet files appended.", registry=r)
        self.commits = Counter("pitstop_ingest_commits", "Offset commits.", registry=r)
        self.retries = Counter("pitstop_ingest_retries", "Retries of failed operations.", ["operation"], registry=r)
        self.freshness = _BulkHistogram("pitstop_ingest_freshness_seconds",
                                        "Online write time minus event time, per row.", FRESHNESS_BUCKETS)
        r.register(self.freshness)

    def value(self, name: str, **labels: str) -> float:
        """Current value of a sample (tests): e.g. ``value("pitstop_ingest_events_total", topic="t")``."""
        got = self.registry.get_sample_value(name, labels)
        return 0.0 if got is None else float(got)


def serve(metrics: IngestMetrics, host: str, port: int) -> Any:
    """Start the ``/metrics`` HTTP endpoint on a daemon thread; returns a handle for ``stop_serving``."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=host, registry=metrics.registry)


def stop_serving(handle: Any) -> None:
    """Stop the endpoint started by ``serve`` and close its socket."""
    server, thread = handle
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
