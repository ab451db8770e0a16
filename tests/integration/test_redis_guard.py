"""Redis online store against a real redis-server: atomic guard under concurrency, slots, failures, round trips."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import redis
from redis.crc import key_slot

from pitstop.definitions.dtypes import Float64
from pitstop.errors import OnlineStoreError
from pitstop.online.base import ViewRead, ViewSchema, WriteResult
from pitstop.online.keys import encode_entity_parts
from pitstop.online.redis_store import RedisOnlineStore
from tests.contracts.test_online_store_contract import (
    DRIVER,
    RIDER,
    T0,
    TRIP,
    batch,
    check_concurrent_writers,
    read_one,
)
from tests.integration.redis_server import free_port

pytestmark = pytest.mark.integration

DRIVER_ALT = ViewSchema("driver_alt", ("driver_id",), (("score", Float64),))


@pytest.fixture
def project() -> str:
    return f"it_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store(redis_url: str, project: str) -> Iterator[RedisOnlineStore]:
    s = RedisOnlineStore(redis_url, project)
    yield s
    s.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_newest_wins_under_concurrent_threads_and_processes(redis_url: str, tmp_path: Path) -> None:
    check_concurrent_writers(redis_url, tmp_path, threads=4, processes=3, entities=60, versions=30)


def test_every_view_of_an_entity_lives_in_one_hash_in_one_slot(
    store: RedisOnlineStore, raw: redis.Redis, project: str
) -> None:
    ids = [1, 2, 300]
    riders = ["a}b", "{x}", "plain"]
    store.write([
        batch(DRIVER, {"driver_id": ids}, {"rate": [0.1, 0.2, 0.3], "trips": [1, 2, 3]}, [T0] * 3),
        batch(DRIVER_ALT, {"driver_id": ids}, {"score": [1.0, 2.0, 3.0]}, [T0] * 3),
        batch(RIDER, {"rider_id": riders}, {"rating": [1.0, 2.0, 3.0], "name": ["a", "b", "c"]}, [T0] * 3),
        batch(TRIP, {"driver_id": ids, "rider_id": riders}, {"count": [1, 2, 3]}, [T0] * 3),
    ])
    keys = sorted(raw.scan_iter(match=f"ps1:{project}:*"))
    assert len(keys) == 9  # 3 drivers + 3 riders + 3 (driver, rider) pairs: one hash per entity
    for key in keys:
        fields = set(raw.hkeys(key))
        text = key.decode()
        tag = text[text.index("{") + 1 : text.index("}", text.index("{"))]
        if "," in tag:
            expected = {b"trip_stats"}
        elif tag.startswith("driver_id="):
            expected = {b"driver_stats", b"driver_alt"}
        else:
            expected = {b"rider_stats"}
        assert fields == expected
        assert key.endswith(b"{" + tag.encode() + b"}")  # the hash tag spans the whole entity part
        assert key_slot(key) == key_slot(tag.encode())
    parts = encode_entity_parts(pa.table({"driver_id": ids, "rider_id": riders}), ["rider_id", "driver_id"])
    assert {key_slot(b"ps1:" + project.encode() + b":{" + p + b"}") for p in parts} == {
        key_slot(p) for p in parts
    }
    assert len({key_slot(k) for k in keys}) > 1  # entities spread over slots; the project is not the tag


def test_unreachable_redis_fails_fast_with_the_url() -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"  # nothing listens there
    store = RedisOnlineStore(url, "p", socket_timeout=1.0)
    try:
        for action in (
            store.ping,
            lambda: store.read(pa.table({"driver_id": [1]}), [ViewRead(DRIVER, ["rate"])]),
            lambda: store.write([batch(DRIVER, {"driver_id": [1]}, {"rate": [1.0], "trips": [1]}, [T0])]),
        ):
            started = time.monotonic()
            with pytest.raises(OnlineStoreError) as info:
                action()
            assert time.monotonic() - started < 3
            message = str(info.value)
            assert f"127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}" in message
            assert "s3cret" not in message
    finally:
        store.close()


def test_one_read_is_one_round_trip(store: RedisOnlineStore, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = list(range(50))
    riders = [f"r{i}" for i in ids]
    store.write([
        batch(DRIVER, {"driver_id": ids}, {"rate": [float(i) for i in ids], "trips": ids}, [T0] * 50),
        batch(DRIVER_ALT, {"driver_id": ids}, {"score": [float(i) for i in ids]}, [T0] * 50),
        batch(TRIP, {"driver_id": ids, "rider_id": riders}, {"count": ids}, [T0] * 50),
    ])
    store.ping()  # the pooled connection is open, so the read sends nothing but its commands
    sends: list[object] = []
    real_send = redis.connection.AbstractConnection.send_packed_command

    def counting_send(self, command, check_health=True):  # type: ignore[no-untyped-def]
        sends.append(command)
        return real_send(self, command, check_health)

    before = raw.info("commandstats").get("cmdstat_hmget", {}).get("calls", 0)
    reads = [ViewRead(DRIVER, ["trips"]), ViewRead(DRIVER_ALT, ["score"]), ViewRead(TRIP, ["count"])]
    rows = pa.table({"driver_id": ids, "rider_id": riders})
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting_send)
    got = store.read(rows, reads)
    monkeypatch.undo()
    after = raw.info("commandstats")["cmdstat_hmget"]["calls"]
    assert len(sends) == 1
    assert after - before == 100  # one HMGET per entity hash (two views share the driver hash)
    assert got["driver_stats"].values["trips"] == ids
    assert got["driver_alt"].values["score"] == [float(i) for i in ids]
    assert got["trip_stats"].values["count"] == ids

    sends.clear()
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting_send)
    one = store.read(pa.table({"driver_id": [3]}), reads[:2])
    assert len(sends) == 1
    assert one["driver_stats"].values["trips"] == [3]


def test_writes_survive_a_script_flush(store: RedisOnlineStore, raw: redis.Redis) -> None:
    key = {"driver_id": [1]}
    store.write([batch(DRIVER, key, {"rate": [1.0], "trips": [1]}, [T0])])
    raw.script_flush()
    assert store.write([batch(DRIVER, key, {"rate": [2.0], "trips": [2]}, [T0 + 1])]) == WriteResult(1, 0)
    assert read_one(store, DRIVER, key).values["trips"] == [2]


def test_writes_stream_in_many_small_chunks(redis_url: str, project: str) -> None:
    store = RedisOnlineStore(redis_url, project, script_batch=7, pipeline_entities=30)
    try:
        n = 1000
        ids = [f"rider-{i}" for i in range(n)]
        names = [None if i % 5 == 0 else "é" * (i % 13) for i in range(n)]
        values = {"rating": [float(i) for i in range(n)], "name": names}
        assert store.write([batch(RIDER, {"rider_id": ids}, values, [T0] * n)]) == WriteResult(n, 0)
        older = [T0 - 1 if i % 2 else T0 + 1 for i in range(n)]
        assert store.write([batch(RIDER, {"rider_id": ids}, values, older)]) == WriteResult(n // 2, n // 2)
        got = read_one(store, RIDER, {"rider_id": ids})
        assert got.values["name"] == names
        assert got.event_us == [T0 if i % 2 else T0 + 1 for i in range(n)]
    finally:
        store.close()


def test_a_rejected_command_is_an_online_store_error_and_the_store_keeps_working(
    store: RedisOnlineStore, raw: redis.Redis, project: str, redis_url: str
) -> None:
    raw.set(f"ps1:{project}:{{driver_id=i1}}", "not a hash")
    with pytest.raises(OnlineStoreError, match="WRONGTYPE") as info:
        store.write([batch(DRIVER, {"driver_id": [2, 1]}, {"rate": [1.0, 1.0], "trips": [2, 1]}, [T0, T0])])
    assert redis_url in str(info.value)
    assert store.write([batch(DRIVER, {"driver_id": [3]}, {"rate": [3.0], "trips": [3]}, [T0])]) == WriteResult(1, 0)
    assert read_one(store, DRIVER, {"driver_id": [2, 3]}).values["trips"] == [2, 3]


def test_keys_expire_after_their_last_accepted_write_when_a_key_ttl_is_set(
    redis_url: str, project: str, raw: redis.Redis
) -> None:
    store = RedisOnlineStore(redis_url, project, key_ttl_seconds=1.0)
    plain = RedisOnlineStore(redis_url, project)
    try:
        key = {"driver_id": [1, 2]}
        store.write([batch(DRIVER, key, {"rate": [1.0, 2.0], "trips": [1, 2]}, [T0, T0])])
        redis_key = f"ps1:{project}:{{driver_id=i1}}"
        assert 0 < raw.pttl(redis_key) <= 1000
        plain.write([batch(DRIVER, {"driver_id": [3]}, {"rate": [3.0], "trips": [3]}, [T0])])
        assert raw.pttl(f"ps1:{project}:{{driver_id=i3}}") == -1  # no ttl configured: never expires
        time.sleep(0.6)
        # a newer write restarts driver 1's expiry; an older (refused) one does not touch driver 2's
        assert store.write([batch(DRIVER, key, {"rate": [5.0, 0.0], "trips": [5, 0]}, [T0 + 1, T0 - 1])]) == (
            WriteResult(1, 1)
        )
        time.sleep(0.6)  # driver 2 expired 1.0 s after the first write; driver 1 has ~0.4 s left
        got = read_one(store, DRIVER, {"driver_id": [1, 2, 3]})
        assert got.found == [True, False, True]
        assert got.values["trips"][0] == 5
    finally:
        store.close()
        plain.close()
