"""The DuckDB join against a brute-force reference on random data full of ties and ttl boundaries."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.repos import applied_store

BASE = pd.Timestamp("2026-01-01", tz="UTC")
TTL_S = 5

DEFS = f"""
from datetime import timedelta
from pitstop import Entity, FeatureView, Field, Int64, ParquetSource

k = Entity("k", join_keys=["k1", "k2"])
src = ParquetSource("src", path="data/f.parquet", created_timestamp_column="created")
v = FeatureView("v", entities=[k], schema=[Field("val", Int64)], source=src, ttl=timedelta(seconds={TTL_S}))
"""

# one integer key: the numpy route (with its row filter) instead of the SQL route of composite keys
SINGLE_KEY_DEFS = f"""
from datetime import timedelta
from pitstop import Entity, FeatureView, Field, Int64, ParquetSource

k = Entity("k", join_keys=["k1"])
src = ParquetSource("src", path="data/f.parquet", created_timestamp_column="created")
v = FeatureView("v", entities=[k], schema=[Field("val", Int64)], source=src, ttl=timedelta(seconds={TTL_S}))
"""

# small domains force ties on keys, event times, created times and the ttl boundary
feature_row = st.tuples(st.integers(0, 2), st.integers(0, 1), st.integers(0, 12), st.integers(-3, 6))
entity_row = st.tuples(st.integers(0, 2), st.integers(0, 1), st.integers(0, 16))


def reference(frows: list[tuple[int, int, int, int, int]], erows: list[tuple[int, int, int]], cutoff: bool) -> list[set[int] | None]:
    """Per entity row, the set of acceptable values (ties on (event, created) allow any of them)."""
    out: list[set[int] | None] = []
    for k1, k2, t in erows:
        cands = [r for r in frows if r[0] == k1 and r[1] == k2 and r[2] <= t and r[2] >= t - TTL_S
                 and (not cutoff or r[2] + r[3] <= t)]
        if not cands:
            out.append(None)
            continue
        best = max((r[2], r[2] + r[3]) for r in cands)
        out.append({r[4] for r in cands if (r[2], r[2] + r[3]) == best})
    return out


def check_against_reference(tmp: Path, frows: list, erows: list, cutoff: bool, defs: str = DEFS) -> None:
    if defs is SINGLE_KEY_DEFS:  # k2 is not a key: make it constant so the reference agrees
        frows = [(k1, 0, t, d) for k1, _, t, d in frows]
        erows = [(k1, 0, t) for k1, _, t in erows]
    rows = [(k1, k2, t, d, i) for i, (k1, k2, t, d) in enumerate(frows)]
    data = pd.DataFrame({
        "k1": pd.Series([r[0] for r in rows], dtype="int64"),
        "k2": pd.Series([r[1] for r in rows], dtype="int64"),
        "event_timestamp": pd.Series([BASE + pd.Timedelta(seconds=r[2]) for r in rows], dtype="datetime64[us, UTC]"),
        "created": pd.Series([BASE + pd.Timedelta(seconds=r[2] + r[3]) for r in rows], dtype="datetime64[us, UTC]"),
        "val": pd.Series([r[4] for r in rows], dtype="int64"),
    })
    store = applied_store(tmp, {"defs.py": defs}, {"data/f.parquet": data})
    ents = pd.DataFrame({"k1": [e[0] for e in erows], "k2": [e[1] for e in erows],
                         "event_timestamp": [BASE + pd.Timedelta(seconds=e[2]) for e in erows]})
    got = store.get_historical_features(ents, ["v:val"], created_cutoff=cutoff).to_pandas()["val"]
    want = reference(rows, erows, cutoff)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if w is None:
            assert pd.isna(g), f"row {i} {erows[i]}: expected null, got {g}"
        else:
            assert not pd.isna(g) and int(g) in w, f"row {i} {erows[i]}: expected one of {w}, got {g}"
    store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frows=st.lists(feature_row, min_size=0, max_size=30), erows=st.lists(entity_row, min_size=1, max_size=25),
       cutoff=st.booleans())
def test_matches_brute_force(tmp_path_factory, frows, erows, cutoff) -> None:
    check_against_reference(tmp_path_factory.mktemp("prop"), frows, erows, cutoff)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frows=st.lists(feature_row, min_size=0, max_size=30), erows=st.lists(entity_row, min_size=1, max_size=25),
       cutoff=st.booleans())
def test_single_key_matches_brute_force(tmp_path_factory, frows, erows, cutoff) -> None:
    """One integer key takes the numpy route: its sort, row filter and created-time walk-back."""
    check_against_reference(tmp_path_factory.mktemp("prop"), frows, erows, cutoff, SINGLE_KEY_DEFS)


@pytest.mark.spark
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frows=st.lists(feature_row, min_size=0, max_size=30), erows=st.lists(entity_row, min_size=1, max_size=25),
       cutoff=st.booleans())
def test_spark_matches_brute_force(tmp_path_factory, monkeypatch, frows, erows, cutoff) -> None:
    """The same property on the Spark engine (fewer examples: each is a few Spark jobs)."""
    from tests.conftest import SPARK_TEST_SETTINGS

    monkeypatch.setenv("PITSTOP_OFFLINE_STORE_ENGINE", "spark")
    monkeypatch.setenv("PITSTOP_OFFLINE_STORE_SPARK", SPARK_TEST_SETTINGS)
    check_against_reference(tmp_path_factory.mktemp("prop"), frows, erows, cutoff)


def test_reference_itself_on_a_known_case() -> None:
    rows = [(0, 0, 1, 0, 10), (0, 0, 1, 2, 11), (0, 0, 3, 9, 12)]
    got = reference(rows, [(0, 0, 2), (0, 0, 3), (0, 0, 12), (0, 0, 0), (0, 0, 5)], True)
    assert got == [{10}, {11}, None, None, {11}]
    assert reference(rows, [(0, 0, 5)], False) == [{12}]


def test_row_filter_keeps_only_rows_that_can_answer() -> None:
    import numpy as np

    from pitstop.offline import pit_numpy

    ents = pit_numpy.sort_entities(np.array([5, 7, 7], dtype=np.int64), np.array([100, 50, 200], dtype=np.int64), None)
    keep = pit_numpy.RowFilter.of(ents, ttl_us=30)
    assert keep is not None
    key = np.array([4, 5, 6, 7, 7, 7, 8, 5, -3], dtype=np.int64)
    ts = np.array([100, 100, 100, 20, 19, 200, 100, 201, 100], dtype=np.int64)
    # key 4, 6, 8, -3: no entity row; 19 < 50 - 30; 201 > 200
    assert keep.keep(key, ts).tolist() == [False, True, False, True, False, True, False, False, False]
    no_ttl = pit_numpy.RowFilter.of(ents, ttl_us=None)
    assert no_ttl is not None and no_ttl.keep(key, ts)[4]


def test_row_filter_without_bitmap_for_a_huge_key_range() -> None:
    import numpy as np

    from pitstop.offline import pit_numpy

    ents = pit_numpy.sort_entities(np.array([0, 1 << 40], dtype=np.int64), np.array([10, 10], dtype=np.int64), None)
    keep = pit_numpy.RowFilter.of(ents, ttl_us=None)
    assert keep is not None and keep.present is None
    assert keep.keep(np.array([3, 0], dtype=np.int64), np.array([5, 11], dtype=np.int64)).tolist() == [True, False]
