"""Pure decoding: Kafka message values (JSON objects) -> typed Arrow rows of a stream source, or reasons.

Message contract (one JSON object per message, UTF-8):
  * every join key: present and non-null; an integer, or a string when the view declares the key
    ``Field(key, String)`` (an undeclared key is Int64);
  * the source's ``timestamp_field``: an ISO-8601 string (naive means UTC) or epoch seconds (a number);
  * each feature: of its declared dtype, or null, or absent (absent is null);
  * the created-timestamp column, when the batch source has one: as the event time, or absent,
    in which case the time the ingester decoded the message is used (when pitstop learned the value);
  * any other field is ignored.

Two routes give the same rows: a batch is parsed at once by Arrow's JSON reader (fast path,
C++); if that fails or finds a null key, each message is decoded on its own in Python (slow path),
which is the authority and names the reason of each rejected message.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from pitstop.definitions import FeatureView, KafkaSource
from pitstop.definitions.dtypes import DType, Int64
from pitstop.errors import DefinitionError, MessageDecodeError

__all__ = ["Decoded", "MessageRef", "StreamSchema", "decode_batch", "decode_one", "stream_schema"]

TS_TYPE = pa.timestamp("us", tz="UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT_RANGE = {"Int64": (-(2**63), 2**63 - 1), "Int32": (-(2**31), 2**31 - 1)}


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
    """

    source: str
    topic: str
    timestamp_field: str
    ts_column: str
    created_field: str | None
    keys: tuple[tuple[str, DType], ...]
    features: tuple[tuple[str, DType], ...]
    views: tuple[str, ...]

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
                        tuple(keys.items()), tuple(features.items()), tuple(v.name for v in views))


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


def _timestamp_us(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected an ISO-8601 time or epoch seconds, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite epoch time, got {value!r}")
        return int(round(value * 1_000_000))
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 time") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        delta = parsed - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    raise ValueError(f"expected an ISO-8601 time or epoch seconds, got {type(value).__name__}")


def _check(value: Any, dtype: DType) -> Any:
    """``value`` as stored for ``dtype`` (timestamps become epoch µs); ValueError says why it does not fit."""
    name = dtype.name
    if name in _INT_RANGE:
        if type(value) is not int:
            raise ValueError(f"expected an integer ({name}), got {_shown(value)}")
        low, high = _INT_RANGE[name]
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range for {name}")
        return value
    if name in ("Float64", "Float32"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number ({name}), got {_shown(value)}")
        return float(value)
    if name == "String":
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {_shown(value)}")
        return value
    if name == "Bool":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {_shown(value)}")
        return value
    if name == "Timestamp":
        return _timestamp_us(value)
    if name == "Array":
        assert dtype.element is not None
        if not isinstance(value, list):
            raise ValueError(f"expected a list ({dtype}), got {_shown(value)}")
        element = dtype.element
        try:
            return [None if v is None else _check(v, element) for v in value]
        except ValueError as exc:
            raise ValueError(f"list element: {exc}") from None
    raise ValueError(f"unsupported dtype {dtype}")  # pragma: no cover - every DType is handled above


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def decode_one(schema: StreamSchema, value: bytes | None, now_us: int) -> dict[str, Any]:
    """One message as a dict of column values (timestamps as epoch µs).

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
            row[key] = _check(got, dtype)
        except ValueError as exc:
            raise ValueError(f"join key {key!r}: {exc}") from None
    ts = obj.get(schema.timestamp_field)
    if ts is None:
        raise ValueError(f"timestamp field {schema.timestamp_field!r} is missing or null")
    try:
        row[schema.ts_column] = _timestamp_us(ts)
    except ValueError as exc:
        raise ValueError(f"timestamp field {schema.timestamp_field!r}: {exc}") from None
    if schema.created_field:
        created = obj.get(schema.created_field)
        try:
            row[schema.created_field] = now_us if created is None else _timestamp_us(created)
        except ValueError as exc:
            raise ValueError(f"created field {schema.created_field!r}: {exc}") from None
    for name, dtype in schema.features:
        got = obj.get(name)
        if got is None:
            row[name] = None
            continue
        try:
            row[name] = _check(got, dtype)
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
    try:
        return pc.cast(column, TS_TYPE)  # strings that carry a zone ('Z', '+02:00')
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pc.assume_timezone(pc.cast(column, pa.timestamp("us")), "UTC")  # naive strings are UTC


def _fast(schema: StreamSchema, values: Sequence[bytes | None], now_us: int) -> pa.Table | None:
    """All messages parsed by Arrow at once, or None when any message needs the slow path."""
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
                if fld.name == schema.created_field and col.null_count:
                    col = pc.fill_null(col, pa.scalar(now_us, pa.int64()).cast(TS_TYPE))
            columns.append(col)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return pa.Table.from_arrays(columns, schema=target)


# ---------------------------------------------------------------------------------- entry point


def decode_batch(schema: StreamSchema, values: Sequence[bytes | None], refs: Callable[[int], MessageRef],
                 now_us: int) -> tuple[Decoded, list[int]]:
    """Decode the values of a batch of messages of ``schema``'s topic.

    Args:
        schema: the source's message schema.
        values: message values, in order.
        refs: ``refs(i)`` is where message ``i`` came from (only called for rejected messages).
        now_us: the created time given to messages without one (epoch µs).

    Returns:
        The decoded rows and the indexes (into ``values``) of the messages that were rejected.
    """
    table = _fast(schema, values, now_us) if values else None
    if table is not None:
        return Decoded(table, fast=True), []
    rows: list[dict[str, Any]] = []
    rejected: list[MessageDecodeError] = []
    bad: list[int] = []
    for i, value in enumerate(values):
        try:
            rows.append(decode_one(schema, value, now_us))
        except ValueError as exc:
            ref = refs(i)
            rejected.append(MessageDecodeError(ref.topic, ref.partition, ref.offset, f"source {schema.source!r}: {exc}"))
            bad.append(i)
    return Decoded(_rows_to_table(schema, rows), rejected), bad
