"""Delta vs Parquet batch sources: 2,000 small appends, a training set before and after `compact`, in one run.

    flock /tmp/pitstop-bench.lock .venv/bin/python bench/delta_compaction.py      # ~5 minutes
    .venv/bin/python bench/delta_compaction.py --files 200 --repeat 1           # quicker

Data: exactly bench/compact.py's (``write_files``: seeded numpy default_rng(3), ``--files`` files of
``--rows-per-file`` rows, 10 float64 features, 100,000 drivers, over 10 date folders), in two repos:
  * parquet: a KafkaSource whose batch source is a ParquetSource folder holding those files, as
    ``RollingParquetWriter`` leaves it;
  * delta: a KafkaSource whose batch source is a DeltaSource, the same rows appended in the same
    order with ``append_delta`` (what ``RollingDeltaWriter`` calls once per roll): one commit per
    file, so the table has ``--files`` small data files and as many log entries. The appends are timed.
Measured per kind: ``get_historical_features(...).to_arrow()`` for 100,000 seeded entity rows
(median of ``--repeat``), ``FeatureStore.compact_offline(min_age=0)`` (Parquet: ``compact_folder``;
Delta: ``optimize.compact()`` then ``vacuum`` with ``offline_store.delta_retention_hours`` =
``--delta-retention-hours``, default 0 so that the replaced files are deleted like the Parquet inputs
are), then the training set again. Checked: the four training sets (before/after x parquet/delta)
are equal, row for row and value for value. Results: a table on stdout and
bench/results/delta_compaction.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from bench.compact import DRIVERS, FEATURES, timed_training_set, write_files  # noqa: E402
from pitstop import DeltaSource, FeatureStore  # noqa: E402
from pitstop.offline.delta_append import append_delta  # noqa: E402
from tests.support.repos import write_repo  # noqa: E402

FIELDS = ", ".join(f'Field("{f}", Float64)' for f in FEATURES)
DEFS = """
from datetime import timedelta
from pitstop import DeltaSource, Entity, FeatureView, Field, Float64, KafkaSource, ParquetSource

driver = Entity("driver", join_keys=["driver_id"])
stream = KafkaSource("stats_stream", topic="stats", batch_source={batch_source})
stats = FeatureView("stats", entities=[driver], schema=[{fields}], source=stream, ttl=timedelta(days=30))
"""
BATCH_SOURCES = {"parquet": 'ParquetSource("stats_files", path="data/stats")',
                 "delta": 'DeltaSource("stats_delta", path="data/stats_delta")'}


def make_repo(root: Path, kind: str, retention_hours: float) -> None:
    write_repo(root, {"defs.py": DEFS.format(batch_source=BATCH_SOURCES[kind], fields=FIELDS)})
    yaml = root / "pitstop.yaml"
    text = yaml.read_text()
    assert "offline_store:\n" in text
    yaml.write_text(text.replace("offline_store:\n", f"offline_store:\n  delta_retention_hours: {retention_hours:g}\n"))


def live_files(kind: str, root: Path) -> tuple[int, int, int]:
    """(files a reader uses, their bytes, Parquet files on disk) of a kind's batch source."""
    if kind == "parquet":
        files = list((root / "data" / "stats").rglob("*.parquet"))
        return len(files), sum(p.stat().st_size for p in files), len(files)
    from deltalake import DeltaTable

    table: Any = DeltaTable(str(root / "data" / "stats_delta"))
    used = [Path(u.removeprefix("file://")) for u in table.file_uris()]
    on_disk = sum(1 for p in (root / "data" / "stats_delta").rglob("*.parquet") if "_delta_log" not in p.parts)
    return len(used), sum(p.stat().st_size for p in used), on_disk


def delta_log(root: Path) -> dict[str, Any]:
    from deltalake import DeltaTable

    log = root / "data" / "stats_delta" / "_delta_log"
    table: Any = DeltaTable(str(root / "data" / "stats_delta"))
    return {"version": int(table.version()), "commit_files": sum(1 for _ in log.glob("*.json")),
            "checkpoints": sum(1 for _ in log.glob("*.checkpoint*.parquet")),
            "log_mb": sum(p.stat().st_size for p in log.iterdir() if p.is_file()) / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rows-per-file", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--delta-retention-hours", type=float, default=0.0,
                        help="offline_store.delta_retention_hours of the delta repo (vacuum after optimize)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "delta_compaction.json")
    args = parser.parse_args()
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rng = np.random.default_rng(5)
    entity = pd.DataFrame({"driver_id": np.arange(DRIVERS),
                           "event_timestamp": start + pd.to_timedelta(rng.uniform(2, 11, DRIVERS), unit="D")})
    console = Console(width=200)
    kinds: dict[str, dict[str, Any]] = {}
    sets: dict[str, pa.Table] = {}
    with tempfile.TemporaryDirectory() as tmp:
        roots = {kind: Path(tmp) / kind for kind in BATCH_SOURCES}
        for kind, root in roots.items():
            make_repo(root, kind, args.delta_retention_hours)

        # (a) the Parquet folder, exactly as bench/compact.py writes it
        started = time.perf_counter()
        rows = write_files(roots["parquet"] / "data" / "stats", args.files, args.rows_per_file, start)
        kinds["parquet"] = {"create_s": time.perf_counter() - started, "create": f"{args.files:,} Parquet files"}

        # (b) the same rows, file by file in the same order, as one Delta append each
        parts = sorted((roots["parquet"] / "data" / "stats").rglob("part-*.parquet"), key=lambda p: p.name)
        tables = [pq.read_table(p) for p in parts]
        assert sum(t.num_rows for t in tables) == rows
        source = DeltaSource("stats_delta", path="data/stats_delta")
        started = time.perf_counter()
        for i, table in enumerate(tables):
            append_delta(source, roots["delta"], table)
            if (i + 1) % 500 == 0:
                console.print(f"delta: {i + 1:,} appends, {time.perf_counter() - started:.1f} s")
        kinds["delta"] = {"create_s": time.perf_counter() - started, "create": f"{args.files:,} append_delta commits",
                          "log_before": delta_log(roots["delta"])}
        del tables

        for kind, root in roots.items():
            r = kinds[kind]
            store = FeatureStore(root)
            store.apply()
            r["files_before"], r["bytes_before"], r["disk_files_before"] = live_files(kind, root)
            r["training_set_before_s"], set_before = timed_training_set(store, entity, args.repeat)
            started = time.perf_counter()
            outcome, = store.compact_offline(min_age=timedelta(0))
            r["compact_s"] = time.perf_counter() - started
            assert outcome.rows == rows, f"{kind}: compaction saw {outcome.rows} rows, expected {rows}"
            r["compact_skipped"] = outcome.skipped
            r["files_after"], r["bytes_after"], r["disk_files_after"] = live_files(kind, root)
            r["training_set_after_s"], set_after = timed_training_set(store, entity, args.repeat)
            store.close()
            if kind == "delta":
                r["log_after"] = delta_log(root)
            assert set_before.num_rows == set_after.num_rows == DRIVERS, f"{kind}: training set row counts differ"
            assert set_after.equals(set_before), f"{kind}: the training set changed after compaction"
            r["training_set_rows"] = set_before.num_rows
            r["training_set_non_null"] = {c: set_before.num_rows - set_before.column(c).null_count for c in FEATURES}
            sets[kind] = set_before
            console.print(f"{kind}: {json.dumps({k: v for k, v in r.items() if k != 'training_set_non_null'})}")
    assert sets["parquet"].schema.equals(sets["delta"].schema), "parquet and delta training sets differ in schema"
    assert sets["parquet"].equals(sets["delta"]), "parquet and delta training sets differ"
    equal = (f"all four training sets equal: {DRIVERS:,} rows each, same values "
             f"(non-null f0: {kinds['parquet']['training_set_non_null']['f0']:,})")
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
               "params": {k: v for k, v in vars(args).items() if k != "out"}, "rows": rows, "entity_rows": DRIVERS,
               "kinds": kinds, "training_sets_equal": True,
               "delta_vs_parquet": {k: kinds["delta"][k] / kinds["parquet"][k]
                                    for k in ("training_set_before_s", "compact_s", "training_set_after_s")}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))

    table = Table(title=f"{rows:,} streamed rows in {args.files:,} appends; training set {DRIVERS:,} entity rows x 10 "
                        f"features (median of {args.repeat})")
    for col in ("batch source", "create s", "files before", "MB before", "training set before s", "compact s",
                "files after (on disk)", "MB after", "training set after s", "speed-up"):
        table.add_column(col)
    for kind, r in kinds.items():
        table.add_row(kind, f"{r['create_s']:.2f}", f"{r['files_before']:,}", f"{r['bytes_before'] / 1e6:.1f}",
                      f"{r['training_set_before_s']:.2f}", f"{r['compact_s']:.2f}",
                      f"{r['files_after']:,} ({r['disk_files_after']:,})", f"{r['bytes_after'] / 1e6:.1f}",
                      f"{r['training_set_after_s']:.2f}",
                      f"{r['training_set_before_s'] / r['training_set_after_s']:.1f}x")
    console.print(table)
    ratios = results["delta_vs_parquet"]
    print(f"delta / parquet: training set before {ratios['training_set_before_s']:.2f}x, "
          f"compaction {ratios['compact_s']:.2f}x, training set after {ratios['training_set_after_s']:.2f}x")
    print(f"creating: {args.files:,} Parquet files {kinds['parquet']['create_s']:.1f} s, "
          f"{args.files:,} Delta commits {kinds['delta']['create_s']:.1f} s "
          f"({kinds['delta']['create_s'] / args.files * 1000:.0f} ms per commit)")
    print(equal)


if __name__ == "__main__":
    main()
