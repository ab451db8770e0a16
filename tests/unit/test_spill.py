"""offline_store.memory_limit and temp_directory reach DuckDB: a join runs to completion under a tight limit.

The composite string key forces the SQL route (window + ASOF join inside DuckDB); its sorted
feature rows alone are larger than the 60 MB limit, so DuckDB must stream and bound its buffers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pitstop import FeatureStore
from tests.support.repos import write_repo

DEFS = """
from datetime import timedelta
from pitstop import Entity, FeatureView, Field, Float64, ParquetSource
pair = Entity("pair", join_keys=["a", "b"])
v = FeatureView("v", entities=[pair], schema=[Field("x", Float64)],
                source=ParquetSource("s", path="data/f.parquet", created_timestamp_column="created"),
                ttl=timedelta(days=30))
"""


@pytest.mark.slow
def test_join_completes_under_a_tight_duckdb_memory_limit(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 2_000_000
    base = pd.Timestamp("2026-01-01", tz="UTC")
    ts = base + pd.to_timedelta(rng.integers(0, 90 * 86400, n), unit="s")
    feats = pd.DataFrame({"a": rng.integers(0, 50_000, n), "b": rng.integers(0, 4, n).astype(str), "event_timestamp": ts,
                          "created": ts + pd.to_timedelta(rng.integers(0, 3600, n), unit="s"), "x": rng.standard_normal(n)})
    write_repo(tmp_path, {"defs.py": DEFS}, {"data/f.parquet": feats})
    spill = tmp_path / "spill"
    (tmp_path / "pitstop.yaml").write_text(
        (tmp_path / "pitstop.yaml").read_text().replace("memory_limit: 1GB", f"memory_limit: 60MB\n  temp_directory: {spill}\n  threads: 1"))
    store = FeatureStore(tmp_path)
    store.apply()
    m = 1_000_000
    ents = pd.DataFrame({"a": rng.integers(0, 50_000, m), "b": rng.integers(0, 4, m).astype(str),
                         "event_timestamp": base + pd.to_timedelta(rng.integers(0, 90 * 86400, m), unit="s")})
    out = store.get_historical_features(ents, ["v:x"]).to_arrow()
    assert out.num_rows == m
    assert out.column("x").null_count < m // 2
