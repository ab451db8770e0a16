"""Training sets on the Spark offline engine vs the DuckDB engine (issue 15), same data, same run.

    .venv/bin/python bench/spark_engine.py                          # 1M x 1M, and a hot-key variant
    .venv/bin/python bench/spark_engine.py --shapes 1m,10m --markdown

Each shape is one view (``rows`` feature rows over ``rows / 10`` entities, created-time tie-breaks,
a 30-day ttl) and as many entity rows; ``hot`` puts 5 % of feature rows and of entity rows on one
key. Each engine runs in a fresh process (`local[2]` Spark: the JVM is a child of that process);
peak memory is the largest resident size of the whole process tree, sampled every 0.2 s, so the JVM
counts. Feast 0.67's Spark offline store runs in the same way from its own virtualenv
(``bench/setup_feast.sh --spark``), with the same Spark settings, its created-time filter on (the
same leak-free join) and its entity rows as a Spark DataFrame over the same Parquet file. Every
training set is compared value for value with DuckDB's (Feast's after sorting: its row order is not
the input order).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

SHAPES = {  # name: (feature rows, entity rows, hot key)
    "10k": (10_000, 10_000, False),  # a quick check that all engines run and agree
    "1m": (1_000_000, 1_000_000, False),
    "1m-hot": (1_000_000, 1_000_000, True),
    "10m": (10_000_000, 10_000_000, False),
}
# materialization: 10 rows per key, 10 float features, written to a private redis-server
MATERIALIZE_SHAPES = {"m10k": 10_000, "m1m": 10_000_000}
SPARK_CONF = {"spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "16", "spark.ui.enabled": "false"}
SPARK = json.dumps({"master": "local[2]", "conf": SPARK_CONF})
# Feast gets the same settings, plus what its store needs to be right and fast: UTC session time
# (it writes the time bounds as text) and Arrow for its toPandas
FEAST_SPARK_CONF = {"spark.master": "local[2]", **SPARK_CONF, "spark.sql.session.timeZone": "UTC",
                    "spark.sql.execution.arrow.pyspark.enabled": "true"}
ENGINES = ("duckdb", "spark", "feast-spark")


def make_data(folder: Path, rows: int, entity_rows: int, hot: bool) -> Path:
    import numpy as np
    import pyarrow.parquet as pq
    from datagen import generate

    data = generate(folder, entities=max(1, rows // 10), rows_per_entity=10, views=1, entity_rows=entity_rows)
    if hot:  # 5 % of the rows of both tables on key 0
        for name in ("view_0.parquet", "entity_rows.parquet"):
            table = pq.read_table(data / name)
            ids = table.column("entity_id").to_numpy().copy()
            ids[np.random.default_rng(1).random(len(ids)) < 0.05] = 0
            table = table.set_column(table.column_names.index("entity_id"), "entity_id", pa_array(ids))
            pq.write_table(table, data / name)
    return data


def pa_array(values):  # noqa: ANN001, ANN201 - tiny helper for the hot-key rewrite
    import pyarrow as pa

    return pa.array(values)


def child(engine: str, data: str, out: str) -> None:
    """Build the training set with ``engine`` and write it to ``out`` (timed)."""
    import pyarrow.parquet as pq
    from pitstop_runner import make_repo

    from pitstop import FeatureStore

    os.environ["PITSTOP_OFFLINE_STORE_ENGINE"] = engine
    os.environ["PITSTOP_OFFLINE_STORE_SPARK"] = SPARK
    shape = json.loads((Path(data) / "shape.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        refs = make_repo(Path(data), shape, Path(tmp))
        store = FeatureStore(tmp)
        store.apply()
        entity_df = pq.read_table(Path(data) / "entity_rows.parquet")
        if engine == "spark":  # the session's start is not part of the join
            t0 = time.perf_counter()
            store.offline.spark  # type: ignore[attr-defined]  # noqa: B018
            startup = time.perf_counter() - t0
        else:
            startup = 0.0
        t0 = time.perf_counter()
        table = store.get_historical_features(entity_df, refs).to_arrow()
        seconds = time.perf_counter() - t0
        pq.write_table(table, out)
    print(json.dumps({"engine": engine, "seconds": seconds, "startup_seconds": startup, "rows": table.num_rows}))


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def kill_tree(pid: int) -> None:
    import signal

    for p in descendants(pid):
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


def materialize_child(engine: str, data: str, redis_url: str) -> None:
    """Time draining the engine's latest rows alone, then a whole ``materialize`` into ``redis_url``."""
    from datetime import UTC, datetime

    from pitstop_runner import make_repo

    from pitstop import FeatureStore
    from pitstop.materialize import BATCH_ROWS, _query
    from pitstop.timeutil import epoch_us

    os.environ["PITSTOP_OFFLINE_STORE_ENGINE"] = engine
    os.environ["PITSTOP_OFFLINE_STORE_SPARK"] = SPARK
    shape = json.loads((Path(data) / "shape.json").read_text())
    start, end = datetime(2024, 12, 31, tzinfo=UTC), datetime(2025, 4, 2, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        make_repo(Path(data), shape, Path(tmp), redis_url)
        store = FeatureStore(tmp)
        store.apply()
        t0 = time.perf_counter()
        if engine == "spark":
            store.offline.spark  # type: ignore[attr-defined]  # noqa: B018
        startup = time.perf_counter() - t0
        query = _query(store.definitions().views["view_0"], tmp)
        t0 = time.perf_counter()
        drained = sum(t.num_rows for t in store.offline.latest_rows(query, epoch_us(start), epoch_us(end), BATCH_ROWS))
        drain = time.perf_counter() - t0
        t0 = time.perf_counter()
        outcomes = store.materialize(start, end)
        seconds = time.perf_counter() - t0
    print(json.dumps({"engine": engine, "seconds": seconds, "latest_rows_seconds": drain, "startup_seconds": startup,
                      "rows": sum(o.rows for o in outcomes), "drained": drained}))


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MB."""
    total = 0
    for p in descendants(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1000


def feast_python() -> str | None:
    """The Feast virtualenv's python (made by ``setup_feast.sh --spark``), or None if it cannot be made."""
    try:
        out = subprocess.run(["bash", str(HERE / "setup_feast.sh"), "--spark"], check=True, capture_output=True,
                             text=True)
    except subprocess.CalledProcessError as exc:
        print(f"Feast unavailable: {exc.stderr[-500:]}", file=sys.stderr)
        return None
    return out.stdout.strip().splitlines()[-1]


def command(engine: str, data: Path, out: Path, feast: str | None) -> list[str]:
    if engine == "feast-spark":
        assert feast is not None
        return [feast, str(HERE / "feast_runner.py"), "historical", str(data), "--created-cutoff",
                "--spark-conf", json.dumps(FEAST_SPARK_CONF), "--out", str(out)]
    return [sys.executable, __file__, "_child", engine, str(data), str(out)]


def measured(cmd: list[str], timeout: float) -> dict:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        proc.communicate()
        done.set()
        return {"error": f"did not finish in {timeout:.0f} s", "timed_out": True, "peak_mb": peak[0]}
    done.set()
    sampler.join()
    if proc.returncode != 0:
        return {"error": stderr[-3000:]}
    report = json.loads(stdout.strip().splitlines()[-1])
    report.setdefault("startup_seconds", report.pop("load_seconds", 0.0))
    return {**report, "peak_mb": peak[0]}


def same(a: Path, b: Path, ordered: bool) -> bool:
    """Whether two training sets hold the same values (as multisets of rows unless ``ordered``)."""
    import pyarrow.parquet as pq

    left, right = pq.read_table(a), pq.read_table(b)
    if left.num_rows != right.num_rows or not set(left.column_names) <= set(right.column_names):
        return False
    right = right.select(left.column_names).cast(left.schema)
    if not ordered:
        keys = [(c, "ascending") for c in left.column_names]
        left, right = left.sort_by(keys), right.sort_by(keys)
    return all(left.column(c).equals(right.column(c)) for c in left.column_names)


def materialize_main(args: argparse.Namespace) -> None:
    """Materialize each shape with both engines, each into its own fresh redis-server."""
    sys.path.insert(0, str(HERE.parent))
    from datagen import generate

    from tests.integration.redis_server import RedisServer

    shapes = [s for s in args.shapes.split(",") if s in MATERIALIZE_SHAPES] or ["m1m"]
    results = []
    with tempfile.TemporaryDirectory(prefix="spark-bench-") as tmp:
        for name in shapes:
            rows = MATERIALIZE_SHAPES[name]
            data = generate(Path(tmp) / name, entities=rows // 10, rows_per_entity=10, views=1, entity_rows=1000)
            for engine in ("duckdb", "spark"):
                server = RedisServer(Path(tmp) / f"redis-{name}-{engine}").start()
                try:
                    cmd = [sys.executable, __file__, "_materialize", engine, str(data), server.url]
                    r = {**measured(cmd, args.timeout), "engine": engine, "shape": name}
                finally:
                    server.stop()
                results.append(r)
                print(json.dumps(r)[:400], file=sys.stderr, flush=True)
    args.out.write_text(json.dumps(results, indent=2))
    head = ["shape", "engine", "materialize s", "latest rows alone s", "Spark start s", "peak MB", "keys written"]
    lines = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['shape']} | {r['engine']} | error | | | | |")
            continue
        lines.append(f"| {r['shape']} | {r['engine']} | {r['seconds']:.2f} | {r['latest_rows_seconds']:.2f} | "
                     f"{r['startup_seconds']:.1f} | {r['peak_mb']:,.0f} | {r['rows']:,} |")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="1m,1m-hot", help=f"comma-separated, from {', '.join(SHAPES)}")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "spark_engine.json")
    parser.add_argument("--no-feast", action="store_true", help="leave Feast's Spark store out")
    parser.add_argument("--materialize", action="store_true",
                        help=f"time materialization instead ({', '.join(MATERIALIZE_SHAPES)}; default m1m)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a run is stopped")
    args = parser.parse_args()
    if args.materialize:
        materialize_main(args)
        return
    feast = None if args.no_feast else feast_python()
    engines = [e for e in ENGINES if e != "feast-spark" or feast is not None]
    results = []
    with tempfile.TemporaryDirectory(prefix="spark-bench-") as tmp:
        for name in filter(None, args.shapes.split(",")):
            rows, entity_rows, hot = SHAPES[name]
            data = make_data(Path(tmp) / name, rows, entity_rows, hot)
            outs = {}
            for engine in engines:
                outs[engine] = Path(tmp) / f"{name}-{engine}.parquet"
                r = {**measured(command(engine, data, outs[engine], feast), args.timeout), "engine": engine, "shape": name}
                results.append(r)
                print(json.dumps(r)[:400], file=sys.stderr, flush=True)
            for r in results[-len(engines):]:
                out = outs[r["engine"]]
                r["equal_to_duckdb"] = out.exists() and outs["duckdb"].exists() and same(
                    outs["duckdb"], out, ordered=r["engine"] != "feast-spark")
    args.out.write_text(json.dumps(results, indent=2))
    head = ["shape", "engine", "join seconds", "Spark start s", "peak MB (process tree)", "rows", "same values"]
    lines = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    for r in results:
        if "error" in r:
            what = f"did not finish in {args.timeout:.0f} s" if r.get("timed_out") else "error"
            lines.append(f"| {r['shape']} | {r['engine']} | {what} | | {r.get('peak_mb', 0):,.0f} | | |")
            continue
        lines.append(f"| {r['shape']} | {r['engine']} | {r['seconds']:.2f} | {r['startup_seconds']:.1f} | "
                     f"{r['peak_mb']:,.0f} | {r['rows']:,} | {'yes' if r['equal_to_duckdb'] else 'NO'} |")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(*sys.argv[2:5])
    elif len(sys.argv) > 1 and sys.argv[1] == "_materialize":
        materialize_child(*sys.argv[2:5])
    else:
        main()
