"""Hand-made cases, one per rule of the point-in-time join (design.md, "Semantics that must be exact")."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pitstop import FeatureStore
from pitstop.errors import RetrievalError
from tests.support.repos import applied_store, ts

pytestmark = pytest.mark.usefixtures("offline_engine")  # the engine contract: every case on every engine

DEFS = """
from datetime import timedelta
from pitstop import Entity, FeatureView, Field, Float64, Int64, ParquetSource

user = Entity("user", join_keys=["user_id"])
src = ParquetSource("src", path="data/a.parquet", created_timestamp_column="created")
a = FeatureView("a", entities=[user], schema=[Field("x", Float64)], source=src, ttl=timedelta(hours=1))
"""


def feature_rows(rows: list[tuple[int, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "event_timestamp": [ts(r[1]) for r in rows],
            "created": [ts(r[2]) for r in rows],
            "x": [r[3] for r in rows],
        }
    )


def entities(rows: list[tuple[int, str]]) -> pd.DataFrame:
    return pd.DataFrame({"user_id": [r[0] for r in rows], "event_timestamp": [ts(r[1]) for r in rows]})


def xs(store: FeatureStore, ents: pd.DataFrame, **kw: object) -> list[float | None]:
    out = store.get_historical_features(ents, ["a:x"], **kw).to_pandas()
    return [None if pd.isna(v) else float(v) for v in out["x"]]


@pytest.fixture
def one_view(tmp_path: Path):
    def make(rows: list[tuple[int, str, str, float]]) -> FeatureStore:
        return applied_store(tmp_path, {"defs.py": DEFS}, {"data/a.parquet": feature_rows(rows)})

    return make


def test_ttl_window_is_inclusive_at_event_minus_ttl(one_view) -> None:
    store = one_view([(1, "2026-01-01 10:00:00", "2026-01-01 10:00:00", 1.0),
                      (2, "2026-01-01 09:59:59", "2026-01-01 09:59:59", 2.0)])
    assert xs(store, entities([(1, "2026-01-01 11:00:00"), (2, "2026-01-01 10:59:59"),
                               (2, "2026-01-01 11:00:00")])) == [1.0, 2.0, None]


def test_equal_event_timestamps_are_decided_by_created(one_view) -> None:
    store = one_view([(1, "2026-01-01 10:00", "2026-01-01 10:00:05", 1.0),
                      (1, "2026-01-01 10:00", "2026-01-01 10:00:09", 2.0),
                      (1, "2026-01-01 10:00", "2026-01-01 10:00:01", 3.0)])
    assert xs(store, entities([(1, "2026-01-01 10:30")])) == [2.0]


def test_correction_created_after_entity_time_is_ignored_unless_cutoff_off(one_view) -> None:
    store = one_view([(1, "2026-01-01 10:00", "2026-01-01 10:00", 1.0),
                      (1, "2026-01-01 10:00", "2026-01-01 10:45", 9.0)])  # late correction
    ents = entities([(1, "2026-01-01 10:30"), (1, "2026-01-01 10:45")])
    assert xs(store, ents) == [1.0, 9.0]
    assert xs(store, ents, created_cutoff=False) == [9.0, 9.0]


def test_later_known_older_row_does_not_beat_newer_event(one_view) -> None:
    # a correction of 10:00 arriving at 10:40 must not replace the 10:20 value
    store = one_view([(1, "2026-01-01 10:00", "2026-01-01 10:00", 1.0),
                      (1, "2026-01-01 10:20", "2026-01-01 10:20", 2.0),
                      (1, "2026-01-01 10:00", "2026-01-01 10:40", 3.0)])
    assert xs(store, entities([(1, "2026-01-01 10:10"), (1, "2026-01-01 10:50")])) == [1.0, 2.0]


def test_entity_row_before_any_feature_row_and_unknown_entity_get_nulls(one_view) -> None:
    store = one_view([(1, "2026-01-01 10:00", "2026-01-01 10:00", 1.0)])
    assert xs(store, entities([(1, "2026-01-01 09:59:59"), (42, "2026-01-01 10:30")])) == [None, None]


def test_duplicate_entity_rows_come_back_each_in_input_order(one_view) -> None:
    store = one_view([(1, "2026-01-01 10:00", "2026-01-01 10:00", 1.0),
                      (2, "2026-01-01 10:00", "2026-01-01 10:00", 2.0)])
    ents = entities([(2, "2026-01-01 10:30"), (1, "2026-01-01 10:30"), (2, "2026-01-01 10:30"), (1, "2026-01-01 09:00")])
    ents["label"] = ["a", "b", "c", "d"]
    out = store.get_historical_features(ents, ["a:x"]).to_pandas()
    assert list(out["label"]) == ["a", "b", "c", "d"]
    assert list(out.columns) == ["user_id", "event_timestamp", "label", "x"]
    assert [None if pd.isna(v) else v for v in out["x"]] == [2.0, 1.0, 2.0, None]


def test_naive_timestamps_are_utc_and_aware_ones_are_converted(one_view) -> None:
    store = one_view([(1, "2026-01-01 10:00", "2026-01-01 10:00", 1.0)])
    naive = pd.DataFrame({"user_id": [1, 1], "event_timestamp": pd.to_datetime(["2026-01-01 09:59", "2026-01-01 10:00"])})
    assert xs(store, naive) == [None, 1.0]
    # 11:00 in UTC+01:00 is 10:00 UTC
    aware = pd.DataFrame({"user_id": [1, 1], "event_timestamp": [pd.Timestamp("2026-01-01 10:59", tz="Europe/Paris"),
                                                                   pd.Timestamp("2026-01-01 11:00", tz="Europe/Paris")]})
    assert xs(store, aware) == [None, 1.0]


COMPOSITE = """
from datetime import timedelta
from pitstop import Entity, FeatureView, Field, Int64, ParquetSource

pair = Entity("pair", join_keys=["a_id", "b_id"])
src = ParquetSource("src", path="data/p.parquet")
p = FeatureView("p", entities=[pair], schema=[Field("v", Int64)], source=src)
"""


def test_composite_keys_do_not_collide(tmp_path: Path) -> None:
    data = pd.DataFrame({"a_id": [1, 12], "b_id": [23, 3], "event_timestamp": [ts("2026-01-01")] * 2, "v": [123, 1203]})
    store = applied_store(tmp_path, {"defs.py": COMPOSITE}, {"data/p.parquet": data})
    ents = pd.DataFrame({"a_id": [12, 1, 1], "b_id": [3, 23, 2], "event_timestamp": [ts("2026-01-02")] * 3})
    out = store.get_historical_features(ents, ["p:v"]).to_pandas()
    assert [None if pd.isna(v) else int(v) for v in out["v"]] == [1203, 123, None]


MULTI = """
from datetime import timedelta
import pandas as pd
from pitstop import (Entity, FeatureService, FeatureView, Field, Float64, ParquetSource, RequestSource,
                     on_demand_feature_view)

user = Entity("user", join_keys=["user_id"])
short = FeatureView("short", entities=[user], schema=[Field("x", Float64)],
                    source=ParquetSource("s1", path="data/s.parquet"), ttl=timedelta(hours=1))
long = FeatureView("long", entities=["user"], schema=[Field("x", Float64), Field("y", Float64)],
                   source=ParquetSource("s2", path="data/l.parquet"), ttl=timedelta(days=1))
req = RequestSource("req", schema=[Field("bonus", Float64)])

@on_demand_feature_view(sources=[long[["y"]], req], schema=[Field("y_plus", Float64)])
def plus(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"y_plus": df["y"] + df["bonus"]})

svc = FeatureService("svc", features=[short, long[["y"]], plus])
"""


@pytest.fixture
def multi(tmp_path: Path) -> FeatureStore:
    s = pd.DataFrame({"user_id": [1], "event_timestamp": [ts("2026-01-01 10:00")], "x": [1.0]})
    lg = pd.DataFrame({"user_id": [1], "event_timestamp": [ts("2026-01-01 10:00")], "x": [10.0], "y": [20.0]})
    return applied_store(tmp_path, {"defs.py": MULTI}, {"data/s.parquet": s, "data/l.parquet": lg})


def test_several_views_with_different_ttls(multi: FeatureStore) -> None:
    ents = entities([(1, "2026-01-01 10:30"), (1, "2026-01-01 12:00"), (1, "2026-01-02 10:00:01")])
    out = multi.get_historical_features(ents, ["short:x", "long:y"]).to_pandas()
    assert [None if pd.isna(v) else v for v in out["x"]] == [1.0, None, None]
    assert [None if pd.isna(v) else v for v in out["y"]] == [20.0, 20.0, None]


def test_on_demand_feature_uses_features_and_request_columns(multi: FeatureStore) -> None:
    ents = entities([(1, "2026-01-01 10:30"), (1, "2026-01-03")])
    ents["bonus"] = [1.5, 2.0]
    out = multi.get_historical_features(ents, feature_service="svc").to_pandas()
    assert list(out.columns) == ["user_id", "event_timestamp", "bonus", "x", "y", "y_plus"]
    assert out["y_plus"][0] == 21.5
    assert pd.isna(out["y_plus"][1])


def test_name_clash_is_an_error_unless_full_feature_names(multi: FeatureStore) -> None:
    ents = entities([(1, "2026-01-01 10:30")])
    with pytest.raises(RetrievalError, match="full_feature_names"):
        multi.get_historical_features(ents, ["short:x", "long:x"])
    out = multi.get_historical_features(ents, ["short:x", "long:x"], full_feature_names=True).to_pandas()
    assert list(out.columns)[-2:] == ["short__x", "long__x"]
    assert list(out.iloc[0, -2:]) == [1.0, 10.0]


def test_entity_rows_as_arrow_parquet_path_and_sql(multi: FeatureStore, tmp_path: Path) -> None:
    ents = entities([(1, "2026-01-01 10:30")])
    path = tmp_path / "ents.parquet"
    ents.to_parquet(path)
    import pyarrow as pa

    for source in (pa.Table.from_pandas(ents), str(path), path):
        assert multi.get_historical_features(source, ["short:x"]).to_pandas()["x"].tolist() == [1.0]
    sql = "SELECT user_id, event_timestamp + INTERVAL 30 MINUTE AS event_timestamp FROM s1"
    assert multi.get_historical_features(sql, ["short:x"]).to_pandas()["x"].tolist() == [1.0]


def test_missing_join_key_names_the_key_and_view(multi: FeatureStore) -> None:
    ents = pd.DataFrame({"uid": [1], "event_timestamp": [ts("2026-01-01")]})
    with pytest.raises(RetrievalError, match="join key 'user_id'.*'short'"):
        multi.get_historical_features(ents, ["short:x"]).to_arrow()


def test_to_parquet_writes_the_same_table(multi: FeatureStore, tmp_path: Path) -> None:
    job = multi.get_historical_features(entities([(1, "2026-01-01 10:30")]), ["short:x"])
    path = job.to_parquet(tmp_path / "out" / "train.parquet")
    assert pd.read_parquet(path).equals(job.to_pandas())
