"""Training sets on the Spark offline engine vs the DuckDB engine (issue 15), same data, same run.

    .venv/bin/python bench/spark_engine.py                          # 1M x 1M, and a hot-key variant
    .venv/bin/python bench/spark_engine.py --shapes 1m,10m --markdown

Each shape is one view (``rows`` feature rows over ``rows / 10`` entities, created-time tie-breaks,
a 30-day ttl) and as many entity rows; ``hot`` puts 5 % of feature rows and of entity rows on one
key. Each engine runs in a fresh process (`local[2]` Spark: the JVM is a child of that process);
peak memory is the largest resident size of the whole process tree, sampled every 0.2 s, so the JVM
counts. Both engines' training sets are compared value for value. Feast's Spark store is not in
this script yet (issue 15's benchmark).
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
    "1m": (1_000_000, 1_000_000, False),
    "1m-hot": (1_000_000, 1_000_000, True),
    "10m": (10_000_000, 10_000_000, False),
}
SPARK = '{"master": "local[2]", "conf": {"spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "16", "spark.ui.enabled": "false"}}'


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


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MB."""
    total = 0
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    todo = [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1000


def measured(engine: str, data: Path, out: Path) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "_child", engine, str(data), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        return {"engine": engine, "error": stderr[-3000:]}
    return {**json.loads(stdout.strip().splitlines()[-1]), "peak_mb": peak[0]}


def same(a: Path, b: Path) -> bool:
    import pyarrow.parquet as pq

    left, right = pq.read_table(a), pq.read_table(b)
    return left.num_rows == right.num_rows and all(
        left.column(c).equals(right.column(c)) for c in left.column_names if c in right.column_names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="1m,1m-hot", help=f"comma-separated, from {', '.join(SHAPES)}")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "spark_engine.json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="spark-bench-") as tmp:
        for name in filter(None, args.shapes.split(",")):
            rows, entity_rows, hot = SHAPES[name]
            data = make_data(Path(tmp) / name, rows, entity_rows, hot)
            outs = {}
            for engine in ("duckdb", "spark"):
                outs[engine] = Path(tmp) / f"{name}-{engine}.parquet"
                r = measured(engine, data, outs[engine])
                r["shape"] = name
                results.append(r)
                print(json.dumps(r)[:400], file=sys.stderr, flush=True)
            equal = all(p.exists() for p in outs.values()) and same(outs["duckdb"], outs["spark"])
            for r in results[-2:]:
                r["equal_to_duckdb"] = equal
    args.out.write_text(json.dumps(results, indent=2))
    head = ["shape", "engine", "join seconds", "Spark start s", "peak MB (process tree)", "rows", "same values"]
    lines = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['shape']} | {r['engine']} | error | | | | |")
            continue
        lines.append(f"| {r['shape']} | {r['engine']} | {r['seconds']:.2f} | {r['startup_seconds']:.1f} | "
                     f"{r['peak_mb']:,.0f} | {r['rows']:,} | {'yes' if r['equal_to_duckdb'] else 'NO'} |")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(*sys.argv[2:5])
    else:
        main()
