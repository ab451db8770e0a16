"""A small repo for online-store tests: two views (one with a created column) and an on-demand view."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from pitstop import FeatureStore
from tests.support.repos import YAML, write_repo

DEFS = """
from datetime import timedelta
import pandas as pd
from pitstop import (Entity, FeatureService, FeatureView, Field, Float64, Int64, ParquetSource, PushSource,
                     RequestSource, String, on_demand_feature_view)

driver = Entity("driver", join_keys=["driver_id"])
stats = FeatureView("stats", entities=[driver], schema=[Field("rate", Float64), Field("trips", Int64), Field("city", String)],
                    source=ParquetSource("stats_src", path="data/stats.parquet", created_timestamp_column="created"),
                    ttl=timedelta(hours=2))
pushed = FeatureView("pushed", entities=[driver], schema=[Field("speed", Float64)],
                     source=PushSource("speed_push", batch_source=ParquetSource("speed_files", path="data/speed")),
                     ttl=timedelta(days=1))
forever = FeatureView("forever", entities=[driver], schema=[Field("signup", Int64)],
                      source=ParquetSource("signup_src", path="data/signup.parquet"))
req = RequestSource("req", schema=[Field("bonus", Float64)])

@on_demand_feature_view(sources=[stats[["rate"]], req], schema=[Field("rate_plus", Float64)])
def rate_plus(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"rate_plus": df["rate"] + df["bonus"]})

svc = FeatureService("svc", features=[stats[["rate", "trips"]], rate_plus])
"""


def now_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def stats_rows(now: datetime) -> pd.DataFrame:
    """driver 1: three versions (the newest wins, a late correction of an old one must not);
    driver 2: only an old row (outside the 2h ttl at read time); driver 3: a row in the future window."""
    rows = [
        (1, now - timedelta(hours=1), now - timedelta(hours=1), 0.1, 10, "a"),
        (1, now - timedelta(minutes=30), now - timedelta(minutes=30), 0.2, 20, "b"),
        (1, now - timedelta(hours=1), now - timedelta(minutes=5), 0.9, 90, "late"),
        (2, now - timedelta(hours=5), now - timedelta(hours=5), 0.5, 50, "old"),
        (3, now - timedelta(minutes=10), now - timedelta(minutes=10), 0.7, 70, None),
    ]
    return pd.DataFrame(rows, columns=["driver_id", "event_timestamp", "created", "rate", "trips", "city"])


def make_repo(root: Path, online_url: str | None = None) -> FeatureStore:
    now = now_hour()
    signup = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [now - timedelta(days=400), now - timedelta(days=3)],
                           "signup": [2019, 2025]})
    speed = pd.DataFrame({"driver_id": pd.Series([], dtype="int64"), "event_timestamp": pd.Series([], dtype="datetime64[us, UTC]"),
                          "speed": pd.Series([], dtype="float64")})
    write_repo(root, {"defs.py": DEFS}, {"data/stats.parquet": stats_rows(now), "data/signup.parquet": signup,
                                        "data/speed/part-0.parquet": speed})
    if online_url:
        project = f"t{uuid.uuid4().hex[:10]}"  # tests share one private Redis: keep their keys apart
        (root / "pitstop.yaml").write_text(YAML.replace("sqlite:///data/online.db", online_url)
                                           .replace("project: test", f"project: {project}"))
    store = FeatureStore(root)
    store.apply()
    return store
