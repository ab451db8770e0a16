"""Run one pitstop historical retrieval on benchmark data; prints one JSON line (run in a subprocess).

usage: python bench/pitstop_runner.py historical DATA_DIR
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
    ttl=timedelta(days={ttl}))
"""


def make_repo(data: Path, shape: dict, root: Path) -> list[str]:
    text = DEFS
    refs = []
    for v in range(shape["views"]):
        names = [f"f{v}_{j}" for j in range(shape["features_per_view"])]
        refs += [f"view_{v}:{n}" for n in names]
        fields = ", ".join(f'Field("{n}", Float64)' for n in names)
        text += VIEW.format(v=v, fields=fields, path=data / f"view_{v}.parquet", ttl=shape["ttl_days"][v])
    (root / "defs.py").write_text(text)
    (root / "pitstop.yaml").write_text("project: bench\nregistry:\n  path: registry.db\n")
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


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "historical":
        sys.exit(__doc__)
    print(json.dumps(historical(Path(sys.argv[2]))))
