"""The prediction log: every /predict a worker answers, buffered in memory and written to a Delta table.

One table per model, ``<offline root>/<monitoring.log_path>/<model>``, one row per scored entity:

``request_id, event_timestamp, model, version, alias, row`` (position in the request), the entity
keys, each input feature's online value and ``<feature>__status``, the request-data fields, and
``prediction`` (a number) or ``prediction_json`` (anything else, as JSON text).

Invariants:

* a request never waits on the log and never fails because of it: ``record`` appends references to
  the request's own (already built, never mutated) lists under an uncontended lock;
* memory is bounded: past ``log_buffer_rows`` waiting rows, a request's rows are dropped and counted
  (``pitstop_prediction_log_dropped_total``);
* a background thread writes the buffer as one Delta commit per model (atomic, so readers see a
  whole flush or none of it) every ``log_flush_seconds`` or ``log_flush_rows``, and ``close`` writes
  what is left (the worker's shutdown, i.e. SIGTERM); a failed write keeps the rows for the next try.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from pitstop.errors import OfflineStoreError
from pitstop.log import get_logger
from pitstop.redaction import redact_text
from pitstop.settings import MonitoringSettings
from pitstop.storage import is_remote, resolve_path

__all__ = ["LogEntry", "PredictionLog", "STATUS_SUFFIX", "log_location", "new_request_id"]

log = get_logger(__name__)

STATUS_SUFFIX = "__status"
TIME_COLUMN = "event_timestamp"
MAX_ATTEMPTS = 5
"""Consecutive failed writes after which the rows they held are dropped (and counted)."""


def log_location(settings: MonitoringSettings, offline_root: Path | str, model: str) -> str:
    """Where ``model``'s prediction log table lives: an absolute local path or an ``s3://`` URL."""
    base = str(resolve_path(settings.log_path, offline_root)).rstrip("/")
    return f"{base}/{model}"


def new_request_id() -> str:
    """A fresh request id (32 hex digits) for a /predict that did not bring its own."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Layout:
    """The columns of a log entry: entity keys, input features (each also with a status), request fields."""

    keys: tuple[str, ...]
    features: tuple[str, ...]
    request: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        """Column names in the order of an entry's ``data``."""
        return [*self.keys, *self.features, *(f + STATUS_SUFFIX for f in self.features), *self.request]


@dataclass(slots=True)
class LogEntry:
    """One /predict as the log keeps it until the next flush.

    ``data`` follows ``layout.names``: for a one-entity request the values themselves (one tuple, so a
    flush transposes thousands of requests in one C call and the buffer holds three objects per
    request for the garbage collector to walk, not a hundred); for a batch, the request's own column
    lists (references, no copies).
    """

    request_id: str
    at_us: int
    model: str
    version: int
    alias: str | None
    rows: int
    layout: Layout
    data: tuple[Any, ...]
    predictions: list[Any]
    types: dict[str, pa.DataType]
    """Arrow type of each key, feature and request column (from the definitions), so an all-null flush keeps
    its type."""

    @classmethod
    def of(cls, request_id: str, at_us: int, model: str, version: int, alias: str | None, rows: int,
           keys: Mapping[str, list[Any]], values: Mapping[str, list[Any]], statuses: Mapping[str, list[str]],
           request_data: Mapping[str, list[Any]] | None, predictions: list[Any], types: dict[str, pa.DataType],
           layout: Layout | None = None) -> LogEntry:
        """An entry from a request's columns.

        Without ``layout`` the columns are every entry of ``keys`` and ``values``; with a (cached)
        layout only the ones it names, so a caller may pass the whole response's columns for both.
        """
        request = tuple(request_data) if request_data else ()
        if layout is None:
            layout = Layout(tuple(keys), tuple(values), request)
        elif layout.request != request:
            layout = Layout(layout.keys, layout.features, request)
        columns = [*(keys[k] for k in layout.keys), *(values[f] for f in layout.features),
                   *(statuses[f] for f in layout.features), *(request_data[r] for r in request if request_data)]
        data = tuple(column[0] for column in columns) if rows == 1 else tuple(columns)
        return cls(request_id, at_us, model, version, alias, rows, layout, data, predictions, types)


class PredictionLog:
    """A worker's bounded prediction buffer and the thread that writes it (``start``, ``record``, ``close``).

    Args:
        settings: the ``monitoring`` settings.
        offline_root: what ``log_path`` is resolved against.
        on_drop: called with the number of rows dropped (the buffer was full).
        on_written: called with the number of rows committed.
        on_error: called when a write fails.
        on_tick: called with the log about once a second by the writer thread (to export its lag).
    """

    def __init__(self, settings: MonitoringSettings, offline_root: Path | str, *,
                 on_drop: Any = None, on_written: Any = None, on_error: Any = None, on_tick: Any = None) -> None:
        self.settings = settings
        self.offline_root = offline_root
        self._buffers: dict[int, _Columns] = {}
        self._failed: list[tuple[str, pa.Table]] = []
        self._rows = 0
        self._oldest: float | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._on_drop = on_drop or (lambda n: None)
        self._on_written = on_written or (lambda n: None)
        self._on_error = on_error or (lambda: None)
        self._on_tick = on_tick or (lambda log: None)
        self._failures = 0
        self.dropped = 0
        self.written = 0

    def start(self) -> None:
        """Start the background writer."""
        pa.array([0.5], pa.float64())  # pyarrow's first conversion from Python objects costs ~0.3 s: pay it now
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pitstop-prediction-log", daemon=True)
            self._thread.start()

    def sampled(self) -> bool:
        """Whether this request is logged (``log_sample_rate``)."""
        rate = self.settings.log_sample_rate
        return rate >= 1.0 or (rate > 0.0 and random.random() < rate)

    def record(self, entry: LogEntry) -> bool:
        """Queue one request's rows; False (and counted) when the buffer is full. Never raises, never blocks."""
        with self._lock:
            if self._rows + entry.rows > self.settings.log_buffer_rows:
                self.dropped += entry.rows
                full = True
            else:
                full = False
                buffer = self._buffers.get(id(entry.layout))
                if buffer is None or buffer.layout is not entry.layout or buffer.model != entry.model:
                    buffer = self._buffers[id(entry.layout)] = _Columns(entry)
                buffer.add(entry)
                self._rows += entry.rows
                if self._oldest is None:
                    self._oldest = time.time()
                if self._rows >= self.settings.log_flush_rows:
                    self._wake.set()
        if full:
            self._on_drop(entry.rows)
        return not full

    @property
    def waiting_rows(self) -> int:
        """Rows buffered and not yet written."""
        return self._rows

    def lag_seconds(self) -> float:
        """Age of the oldest row not yet written (0 when none waits)."""
        oldest = self._oldest
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    def flush(self) -> int:
        """Write every buffered row now (one commit per model); returns the rows written.

        Raises:
            OfflineStoreError: a table could not be written; its rows stay buffered for the next flush.
        """
        with self._write_lock:
            with self._lock:
                buffers, self._buffers = self._buffers, {}
                oldest, self._oldest = self._oldest, None
            by_model: dict[str, list[pa.Table]] = {}
            for model, table in self._failed:
                by_model.setdefault(model, []).append(table)
            self._failed = []
            for buffer in buffers.values():
                by_model.setdefault(buffer.model, []).append(buffer.table())
            if not by_model:
                return 0
            written = 0
            error: Exception | None = None
            for model, tables in by_model.items():
                table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
                try:
                    self._write(model, table)
                    written += table.num_rows
                except Exception as exc:  # any failure keeps the rows; the request path never sees it
                    self._failed.append((model, table))
                    error = exc
            lost = 0
            self._failures = self._failures + 1 if self._failed else 0
            if self._failed and self._failures >= MAX_ATTEMPTS:  # a write that keeps failing must not wedge the log
                lost, self._failed, self._failures = sum(t.num_rows for _, t in self._failed), [], 0
                self.dropped += lost
                self._on_drop(lost)
                log.error("prediction log: %d rows dropped after %d failed writes: %s", lost, MAX_ATTEMPTS, error)
            with self._lock:
                self._rows -= written + lost
                if self._failed:
                    self._oldest = oldest if self._oldest is None else min(oldest or self._oldest, self._oldest)
            self.written += written
            if written:
                self._on_written(written)
            if error is not None:
                raise error if isinstance(error, OfflineStoreError) else OfflineStoreError(str(error))
            return written

    def close(self, timeout: float = 20.0) -> None:
        """Stop the writer and write what is left (a worker's shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        try:
            self.flush()
        except OfflineStoreError as exc:
            log.error("prediction log: %d rows could not be written at shutdown and are lost: %s", self._rows, exc)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._stop.is_set():
                return
            self._on_tick(self)
            due = time.monotonic() - last >= self.settings.log_flush_seconds
            if not (due or self._rows >= self.settings.log_flush_rows):
                continue
            last = time.monotonic()
            try:
                self.flush()
            except OfflineStoreError as exc:
                self._on_error()
                log.warning("prediction log: write failed, %d rows kept for the next try: %s", self._rows, exc)
            self._on_tick(self)

    def _write(self, model: str, table: pa.Table) -> None:
        from pitstop.extras import require_extra

        require_extra("delta", "the prediction log", "deltalake")
        from pitstop.offline.delta_append import append_table

        location = log_location(self.settings, self.offline_root, model)
        if not is_remote(location):
            Path(location).mkdir(parents=True, exist_ok=True)
        try:  # each worker's first flush may race another's creating the table: retried there
            append_table(location, table, merge_schema=True)
        except Exception as exc:  # delta-rs raises its own and plain exceptions
            raise OfflineStoreError(f"cannot append to the prediction log {location}: {redact_text(str(exc))}") from exc


def entries_table(entries: Sequence[LogEntry]) -> pa.Table:
    """The log rows of ``entries`` as one Arrow table (columns missing in some entries are null)."""
    buffers: dict[int, _Columns] = {}
    for e in entries:
        buffer = buffers.get(id(e.layout))
        if buffer is None:
            buffer = buffers[id(e.layout)] = _Columns(e)
        buffer.add(e)
    tables = [b.table() for b in buffers.values()]
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")


class _Columns:
    """The buffered rows of one served version (one layout), as growing column lists.

    Each request appends its values to the lists on its own thread (a few microseconds, in C), so a
    flush only hands finished lists to Arrow: it never walks the buffered requests one by one while
    holding the interpreter lock, which would stall the requests being served meanwhile.
    """

    __slots__ = ("alias", "at_us", "data", "layout", "model", "predictions", "request_id", "row", "types",
                 "version")

    def __init__(self, first: LogEntry) -> None:
        self.layout = first.layout
        self.types = first.types
        self.model = first.model
        self.request_id: list[str] = []
        self.at_us: list[int] = []
        self.version: list[int] = []
        self.alias: list[str | None] = []
        self.row: list[int] = []
        self.data: list[list[Any]] = [[] for _ in first.layout.names]
        self.predictions: list[Any] = []

    def add(self, e: LogEntry) -> None:
        n = e.rows
        if n == 1:
            self.request_id.append(e.request_id)
            self.at_us.append(e.at_us)
            self.version.append(e.version)
            self.alias.append(e.alias)
            self.row.append(0)
            deque(map(list.append, self.data, e.data), maxlen=0)  # one C loop over the columns
        else:
            self.request_id.extend(repeat(e.request_id, n))
            self.at_us.extend(repeat(e.at_us, n))
            self.version.extend(repeat(e.version, n))
            self.alias.extend(repeat(e.alias, n))
            self.row.extend(range(n))
            deque(map(list.extend, self.data, e.data), maxlen=0)
        self.predictions.extend(e.predictions)

    def table(self) -> pa.Table:
        arrays: dict[str, pa.Array] = {
            "request_id": pa.array(self.request_id, pa.string()),
            TIME_COLUMN: pa.array(self.at_us, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "model": pa.array([self.model] * len(self.request_id), pa.string()),
            "version": pa.array(self.version, pa.int64()),
            "alias": pa.array(self.alias, pa.string()),
            "row": pa.array(self.row, pa.int32()),
        }
        for name, values in zip(self.layout.names, self.data, strict=True):
            kind = pa.string() if name.endswith(STATUS_SUFFIX) else self.types.get(name)
            arrays[name] = _array(values, kind)
        if set(map(type, self.predictions)) <= {float, int}:  # not bool, None or lists
            arrays["prediction"] = pa.array(self.predictions, pa.float64())
        else:
            arrays["prediction_json"] = pa.array([orjson.dumps(p).decode() for p in self.predictions], pa.string())
        return pa.table(arrays)


def _array(values: Sequence[Any], kind: pa.DataType | None) -> pa.Array:
    if kind is not None:
        try:
            return pa.array(values, kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # a request value of another type than declared: keep it as text rather than lose the row
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    return array.cast(pa.string()) if pa.types.is_null(array.type) else array



def column_types(resolved: Any) -> dict[str, pa.DataType]:
    """Arrow types of the key, feature and request columns a ``ResolvedFeatures`` produces (by output name)."""
    types: dict[str, pa.DataType] = {}
    for sel in resolved.views.values():
        by_name = {f.name: f.dtype for f in sel.view.fields}
        for key in sel.view.join_keys:
            if key in by_name:
                types.setdefault(key, by_name[key].to_arrow())
        for feature, column in sel.aliases.items():
            if feature in by_name:
                types[column] = by_name[feature].to_arrow()
    for sel in resolved.on_demand.values():
        outputs = {f.name: f.dtype for f in sel.view.schema_}
        for feature in sel.features:
            column = sel.aliases.get(feature, feature)
            if feature in outputs:
                types[column] = outputs[feature].to_arrow()
        for f in sel.view.request_fields:
            types.setdefault(f.name, f.dtype.to_arrow())
    return types
