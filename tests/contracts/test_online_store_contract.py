"""The online-store contract: one set of tests, run against every OnlineStore implementation."""

from __future__ import annotations

import multiprocessing
import random
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from pitstop.definitions.dtypes import Array, Bool, Float32, Float64, Int32, Int64, String, Timestamp
from pitstop.errors import EntityKeyError, FeatureRefError, OnlineStoreError, RetrievalError
from pitstop.online.base import OnlineStore, ViewRead, ViewSchema, WriteBatch, WriteResult
from pitstop.online.factory import open_online_store

T0 = 1_700_000_000_000_000  # 2023-11-14 in microseconds

DRIVER = ViewSchema("driver_stats", ("driver_id",), (("rate", Float64), ("trips", Int64)))
RIDER = ViewSchema("rider_stats", ("rider_id",), (("rating", Float32), ("name", String)))
TRIP = ViewSchema("trip_stats", ("driver_id", "rider_id"), (("count", Int64),))
EVERY = ViewSchema(
    "every_dtype",
    ("driver_id",),
    (
        ("i64", Int64),
        ("i32", Int32),
        ("f64", Float64),
        ("f32", Float32),
        ("s", String),
        ("b", Bool),
        ("ts", Timestamp),
        ("emb", Array(Float32)),
        ("tags", Array(String)),
        ("ints", Array(Int64)),
        ("flags", Array(Bool)),
        ("times", Array(Timestamp)),
    ),
)


@dataclass(frozen=True)
class Backend:
    """Where the stores of one implementation live: their URL and the directory it is relative to."""

    url: str
    base_dir: Path


@pytest.fixture(params=[
    "sqlite",
    pytest.param("redis", marks=pytest.mark.integration),
    pytest.param("redis-cluster", marks=pytest.mark.integration),
])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    fixture = {"sqlite": None, "redis": "redis_url", "redis-cluster": "redis_cluster_url"}[request.param]
    url = "sqlite:///online.db" if fixture is None else request.getfixturevalue(fixture)
    return Backend(url, tmp_path)


@pytest.fixture
def open_store(backend: Backend) -> Iterator[Callable[[str], OnlineStore]]:
    """Opens stores on the backend's database, closing them after the test."""
    opened: list[OnlineStore] = []

    def open_(project: str) -> OnlineStore:
        opened.append(open_online_store(backend.url, project, backend.base_dir))
        return opened[-1]

    yield open_
    for s in opened:
        s.close()


@pytest.fixture
def store(open_store: Callable[[str], OnlineStore]) -> OnlineStore:
    """A store on a fresh project, so tests sharing the session's Redis never meet."""
    return open_store(f"contract_{uuid.uuid4().hex[:12]}")


def batch(view: ViewSchema, keys: dict[str, list[Any]], values: dict[str, list[Any]],
          event_us: list[int], created_us: list[int] | None = None) -> WriteBatch:
    """A WriteBatch from plain lists, typed by the view schema."""
    types = dict(view.features)
    return WriteBatch(
        view=view,
        keys=pa.table(keys),
        event_us=np.array(event_us, dtype=np.int64),
        created_us=np.array(created_us if created_us is not None else [0] * len(event_us), dtype=np.int64),
        values=pa.table({name: pa.array(values[name], type=types[name].to_arrow()) for name, _ in view.features}),
    )


def read_one(store: OnlineStore, view: ViewSchema, keys: dict[str, list[Any]], features: list[str] | None = None):
    features = features if features is not None else [name for name, _ in view.features]
    return store.read(pa.table(keys), [ViewRead(view, features)])[view.name]


def test_round_trip_every_dtype_with_nulls(store: OnlineStore) -> None:
    ts = datetime(2024, 2, 29, 12, 30, 15, 123456, tzinfo=UTC)
    old = datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC)
    values = {
        "i64": [2**63 - 1, None, -(2**63)],
        "i32": [-(2**31), None, 2**31 - 1],
        "f64": [1.5, None, float("inf")],
        "f32": [0.1, None, -3.25],
        "s": ["héllo wörld ✓", None, ""],
        "b": [True, None, False],
        "ts": [ts, None, old],
        "emb": [[0.5, -1.25, 3.0], None, []],
        "tags": [["a", "", "ü}{%"], None, ["x", None]],
        "ints": [[1, None, 3], None, [2**62]],
        "flags": [[True, False, True], None, [None]],
        "times": [[ts, old], None, [None, ts]],
    }
    b = batch(EVERY, {"driver_id": [1, 2, 3]}, values, [T0, T0 + 1, -5], [7, 0, 9])
    assert store.write([b]) == WriteResult(written=3, stale=0)

    got = read_one(store, EVERY, {"driver_id": [1, 2, 3]})
    assert got.found == [True, True, True]
    assert got.event_us == [T0, T0 + 1, -5]
    for name, dtype in EVERY.features:
        expected = pa.array(values[name], type=dtype.to_arrow()).to_pylist()  # float32 rounding included
        assert got.values[name] == expected, name


def test_subset_of_features_and_not_found_rows(store: OnlineStore) -> None:
    store.write([batch(DRIVER, {"driver_id": [10, 11]}, {"rate": [0.5, 0.7], "trips": [5, 6]}, [T0, T0])])
    got = read_one(store, DRIVER, {"driver_id": [99, 11, 12345]}, ["trips"])
    assert got.found == [False, True, False]
    assert got.event_us[1] == T0
    assert got.values == {"trips": [None, 6, None]}


def test_several_views_and_composite_keys_in_one_read(store: OnlineStore) -> None:
    store.write([
        batch(DRIVER, {"driver_id": [1, 2]}, {"rate": [0.1, 0.2], "trips": [10, 20]}, [T0, T0]),
        batch(RIDER, {"rider_id": ["r1", "r2"]}, {"rating": [4.5, 3.5], "name": ["ann", "bob"]}, [T0, T0]),
        batch(TRIP, {"driver_id": [1, 2], "rider_id": ["r2", "r1"]}, {"count": [3, 4]}, [T0, T0]),
    ])
    rows = pa.table({"driver_id": [2, 1, 1], "rider_id": ["r1", "r2", "r1"]})
    got = store.read(rows, [ViewRead(DRIVER, ["rate"]), ViewRead(RIDER, ["name", "rating"]), ViewRead(TRIP, ["count"])])
    assert set(got) == {"driver_stats", "rider_stats", "trip_stats"}
    assert got["driver_stats"].values == {"rate": [0.2, 0.1, 0.1]}
    assert got["rider_stats"].values == {"name": ["ann", "bob", "ann"], "rating": [4.5, 3.5, 4.5]}
    assert got["trip_stats"].values == {"count": [4, 3, None]}
    assert got["trip_stats"].found == [True, True, False]


def test_results_follow_request_order_with_duplicate_rows(store: OnlineStore) -> None:
    ids = list(range(100))
    store.write([batch(DRIVER, {"driver_id": ids}, {"rate": [i / 10 for i in ids], "trips": ids}, [T0 + i for i in ids])])
    request = [42, 7, 42, 1000, 0, 7, 99, 42]
    got = read_one(store, DRIVER, {"driver_id": request})
    assert got.values["trips"] == [None if i == 1000 else i for i in request]
    assert got.found == [i != 1000 for i in request]
    assert [e for e, f in zip(got.event_us, got.found, strict=True) if f] == [T0 + i for i in request if i != 1000]


def test_many_rows_with_variable_width_values(store: OnlineStore) -> None:
    # Crosses the stores' internal batch sizes and the codec's vectorized paths.
    n = 2500
    ids = [f"rider-{i}" for i in range(n)]
    names = [None if i % 7 == 0 else "x" * (i % 50) for i in range(n)]
    result = store.write([batch(RIDER, {"rider_id": ids}, {"rating": [float(i) for i in range(n)], "name": names},
                                [T0] * n)])
    assert result == WriteResult(written=n, stale=0)
    got = read_one(store, RIDER, {"rider_id": ids[::-1]})
    assert got.values["name"] == names[::-1]
    assert got.values["rating"] == [float(i) for i in range(n)][::-1]


def test_guard_rejects_older_and_counts_it_stale(store: OnlineStore) -> None:
    key = {"driver_id": [1]}
    assert store.write([batch(DRIVER, key, {"rate": [1.0], "trips": [1]}, [T0])]) == WriteResult(1, 0)
    assert store.write([batch(DRIVER, key, {"rate": [0.0], "trips": [0]}, [T0 - 1])]) == WriteResult(0, 1)
    assert read_one(store, DRIVER, key).values["trips"] == [1]
    assert store.write([batch(DRIVER, key, {"rate": [2.0], "trips": [2]}, [T0 + 1])]) == WriteResult(1, 0)
    got = read_one(store, DRIVER, key)
    assert got.values["trips"] == [2] and got.event_us == [T0 + 1]


def test_guard_equal_event_is_decided_by_created(store: OnlineStore) -> None:
    key = {"driver_id": [1]}
    store.write([batch(DRIVER, key, {"rate": [1.0], "trips": [1]}, [T0], [500])])
    assert store.write([batch(DRIVER, key, {"rate": [0.0], "trips": [0]}, [T0], [499])]) == WriteResult(0, 1)
    assert read_one(store, DRIVER, key).values["trips"] == [1]
    assert store.write([batch(DRIVER, key, {"rate": [3.0], "trips": [3]}, [T0], [501])]) == WriteResult(1, 0)
    assert read_one(store, DRIVER, key).values["trips"] == [3]


def test_guard_equal_pair_overwrites(store: OnlineStore) -> None:
    key = {"driver_id": [1]}
    store.write([batch(DRIVER, key, {"rate": [1.0], "trips": [1]}, [T0], [5])])
    assert store.write([batch(DRIVER, key, {"rate": [1.0], "trips": [9]}, [T0], [5])]) == WriteResult(1, 0)
    assert read_one(store, DRIVER, key).values["trips"] == [9]


@pytest.mark.parametrize(
    ("first", "second", "second_wins"),
    [
        ((2**60 + 2, 0), (2**60 + 1, 0), False),  # beyond 2**53: a double comparison would call these equal
        ((2**60 + 1, 0), (2**60 + 2, 0), True),
        ((T0, 2**60 + 2), (T0, 2**60 + 1), False),
        ((-10, 0), (3, 0), True),  # before and after the epoch
        ((3, 0), (-10, 0), False),
        ((-(2**63), 0), (-(2**63) + 1, 0), True),
        ((2**63 - 1, 0), (2**63 - 2, 0), False),
    ],
)
def test_guard_compares_full_64_bit_times_exactly(
    store: OnlineStore, first: tuple[int, int], second: tuple[int, int], second_wins: bool
) -> None:
    key = {"driver_id": [1]}
    store.write([batch(DRIVER, key, {"rate": [1.0], "trips": [1]}, [first[0]], [first[1]])])
    result = store.write([batch(DRIVER, key, {"rate": [2.0], "trips": [2]}, [second[0]], [second[1]])])
    assert result == (WriteResult(1, 0) if second_wins else WriteResult(0, 1))
    assert read_one(store, DRIVER, key).values["trips"] == [2 if second_wins else 1]


def test_newest_row_wins_within_one_batch_and_across_batches(store: OnlineStore) -> None:
    b1 = batch(DRIVER, {"driver_id": [1, 1, 2]}, {"rate": [1.0, 2.0, 3.0], "trips": [1, 2, 3]}, [T0 + 5, T0 + 1, T0])
    b2 = batch(DRIVER, {"driver_id": [2]}, {"rate": [4.0], "trips": [4]}, [T0 + 1])
    result = store.write([b1, b2])
    assert (result.written, result.stale) == (3, 1)
    assert read_one(store, DRIVER, {"driver_id": [1, 2]}).values["trips"] == [1, 4]


def test_composite_keys_never_collide(store: OnlineStore) -> None:
    view = ViewSchema("pair", ("a", "b"), (("v", String),))
    store.write([
        batch(view, {"a": [1, 12], "b": [23, 3]}, {"v": ["1|23", "12|3"]}, [T0, T0]),
        batch(view, {"a": ["1", "12"], "b": ["23", "3"]}, {"v": ["s1|s23", "s12|s3"]}, [T0, T0]),
        batch(view, {"a": ["1,b=i2"], "b": ["3"]}, {"v": ["tricky"]}, [T0]),
    ])
    got = read_one(store, view, {"a": [12, 1], "b": [3, 23]})
    assert got.values["v"] == ["12|3", "1|23"]
    got = read_one(store, view, {"a": ["12", "1", "1"], "b": ["3", "23", "3"]})
    assert got.values["v"] == ["s12|s3", "s1|s23", None]
    got = read_one(store, view, {"a": ["1,b=i2", "1"], "b": ["3", "2"]})
    assert got.values["v"] == ["tricky", None]


def test_same_values_under_different_join_keys_do_not_collide(store: OnlineStore) -> None:
    by_driver = ViewSchema("shared_name", ("driver_id",), (("v", Int64),))
    by_rider = ViewSchema("shared_name", ("rider_id",), (("v", Int64),))
    store.write([batch(by_driver, {"driver_id": [7]}, {"v": [1]}, [T0])])
    store.write([batch(by_rider, {"rider_id": [7]}, {"v": [2]}, [T0 - 100])])  # older, but another entity
    assert read_one(store, by_driver, {"driver_id": [7]}).values["v"] == [1]
    assert read_one(store, by_rider, {"rider_id": [7]}).values["v"] == [2]


def test_delete_views_removes_only_those_views_of_this_project(
    store: OnlineStore, open_store: Callable[[str], OnlineStore]
) -> None:
    store.write([
        batch(DRIVER, {"driver_id": [1, 2]}, {"rate": [0.1, 0.2], "trips": [1, 2]}, [T0, T0]),
        batch(RIDER, {"rider_id": ["r"]}, {"rating": [1.0], "name": ["n"]}, [T0]),
        batch(TRIP, {"driver_id": [1], "rider_id": ["r"]}, {"count": [5]}, [T0]),
    ])
    other = open_store(f"other_{uuid.uuid4().hex[:8]}")
    other.write([batch(DRIVER, {"driver_id": [1]}, {"rate": [9.0], "trips": [9]}, [T0])])
    store.delete_views(["driver_stats", "trip_stats"])
    rows = pa.table({"driver_id": [1, 2], "rider_id": ["r", "r"]})
    got = store.read(rows, [ViewRead(DRIVER, ["trips"]), ViewRead(RIDER, ["name"]), ViewRead(TRIP, ["count"])])
    assert got["driver_stats"].found == [False, False]
    assert got["trip_stats"].found == [False, False]
    assert got["rider_stats"].values["name"] == ["n", "n"]
    assert read_one(other, DRIVER, {"driver_id": [1]}).values["trips"] == [9]
    # A deleted view can be written again from scratch, even with an older time.
    assert store.write([batch(DRIVER, {"driver_id": [1]}, {"rate": [0.0], "trips": [0]}, [T0 - 1])]) == WriteResult(1, 0)


def test_records_of_another_schema_read_as_not_found(store: OnlineStore) -> None:
    store.write([batch(DRIVER, {"driver_id": [1]}, {"rate": [0.1], "trips": [1]}, [T0])])
    changed = ViewSchema(DRIVER.name, DRIVER.join_keys, (*DRIVER.features, ("new_feature", Int64)))
    got = read_one(store, changed, {"driver_id": [1]}, ["trips", "new_feature"])
    assert got.found == [False]
    assert got.values == {"trips": [None], "new_feature": [None]}


def test_empty_write_and_empty_read(store: OnlineStore) -> None:
    assert store.write([]) == WriteResult(0, 0)
    assert store.write([batch(DRIVER, {"driver_id": pa.array([], pa.int64())}, {"rate": [], "trips": []}, [])]) == WriteResult(0, 0)
    got = store.read(pa.table({"driver_id": pa.array([], pa.int64())}), [ViewRead(DRIVER, ["rate"])])
    assert got["driver_stats"].found == [] and got["driver_stats"].values == {"rate": []}
    assert store.read(pa.table({"driver_id": [1]}), []) == {}


def test_bad_requests_raise_our_errors(store: OnlineStore) -> None:
    with pytest.raises(FeatureRefError, match="no_such"):
        store.read(pa.table({"driver_id": [1]}), [ViewRead(DRIVER, ["no_such"])])
    # bad keys are bad input (422 at the HTTP edge), never a store outage (503)
    for keys, words in (({"rider_id": [1]}, "driver_id"), ({"driver_id": pa.array([1, None])}, "null"),
                        ({"driver_id": [1.5]}, "driver_id")):
        with pytest.raises(EntityKeyError, match=words) as info:
            store.read(pa.table(keys), [ViewRead(DRIVER, ["rate"])])
        assert isinstance(info.value, RetrievalError) and not isinstance(info.value, OnlineStoreError)


def test_ping_succeeds_on_a_reachable_store(store: OnlineStore) -> None:
    store.ping()


def test_generation_marker_is_created_once_and_survives_writes_and_deletes(
    store: OnlineStore, open_store: Callable[[str], OnlineStore]
) -> None:
    assert store.generation() is None  # a new project's store has none until materialization creates it
    first = store.generation(create=True)
    assert isinstance(first, str) and len(first) >= 16
    assert store.generation() == first and store.generation(create=True) == first
    store.write([batch(DRIVER, {"driver_id": [1]}, {"rate": [0.1], "trips": [1]}, [T0])])
    store.delete_views(["driver_stats"])
    again = open_store(store.project)  # type: ignore[attr-defined]
    assert again.generation() == first  # another connection (process, host) sees the same marker
    other = open_store(f"other_{uuid.uuid4().hex[:8]}")
    assert other.generation() is None  # per project
    assert other.generation(create=True) != first


def test_concurrent_creators_agree_on_one_generation(open_store: Callable[[str], OnlineStore]) -> None:
    project = f"gen_{uuid.uuid4().hex[:8]}"
    stores = [open_store(project) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda s: s.generation(create=True), stores))
    assert len(set(ids)) == 1 and ids[0] is not None


# ---------------------------------------------------------------- concurrency

Row = tuple[int, int, int, int]
"""(driver_id, event_us, created_us, trips) — ``trips`` identifies the version written."""


def versioned_rows(entities: int, versions: int, seed: int) -> tuple[list[Row], dict[int, int]]:
    """Shuffled rows with many versions per entity (ties on event_us included) and each entity's newest ``trips``."""
    rng = random.Random(seed)
    rows: list[Row] = []
    newest: dict[int, int] = {}
    for entity in range(entities):
        pairs = rng.sample([(T0 + e, c) for e in range(versions // 2) for c in range(4)], versions)
        for j, (event, created) in enumerate(pairs):
            rows.append((entity, event, created, entity * 1000 + j))
        newest[entity] = entity * 1000 + max(range(versions), key=lambda j: pairs[j])
    rng.shuffle(rows)
    return rows, newest


def write_rows(url: str, project: str, base_dir: str, rows: list[Row], seed: int) -> tuple[int, int]:
    """Write ``rows`` through a store of its own in small random batches; returns (written, stale).

    Module-level so spawned processes can run it.
    """
    rng = random.Random(seed)
    store = open_online_store(url, project, Path(base_dir))
    total = WriteResult()
    try:
        i = 0
        while i < len(rows):
            chunk = rows[i : i + rng.randint(1, 25)]
            i += len(chunk)
            total += store.write([batch(
                DRIVER,
                {"driver_id": [r[0] for r in chunk]},
                {"rate": [float(r[3]) for r in chunk], "trips": [r[3] for r in chunk]},
                [r[1] for r in chunk],
                [r[2] for r in chunk],
            )])
    finally:
        store.close()
    return total.written, total.stale


def check_concurrent_writers(url: str, base_dir: Path, *, threads: int, processes: int, entities: int,
                             versions: int) -> None:
    """Threads and processes write all versions in random order at once; the newest must win everywhere."""
    project = f"concurrent_{uuid.uuid4().hex[:8]}"
    rows, newest = versioned_rows(entities, versions, seed=7)
    workers = threads + processes
    parts = [rows[k::workers] for k in range(workers)]
    ctx = multiprocessing.get_context("spawn")  # fork would copy this process's threads and sockets
    with ctx.Pool(processes) as pool, ThreadPoolExecutor(threads) as executor:
        in_processes = pool.starmap_async(
            write_rows, [(url, project, str(base_dir), parts[k], k) for k in range(processes)]
        )
        in_threads = [executor.submit(write_rows, url, project, str(base_dir), parts[k], k)
                      for k in range(processes, workers)]
        counts = in_processes.get(timeout=120) + [f.result(timeout=120) for f in in_threads]
    assert sum(w + s for w, s in counts) == len(rows)
    assert sum(w for w, _ in counts) >= entities
    store = open_online_store(url, project, base_dir)
    try:
        got = read_one(store, DRIVER, {"driver_id": list(range(entities))})
    finally:
        store.close()
    assert got.values["trips"] == [newest[e] for e in range(entities)]


def test_guard_holds_under_concurrent_threads_and_processes(backend: Backend) -> None:
    check_concurrent_writers(backend.url, backend.base_dir, threads=2, processes=2, entities=20, versions=10)


def test_a_batch_with_mismatched_row_counts_is_rejected_before_writing(store: OnlineStore) -> None:
    bad = batch(DRIVER, {"driver_id": [1, 2]}, {"rate": [1.0, 2.0], "trips": [1, 2]}, [T0, T0])
    bad.event_us = bad.event_us[:1]
    with pytest.raises(OnlineStoreError, match="event_us has 1"):
        store.write([bad])
    assert read_one(store, DRIVER, {"driver_id": [1, 2]}).found == [False, False]
