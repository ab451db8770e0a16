"""Run one pitstop measurement on benchmark data; prints one JSON line (run in a subprocess).

usage:
    python bench/pitstop_runner.py historical DATA_DIR
    python bench/pitstop_runner.py materialize DATA_DIR REDIS_URL WORK_DIR
    python bench/pitstop_runner.py online DATA_DIR REDIS_URL WORK_DIR ENTITIES ITERATIONS
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from pitstop import FeatureStore

DEFS = """
from datetime import timedelta
from pitstop import Entity, FeatureView, Field, Float64, ParquetSource

entity = Entity("entity", join_keys=["entity_id"])
"""

VIEW = """
view_{v} = FeatureView("view_{v}", entities=[entity], schema=[{fields}],
    source=ParquetSource("source_{v}", path="{path}", created_timestamp_column="created"),
    ttl={ttl})
"""


def make_repo(data: Path, shape: dict, root: Path, online_url: str | None = None) -> list[str]:
    """Write a repo over the benchmark files; online runs drop the ttl so 2025 data still reads as PRESENT."""
    text = DEFS
    refs = []
    for v in range(shape["views"]):
        names = [f"f{v}_{j}" for j in range(shape["features_per_view"])]
        refs += [f"view_{v}:{n}" for n in names]
        fields = ", ".join(f'Field("{n}", Float64)' for n in names)
        text += VIEW.format(v=v, fields=fields, path=data / f"view_{v}.parquet", ttl="None" if online_url else f"timedelta(days={shape['ttl_days'][v]})")
    (root / "defs.py").write_text(text)
    yaml = "project: bench\nregistry:\n  path: registry.db\n"
    if online_url:
        yaml += f"online_store:\n  url: {online_url}\n"
    (root / "pitstop.yaml").write_text(yaml)
    return refs


def historical(data: Path) -> dict:
    shape = json.loads((data / "shape.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        refs = make_repo(data, shape, Path(tmp))
        store = FeatureStore(tmp)
        store.apply()
        t0 = time.perf_counter()
        entity_df = pq.read_table(data / "entity_rows.parquet").to_pandas()
        load = time.perf_counter() - t0
        t0 = time.perf_counter()
        table = store.get_historical_features(entity_df, refs).to_arrow()
        seconds = time.perf_counter() - t0
        non_null = {n: table.num_rows - table.column(n).null_count for n in ("f0_0", "f1_0", "f2_0") if n in table.column_names}
        return {"engine": "pitstop", "seconds": seconds, "load_seconds": load, "rows": table.num_rows,
                "columns": table.num_columns, "non_null": non_null}


def materialize(data: Path, url: str, work: Path) -> dict:
    from datetime import UTC, datetime

    shape = json.loads((data / "shape.json").read_text())
    work.mkdir(parents=True, exist_ok=True)
    make_repo(data, shape, work, url)
    store = FeatureStore(work)
    store.apply()
    t0 = time.perf_counter()
    outcomes = store.materialize(datetime(2024, 12, 31, tzinfo=UTC), datetime(2025, 4, 2, tzinfo=UTC))
    seconds = time.perf_counter() - t0
    pairs = sum(o.rows for o in outcomes)
    sample = store.get_online_features([f"view_0:f0_{j}" for j in range(3)], {"entity_id": [0, 1, 2, 3, 4]})
    return {"engine": "pitstop", "mode": "materialize", "seconds": seconds, "views": shape["views"], "pairs": pairs,
            "pairs_per_s": pairs / seconds, "sample_non_null": sum(v is not None for v in sample.to_dict()["f0_0"])}


def online(data: Path, url: str, work: Path, entities: int, iterations: int) -> dict:
    import random

    shape = json.loads((data / "shape.json").read_text())
    store = FeatureStore(work)
    refs = [f"view_{v}:f{v}_{j}" for v in range(shape["views"]) for j in range(shape["features_per_view"])]
    rng = random.Random(7)
    samples = []
    for i in range(iterations + 50):
        rows = {"entity_id": [rng.randrange(shape["entities"]) for _ in range(entities)]}
        t0 = time.perf_counter()
        result = store.get_online_features(refs, rows).to_dict()
        if i >= 50:
            samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    non_null = sum(v is not None for v in result[refs[0].split(":")[1]])
    return {"engine": "pitstop", "mode": "online", "entities": entities, "features": len(refs),
            "p50_ms": samples[len(samples) // 2], "p99_ms": samples[int(len(samples) * 0.99) - 1],
            "mean_ms": sum(samples) / len(samples), "last_non_null": non_null}


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "historical" and len(sys.argv) == 3:
        print(json.dumps(historical(Path(sys.argv[2]).resolve())))
    elif mode == "materialize" and len(sys.argv) == 5:
        print(json.dumps(materialize(Path(sys.argv[2]).resolve(), sys.argv[3], Path(sys.argv[4]))))
    elif mode == "online" and len(sys.argv) == 7:
        print(json.dumps(online(Path(sys.argv[2]).resolve(), sys.argv[3], Path(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))))
    else:
        sys.exit(__doc__)
