"""Compaction of appended Parquet files: same training sets after, young files untouched, failures lose nothing."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pitstop import FeatureStore
from pitstop.cli.app import cli
from pitstop.errors import OfflineStoreError
from tests.support.online_repo import make_repo, now_hour

HOUR = 3600


def speed_rows(now, first_driver: int, n: int, minutes_ago: int) -> pd.DataFrame:
    return pd.DataFrame({
        "driver_id": pd.Series(range(first_driver, first_driver + n), dtype="int64"),
        "event_timestamp": pd.Series([now - timedelta(minutes=minutes_ago)] * n, dtype="datetime64[us, UTC]"),
        "speed": [float(first_driver + i) + minutes_ago / 100 for i in range(n)],
    })


def write_part(folder: Path, name: str, frame: pd.DataFrame, age_seconds: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    frame.to_parquet(path, index=False)
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def repo(tmp_path: Path) -> tuple[FeatureStore, Path]:
    store = make_repo(tmp_path)
    folder = tmp_path / "data" / "speed"
    now = now_hour()
    (folder / "part-0.parquet").unlink()  # the empty seed file
    for k in range(12):  # an ingester's rolled files for one day, two hours old
        write_part(folder / "2026-11-20", f"part-20261120T00{k:02d}00-{k:04d}.parquet", speed_rows(now, 10 * k, 5, 90 + k),
                   2 * HOUR)
    for k in range(3):  # pushed files in the folder itself
        write_part(folder, f"part-push{k}.parquet", speed_rows(now, 500 + k, 2, 30 + k), 2 * HOUR)
    write_part(folder / "2026-11-21", "part-young.parquet", speed_rows(now, 900, 4, 5), 60)  # just written
    yield store, folder
    store.close()


def training_set(store: FeatureStore) -> pd.DataFrame:
    now = now_hour()
    ids = list(range(0, 120)) + [500, 501, 502, 900, 901, 999]
    entity = pd.DataFrame({"driver_id": ids, "event_timestamp": [now + timedelta(minutes=1)] * len(ids)})
    return store.get_historical_features(entity, ["pushed:speed"]).to_pandas().sort_values("driver_id").reset_index(drop=True)


def parquet_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.parquet"))


def test_compaction_merges_old_files_per_directory_and_training_sets_do_not_change(repo) -> None:
    store, folder = repo
    before = training_set(store)
    assert before["speed"].notna().sum() == 12 * 5 + 3 + 2  # the ids asked for that have rows
    outcome, = store.compact_offline(["speed_push"], min_age=timedelta(hours=1))
    assert (outcome.directories, outcome.files_before, outcome.files_after, outcome.rows) == (2, 15, 2, 66)
    files = parquet_files(folder)
    assert sorted(p.relative_to(folder).parent.as_posix() for p in files if p.name.startswith("compacted-")) == [
        ".", "2026-11-20"]
    assert folder / "2026-11-21" / "part-young.parquet" in files  # younger than min_age: untouched
    assert not list(folder.rglob(".*.tmp"))
    pd.testing.assert_frame_equal(training_set(store), before)
    # a second run finds nothing old enough to merge twice
    again, = store.compact_offline(min_age=timedelta(hours=1))
    assert again.directories == 0 and parquet_files(folder) == files


def test_a_new_late_file_is_merged_with_the_earlier_compacted_file(repo) -> None:
    store, folder = repo
    store.compact_offline(min_age=timedelta(hours=1))
    write_part(folder / "2026-11-20", "part-late.parquet", speed_rows(now_hour(), 300, 3, 50), 2 * HOUR)
    compacted = [p for p in (folder / "2026-11-20").iterdir() if p.name.startswith("compacted-")]
    os.utime(compacted[0], (time.time() - 2 * HOUR,) * 2)
    outcome, = store.compact_offline(min_age=timedelta(hours=1))
    assert (outcome.files_before, outcome.files_after, outcome.rows) == (2, 1, 63)
    assert len(list((folder / "2026-11-20").glob("*.parquet"))) == 1


def test_dry_run_reports_and_changes_nothing(repo) -> None:
    store, folder = repo
    files = parquet_files(folder)
    outcome, = store.compact_offline(min_age=timedelta(hours=1), dry_run=True)
    assert (outcome.directories, outcome.files_before, outcome.rows) == (2, 15, 66)
    assert parquet_files(folder) == files


def test_a_file_with_other_columns_is_left_in_place_and_reported(repo) -> None:
    store, folder = repo
    odd = write_part(folder / "2026-11-20", "part-zzz-odd.parquet", pd.DataFrame({"other": [1, 2]}), 2 * HOUR)
    outcome, = store.compact_offline(min_age=timedelta(hours=1))
    assert odd.exists()
    assert len(outcome.skipped) == 1 and "part-zzz-odd.parquet" in outcome.skipped[0]
    assert outcome.rows == 66


def test_a_failed_write_leaves_every_input_and_no_partial_output(repo, monkeypatch: pytest.MonkeyPatch) -> None:
    store, folder = repo
    before = training_set(store)
    day = folder / "2026-11-20"
    day_files = sorted(day.glob("*.parquet"))
    calls = {"n": 0}
    real = pq.ParquetWriter.write_table

    def failing(self, table: pa.Table, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # the folder's own 3 pushed files went through; the day folder's 1st did
            raise OSError(28, "No space left on device")
        return real(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing)
    with pytest.raises(OfflineStoreError, match="inputs left in place: .*No space left"):
        store.compact_offline(min_age=timedelta(hours=1))
    assert sorted(day.glob("*.parquet")) == day_files  # the failed directory: every input, nothing new
    assert not list(folder.rglob(".*.tmp"))
    assert [p.name[:10] for p in folder.glob("*.parquet")] == ["compacted-"]  # the directory before it finished
    monkeypatch.undo()
    pd.testing.assert_frame_equal(training_set(store), before)


def test_only_kafka_and_push_sources_can_be_compacted(repo) -> None:
    store, _ = repo
    with pytest.raises(OfflineStoreError, match="'stats_src'.*only Kafka and Push sources.*speed_push"):
        store.compact_offline(["stats_src"])


def test_cli_compact_prints_json_and_rejects_a_bad_age(repo) -> None:
    store, folder = repo
    root = folder.parent.parent
    runner = CliRunner()
    result = runner.invoke(cli, ["--repo", str(root), "--json", "compact", "--min-age", "1h"])
    assert result.exit_code == 0, result.output
    report, = json.loads(result.output)
    assert report["source"] == "speed_push" and report["files_before"] == 15 and report["files_after"] == 2
    bad = runner.invoke(cli, ["--repo", str(root), "compact", "--min-age", "soon"])
    assert bad.exit_code != 0 and "'soon' is not a duration like 30m, 1h, 2d or 1w" in bad.output


def test_entity_rows_with_nanosecond_times_are_truncated_to_microseconds(repo) -> None:
    store, _ = repo
    now = now_hour()
    entity = pd.DataFrame({"driver_id": [0, 1],
                           "event_timestamp": pd.Series([now + timedelta(minutes=1)] * 2, dtype="datetime64[ns, UTC]")
                           + pd.to_timedelta([1, 999], unit="ns")})
    frame = store.get_historical_features(entity, ["pushed:speed"]).to_pandas()
    assert frame["speed"].notna().all()


def test_a_training_set_survives_compaction_swapping_its_files_mid_read(repo, monkeypatch: pytest.MonkeyPatch) -> None:
    import pitstop.offline.duckdb_engine as engine

    store, folder = repo
    before = training_set(store)
    real_gather = engine.gather
    swaps = {"n": 0}

    def compact_then_gather(view, aliases, fid):
        if swaps["n"] == 0 and view.name == "pushed":  # row ids were computed over the old files
            swaps["n"] += 1
            store.compact_offline(min_age=timedelta(hours=1))
        return real_gather(view, aliases, fid)

    monkeypatch.setattr(engine, "gather", compact_then_gather)
    after = training_set(store)
    assert swaps["n"] == 1 and any(p.name.startswith("compacted-") for p in folder.iterdir())
    pd.testing.assert_frame_equal(after, before)
