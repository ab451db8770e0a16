"""Compaction benchmark: a training set over a streamed folder of many small files, before and after `compact`.

    .venv/bin/python bench/compact.py                        # 2,000 files x 500 rows, ~2 minutes
    .venv/bin/python bench/compact.py --files 500 --rows-per-file 2000

Data (seeded, numpy default_rng(3)): a KafkaSource whose batch folder holds ``--files`` Parquet
files of ``--rows-per-file`` rows (10 float64 features, 100,000 drivers), spread over 10 date
folders, as an ingester rolling every few seconds leaves them. Entity rows: 100,000 drivers at
seeded times. Measured: ``get_historical_features(...).to_arrow()`` (median of ``--repeat`` runs),
then ``FeatureStore.compact_offline(min_age=0)``, then the training set again; the two sets are
checked equal. Results: a table on stdout and bench/results/compact.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from pitstop import FeatureStore  # noqa: E402
from tests.support.repos import write_repo  # noqa: E402

DRIVERS = 100_000
FEATURES = [f"f{i}" for i in range(10)]
DEFS = """
from datetime import timedelta
from pitstop import Entity, FeatureView, Field, Float64, KafkaSource, ParquetSource

driver = Entity("driver", join_keys=["driver_id"])
stream = KafkaSource("stats_stream", topic="stats", batch_source=ParquetSource("stats_files", path="data/stats"))
stats = FeatureView("stats", entities=[driver], schema=[{fields}], source=stream, ttl=timedelta(days=30))
""".format(fields=", ".join(f'Field("{f}", Float64)' for f in FEATURES))


def write_files(folder: Path, files: int, rows: int, start: datetime) -> int:
    rng = np.random.default_rng(3)
    span = timedelta(days=10).total_seconds()
    for k in range(files):
        offset = span * k / files  # files roll forward in time, as an ingester's do
        ts = start + timedelta(seconds=offset)
        day = folder / ts.date().isoformat()
        day.mkdir(parents=True, exist_ok=True)
        times = pd.Series(ts + pd.to_timedelta(rng.uniform(0, span / files, rows), unit="s"), dtype="datetime64[us, UTC]")
        table = pa.table({"driver_id": rng.integers(0, DRIVERS, rows), "event_timestamp": pa.array(times),
                          **{f: rng.random(rows) for f in FEATURES}})
        pq.write_table(table, day / f"part-{k:06d}.parquet", compression="zstd")
    return files * rows


def timed_training_set(store: FeatureStore, entity: pd.DataFrame, repeat: int) -> tuple[float, pa.Table]:
    runs, table = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        table = store.get_historical_features(entity, [f"stats:{f}" for f in FEATURES]).to_arrow()
        runs.append(time.perf_counter() - started)
    assert table is not None
    return statistics.median(runs), table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rows-per-file", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "compact.json")
    args = parser.parse_args()
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        write_repo(root, {"defs.py": DEFS})
        folder = root / "data" / "stats"
        rows = write_files(folder, args.files, args.rows_per_file, start)
        store = FeatureStore(root)
        store.apply()
        rng = np.random.default_rng(5)
        entity = pd.DataFrame({"driver_id": np.arange(DRIVERS),
                               "event_timestamp": start + pd.to_timedelta(rng.uniform(2, 11, DRIVERS), unit="D")})
        files_before = sum(1 for _ in folder.rglob("*.parquet"))
        bytes_before = sum(p.stat().st_size for p in folder.rglob("*.parquet"))
        before, set_before = timed_training_set(store, entity, args.repeat)
        started = time.perf_counter()
        outcome, = store.compact_offline(min_age=timedelta(0))
        compact_s = time.perf_counter() - started
        files_after = sum(1 for _ in folder.rglob("*.parquet"))
        bytes_after = sum(p.stat().st_size for p in folder.rglob("*.parquet"))
        after, set_after = timed_training_set(store, entity, args.repeat)
        assert set_after.equals(set_before), "the training set changed after compaction"
        assert outcome.rows == rows
        store.close()
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
               "rows": rows, "files_before": files_before, "files_after": files_after,
               "mb_before": bytes_before / 1e6, "mb_after": bytes_after / 1e6, "training_set_before_s": before,
               "compact_s": compact_s, "training_set_after_s": after, "entity_rows": DRIVERS}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    table = Table(title=f"training set, {DRIVERS:,} entity rows x 10 features over {rows:,} streamed rows")
    for col in ("folder", "files", "MB", f"training set s (median of {args.repeat})"):
        table.add_column(col)
    table.add_row("as streamed", f"{files_before:,}", f"{bytes_before / 1e6:.1f}", f"{before:.2f}")
    table.add_row("after compact", f"{files_after:,}", f"{bytes_after / 1e6:.1f}", f"{after:.2f}")
    Console(width=160).print(table)
    print(f"compaction took {compact_s:.2f} s; training set {before / after:.1f}x faster afterwards")


if __name__ == "__main__":
    main()
