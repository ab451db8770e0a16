"""On-demand features online: what a pandas-mode and a python-mode transformation add to a read.

    .venv/bin/python bench/on_demand.py                 # ~1 minute
    .venv/bin/python bench/on_demand.py --iterations 5000

Repo (seeded, numpy default_rng(7)): 10,000 drivers with conv_rate, acc_rate and avg_daily_trips,
materialized into a private redis-server; a RequestSource with trip_distance_km; two on-demand
views with the example repo's trip_features formula, one per mode. In-process
FeatureStore.get_online_features for (i) the three view features alone, (ii) plus the pandas-mode
output, (iii) plus the python-mode output, each for 1 and 50 entities: ``--iterations`` calls
after 200 warm-up calls, cases interleaved call by call so drift hits all alike. The outputs of
both modes are checked equal before timing.

Results: a table on stdout and bench/results/on_demand.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from pitstop import FeatureStore  # noqa: E402
from tests.integration.redis_server import RedisServer  # noqa: E402
from tests.support.repos import write_repo  # noqa: E402

DRIVERS = 10_000
DEFS = """
from datetime import timedelta
import pandas as pd
from pitstop import Entity, FeatureView, Field, Float32, Float64, Int64, ParquetSource, RequestSource
from pitstop import on_demand_feature_view

driver = Entity("driver", join_keys=["driver_id"])
stats = FeatureView("stats", entities=[driver],
                    schema=[Field("conv_rate", Float32), Field("acc_rate", Float32), Field("avg_daily_trips", Int64)],
                    source=ParquetSource("stats_src", path="data/stats.parquet"), ttl=timedelta(days=3650))
trip = RequestSource("trip", schema=[Field("trip_distance_km", Float64)])


@on_demand_feature_view(sources=[stats[["conv_rate", "acc_rate"]], trip], schema=[Field("expected", Float64)])
def trip_pandas(inputs: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=inputs.index)
    out["expected"] = inputs["acc_rate"].astype("float64") / (1.0 + inputs["trip_distance_km"].astype("float64") / 50.0)
    return out


@on_demand_feature_view(sources=[stats[["conv_rate", "acc_rate"]], trip], schema=[Field("expected", Float64)],
                        mode="python")
def trip_python(inputs: dict) -> dict:
    return {"expected": [None if a is None else a / (1.0 + d / 50.0)
                         for a, d in zip(inputs["acc_rate"], inputs["trip_distance_km"])]}
"""
BASE = ["stats:conv_rate", "stats:acc_rate", "stats:avg_daily_trips"]
CASES = {"view features only": BASE, "+ pandas on-demand": [*BASE, "trip_pandas:expected"],
         "+ python on-demand": [*BASE, "trip_python:expected"]}


def build(root: Path, redis_url: str) -> FeatureStore:
    rng = np.random.default_rng(7)
    now = datetime.now(UTC).replace(microsecond=0)
    stats = pd.DataFrame({
        "driver_id": np.arange(DRIVERS, dtype=np.int64),
        "event_timestamp": [now - timedelta(hours=1)] * DRIVERS,
        "conv_rate": rng.random(DRIVERS).astype(np.float32),
        "acc_rate": rng.random(DRIVERS).astype(np.float32),
        "avg_daily_trips": rng.integers(0, 100, DRIVERS),
    })
    write_repo(root, {"defs.py": DEFS}, {"data/stats.parquet": stats})
    yaml = (root / "pitstop.yaml").read_text().replace("sqlite:///data/online.db", redis_url)
    (root / "pitstop.yaml").write_text(yaml)
    store = FeatureStore(root)
    store.apply()
    store.materialize(now - timedelta(days=1), now + timedelta(minutes=1))
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "on_demand.json")
    args = parser.parse_args()
    rng = np.random.default_rng(11)
    results: dict = {"machine": {"python": platform.python_version(), "platform": platform.platform()},
                     "iterations": args.iterations, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as redis:
        store = build(Path(tmp) / "repo", redis.url)
        for k in (1, 50):
            bodies = [{"driver_id": rng.integers(0, DRIVERS, k).tolist(),
                       "trip_distance_km": rng.uniform(1, 80, k).round(2).tolist()} for _ in range(256)]
            a = store.get_online_features(CASES["+ pandas on-demand"], bodies[0]).to_dict()["expected"]
            b = store.get_online_features(CASES["+ python on-demand"], bodies[0]).to_dict()["expected"]
            assert a == b, (a, b)
            timings: dict[str, list[float]] = {name: [] for name in CASES}
            for i in range(200 + args.iterations):
                body = bodies[i % len(bodies)]
                for name, refs in CASES.items():
                    started = time.perf_counter()
                    store.get_online_features(refs, body)
                    if i >= 200:
                        timings[name].append((time.perf_counter() - started) * 1e3)
            results["cases"][k] = {name: {"p50_ms": float(np.percentile(t, 50)), "p99_ms": float(np.percentile(t, 99)),
                                          "mean_ms": float(np.mean(t))} for name, t in timings.items()}
        store.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    table = Table(title="get_online_features in-process, Redis (ms)")
    for col in ("entities", "case", "p50", "p99", "mean", "on-demand cost p50"):
        table.add_column(col)
    for k, cases in results["cases"].items():
        base = cases["view features only"]["p50_ms"]
        for name, r in cases.items():
            extra = "" if name == "view features only" else f"{r['p50_ms'] - base:.3f}"
            table.add_row(str(k), name, f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}", f"{r['mean_ms']:.3f}", extra)
    Console(width=160).print(table)
    for k, cases in results["cases"].items():
        base = cases["view features only"]["p50_ms"]
        pandas_cost = cases["+ pandas on-demand"]["p50_ms"] - base
        python_cost = cases["+ python on-demand"]["p50_ms"] - base
        print(f"{k} entities: python mode adds {python_cost:.3f} ms at p50, pandas mode {pandas_cost:.3f} ms "
              f"({pandas_cost / max(python_cost, 1e-6):.0f}x)")


if __name__ == "__main__":
    main()
