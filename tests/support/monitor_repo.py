"""A repo for monitoring tests: one pushed view (x, y, city), a model trained on it, traffic through the real app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pitstop import FeatureStore
from tests.support.repos import write_repo

DEFS = """
from datetime import timedelta
from pitstop import Entity, FeatureService, FeatureView, Field, Float64, ParquetSource, PushSource, String

driver = Entity("driver", join_keys=["driver_id"])
stats = FeatureView("stats", entities=[driver], schema=[Field("x", Float64), Field("y", Float64), Field("city", String)],
                    source=PushSource("stats_push", batch_source=ParquetSource("stats_files", path="data/stats")),
                    ttl=timedelta(days=2))
svc = FeatureService("svc", features=[stats])
"""

DRIVERS = 3_000


class ScoreModel:
    """A pyfunc model: the probability sigmoid(x + y)."""

    def predict(self, frame: Any) -> Any:
        values = np.asarray(frame[["x", "y"]], dtype=float)
        return 1.0 / (1.0 + np.exp(-(values[:, 0] + values[:, 1])))


def history(seed: int = 0, *, when: datetime) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "driver_id": np.arange(DRIVERS, dtype=np.int64),
        "event_timestamp": [when] * DRIVERS,
        "x": rng.normal(0, 1, DRIVERS), "y": rng.normal(0, 1, DRIVERS),
        "city": rng.choice(["a", "b", "c"], DRIVERS, p=[0.5, 0.3, 0.2]),
    })


def make_monitor_repo(root: Path) -> tuple[FeatureStore, pd.DataFrame]:
    """Applied repo with offline history 3 h old, materialized, and model ``score`` (v1, production) trained on it."""
    when = datetime.now(UTC) - timedelta(hours=3)
    frame = history(when=when)
    write_repo(root, {"defs.py": DEFS}, {"data/stats/part-0.parquet": frame})
    store = FeatureStore(root)
    store.apply()
    store.materialize(when - timedelta(hours=1), datetime.now(UTC))
    entity_df = pd.DataFrame({"driver_id": frame["driver_id"], "event_timestamp": [when + timedelta(hours=1)] * DRIVERS})
    job = store.get_historical_features(entity_df, feature_service="svc")
    store.models.register("score", ScoreModel(), "pyfunc", feature_service="svc", training_set=job, alias="production")
    return store, frame
