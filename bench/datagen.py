"""Seeded synthetic data for the offline and materialization benchmarks.

Shape: ``entities`` keys x ``rows_per_entity`` feature rows per key for each of ``views`` views,
each with ``features_per_view`` float64 features, plus ``entity_rows`` entity rows with random
timestamps. Timestamps are whole seconds in a 90-day window, so equal event timestamps occur and
the created-timestamp tie-break is exercised; created = event + 0..3600 s, so some corrections
arrive after an entity row's timestamp and the no-leakage rule matters.

Layout written to ``out_dir``:
    view_{v}.parquet      entity_id int64, event_timestamp timestamp[us, UTC],
                          created timestamp[us, UTC], f{v}_{j} float64 for j < features_per_view
    entity_rows.parquet   entity_id int64, event_timestamp timestamp[us, UTC], label int64
    shape.json            the parameters, so runners read the same definition
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

START_S = 1_735_689_600  # 2025-01-01T00:00:00Z
WINDOW_S = 90 * 86_400
VIEW_TTL_DAYS = (30, 14, 60)
CHUNK_ROWS = 2_000_000


def view_ttl_days(view: int) -> int:
    """The ttl, in days, that benchmark view number ``view`` is defined with."""
    return VIEW_TTL_DAYS[view % len(VIEW_TTL_DAYS)]


def _ts(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds.astype("int64") * 1_000_000, type=pa.timestamp("us", tz="UTC"))


def _write_view(path: Path, view: int, entities: int, rows: int, features: int, rng: np.random.Generator) -> None:
    total = entities * rows
    schema = pa.schema(
        [("entity_id", pa.int64()), ("event_timestamp", pa.timestamp("us", tz="UTC")),
         ("created", pa.timestamp("us", tz="UTC"))]
        + [(f"f{view}_{j}", pa.float64()) for j in range(features)]
    )
    with pq.ParquetWriter(path, schema) as writer:
        for lo in range(0, total, CHUNK_ROWS):
            n = min(CHUNK_ROWS, total - lo)
            keys = (np.arange(lo, lo + n) // rows).astype("int64")
            event = START_S + rng.integers(0, WINDOW_S, n)
            created = event + rng.integers(0, 3600, n)
            cols = [pa.array(keys), _ts(event), _ts(created)]
            cols += [pa.array(rng.standard_normal(n)) for _ in range(features)]
            writer.write_table(pa.Table.from_arrays(cols, schema=schema), row_group_size=1_000_000)


def generate(out_dir: Path, *, entities: int, rows_per_entity: int, views: int, entity_rows: int,
             features_per_view: int = 10, seed: int = 42) -> Path:
    """Write the benchmark files into ``out_dir`` (skipped when an identical shape is already there)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shape = {"entities": entities, "rows_per_entity": rows_per_entity, "views": views,
             "entity_rows": entity_rows, "features_per_view": features_per_view, "seed": seed,
             "ttl_days": [view_ttl_days(v) for v in range(views)]}
    marker = out_dir / "shape.json"
    if marker.exists() and json.loads(marker.read_text()) == shape:
        return out_dir
    rng = np.random.default_rng(seed)
    for v in range(views):
        _write_view(out_dir / f"view_{v}.parquet", v, entities, rows_per_entity, features_per_view, rng)
    schema = pa.schema([("entity_id", pa.int64()), ("event_timestamp", pa.timestamp("us", tz="UTC")),
                        ("label", pa.int64())])
    with pq.ParquetWriter(out_dir / "entity_rows.parquet", schema) as writer:
        for lo in range(0, entity_rows, CHUNK_ROWS):
            n = min(CHUNK_ROWS, entity_rows - lo)
            keys = rng.integers(0, entities, n).astype("int64")
            ts = START_S + rng.integers(0, WINDOW_S, n)
            label = rng.integers(0, 2, n).astype("int64")
            writer.write_table(pa.Table.from_arrays([pa.array(keys), _ts(ts), pa.array(label)], schema=schema))
    marker.write_text(json.dumps(shape))
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--rows-per-entity", type=int, default=10)
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--entity-rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    generate(args.out_dir, entities=args.entities, rows_per_entity=args.rows_per_entity, views=args.views,
             entity_rows=args.entity_rows, seed=args.seed)


if __name__ == "__main__":
    main()
