"""Redis Cluster online store against a real 3-primary cluster: routing by slot, resharding, lost scripts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pyarrow as pa
import pytest
import redis

from pitstop.errors import OnlineStoreError
from pitstop.online.base import WriteResult
from pitstop.online.factory import open_online_store
from pitstop.online.hash_slots import key_slot
from pitstop.online.keys import redis_keys
from pitstop.online.redis_cluster_store import RedisClusterOnlineStore
from tests.contracts.test_online_store_contract import DRIVER, RIDER, T0, batch, read_one
from tests.integration.redis_cluster import RedisCluster
from tests.integration.redis_server import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def project() -> str:
    return f"cl_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store(redis_cluster_url: str, project: str) -> Iterator[RedisClusterOnlineStore]:
    s = RedisClusterOnlineStore(redis_cluster_url, project, script_batch=50, pipeline_entities=400)
    yield s
    s.close()


def driver_key(project: str, driver_id: int) -> bytes:
    return redis_keys(project, pa.table({"driver_id": [driver_id]}), ["driver_id"])[0]


def move_slot(cluster: RedisCluster, slot: int, target: int, *, finish: bool = True) -> int:
    """Migrate ``slot`` (and its keys) to node ``target``; with ``finish=False`` leave it mid-migration."""
    source = cluster.node_of_slot(slot)
    assert source != target
    src, dst = cluster.client(source), cluster.client(target)
    src_id, dst_id = cluster.node_id(source), cluster.node_id(target)
    dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
    keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
    if keys:
        src.execute_command("MIGRATE", "127.0.0.1", cluster.servers[target].port, "", 0, 5000, "KEYS", *keys)
    if finish:
        for k in range(len(cluster.servers)):
            cluster.client(k).execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    return source


def finish_move(cluster: RedisCluster, slot: int, target: int) -> None:
    dst_id = cluster.node_id(target)
    for k in range(len(cluster.servers)):
        cluster.client(k).execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)


def test_the_factory_opens_a_cluster_store_for_cluster_urls(redis_cluster_url: str, tmp_path) -> None:
    s = open_online_store(redis_cluster_url, "factory", tmp_path)
    try:
        assert isinstance(s, RedisClusterOnlineStore)
        s.ping()
    finally:
        s.close()


def test_a_bulk_write_spreads_over_every_node_and_each_key_sits_on_its_slots_owner(
    store: RedisClusterOnlineStore, redis_cluster: RedisCluster, project: str
) -> None:
    n = 3000
    ids = list(range(n))
    result = store.write([batch(DRIVER, {"driver_id": ids}, {"rate": [i / 10 for i in ids], "trips": ids}, [T0] * n)])
    assert result == WriteResult(n, 0)
    per_node = []
    for k in range(3):
        keys = list(redis_cluster.client(k).scan_iter(match=f"ps1:{project}:*", count=1000))
        per_node.append(len(keys))
        assert all(redis_cluster.node_of_slot(key_slot(key)) == k for key in keys[:50])
    assert sum(per_node) == n and min(per_node) > n // 5
    got = read_one(store, DRIVER, {"driver_id": ids[::-1]})
    assert got.values["trips"] == ids[::-1]
    # older rows are refused by the guard on every node
    assert store.write([batch(DRIVER, {"driver_id": ids}, {"rate": [0.0] * n, "trips": [0] * n}, [T0 - 1] * n)]) == (
        WriteResult(0, n)
    )


def test_writes_and_reads_follow_a_slot_that_moved_after_the_store_learned_the_map(
    store: RedisClusterOnlineStore, redis_cluster: RedisCluster, project: str
) -> None:
    store.write([batch(DRIVER, {"driver_id": [7, 8]}, {"rate": [1.0, 2.0], "trips": [1, 2]}, [T0, T0])])
    slot = key_slot(driver_key(project, 7))
    target = (redis_cluster.node_of_slot(slot) + 1) % 3
    move_slot(redis_cluster, slot, target)
    # The store's slot map is stale now: the old owner answers MOVED and the store must follow it.
    assert read_one(store, DRIVER, {"driver_id": [7, 8]}).values["trips"] == [1, 2]
    assert store.write([batch(DRIVER, {"driver_id": [7]}, {"rate": [3.0], "trips": [3]}, [T0 + 1])]) == WriteResult(1, 0)
    assert redis_cluster.client(target).exists(driver_key(project, 7)) == 1
    assert read_one(store, DRIVER, {"driver_id": [7]}).values["trips"] == [3]


def test_a_slot_in_mid_migration_is_served_through_ask_redirections(
    store: RedisClusterOnlineStore, redis_cluster: RedisCluster, project: str
) -> None:
    store.write([batch(DRIVER, {"driver_id": [21]}, {"rate": [1.0], "trips": [1]}, [T0])])
    slot = key_slot(driver_key(project, 21))
    target = (redis_cluster.node_of_slot(slot) + 1) % 3
    move_slot(redis_cluster, slot, target, finish=False)  # the key moved; the slot still belongs to the source
    try:
        assert read_one(store, DRIVER, {"driver_id": [21]}).values["trips"] == [1]
        assert store.write([batch(DRIVER, {"driver_id": [21]}, {"rate": [2.0], "trips": [2]}, [T0 + 1])]) == (
            WriteResult(1, 0)
        )
        source = redis_cluster.node_of_slot(slot)
        assert redis_cluster.client(source).execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    finally:
        finish_move(redis_cluster, slot, target)
    assert redis_cluster.client(target).exists(driver_key(project, 21)) == 1
    assert read_one(store, DRIVER, {"driver_id": [21]}).values["trips"] == [2]


def test_writes_survive_a_script_flush_on_every_node(
    store: RedisClusterOnlineStore, redis_cluster: RedisCluster
) -> None:
    ids = list(range(100))
    store.write([batch(DRIVER, {"driver_id": ids}, {"rate": [1.0] * 100, "trips": [1] * 100}, [T0] * 100)])
    for k in range(3):
        redis_cluster.client(k).script_flush()
    assert store.write([batch(DRIVER, {"driver_id": ids}, {"rate": [2.0] * 100, "trips": [2] * 100}, [T0 + 1] * 100)]) == (
        WriteResult(100, 0)
    )
    assert set(read_one(store, DRIVER, {"driver_id": ids}).values["trips"]) == {2}


def test_connections_killed_by_the_servers_are_replaced_and_nothing_is_lost(
    store: RedisClusterOnlineStore, redis_cluster: RedisCluster
) -> None:
    ids = list(range(500))
    store.write([batch(DRIVER, {"driver_id": ids}, {"rate": [1.0] * 500, "trips": [1] * 500}, [T0] * 500)])
    for k in range(3):  # drop every pooled connection of the store, as a node restart or a proxy would
        assert redis_cluster.client(k).client_kill_filter(_type="normal", skipme=True) >= 1
    assert store.write([batch(DRIVER, {"driver_id": ids}, {"rate": [2.0] * 500, "trips": ids}, [T0 + 1] * 500)]) == (
        WriteResult(500, 0)
    )
    for k in range(3):
        redis_cluster.client(k).client_kill_filter(_type="normal", skipme=True)
    assert read_one(store, DRIVER, {"driver_id": ids}).values["trips"] == ids


def test_delete_views_clears_the_view_on_every_node(store: RedisClusterOnlineStore) -> None:
    ids = [f"r{i}" for i in range(300)]
    store.write([batch(RIDER, {"rider_id": ids}, {"rating": [1.0] * 300, "name": ["x"] * 300}, [T0] * 300)])
    store.write([batch(DRIVER, {"driver_id": [1]}, {"rate": [1.0], "trips": [1]}, [T0])])
    store.delete_views(["rider_stats"])
    assert read_one(store, RIDER, {"rider_id": ids}).found == [False] * 300
    assert read_one(store, DRIVER, {"driver_id": [1]}).found == [True]


def test_a_rejected_command_is_an_online_store_error_naming_the_url(
    store: RedisClusterOnlineStore, redis_cluster_url: str, project: str
) -> None:
    raw = redis.RedisCluster.from_url(redis_cluster_url.replace("redis+cluster://", "redis://").split(",")[0])
    try:
        raw.set(driver_key(project, 1), "not a hash")
    finally:
        raw.close()
    with pytest.raises(OnlineStoreError, match="WRONGTYPE") as info:
        store.write([batch(DRIVER, {"driver_id": [2, 1]}, {"rate": [1.0, 1.0], "trips": [2, 1]}, [T0, T0])])
    assert redis_cluster_url in str(info.value)
    assert read_one(store, DRIVER, {"driver_id": [2]}).values["trips"] == [2]


def test_an_unreachable_cluster_fails_fast_with_the_url() -> None:
    url = f"redis+cluster://:secret@127.0.0.1:{free_port()}"
    s = RedisClusterOnlineStore(url, "nowhere", socket_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(OnlineStoreError) as info:
        s.ping()
    assert time.monotonic() - started < 10
    assert "127.0.0.1" in str(info.value) and "secret" not in str(info.value)


def test_the_scoring_service_reads_features_from_the_cluster(tmp_path, redis_cluster_url: str) -> None:
    from datetime import timedelta

    from fastapi.testclient import TestClient

    from pitstop.serving.app import create_app
    from tests.support.online_repo import make_repo, now_hour

    store = make_repo(tmp_path, redis_cluster_url)
    now = now_hour()
    store.materialize(now - timedelta(days=500), now + timedelta(hours=1))
    with TestClient(create_app(store=store)) as client:
        assert client.get("/ready").status_code == 200
        answer = client.post("/features", json={"features": ["stats:trips", "forever:signup"],
                                                "entities": {"driver_id": [1, 2, 3, 4]}})
    store.close()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    names = body["metadata"]["feature_names"]
    trips, signup = body["results"][names.index("trips")], body["results"][names.index("signup")]
    assert trips["statuses"] == ["PRESENT", "OUTSIDE_MAX_AGE", "PRESENT", "NOT_FOUND"]
    assert signup["values"] == [2019, 2025, None, None]
    assert signup["statuses"] == ["PRESENT", "PRESENT", "NOT_FOUND", "NOT_FOUND"]


def test_cluster_keys_expire_after_their_last_write_when_a_key_ttl_is_set(
    redis_cluster_url: str, project: str, redis_cluster: RedisCluster
) -> None:
    s = RedisClusterOnlineStore(redis_cluster_url, project, key_ttl_seconds=0.5)
    try:
        ids = list(range(60))
        s.write([batch(DRIVER, {"driver_id": ids}, {"rate": [1.0] * 60, "trips": ids}, [T0] * 60)])
        slot = key_slot(driver_key(project, 0))
        assert 0 < redis_cluster.client(redis_cluster.node_of_slot(slot)).pttl(driver_key(project, 0)) <= 500
        time.sleep(0.8)
        assert read_one(s, DRIVER, {"driver_id": ids}).found == [False] * 60
    finally:
        s.close()
