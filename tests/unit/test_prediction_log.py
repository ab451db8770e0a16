"""PredictionLog: bounded buffer, one Delta commit per flush, failed writes kept then dropped, schema merge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from pitstop.errors import OfflineStoreError
from pitstop.monitoring.prediction_log import MAX_ATTEMPTS, LogEntry, PredictionLog, entries_table
from pitstop.settings import MonitoringSettings


def entry(request_id: str, version: int = 1, rows: int = 2, features: tuple[str, ...] = ("rate",),
          predictions: list[Any] | None = None) -> LogEntry:
    values = {f: [0.5] * rows for f in features}
    return LogEntry.of(request_id, 1_700_000_000_000_000, "m", version, "production", rows,
                       {"driver_id": list(range(rows))}, values, {f: ["PRESENT"] * rows for f in features}, None,
                       predictions if predictions is not None else [1.0] * rows,
                       {"driver_id": pa.int64(), **{f: pa.float64() for f in features}})


def test_flush_commits_rows_and_a_full_buffer_drops(tmp_path: Path) -> None:
    drops: list[int] = []
    plog = PredictionLog(MonitoringSettings(log_buffer_rows=5), tmp_path, on_drop=drops.append)
    assert plog.record(entry("a")) and plog.record(entry("b"))
    assert not plog.record(entry("c"))  # 4 + 2 > 5
    assert drops == [2] and plog.dropped == 2 and plog.waiting_rows == 4
    assert plog.flush() == 4 and plog.waiting_rows == 0 and plog.lag_seconds() == 0
    table = DeltaTable(str(tmp_path / "data" / "prediction_log" / "m")).to_pyarrow_table()
    assert sorted(table.column("request_id").to_pylist()) == ["a", "a", "b", "b"]
    assert table.column("row").to_pylist().count(1) == 2


def test_versions_with_other_features_merge_into_one_table(tmp_path: Path) -> None:
    plog = PredictionLog(MonitoringSettings(), tmp_path)
    plog.record(entry("a", version=1, features=("rate",)))
    plog.flush()
    plog.record(entry("b", version=2, features=("rate", "trips")))
    plog.flush()
    table = DeltaTable(str(tmp_path / "data" / "prediction_log" / "m")).to_pyarrow_table().sort_by("version")
    assert table.column("trips").to_pylist() == [None, None, 0.5, 0.5]
    assert table.column("trips__status").to_pylist()[:2] == [None, None]


def test_a_failing_write_keeps_rows_then_drops_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drops: list[int] = []
    plog = PredictionLog(MonitoringSettings(), tmp_path, on_drop=drops.append)

    def broken(model: str, table: pa.Table) -> None:
        raise OfflineStoreError("disk full")

    monkeypatch.setattr(plog, "_write", broken)
    plog.record(entry("a"))
    for attempt in range(1, MAX_ATTEMPTS):
        with pytest.raises(OfflineStoreError):
            plog.flush()
        assert plog.waiting_rows == 2, attempt  # kept for the next try
    with pytest.raises(OfflineStoreError):
        plog.flush()
    assert plog.waiting_rows == 0 and drops == [2]


def test_predictions_that_are_not_numbers_are_kept_as_json() -> None:
    table = entries_table([entry("a", predictions=[[0.1, 0.9], "x"])])
    assert table.column("prediction_json").to_pylist() == ["[0.1,0.9]", '"x"']
    assert "prediction" not in table.column_names


def test_sampling_rate_zero_logs_nothing(tmp_path: Path) -> None:
    plog = PredictionLog(MonitoringSettings(log_sample_rate=0.0), tmp_path)
    assert not any(plog.sampled() for _ in range(100))
    assert all(PredictionLog(MonitoringSettings(), tmp_path).sampled() for _ in range(100))


def test_retention_deletes_old_rows_and_compaction_merges_flushes(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from pitstop.monitoring.log_reader import compact_log, prune_log, read_log

    settings = MonitoringSettings()
    plog = PredictionLog(settings, tmp_path)
    now = datetime.now(UTC)
    for i, age_days in enumerate([0, 1, 40, 0]):  # one commit (one file) each
        e = entry(f"r{i}")
        e.at_us = int((now - timedelta(days=age_days)).timestamp() * 1e6)
        plog.record(e)
        plog.flush()
    location = str(tmp_path / "data" / "prediction_log" / "m")
    assert len(DeltaTable(location).file_uris()) == 4
    assert prune_log(settings, tmp_path, "m", now=now, retention=timedelta(days=30)) == 2
    compact_log(settings, tmp_path, "m", retention_hours=0)
    assert len(DeltaTable(location).file_uris()) == 1
    assert sorted(set(read_log(settings, tmp_path, "m").column("request_id").to_pylist())) == ["r0", "r1", "r3"]
    assert read_log(settings, tmp_path, "m", since=now - timedelta(hours=1)).num_rows == 4


def test_one_entity_requests_are_transposed_in_one_step_and_keep_their_columns() -> None:
    types = {"driver_id": pa.int64(), "rate": pa.float64(), "trips": pa.int64()}
    entries = [LogEntry.of(f"r{i}", 1_700_000_000_000_000 + i, "m", 1, "production", 1, {"driver_id": [i]},
                           {"rate": [i / 10], "trips": [None if i == 2 else i]},
                           {"rate": ["PRESENT"], "trips": ["NOT_FOUND" if i == 2 else "PRESENT"]},
                           {"bonus": [float(i)]}, [i * 1.5], types) for i in range(4)]
    assert entries[0].data == (0, 0.0, 0, "PRESENT", "PRESENT", 0.0)
    table = entries_table(entries)
    assert table.column("driver_id").to_pylist() == [0, 1, 2, 3]
    assert table.column("trips").to_pylist() == [0, 1, None, 3] and table.schema.field("trips").type == pa.int64()
    assert table.column("trips__status").to_pylist()[2] == "NOT_FOUND"
    assert table.column("bonus").to_pylist() == [0.0, 1.0, 2.0, 3.0]
    assert table.column("prediction").to_pylist() == [0.0, 1.5, 3.0, 4.5]
    assert table.column("row").to_pylist() == [0, 0, 0, 0]
