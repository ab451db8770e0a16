"""Online benchmark: materialization into Redis and in-process get_online_features, pitstop vs Feast 0.67.

    .venv/bin/python bench/online.py                      # both shapes, with Feast
    .venv/bin/python bench/online.py --shapes a --no-feast
    .venv/bin/python bench/online.py --no-feast --cluster 3   # pitstop into a 3-primary Redis Cluster

Shapes (seeded, bench/datagen.py): (a) 1 view x 10M rows -> 1M entity keys; (b) 3 views x 10M rows
-> 3M entity-view pairs, 10 float64 features per view. Every engine gets its own private
redis-server on a free port (never the shared one), started fresh for each materialization.
Peak RSS is the measuring subprocess's (os.wait4). Online latency is measured in-process after the
shape-(b) materialization (30 features over 3 views), 1000 calls after 50 warm-up calls.
Results: a table on stdout and bench/results/online.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from datagen import generate  # noqa: E402
from historical import feast_python, run_measured  # noqa: E402

from tests.integration.redis_cluster import RedisCluster  # noqa: E402
from tests.integration.redis_server import RedisServer  # noqa: E402

SHAPES = {
    "a": {"entities": 1_000_000, "rows_per_entity": 10, "views": 1, "entity_rows": 1000},
    "b": {"entities": 1_000_000, "rows_per_entity": 10, "views": 3, "entity_rows": 1000},
}
LATENCY_ENTITIES = (1, 50, 100)


def redis_cpu_seconds(server: RedisServer | RedisCluster) -> float:
    """CPU seconds (user + sys) the server, or every node of the cluster, has used so far."""
    import redis as redis_py

    ports = [n.port for n in server.servers] if isinstance(server, RedisCluster) else [server.port]
    total = 0.0
    for port in ports:
        with redis_py.Redis(host="127.0.0.1", port=port) as client:
            info = client.info("cpu")
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


def engine_runs(name: str, cmd_prefix: list[str], data: Path, with_latency: bool, iterations: int,
                cluster_nodes: int = 0) -> dict:
    """Materialize into a fresh private Redis (or Redis Cluster), then optionally measure read latency."""
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp, (
        RedisCluster(Path(tmp) / "cluster", nodes=cluster_nodes) if cluster_nodes else RedisServer(Path(tmp) / "redis")
    ) as redis:
        work = Path(tmp) / "repo"
        if name == "feast":
            cmd = [*cmd_prefix, "materialize", str(data), "--redis-url", redis.url, "--work", str(work)]
        else:
            cmd = [*cmd_prefix, "materialize", str(data), redis.url, str(work)]
        cpu_before = redis_cpu_seconds(redis)
        result, peak = run_measured(cmd)
        out["materialize"] = {**result, "peak_gb": peak, "redis_cpu_s": redis_cpu_seconds(redis) - cpu_before}
        if with_latency:
            out["latency"] = {}
            for k in LATENCY_ENTITIES:
                if name == "feast":
                    cmd = [*cmd_prefix, "online", str(data), "--redis-url", redis.url, "--work", str(work),
                           "--entities", str(k), "--iterations", str(iterations)]
                else:
                    cmd = [*cmd_prefix, "online", str(data), redis.url, str(work), str(k), str(iterations)]
                out["latency"][k] = run_measured(cmd)[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="a,b")
    parser.add_argument("--no-feast", action="store_true")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: bench/results/online.json, or online_cluster.json with --cluster")
    parser.add_argument("--cluster", type=int, default=0, metavar="N",
                        help="pitstop only: materialize into a private Redis Cluster of N primaries")
    args = parser.parse_args()
    if args.cluster and not args.no_feast:
        parser.error("--cluster measures pitstop only; add --no-feast")
    out = args.out or HERE / "results" / ("online_cluster.json" if args.cluster else "online.json")
    feast = None if args.no_feast else feast_python()
    engines = {"pitstop": [sys.executable, str(HERE / "pitstop_runner.py")]}
    if feast:
        engines["feast"] = [feast, str(HERE / "feast_runner.py")]
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "platform": platform.platform()},
               "online_store": f"redis cluster, {args.cluster} primaries" if args.cluster else "redis", "shapes": {}}
    for shape in args.shapes.split(","):
        data = generate(args.data / f"online_{shape}", **SHAPES[shape])
        results["shapes"][shape] = {name: engine_runs(name, cmd, data, shape == "b", args.iterations, args.cluster)
                                    for name, cmd in engines.items()}
        print(json.dumps({shape: results["shapes"][shape]}), file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    console = Console(width=200)
    table = Table(title=f"materialize into {results['online_store']} (whole data range)")
    for col in ("shape", "engine", "seconds", "pairs", "pairs/s", "peak GB", "Redis CPU s"):
        table.add_column(col)
    for shape, by_engine in results["shapes"].items():
        for name, r in by_engine.items():
            m = r["materialize"]
            pairs = m.get("pairs") or m.get("entity_keys", 0) * m.get("views", 1)
            table.add_row(shape, name, f"{m['seconds']:.1f}", f"{pairs:,}", f"{pairs / m['seconds']:,.0f}", f"{m['peak_gb']:.2f}",
                          f"{m.get('redis_cpu_s', float('nan')):.1f}")
    console.print(table)
    lat = Table(title="get_online_features in-process, 30 features over 3 views (ms)")
    for col in ("entities", "engine", "p50", "p99", "mean"):
        lat.add_column(col)
    for name, r in results["shapes"].get("b", {}).items():
        for k, v in r.get("latency", {}).items():
            lat.add_row(str(k), name, f"{v['p50_ms']:.3f}", f"{v['p99_ms']:.3f}", f"{v['mean_ms']:.3f}")
    console.print(lat)


if __name__ == "__main__":
    main()
