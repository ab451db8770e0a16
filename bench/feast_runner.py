"""Feast side of the offline benchmark: Feast's DuckDB offline store on the files of ``datagen.py``.

Run with the interpreter of the venv that ``bench/setup_feast.sh`` makes, not the project's::

    bench/.feast-venv/bin/python bench/feast_runner.py historical DATA_DIR [--work DIR] [--created-cutoff]

It writes a throwaway Feast repo (feature_store.yaml, a local registry file, a sqlite online store
that is never used) into a temporary directory, registers one entity and one FeatureView per
``view_{v}.parquet`` with ``FeatureStore.apply``, loads ``entity_rows.parquet`` into pandas (timed
apart, as ``load_seconds``), and times ``get_historical_features(...).to_arrow()`` for every feature of
every view (``seconds``). The only stdout is one JSON line at the end; anything Feast, ibis or DuckDB
print goes to stderr. Peak RSS is the caller's to measure.

What Feast 0.67's DuckDB store computes (read from feast/infra/offline_stores/ibis.py,
``point_in_time_join`` and ``deduplicate``; duckdb.py only supplies the parquet reader):

* Candidates for an entity row are the view's rows with an equal join key and
  ``event_timestamp <= entity ts`` (inclusive upper bound), and, when the view has a ttl,
  ``event_timestamp + ttl >= entity ts``, i.e. ``entity ts - ttl <= event_timestamp``: the ttl
  lower bound is inclusive too. A ttl of zero (or none) means no lower bound.
* The winner is the first by ``event_timestamp DESC, created DESC`` (``row_number`` over a window
  per entity row); a tie on both is broken arbitrarily by DuckDB.
* By default the created timestamp is only that tie-break: a row created after the entity row's
  timestamp (a late correction) is still returned, so the default join can leak. Feast 0.67 adds an
  opt-in ``get_historical_features(..., filter_by_created_timestamp=True)`` (the DuckDB store declares
  ``supports_filter_by_created_timestamp``) that adds ``created <= entity ts`` (inclusive) to the
  candidate condition; ``--created-cutoff`` turns it on, for a like-for-like no-leakage comparison.
* Entity rows are keyed by (event_timestamp, join keys); duplicate entity rows get the same id and
  thus the same features, and every entity row comes back once (a left join). Output order is not
  the input order. Extra entity columns (``label``) pass through.
* Feast copies the entity DataFrame (``make_df_tzaware``) and hands it to DuckDB as an ibis
  memtable; whole view files are scanned (no pruning by the entity rows' time range).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

PROJECT = "pitstop_bench"
ENTITY_NAME = "entity"
JOIN_KEY = "entity_id"
TIMESTAMP_FIELD = "event_timestamp"
CREATED_FIELD = "created"
REPORTED_FEATURES = ("f0_0", "f1_0", "f2_0")


@dataclass(frozen=True)
class Shape:
    """The part of ``shape.json`` that defines the feature views."""

    views: int
    features_per_view: int
    ttl_days: list[int]

    @classmethod
    def read(cls, data_dir: Path) -> Shape:
        raw = json.loads((data_dir / "shape.json").read_text())
        return cls(views=int(raw["views"]), features_per_view=int(raw.get("features_per_view", 10)),
                   ttl_days=[int(d) for d in raw["ttl_days"]])

    def feature_names(self, view: int) -> list[str]:
        return [f"f{view}_{j}" for j in range(self.features_per_view)]

    def feature_refs(self) -> list[str]:
        return [f"view_{v}:{name}" for v in range(self.views) for name in self.feature_names(v)]


def _write_repo_config(repo_dir: Path) -> None:
    """The smallest feature_store.yaml that selects the DuckDB offline store (written by hand, no yaml dep)."""
    (repo_dir / "feature_store.yaml").write_text(
        f"project: {PROJECT}\n"
        "provider: local\n"
        f"registry: {repo_dir / 'registry.db'}\n"
        "online_store:\n"
        "  type: sqlite\n"
        f"  path: {repo_dir / 'online_store.db'}\n"
        "offline_store:\n"
        "  type: duckdb\n"
        "entity_key_serialization_version: 3\n"
    )


def _definitions(data_dir: Path, shape: Shape) -> list[Any]:
    """The Entity and one FileSource-backed FeatureView per benchmark view."""
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    entity = Entity(name=ENTITY_NAME, join_keys=[JOIN_KEY], value_type=ValueType.INT64)
    objects: list[Any] = [entity]
    for v in range(shape.views):
        source = FileSource(
            name=f"view_{v}_source",
            path=str((data_dir / f"view_{v}.parquet").resolve()),
            timestamp_field=TIMESTAMP_FIELD,
            created_timestamp_column=CREATED_FIELD,
        )
        schema = [Field(name=JOIN_KEY, dtype=Int64)]
        schema += [Field(name=name, dtype=Float64) for name in shape.feature_names(v)]
        objects.append(FeatureView(name=f"view_{v}", entities=[entity], ttl=timedelta(days=shape.ttl_days[v]),
                                   schema=schema, source=source, online=False))
    return objects


def run_historical(data_dir: Path, work: Path | None, created_cutoff: bool) -> dict[str, Any]:
    """Apply a throwaway repo for ``data_dir`` and time one historical retrieval of every feature."""
    import feast
    import pyarrow.parquet as pq
    from feast import FeatureStore

    shape = Shape.read(data_dir)
    with tempfile.TemporaryDirectory(prefix="feast-bench-", dir=work) as tmp:
        repo_dir = Path(tmp)
        _write_repo_config(repo_dir)
        store = FeatureStore(repo_path=str(repo_dir))
        store.apply(_definitions(data_dir, shape))

        start = time.perf_counter()
        entity_df = pq.read_table(data_dir / "entity_rows.parquet").to_pandas()
        load_seconds = time.perf_counter() - start

        start = time.perf_counter()
        result = store.get_historical_features(
            entity_df=entity_df, features=shape.feature_refs(), filter_by_created_timestamp=created_cutoff,
        ).to_arrow()
        seconds = time.perf_counter() - start

    non_null = {name: result.num_rows - result.column(name).null_count
                for name in REPORTED_FEATURES if name in result.column_names}
    return {"engine": "feast", "version": feast.__version__, "created_cutoff": created_cutoff,
            "seconds": seconds, "load_seconds": load_seconds, "rows": result.num_rows,
            "columns": result.num_columns, "non_null": non_null}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    historical = commands.add_parser("historical", help="time get_historical_features over DATA_DIR")
    historical.add_argument("data_dir", type=Path)
    historical.add_argument("--work", type=Path, default=None,
                            help="directory for the throwaway Feast repo (default: the system temp dir)")
    historical.add_argument("--created-cutoff", action="store_true",
                            help="pass filter_by_created_timestamp=True (drop rows created after the entity ts)")
    args = parser.parse_args(argv)

    # Keep fd 1 for the result alone: Feast, ibis and DuckDB (native code included) write to stderr.
    sys.stdout.flush()
    result_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        report = run_historical(args.data_dir.resolve(), args.work, args.created_cutoff)
    finally:
        sys.stdout.flush()
        os.dup2(result_fd, 1)
        os.close(result_fd)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
