"""Parsing ``redis+cluster://`` URLs and computing hash slots (no server needed)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot as redis_key_slot

from pitstop.errors import ConfigError, OnlineStoreError
from pitstop.online.factory import open_online_store
from pitstop.online.hash_slots import hash_slots, key_slot
from pitstop.online.keys import project_prefix, redis_key_array
from pitstop.online.redis_cluster_store import RedisClusterOnlineStore, parse_cluster_url


def test_seeds_credentials_and_tls_are_parsed() -> None:
    parsed = parse_cluster_url("rediss+cluster://app:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002/0")
    assert parsed.seeds == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    assert (parsed.username, parsed.password, parsed.tls) == ("app", "p@ss", True)
    plain = parse_cluster_url("redis+cluster://:secret@h:1")
    assert (plain.username, plain.password, plain.tls) == (None, "secret", False)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+cluster://h:1/2", "only database 0"),
        ("redis+cluster://", "names no host"),
        ("redis+cluster://h:port", "is not host:port"),
        ("redis+cluster://:secret@h:1,h:x", "is not host:port"),
    ],
)
def test_bad_cluster_urls_say_what_is_wrong_without_the_password(url: str, reason: str) -> None:
    with pytest.raises(OnlineStoreError, match=reason) as info:
        parse_cluster_url(url)
    assert "secret" not in str(info.value)


def test_the_factory_chooses_the_cluster_store_without_connecting(tmp_path) -> None:
    store = open_online_store("redis+cluster://127.0.0.1:1", "p", tmp_path)
    assert isinstance(store, RedisClusterOnlineStore)
    with pytest.raises(ConfigError, match="redis\\+cluster://"):
        open_online_store("memcached://x", "p", tmp_path)


@given(
    ids=st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), min_size=1, max_size=50),
    names=st.lists(st.text(max_size=12), min_size=1, max_size=50),
    project=st.text(min_size=1, max_size=8),
)
def test_vectorized_slots_equal_redis_py_slots(ids: list[int], names: list[str], project: str) -> None:
    n = min(len(ids), len(names))
    table = pa.table({"driver_id": ids[:n], "rider_id": names[:n]})
    for join_keys in (["driver_id"], ["rider_id"], ["driver_id", "rider_id"]):
        keys = redis_key_array(project, table, join_keys)
        got = hash_slots(keys, len(project_prefix(project).encode()) + 1)
        raw = keys.cast(pa.binary()).to_pylist()
        assert got.tolist() == [redis_key_slot(k) for k in raw]
        assert [key_slot(k) for k in raw] == got.tolist()


def test_slots_of_a_sliced_array_and_of_many_blocks() -> None:
    table = pa.table({"driver_id": np.arange(140_000)})
    keys = redis_key_array("p", table, ["driver_id"]).slice(3, 139_990)
    got = hash_slots(keys, len(project_prefix("p")) + 1)
    sample = keys.cast(pa.binary()).to_pylist()[::997]
    assert got[::997].tolist() == [redis_key_slot(k) for k in sample]


def test_a_key_ttl_is_refused_for_sqlite_and_must_be_positive(tmp_path) -> None:
    from pitstop.online.redis_store import RedisOnlineStore

    with pytest.raises(ConfigError, match="key_ttl_seconds applies to Redis only"):
        open_online_store("sqlite:///online.db", "p", tmp_path, key_ttl_seconds=60)
    with pytest.raises(OnlineStoreError, match="must be positive"):
        RedisOnlineStore("redis://127.0.0.1:1/0", "p", key_ttl_seconds=0)
