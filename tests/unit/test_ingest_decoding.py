"""Decoding and validation of stream messages: the Arrow fast path agrees with the per-message authority."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from pitstop import (
    Array,
    Bool,
    Entity,
    FeatureView,
    Field,
    Float32,
    Float64,
    Int32,
    Int64,
    KafkaSource,
    ParquetSource,
    String,
    Timestamp,
)
from pitstop.errors import DefinitionError
from pitstop.ingestion.decoding import MessageRef, decode_batch, decode_one, stream_schema

NOW_US = 1_800_000_000_000_000
driver = Entity("driver", join_keys=["driver_id"])
source = KafkaSource("s", topic="t", timestamp_field="ts",
                     batch_source=ParquetSource("b", path="data/b", timestamp_field="event_timestamp",
                                                created_timestamp_column="created"))
view = FeatureView("v", entities=[driver], source=source, ttl=timedelta(days=1), schema=[
    Field("rate", Float64), Field("r32", Float32), Field("n", Int64), Field("n32", Int32), Field("city", String),
    Field("ok", Bool), Field("emb", Array(Float32)), Field("seen", Timestamp)])
SCHEMA = stream_schema(source, [view])
GOOD = {"driver_id": 7, "ts": "2026-01-01T00:00:00Z", "rate": 0.5, "r32": 1, "n": 3, "n32": 4, "city": "x",
        "ok": True, "emb": [1.0, 2], "seen": "2026-01-01T00:00:00"}


def raw(**changes: Any) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


def ref(i: int) -> MessageRef:
    return MessageRef("t", 2, 100 + i)


def decode(values: list[bytes | None]) -> tuple[pa.Table, list[str], bool]:
    out, bad = decode_batch(SCHEMA, values, ref, NOW_US)
    assert [e.offset for e in out.rejected] == [100 + i for i in bad]
    return out.table, [e.reason for e in out.rejected], out.fast


@pytest.mark.parametrize("changes", [
    {}, {"rate": 1}, {"rate": None}, {"ts": "2026-01-01 05:00:00"}, {"ts": "2026-01-01T05:00:00+02:00"},
    {"ts": "2026-01-01T00:00:00.123456Z"}, {"created": "2026-01-02T00:00:00Z"}, {"extra": {"nested": [1]}},
    {"emb": []}, {"city": "ünïcode"},
])
def test_fast_path_and_per_message_decoding_agree(changes: dict[str, Any]) -> None:
    message = raw(**changes)
    table, reasons, fast = decode([message, message])
    assert fast and not reasons
    slow, _ = decode_batch(SCHEMA, [message, message, b"{bad"], ref, NOW_US)  # forces the slow path
    assert not slow.fast
    assert slow.table.equals(table)


@pytest.mark.parametrize(("changes", "reason"), [
    ({"rate": True}, "feature 'rate': expected a number (Float64), got true"),
    ({"rate": "1.5"}, "feature 'rate': expected a number"),
    ({"n": 1.5}, "feature 'n': expected an integer (Int64), got 1.5"),
    ({"n": "3"}, "feature 'n': expected an integer"),
    ({"n32": 2**40}, "out of range for Int32"),
    ({"city": 5}, "feature 'city': expected a string"),
    ({"ok": 1}, "feature 'ok': expected true or false"),
    ({"emb": [1, "a"]}, "feature 'emb': list element: expected a number"),
    ({"ts": "yesterday"}, "timestamp field 'ts': 'yesterday' is not an ISO-8601 time"),
    ({"ts": None}, "timestamp field 'ts' is missing or null"),
    ({"driver_id": None}, "join key 'driver_id' is missing or null"),
    ({"driver_id": "7"}, "join key 'driver_id': expected an integer"),
    ({"created": "soon"}, "created field 'created'"),
])
def test_invalid_messages_are_rejected_with_the_reason(changes: dict[str, Any], reason: str) -> None:
    table, reasons, fast = decode([raw(), raw(**changes), raw()])
    assert not fast and table.num_rows == 2
    assert len(reasons) == 1 and reason in reasons[0] and reasons[0].startswith("source 's': ")


@pytest.mark.parametrize(("value", "reason"), [
    (b"{not json", "not valid JSON"), (b"[1, 2]", "expected a JSON object, got list"), (None, "empty message"),
    (b"\xff\xfe", "not valid JSON"), (b"", "not valid JSON"),
])
def test_undecodable_messages_are_rejected(value: bytes | None, reason: str) -> None:
    _, reasons, _ = decode([value])
    assert len(reasons) == 1 and reason in reasons[0]


def test_the_error_names_topic_partition_and_offset() -> None:
    out, _ = decode_batch(SCHEMA, [raw(), b"{"], ref, NOW_US)
    assert str(out.rejected[0]).startswith("t[2]@101: source 's': not valid JSON")


def test_timestamps_columns_and_the_created_default() -> None:
    table, _, _ = decode([raw(ts=1_700_000_000.5)])
    row = table.to_pylist()[0]
    assert row["event_timestamp"] == datetime.fromtimestamp(1_700_000_000.5, UTC)  # the batch source's column name
    assert "ts" not in table.column_names
    assert row["created"] == datetime.fromtimestamp(NOW_US / 1e6, UTC)  # absent: when pitstop learned it
    assert row["seen"] == datetime(2026, 1, 1, tzinfo=UTC)  # naive ISO text is UTC
    assert table.schema.field("r32").type == pa.float32() and table.schema.field("n32").type == pa.int32()
    assert row["emb"] == [1.0, 2.0]
    fast, _, _ = decode([raw(), raw()])
    assert fast.column("created").to_pylist()[0] == datetime.fromtimestamp(NOW_US / 1e6, UTC)


def test_string_keys_must_be_declared_and_dtypes_must_agree() -> None:
    keyed = FeatureView("k", entities=[driver], source=source, schema=[Field("driver_id", String), Field("x", Int64)])
    schema = stream_schema(source, [keyed])
    assert dict(schema.keys)["driver_id"] == String
    assert decode_one(schema, json.dumps({"driver_id": "a", "ts": 0}).encode(), NOW_US)["driver_id"] == "a"
    clash = FeatureView("c", entities=[driver], source=source, schema=[Field("rate", Int64)])
    with pytest.raises(DefinitionError, match="'rate' as Int64 but another view"):
        stream_schema(source, [view, clash])
    floaty = FeatureView("f", entities=[driver], source=source, schema=[Field("driver_id", Float64), Field("x", Int64)])
    with pytest.raises(DefinitionError, match="stream join keys must be"):
        stream_schema(source, [floaty])


# ------------------------------------------------------------------ boundary rules (issue 10)

NOW_S = NOW_US // 1_000_000
LATEST = NOW_US + 300 * 1_000_000  # online_store.max_future_seconds = 300


def decode_at(values: list[bytes | None], schema=SCHEMA) -> tuple[pa.Table, list[str], bool]:
    out, bad = decode_batch(schema, values, ref, NOW_US, LATEST)
    return out.table, [e.reason for e in out.rejected], out.fast


@pytest.mark.parametrize(("changes", "reason"), [
    ({"ts": NOW_S * 1_000_000}, "1800000000000000 read as epoch seconds is year 57,041,699"),
    ({"ts": NOW_S * 1_000_000}, "set timestamp_unit='us'"),
    ({"ts": NOW_S * 1_000}, "set timestamp_unit='ms'"),
    ({"ts": NOW_S + 3600}, "later than the latest accepted time"),
    ({"ts": "2200-01-01T00:00:00Z"}, "later than the latest accepted time"),
    ({"created": "2200-01-01T00:00:00Z"}, "created field 'created': 2200-01-01T00:00:00Z is later than"),
    ({"ts": ""}, "timestamp field 'ts': '' is not an ISO-8601 time"),
    ({"ts": "NaT"}, "timestamp field 'ts': 'NaT' is not an ISO-8601 time"),
    ({"ts": "now"}, "timestamp field 'ts': 'now' is not an ISO-8601 time"),
    ({"ts": "1899-01-01"}, "times must fall between 1900-01-01 and 2262-04-11"),
    ({"r32": 1e39}, "feature 'r32': 1e+39 is out of range for Float32"),
    ({"emb": [1.0, 1e39]}, "feature 'emb': list element: 1e+39 is out of range for Float32"),
    ({"n32": -(2**31) - 1}, "out of range for Int32"),
])
def test_poison_values_are_rejected_never_guessed(changes: dict[str, Any], reason: str) -> None:
    good = raw(ts=NOW_S - 60)
    table, reasons, fast = decode_at([good, raw(**changes), good])
    assert not fast and table.num_rows == 2
    assert len(reasons) == 1 and reason in reasons[0], reasons


def test_nan_and_infinity_in_json_are_rejected() -> None:
    message = raw(ts=NOW_S).replace(b'"rate": 0.5', b'"rate": NaN')
    _, reasons, _ = decode_at([message])
    assert reasons and "send null for a missing value" in reasons[0]
    message = raw(ts=NOW_S).replace(b'"rate": 0.5', b'"rate": 1e400')
    _, reasons, _ = decode_at([message])
    assert reasons and "feature 'rate'" in reasons[0]


def test_the_declared_unit_reads_epoch_milliseconds_and_microseconds() -> None:
    for unit, scale in (("ms", 1_000), ("us", 1_000_000), ("ns", 10**9)):
        src = source.model_copy(update={"timestamp_unit": unit})
        schema = stream_schema(src, [view])
        table, reasons, _ = decode_at([raw(ts=NOW_S * scale, created=NOW_S * scale)], schema)
        assert not reasons, reasons
        assert table.column("event_timestamp").cast(pa.int64()).to_pylist() == [NOW_US]
        assert table.column("created").cast(pa.int64()).to_pylist() == [NOW_US]
    ms = stream_schema(source.model_copy(update={"timestamp_unit": "ms"}), [view])
    _, reasons, _ = decode_at([raw(ts=NOW_S * 1_000_000)], ms)
    assert reasons and "set timestamp_unit='us'" in reasons[0]


def test_the_fast_path_falls_back_rather_than_accept_what_the_rules_refuse() -> None:
    now_text = datetime.fromtimestamp(NOW_S, UTC).isoformat()
    ok, reasons, fast = decode_at([raw(ts=now_text), raw(ts=now_text)])
    assert fast and not reasons and ok.num_rows == 2
    for changes in ({"ts": "2200-01-01T00:00:00Z"}, {"created": "2200-01-01T00:00:00Z"}, {"r32": 1e39},
                    {"emb": [1e39]}, {"seen": "1800-01-01T00:00:00Z"}):
        table, reasons, fast = decode_at([raw(ts=now_text), raw(**{"ts": now_text, **changes})])
        assert not fast and table.num_rows == 1 and len(reasons) == 1, (changes, reasons)


def test_decoding_never_raises_for_data() -> None:
    deep = b'{"driver_id": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    table, reasons, _ = decode_at([raw(ts=NOW_S), deep, raw(ts=NOW_S)])
    assert table.num_rows == 2 and len(reasons) == 1
