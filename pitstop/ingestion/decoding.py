"""Pure decoding: Kafka message values (JSON objects) -> typed Arrow rows of a stream source, or reasons.

Message contract (one JSON object per message, UTF-8):
  * every join key: present and non-null; an integer, or a string when the view declares the key
    ``Field(key, String)`` (an undeclared key is Int64);
  * the source's ``timestamp_field``: an ISO-8601 string (naive means UTC) or an epoch number in the
    source's ``timestamp_unit`` (seconds by default), between 1900 and 2262 and no later than now plus
    ``online_store.max_future_seconds`` (the rules of ``pitstop.boundary``);
  * each feature: of its declared dtype, or null, or absent (absent is null);
  * the created-timestamp column, when the batch source has one: as the event time (same rules), or absent,
    in which case the time the ingester decoded the message is used (when pitstop learned the value);
  * any other field is ignored.

Two routes give the same rows: a batch is parsed at once by Arrow's JSON reader (fast path,
C++); if that fails or finds a null key, each message is decoded on its own in Python (slow path),
which is the authority and names the reason of each rejected message. Decoding never raises for
data: whatever goes wrong with a message (even while building the Arrow table) rejects that message.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from pitstop.boundary import MAX_US, MIN_US, TimeUnit, check_value, timestamp_us
from pitstop.boundary.columns import arrow_iso_us
from pitstop.definitions import FeatureView, KafkaSource
from pitstop.definitions.dtypes import DType, Int64
from pitstop.errors import DefinitionError, MessageDecodeError
from pitstop.log import get_logger

__all__ = ["Decoded", "MessageRef", "StreamSchema", "decode_batch", "decode_one", "stream_schema"]

log = get_logger(__name__)

TS_TYPE = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class StreamSchema:
    """What a message of one KafkaSource must hold, for every feature view reading that source.

    Attributes:
        source: the KafkaSource name.
        topic: its topic.
        timestamp_field: the event-time field of the messages.
        ts_column: the event-time column of the decoded rows: the batch source's ``timestamp_field``.
        created_field: the batch source's created-timestamp column, if it has one.
        keys: (join key, dtype) of the views' entities.
        features: (feature, dtype), the union over the views (a name has one dtype across them).
        views: names of the views fed by the source.
        unit: the unit of numeric times in messages (the source's ``timestamp_unit``).
    """

    source: str
    topic: str
    timestamp_field: str
    ts_column: str
    created_field: str | None
    keys: tuple[tuple[str, DType], ...]
    features: tuple[tuple[str, DType], ...]
    views: tuple[str, ...]
    unit: TimeUnit = "s"

    def arrow_schema(self) -> pa.Schema:
        """The decoded (and offline Parquet) columns: keys, event time, created time, features."""
        fields = [pa.field(k, d.to_arrow()) for k, d in self.keys]
        fields.append(pa.field(self.ts_column, TS_TYPE))
        if self.created_field:
            fields.append(pa.field(self.created_field, TS_TYPE))
        fields += [pa.field(f, d.to_arrow()) for f, d in self.features]
        return pa.schema(fields)


def stream_schema(source: KafkaSource, views: Sequence[FeatureView]) -> StreamSchema:
    """The message schema of ``source`` as read by ``views``.

    Raises:
        DefinitionError: two views declare one field with different dtypes, or a key is not Int/String.
    """
    keys: dict[str, DType] = {}
    features: dict[str, DType] = {}
    for view in views:
        declared = {f.name: f.dtype for f in view.fields}
        for key in view.join_keys:
            dtype = declared.get(key, Int64)
            if dtype.name not in ("Int64", "Int32", "String"):
                raise view.error(f"join key {key!r} is declared {dtype}; stream join keys must be Int64, Int32 or String")
            _merge(keys, key, dtype, view)
        for fld in view.features:
            _merge(features, fld.name, fld.dtype, view)
    batch = source.batch
    return StreamSchema(source.name, source.topic, source.timestamp_field, batch.timestamp_field,
                        batch.created_timestamp_column,
                        tuple(keys.items()), tuple(features.items()), tuple(v.name for v in views),
                        source.timestamp_unit)


def _merge(into: dict[str, DType], name: str, dtype: DType, view: FeatureView) -> None:
    if name in into and into[name] != dtype:
        raise DefinitionError(f"feature view {view.name!r} declares {name!r} as {dtype} but another view on the "
                              f"same Kafka source declares it {into[name]}; one stream field has one type")
    into[name] = dtype


@dataclass(frozen=True)
class MessageRef:
    """Where a message came from (for error messages and dead letters)."""

    topic: str
    partition: int
    offset: int


@dataclass
class Decoded:
    """Result of decoding a batch: the valid rows (in message order) and one error per rejected message."""

    table: pa.Table
    rejected: list[MessageDecodeError] = field(default_factory=list)
    fast: bool = False
    """Whether the batch went through the Arrow fast path."""


# ----------------------------------------------------------------------------- slow path (authority)


def decode_one(schema: StreamSchema, value: bytes | None, now_us: int, latest: int = MAX_US) -> dict[str, Any]:
    """One message as a dict of column values (timestamps as epoch µs).

    ``latest`` is the latest accepted event or created time (epoch µs): now plus
    ``online_store.max_future_seconds``.

    Raises:
        ValueError: the message is not a JSON object or does not fit ``schema``; the text is the reason.
    """
    if value is None:
        raise ValueError("empty message (null value, e.g. a tombstone)")
    try:
        obj = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    row: dict[str, Any] = {}
    for key, dtype in schema.keys:
        got = obj.get(key)
        if got is None:
            raise ValueError(f"join key {key!r} is missing or null")
        try:
            row[key] = check_value(got, dtype, schema.unit)
        except ValueError as exc:
            raise ValueError(f"join key {key!r}: {exc}") from None
    ts = obj.get(schema.timestamp_field)
    if ts is None:
        raise ValueError(f"timestamp field {schema.timestamp_field!r} is missing or null")
    try:
        row[schema.ts_column] = timestamp_us(ts, schema.unit, latest)
    except ValueError as exc:
        raise ValueError(f"timestamp field {schema.timestamp_field!r}: {exc}") from None
    if schema.created_field:
        created = obj.get(schema.created_field)
        try:
            row[schema.created_field] = now_us if created is None else timestamp_us(created, schema.unit, latest)
        except ValueError as exc:
            raise ValueError(f"created field {schema.created_field!r}: {exc}") from None
    for name, dtype in schema.features:
        got = obj.get(name)
        if got is None:
            row[name] = None
            continue
        try:
            row[name] = check_value(got, dtype, schema.unit)
        except ValueError as exc:
            raise ValueError(f"feature {name!r}: {exc}") from None
    return row


def _rows_to_table(schema: StreamSchema, rows: list[dict[str, Any]]) -> pa.Table:
    target = schema.arrow_schema()
    columns = []
    for fld in target:
        values = [row[fld.name] for row in rows]
        if fld.type == TS_TYPE:
            columns.append(pa.array(values, type=pa.int64()).cast(TS_TYPE))
        elif pa.types.is_list(fld.type) and fld.type.value_type == TS_TYPE:
            columns.append(pa.array(values, type=pa.list_(pa.int64())).cast(fld.type))
        else:
            columns.append(pa.array(values, type=fld.type))
    return pa.Table.from_arrays(columns, schema=target)


# ---------------------------------------------------------------------------------- fast path


def _parse_times(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """ISO-8601 strings -> timestamp[us, UTC]; raises on anything else (the caller falls back)."""
    parsed = arrow_iso_us(column)
    if parsed is None:
        raise pa.ArrowInvalid("not ISO-8601 text Arrow can parse")
    return parsed


def _fast(schema: StreamSchema, values: Sequence[bytes | None], now_us: int, latest: int) -> pa.Table | None:
    """All messages parsed by Arrow at once, or None when any message needs the slow path.

    The slow path is the authority: any value the boundary rules might refuse (a number or an
    out-of-window time, a non-finite or overflowing float) sends the whole batch there.
    """
    for value in values:
        # one object per line is what makes rows line up with messages: no embedded newline, starts with '{'
        if not value or value[:1] != b"{":
            return None
    data = b"\n".join(values)  # type: ignore[arg-type]
    if data.count(b"\n") != len(values) - 1:
        return None
    target = schema.arrow_schema()
    wanted = []
    for fld in target:
        name = schema.timestamp_field if fld.name == schema.ts_column else fld.name
        wanted.append(pa.field(name, pa.string()) if fld.type == TS_TYPE else fld)
    if any(pa.types.is_list(f.type) and f.type.value_type == TS_TYPE for f in target):
        return None
    try:
        table = pa_json.read_json(
            io.BytesIO(data),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=max(len(data) + 1, 1 << 16)),
            parse_options=pa_json.ParseOptions(explicit_schema=pa.schema(wanted), unexpected_field_behavior="ignore"),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != len(values):
        return None
    required = [k for k, _ in schema.keys] + [schema.timestamp_field]
    if any(table.column(name).null_count for name in required):
        return None
    columns = []
    try:
        for fld, source_field in zip(target, wanted, strict=True):
            col = table.column(source_field.name)
            if fld.type == TS_TYPE:
                col = _parse_times(col)
                event_time = fld.name in (schema.ts_column, schema.created_field)
                if not _within(col, latest if event_time else MAX_US):
                    return None
                if fld.name == schema.created_field and col.null_count:
                    col = pc.fill_null(col, pa.scalar(now_us, pa.int64()).cast(TS_TYPE))
            elif not _finite(col):
                return None
            columns.append(col)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return pa.Table.from_arrays(columns, schema=target)


def _within(col: pa.ChunkedArray, latest: int) -> bool:
    """Whether every time of ``col`` lies in the boundary window ``[MIN_US, latest]``."""
    bounds = pc.min_max(col.cast(pa.int64())).as_py()
    return bounds["min"] is None or (bounds["min"] >= MIN_US and bounds["max"] <= latest)


def _finite(col: pa.ChunkedArray) -> bool:
    """Whether a float column (or list of floats) holds no NaN or infinity (e.g. a Float32 overflow)."""
    typ = col.type
    if pa.types.is_list(typ):
        col, typ = pc.list_flatten(col), typ.value_type
    if not pa.types.is_floating(typ) or not len(col):
        return True
    return bool(pc.all(pc.fill_null(pc.is_finite(col), True)).as_py())


# ---------------------------------------------------------------------------------- entry point


def decode_batch(schema: StreamSchema, values: Sequence[bytes | None], refs: Callable[[int], MessageRef],
                 now_us: int, latest: int = MAX_US) -> tuple[Decoded, list[int]]:
    """Decode the values of a batch of messages of ``schema``'s topic; never raises for data.

    Args:
        schema: the source's message schema.
        values: message values, in order.
        refs: ``refs(i)`` is where message ``i`` came from (only called for rejected messages).
        now_us: the created time given to messages without one (epoch µs).
        latest: the latest accepted event or created time (epoch µs): now plus
            ``online_store.max_future_seconds`` (see ``pitstop.boundary.latest_us``).

    Returns:
        The decoded rows and the indexes (into ``values``) of the messages that were rejected.
    """
    table = _fast(schema, values, now_us, latest) if values else None
    if table is not None:
        return Decoded(table, fast=True), []
    rows: list[dict[str, Any]] = []
    kept: list[int] = []
    reasons: dict[int, str] = {}
    for i, value in enumerate(values):
        try:
            rows.append(decode_one(schema, value, now_us, latest))
            kept.append(i)
        except ValueError as exc:
            reasons[i] = str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure on one message's data rejects that message only
            reasons[i] = f"cannot decode: {type(exc).__name__}: {exc}"
    try:
        table = _rows_to_table(schema, rows)
    except Exception as exc:  # noqa: BLE001 - find the rows Arrow refuses; the others go on
        log.warning("building the rows of source %r failed (%s); checking message by message", schema.source, exc)
        good = []
        for i, row in zip(kept, rows, strict=True):
            try:
                _rows_to_table(schema, [row])
                good.append(row)
            except Exception as one:  # noqa: BLE001
                reasons[i] = f"does not fit the source's columns: {type(one).__name__}: {one}"
        table = _rows_to_table(schema, good)
    bad = sorted(reasons)
    rejected = []
    for i in bad:
        ref = refs(i)
        rejected.append(MessageDecodeError(ref.topic, ref.partition, ref.offset, f"source {schema.source!r}: {reasons[i]}"))
    return Decoded(table, rejected), bad
