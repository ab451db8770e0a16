"""Write seeded sample data for the example repo: python generate_data.py [--days 14]."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

DRIVERS = np.arange(1001, 1051)
CUSTOMERS = np.arange(2001, 2101)


def generate(out_dir: Path, *, days: int = 14, seed: int = 7, end: datetime | None = None) -> None:
    """Hourly driver stats, daily customer profiles and labelled entity rows, ending at ``end`` (now)."""
    rng = np.random.default_rng(seed)
    end = (end or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    out_dir.mkdir(parents=True, exist_ok=True)

    hours = pd.date_range(start, end, freq="h", inclusive="left")
    stats = pd.DataFrame(
        [(d, h) for h in hours for d in DRIVERS], columns=["driver_id", "event_timestamp"]
    )
    n = len(stats)
    stats["conv_rate"] = rng.uniform(0, 1, n).astype("float32")
    stats["acc_rate"] = rng.uniform(0.5, 1, n).astype("float32")
    stats["avg_daily_trips"] = rng.integers(0, 40, n).astype("int64")
    stats["created"] = stats["event_timestamp"] + pd.to_timedelta(rng.integers(1, 600, n), unit="s")
    # a folder: the stream ingester appends its rows next to this file (see sources.py)
    (out_dir / "driver_stats").mkdir(exist_ok=True)
    stats.to_parquet(out_dir / "driver_stats" / "part-00000.parquet", index=False)

    daysr = pd.date_range(start, end, freq="D", inclusive="left")
    profile = pd.DataFrame([(c, d) for d in daysr for c in CUSTOMERS], columns=["customer_id", "event_timestamp"])
    m = len(profile)
    profile["current_balance"] = rng.uniform(0, 500, m).astype("float32")
    profile["lifetime_trip_count"] = rng.integers(0, 1000, m).astype("int64")
    profile["created"] = profile["event_timestamp"] + pd.to_timedelta(rng.integers(1, 3600, m), unit="s")
    profile.to_parquet(out_dir / "customer_profile.parquet", index=False)

    k = 1000
    rows = pd.DataFrame({
        "driver_id": rng.choice(DRIVERS, k),
        "customer_id": rng.choice(CUSTOMERS, k),
        "event_timestamp": start + pd.to_timedelta(rng.integers(3600, days * 86400, k), unit="s"),
        "trip_distance_km": rng.uniform(1, 60, k).round(1),
    })
    # long trips are completed less often, so the example model has something to learn
    completion = 0.95 - 0.012 * rows["trip_distance_km"]
    rows["trip_completed"] = (rng.uniform(0, 1, k) < completion).astype("int64")
    rows.to_parquet(out_dir / "entity_rows.parquet", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    args = parser.parse_args()
    generate(args.out, days=args.days)
    print(f"wrote sample data to {args.out}")


if __name__ == "__main__":
    main()
