"""Rolling offline appends: one file per event date, written atomically, buffer kept when a write fails."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pitstop import ParquetSource
from pitstop.errors import IngestError
from pitstop.ingestion.offline import RollingParquetWriter, batch_folder

TS = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema([pa.field("driver_id", pa.int64()), pa.field("event_timestamp", TS), pa.field("speed", pa.float64())])


def rows(days: list[int]) -> pa.Table:
    times = [datetime(2026, 1, d, 12, tzinfo=UTC) for d in days]
    return pa.table({"driver_id": list(range(len(days))), "event_timestamp": pa.array(times, TS),
                     "speed": [float(d) for d in days]}, schema=SCHEMA)


def test_rows_roll_into_one_file_per_event_date(tmp_path: Path) -> None:
    writer = RollingParquetWriter(tmp_path / "trips", SCHEMA, "event_timestamp")
    writer.add(rows([1, 2]))
    writer.add(rows([2, 2]))
    assert writer.rows == 4 and writer.oldest is not None
    files = writer.flush()
    assert sorted(f.parent.name for f in files) == ["2026-01-01", "2026-01-02"]
    assert sorted(pq.read_table(f).num_rows for f in files) == [1, 3]
    assert all(f.suffix == ".parquet" and not f.name.startswith(".") for f in files)
    assert not list((tmp_path / "trips").rglob(".*"))  # no temporary file left
    assert writer.rows == 0 and writer.oldest is None and writer.flush() == []


def test_a_failed_write_keeps_the_buffer(tmp_path: Path) -> None:
    blocker = tmp_path / "trips"
    blocker.write_text("a file where the folder should be")
    writer = RollingParquetWriter(blocker, SCHEMA, "event_timestamp")
    writer.add(rows([3]))
    with pytest.raises(OSError):
        writer.flush()
    assert writer.rows == 1
    blocker.unlink()
    assert len(writer.flush()) == 1


def test_the_batch_source_must_be_a_folder(tmp_path: Path) -> None:
    assert batch_folder(ParquetSource("b", path="data/trips"), tmp_path, "s") == tmp_path / "data/trips"
    for path in ("data/trips.parquet", "data/*.parquet"):
        with pytest.raises(IngestError, match="is a file or a glob; point it at a folder"):
            batch_folder(ParquetSource("b", path=path), tmp_path, "s")
