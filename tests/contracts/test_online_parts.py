"""The parts every online store relies on: record codec, key encoding, URL factory (no servers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pitstop.definitions.dtypes import Array, Bool, Float32, Float64, Int32, Int64, String, Timestamp
from pitstop.errors import ConfigError, OnlineStoreError
from pitstop.online import codec, keys
from pitstop.online.codec import layout_for, stamp_bytes
from pitstop.online.factory import open_online_store
from pitstop.online.redis_store import RedisOnlineStore
from pitstop.online.sqlite_store import SQLiteOnlineStore

I64 = st.integers(-(2**63), 2**63 - 1)
FIXED = {
    Int64: I64,
    Int32: st.integers(-(2**31), 2**31 - 1),
    Float64: st.floats(allow_nan=False),
    Float32: st.floats(width=32, allow_nan=False),
    Bool: st.booleans(),
    Timestamp: st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999),  # µs in years 1..9999
    String: st.text(max_size=20),
}
DTYPES = [*FIXED, Array(Float32), Array(String), Array(Int64)]


def values_for(dtype, n: int):  # type: ignore[no-untyped-def]
    element = FIXED[dtype.element] if dtype.element is not None else FIXED[dtype]
    cell = st.lists(st.none() | element, max_size=5) if dtype.element is not None else element
    return st.lists(st.none() | cell, min_size=n, max_size=n)


@st.composite
def tables(draw):  # type: ignore[no-untyped-def]
    n = draw(st.integers(0, 70))  # crosses the codec's numpy decode threshold
    dtypes = draw(st.lists(st.sampled_from(DTYPES), min_size=1, max_size=10))
    features = tuple((f"f{i}", d) for i, d in enumerate(dtypes))
    columns = {}
    for name, dtype in features:
        raw = draw(values_for(dtype, n))
        columns[name] = pa.array(raw, type=_storage_type(dtype)).cast(dtype.to_arrow())
    events = draw(st.lists(I64, min_size=n, max_size=n))
    return features, pa.table(columns), events


def _storage_type(dtype):  # type: ignore[no-untyped-def]
    if dtype == Timestamp:
        return pa.int64()
    if dtype.element == Timestamp:
        return pa.list_(pa.int64())
    return dtype.to_arrow()


@settings(max_examples=150, deadline=None)
@given(tables(), st.data())
def test_records_round_trip_through_both_decoders(drawn, data) -> None:  # type: ignore[no-untyped-def]
    features, table, events = drawn
    layout = layout_for(features)
    records = layout.encode(table, np.array(events, dtype=np.int64), np.zeros(len(events), dtype=np.int64))
    as_list = records.to_list()
    assert len(as_list) == table.num_rows
    names = [name for name, _ in features]
    # Some rows absent: decoding must keep positions.
    absent = data.draw(st.sets(st.integers(0, max(table.num_rows - 1, 0))))
    given_records = [None if i in absent else r for i, r in enumerate(as_list)]
    decoded = layout.decode(given_records, names)
    for name in names:
        expected = table.column(name).to_pylist()
        assert decoded.values[name] == [None if i in absent else v for i, v in enumerate(expected)], name
    assert decoded.found == [i not in absent for i in range(table.num_rows)]
    assert [e for e, f in zip(decoded.event_us, decoded.found, strict=True) if f] == [
        e for i, e in enumerate(events) if i not in absent
    ]


def test_fixed_width_records_share_one_width_and_carry_the_header() -> None:
    features = (("a", Float64), ("b", Int32), ("c", Bool))
    layout = layout_for(features)
    table = pa.table({"a": [1.0, None], "b": [1, 2], "c": [True, None]})
    records = layout.encode(table, np.array([5, -5]), np.array([0, 7]))
    assert records.width == codec.HEADER_SIZE + 1 + 8 + 4 + 1
    first, second = records.to_list()
    assert first[0] == codec.FORMAT_VERSION
    assert first[1:17] == stamp_bytes(5, 0) and second[1:17] == stamp_bytes(-5, 7)


@settings(max_examples=300)
@given(st.tuples(I64, I64), st.tuples(I64, I64))
def test_stamp_bytes_order_like_the_timestamp_pairs(a, b) -> None:  # type: ignore[no-untyped-def]
    assert (stamp_bytes(*a) < stamp_bytes(*b)) == (a < b)
    assert (stamp_bytes(*a) == stamp_bytes(*b)) == (a == b)


def test_unknown_format_version_is_an_error_not_garbage() -> None:
    layout = layout_for((("a", Int64),))
    (rec,) = layout.encode(pa.table({"a": [1]}), np.array([1]), np.array([0])).to_list()
    with pytest.raises(OnlineStoreError, match="version 9"):
        layout.decode([b"\x09" + rec[1:]], ["a"])


def test_values_that_cannot_be_stored_as_the_dtype_are_rejected() -> None:
    layout = layout_for((("a", Int64),))
    with pytest.raises(OnlineStoreError, match="'a'"):
        layout.encode(pa.table({"a": ["x"]}), np.array([1]), np.array([0]))
    with pytest.raises(OnlineStoreError, match="missing"):
        layout.encode(pa.table({"b": [1]}), np.array([1]), np.array([0]))


KEY_VALUES = st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=8, alphabet=st.sampled_from("1,=:%}{s i2")))


@settings(max_examples=300)
@given(st.lists(st.tuples(KEY_VALUES, KEY_VALUES), min_size=1, max_size=80, unique=True))
def test_entity_parts_are_injective_and_both_encoders_agree(rows) -> None:  # type: ignore[no-untyped-def]
    # One column per type (Arrow columns are typed); mixing types across columns is covered below.
    for kind in (int, str):
        typed = [r for r in rows if all(isinstance(v, kind) for v in r)]
        if not typed:
            continue
        table = pa.table({"a": [r[0] for r in typed], "b": [r[1] for r in typed]})
        vector = keys._encode_arrow(*keys._key_columns(table, ["b", "a"]), "", "").to_pylist()
        python = [p.decode() for p in keys._encode_python(*keys._key_columns(table, ["a", "b"]), "", "")]
        assert vector == python
        assert len(set(python)) == len(typed)
        assert not any("}" in p for p in python)


def test_keys_name_the_join_keys_and_keep_types_apart() -> None:
    ints = keys.encode_entity_parts(pa.table({"a": [1], "b": [23]}), ["a", "b"])
    assert ints != keys.encode_entity_parts(pa.table({"a": [12], "b": [3]}), ["a", "b"])
    assert ints != keys.encode_entity_parts(pa.table({"a": ["1"], "b": ["23"]}), ["a", "b"])
    assert keys.encode_entity_parts(pa.table({"x": [7]}), ["x"]) != keys.encode_entity_parts(pa.table({"y": [7]}), ["y"])
    # Integer width does not matter; column order does not matter.
    t32 = pa.table({"b": pa.array([23], pa.int32()), "a": pa.array([1], pa.int8())})
    assert keys.encode_entity_parts(t32, ["b", "a"]) == ints


def test_redis_keys_are_versioned_project_scoped_and_tag_the_whole_entity() -> None:
    (key,) = keys.redis_keys("my proj{x}", pa.table({"id": ["a}b{c"]}), ["id"])
    text = key.decode()
    assert text.startswith("ps1:my%20proj%7Bx%7D:{")
    tag = text[text.index("{") + 1 : text.index("}", text.index("{"))]
    assert tag == keys.encode_entity_parts(pa.table({"id": ["a}b{c"]}), ["id"])[0].decode()
    assert text.endswith(tag + "}")


def test_slices_of_a_table_encode_like_the_rows_they_hold() -> None:
    features = (("emb", Array(Float32)), ("tags", Array(String)), ("s", String), ("x", Int64))
    table = pa.table({
        "emb": pa.array([[1.0], [2.0, None], None, [], [5.0, 6.0]], pa.list_(pa.float32())),
        "tags": pa.array([["a"], None, ["b", None], ["c"], []], pa.list_(pa.string())),
        "s": ["a", "b", None, "d", "e"],
        "x": [1, 2, 3, None, 5],
    })
    layout = layout_for(features)
    piece = table.slice(1, 3)
    records = layout.encode(piece, np.arange(3), np.zeros(3, dtype=np.int64))
    decoded = layout.decode(records.to_list(), [name for name, _ in features])
    for name, _ in features:
        assert decoded.values[name] == piece.column(name).to_pylist(), name


def test_factory_resolves_relative_sqlite_paths_against_the_repo_and_creates_parents(tmp_path: Path) -> None:
    store = open_online_store("sqlite:///data/nested/online.db", "p", tmp_path)
    try:
        assert isinstance(store, SQLiteOnlineStore)
        assert store.path == tmp_path / "data" / "nested" / "online.db"
        assert store.path.exists()
    finally:
        store.close()
    absolute = tmp_path / "abs" / "o.db"
    store = open_online_store(f"sqlite:///{absolute}", "p", Path("/nonexistent"))
    try:
        assert store.path == absolute
    finally:
        store.close()


def test_factory_opens_redis_urls_without_connecting() -> None:
    for url in ("redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0", "unix:///tmp/no-such.sock"):
        store = open_online_store(url, "p", Path("."))
        assert isinstance(store, RedisOnlineStore)
        store.close()


@pytest.mark.parametrize("url", ["postgres://user:pw@host/db", "sqlite://relative.db", "redis", "sqlite:///"])
def test_factory_rejects_other_urls_naming_them_and_the_accepted_schemes(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_online_store(url, "p", Path("."))
    message = str(info.value)
    assert "pw" not in message
    assert url.replace("user:pw@", "user:***@") in message
    if url != "sqlite:///":
        assert "redis://" in message and "sqlite:///" in message
