"""DeltaSource: users' Delta Lake tables read through one table version's file list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from pitstop import DeltaSource, KafkaSource, ParquetSource, PushSource
from pitstop.errors import DefinitionError, NotFoundError
from tests.support.repos import applied_store

DEFS = """
from pitstop import DeltaSource, Entity, FeatureView, Field, Float64

driver = Entity("driver", join_keys=["driver_id"])
trips = FeatureView("trips", entities=[driver], schema=[Field("speed", Float64)],
                    source=DeltaSource("trips_delta", path="data/trips_delta"))
"""
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rows(hours: list[int], speed: float) -> pa.Table:
    return pa.table({"driver_id": pa.array([1] * len(hours), pa.int64()),
                     "event_timestamp": pa.array([T0 + timedelta(hours=h) for h in hours], pa.timestamp("us", "UTC")),
                     "speed": [speed + h for h in hours]})


def entity() -> pd.DataFrame:
    return pd.DataFrame({"driver_id": [1, 1], "event_timestamp": [T0 + timedelta(hours=2), T0 + timedelta(hours=9)]})


def test_training_sets_read_the_latest_version_and_as_of_an_older_one_until_it_is_vacuumed(tmp_path: Path) -> None:
    table = tmp_path / "data/trips_delta"
    table.parent.mkdir(parents=True)
    write_deltalake(str(table), rows([0, 1], 10.0))
    store = applied_store(tmp_path, {"defs.py": DEFS})
    first = store.get_historical_features(entity(), ["trips:speed"])
    assert first.to_pandas()["speed"].tolist() == [11.0, 11.0]
    dataset = first.dataset_id
    recorded = store.registry.dataset(dataset)  # type: ignore[arg-type]
    assert recorded is not None and recorded.sources["trips_delta"][0]["table_version"] == 0

    write_deltalake(str(table), rows([5], 50.0), mode="append")  # version 1
    assert store.get_historical_features(entity(), ["trips:speed"]).to_pandas()["speed"].tolist() == [11.0, 55.0]
    assert store.get_historical_features(entity(), as_of=dataset).to_arrow().equals(first.to_arrow())

    delta = DeltaTable(str(table))
    delta.optimize.compact()  # version 2: one file replaces both
    assert store.get_historical_features(entity(), ["trips:speed"]).to_pandas()["speed"].tolist() == [11.0, 55.0]
    assert store.get_historical_features(entity(), as_of=dataset).to_arrow().equals(first.to_arrow())  # not vacuumed
    delta.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    with pytest.raises(NotFoundError, match="Delta table version 0"):
        store.get_historical_features(entity(), as_of=dataset).to_arrow()
    store.close()


def test_a_missing_table_is_named(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(DefinitionError, match="trips_delta"):
        applied_store(tmp_path, {"defs.py": DEFS})


def test_streamed_and_pushed_rows_are_not_appended_to_delta_tables() -> None:
    delta = DeltaSource("lake", path="s3://lake/t")
    with pytest.raises(DefinitionError, match="is a DeltaSource"):
        KafkaSource("k", topic="t", batch_source=delta)
    with pytest.raises(DefinitionError, match="is a DeltaSource"):
        PushSource("p", batch_source=delta)
    PushSource("p", batch_source=ParquetSource("files", path="data/p"))  # plain Parquet folders stay fine
