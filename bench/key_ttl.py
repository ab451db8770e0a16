"""Cost of online_store.key_ttl_seconds: guarded writes of 1M entities with and without key expiry.

    .venv/bin/python bench/key_ttl.py              # ~30 seconds

Seeded data (numpy default_rng(0)): 1M entities x 10 float64 features, written with
RedisOnlineStore.write into a fresh private redis-server per run, with no ttl and with a one-day
ttl, alternating, ``--repeat`` times each. Reports wall time and the server's CPU (INFO cpu).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import redis
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent.parent))
from pitstop.definitions.dtypes import Float64  # noqa: E402
from pitstop.online.base import ViewSchema, WriteBatch  # noqa: E402
from pitstop.online.redis_store import RedisOnlineStore  # noqa: E402
from tests.integration.redis_server import RedisServer  # noqa: E402

VIEW = ViewSchema("v", ("driver_id",), tuple((f"f{i}", Float64) for i in range(10)))


def server_cpu(port: int) -> float:
    with redis.Redis(host="127.0.0.1", port=port) as client:
        info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    n = args.entities
    rng = np.random.default_rng(0)
    batch = WriteBatch(VIEW, pa.table({"driver_id": rng.permutation(n)}), np.full(n, 10**15), np.full(n, 10**15),
                       pa.table({f"f{i}": rng.random(n) for i in range(10)}))
    rows: dict[str, list[tuple[float, float]]] = {"none": [], "86400 s": []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):
            for label, ttl in (("none", None), ("86400 s", 86400.0)):
                with RedisServer(Path(tmp) / f"redis-{rep}-{label[:4]}") as server:
                    store = RedisOnlineStore(server.url, "bench", key_ttl_seconds=ttl)
                    before = server_cpu(server.port)
                    started = time.perf_counter()
                    store.write([batch])
                    rows[label].append((time.perf_counter() - started, server_cpu(server.port) - before))
                    store.close()
    table = Table(title=f"guarded write of {n:,} entities")
    for col in ("key ttl", "wall s", "Redis CPU s"):
        table.add_column(col)
    for label, runs in rows.items():
        table.add_row(label, " / ".join(f"{w:.2f}" for w, _ in runs), " / ".join(f"{c:.2f}" for _, c in runs))
    Console(width=120).print(table)
    extra = np.mean([c for _, c in rows["86400 s"]]) - np.mean([c for _, c in rows["none"]])
    print(f"key expiry adds {extra / n * 1e6:.2f} µs of Redis CPU per written entity")


if __name__ == "__main__":
    main()
