"""Reproducible training sets: a dataset record of what was read, and ``as_of`` to read it again."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pitstop import FeatureStore
from pitstop.errors import NotFoundError
from tests.support.repos import applied_store

DEFS = """
from datetime import timedelta
from pitstop import Entity, FeatureService, FeatureView, Field, Float64, ParquetSource

driver = Entity("driver", join_keys=["driver_id"])
trips = FeatureView("trips", entities=[driver], schema=[Field("speed", Float64)],
                    source=ParquetSource("trips_src", path="data/trips/"), ttl=timedelta(days=TTL))
svc = FeatureService("svc", features=[trips])
"""
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rows(hours: list[int], speed: float) -> pd.DataFrame:
    return pd.DataFrame({"driver_id": [1] * len(hours), "event_timestamp": [T0 + timedelta(hours=h) for h in hours],
                         "speed": [speed + h for h in hours]})


def entity() -> pd.DataFrame:
    return pd.DataFrame({"driver_id": [1, 1], "event_timestamp": [T0 + timedelta(hours=2), T0 + timedelta(hours=9)]})


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    return applied_store(tmp_path, {"defs.py": DEFS.replace("TTL", "30")},
                         {"data/trips/part-0.parquet": rows([0, 1], 10.0)})


def test_as_of_reads_the_same_files_after_new_data_and_a_definition_change(store: FeatureStore,
                                                                           tmp_path: Path) -> None:
    first = store.get_historical_features(entity(), ["trips:speed"])
    before = first.to_arrow()
    dataset = first.dataset_id
    assert dataset is not None and dataset.startswith("ds_")
    assert store.get_historical_features(entity(), ["trips:speed"]).dataset_id == dataset  # same reads, same id

    rows([5, 8], 50.0).to_parquet(tmp_path / "data/trips/part-1.parquet", index=False)  # new data lands
    (tmp_path / "defs.py").write_text(DEFS.replace("TTL", "0.1"))  # and the ttl shrinks to 2.4 h
    store.apply()
    now = store.get_historical_features(entity(), ["trips:speed"])
    assert now.to_pandas()["speed"].tolist() != before.to_pandas()["speed"].tolist()
    assert now.dataset_id != dataset

    again = store.get_historical_features(entity(), as_of=dataset)
    assert again.to_arrow().equals(before)  # bit for bit
    assert again.dataset_id == dataset
    recorded = store.registry.dataset(dataset)
    assert recorded is not None and [f["ref"] for f in recorded.sources["trips_src"]] == [
        str(tmp_path / "data/trips/part-0.parquet")]


def test_as_of_fails_clearly_when_a_file_it_read_is_gone(store: FeatureStore, tmp_path: Path) -> None:
    dataset = store.get_historical_features(entity(), ["trips:speed"]).dataset_id
    (tmp_path / "data/trips/part-0.parquet").unlink()  # compaction or cleanup removed it
    rows([0, 1], 10.0).to_parquet(tmp_path / "data/trips/merged.parquet", index=False)
    with pytest.raises(NotFoundError, match=r"part-0\.parquet .*was removed"):
        store.get_historical_features(entity(), as_of=dataset).to_arrow()
    with pytest.raises(NotFoundError, match="no dataset 'ds_nope'"):
        store.get_historical_features(entity(), as_of="ds_nope")


def test_a_model_registered_with_a_training_set_shows_its_lineage(store: FeatureStore, tmp_path: Path) -> None:
    job = store.get_historical_features(entity(), feature_service="svc")

    class Constant:
        def predict(self, frame: pd.DataFrame) -> list[float]:
            return [1.0] * len(frame)

    version = store.models.register("speedy", Constant(), "pyfunc", feature_service="svc", training_set=job)
    assert version.dataset_id == job.dataset_id is not None
    store.close()
    out = subprocess.run([sys.executable, "-m", "pitstop.cli", "-r", str(tmp_path), "--json", "models", "describe",
                          "speedy:1"], capture_output=True, text=True, check=True)
    lineage = json.loads(out.stdout)["lineage"]
    assert lineage["dataset_id"] == job.dataset_id and lineage["features"] == ["trips:speed"]
    assert lineage["sources"]["trips_src"][0]["size"] > 0


def test_reproduce_rebuilds_a_models_training_set_and_fails_clearly_once_its_data_is_gone(
        store: FeatureStore, tmp_path: Path) -> None:
    job = store.get_historical_features(entity(), feature_service="svc", created_cutoff=False)
    original = job.to_arrow()

    class Constant:
        def predict(self, frame: pd.DataFrame) -> list[float]:
            return [1.0] * len(frame)

    store.models.register("speedy", Constant(), "pyfunc", feature_service="svc", training_set=job)
    rows([5, 8], 50.0).to_parquet(tmp_path / "data/trips/part-1.parquet", index=False)  # later data
    rebuilt = store.training_set_of("speedy:1")
    assert rebuilt.to_arrow().equals(original) and rebuilt.dataset_id == job.dataset_id
    store.close()
    cli = [sys.executable, "-m", "pitstop.cli", "-r", str(tmp_path)]
    out = subprocess.run([*cli, "--json", "training-set", "--reproduce", "speedy:1", "--out", str(tmp_path / "t.pq")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["dataset_id"] == job.dataset_id
    assert pd.read_parquet(tmp_path / "t.pq").equals(original.to_pandas())
    (tmp_path / "data/trips/part-0.parquet").unlink()
    failed = subprocess.run([*cli, "training-set", "--reproduce", "speedy:1"], capture_output=True, text=True)
    assert failed.returncode == 1 and "part-0.parquet" in failed.stderr and "was removed" in failed.stderr
    assert "Traceback" not in failed.stderr
