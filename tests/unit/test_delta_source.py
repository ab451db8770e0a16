"""DeltaSource: users' Delta Lake tables read through one table version's file list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from pitstop import DeltaSource
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
    with pytest.raises(DefinitionError, match="source .trips_delta. has no Parquet files"):
        applied_store(tmp_path, {"defs.py": DEFS})


PUSH_DEFS = """
from pitstop import DeltaSource, Entity, FeatureView, Field, Float64, PushSource

driver = Entity("driver", join_keys=["driver_id"])
speeds = FeatureView("speeds", entities=[driver], schema=[Field("speed", Float64)],
                     source=PushSource("speed_push", batch_source=DeltaSource("speed_table", path="data/speed_delta")))
"""


def test_pushed_rows_are_committed_to_a_delta_table_and_read_back(tmp_path: Path) -> None:
    store = applied_store(tmp_path, {"defs.py": PUSH_DEFS})  # the table does not exist until the first push
    for hours, speed in (([0, 1], 10.0), ([5], 50.0)):
        store.push("speed_push", rows(hours, speed).to_pandas(), to="offline")
    table = DeltaTable(str(tmp_path / "data/speed_delta"))
    assert table.version() == 1 and table.to_pyarrow_table().num_rows == 3  # one commit per push
    got = store.get_historical_features(entity(), ["speeds:speed"]).to_pandas()
    assert got["speed"].tolist() == [11.0, 55.0]
    store.close()


def _append_many(location: str, worker: int, count: int) -> None:
    from pitstop.offline.delta_append import append_delta

    source = DeltaSource("t", path=location)
    for i in range(count):
        append_delta(source, Path("/"), rows([worker * 1000 + i], float(worker)))


def test_two_processes_appending_to_one_table_lose_nothing(tmp_path: Path) -> None:
    import multiprocessing

    location = str(tmp_path / "shared")
    ctx = multiprocessing.get_context("spawn")  # delta-rs must not be used before a fork
    procs = [ctx.Process(target=_append_many, args=(location, w, 40)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    table = DeltaTable(location).to_pyarrow_table()
    assert table.num_rows == 80 and len(set(table.column("event_timestamp").to_pylist())) == 80


def test_compact_optimizes_a_delta_batch_table_and_vacuum_follows_the_retention(tmp_path: Path) -> None:
    store = applied_store(tmp_path, {"defs.py": PUSH_DEFS})
    for hour in range(5):
        store.push("speed_push", rows([hour], 10.0).to_pandas(), to="offline")
    job = store.get_historical_features(entity(), ["speeds:speed"])
    before, dataset = job.to_arrow(), job.dataset_id
    (outcome,) = store.compact_offline()
    assert (outcome.source, outcome.files_before, outcome.files_after, outcome.rows) == ("speed_push", 5, 1, 5)
    assert store.get_historical_features(entity(), ["speeds:speed"]).to_arrow().equals(before)
    assert store.get_historical_features(entity(), as_of=dataset).to_arrow().equals(before)  # kept: 7 days
    store.settings = store.settings.model_copy(update={"offline_store": store.settings.offline_store.model_copy(
        update={"delta_retention_hours": 0})})
    (outcome,) = store.compact_offline()
    assert outcome.files_after == 1 and any("vacuumed 5 file(s)" in s for s in outcome.skipped)
    with pytest.raises(NotFoundError, match="Delta table version 4"):
        store.get_historical_features(entity(), as_of=dataset).to_arrow()
    store.close()


def test_a_parquet_append_folder_migrates_to_a_delta_table_in_one_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder_defs = PUSH_DEFS.replace('DeltaSource("speed_table", path="data/speed_delta")',
                                    'ParquetSource("speed_table", path="data/speed_files")').replace(
        "import DeltaSource,", "import DeltaSource, ParquetSource,")
    store = applied_store(tmp_path, {"defs.py": folder_defs})
    for hours, speed in (([0, 1], 10.0), ([5], 50.0)):
        store.push("speed_push", rows(hours, speed).to_pandas(), to="offline")
    before = store.get_historical_features(entity(), ["speeds:speed"]).to_pandas()
    store.close()
    cli = [sys.executable, "-m", "pitstop.cli", "-r", str(tmp_path)]
    done = subprocess.run([*cli, "migrate-to-delta", "speed_push", "data/speed_delta"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Copied 3 rows from 2 files" in done.stdout and 'DeltaSource("speed_table", path="data/speed_delta")' in done.stdout
    again = subprocess.run([*cli, "migrate-to-delta", "speed_push", "data/speed_delta"], capture_output=True, text=True)
    assert again.returncode == 1 and "cannot migrate" in again.stderr  # never overwrites a table
    (tmp_path / "defs.py").write_text(PUSH_DEFS)  # the Delta table now feeds the view
    after = applied_store(tmp_path, {"defs.py": PUSH_DEFS})
    pd.testing.assert_frame_equal(after.get_historical_features(entity(), ["speeds:speed"]).to_pandas(), before)
    after.close()


def test_an_append_that_lost_the_table_creation_race_is_retried(tmp_path: Path, monkeypatch) -> None:
    import deltalake

    from pitstop.offline import delta_append

    class CommitFailedError(Exception):  # delta-rs's name for a commit that raced another writer
        pass

    real = deltalake.write_deltalake
    calls = []

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise CommitFailedError("Failed to commit transaction: Metadata changed since last commit.")
        return real(*args, **kwargs)

    monkeypatch.setattr(deltalake, "write_deltalake", racing)
    delta_append.append_table(str(tmp_path / "t"), rows([1], 1.0))
    assert len(calls) == 2 and DeltaTable(str(tmp_path / "t")).to_pyarrow_table().num_rows == 1
    monkeypatch.setattr(deltalake, "write_deltalake", lambda *a, **k: (_ for _ in ()).throw(ValueError("disk")))
    with pytest.raises(ValueError):  # other errors are not retried
        delta_append.append_table(str(tmp_path / "t"), rows([2], 1.0))
