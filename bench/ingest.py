"""Stream-ingestion benchmark: topic -> Redis events/s next to the bare consume rate, and freshness.

    flock /tmp/pitstop-bench.lock .venv/bin/python bench/ingest.py
    .venv/bin/python bench/ingest.py --events 60000 --clients kafka-python   # quicker
    flock /tmp/pitstop-bench.lock .venv/bin/python bench/ingest.py --batch parquet,delta --repeat 3


Everything runs against a private Tansu broker (the test broker, memory storage) and a private
redis-server, both on free ports. Seeded events (``--seed``): ~200-byte JSON objects with a driver id,
an ISO event time and 10 float features, keyed by driver over 3 partitions.

Per client library (kafka-python, confluent-kafka):
  * bare: a fresh consumer group polls every message of the topic and does nothing else;
  * pipeline: one ``Ingester`` (decode + validate, guarded Redis write, Parquet roll, commit) in a
    fresh group on the same topic, until every event is written and committed.
  Both rates are taken from the first message to the last (group-join time excluded).
Batch sources (``--batch``, default ``parquet``): the stream's batch source is a ParquetSource folder
(``RollingParquetWriter``, one file per event date per roll) or a DeltaSource table
(``RollingDeltaWriter``, one Delta commit per roll); each kind gets its own repo, pipeline and freshness
runs, on the same topic in the same run. Rolls happen every ``--roll-seconds`` (default 1) while the
pipeline runs; the number of rolls before the last event is written is recorded. ``--repeat`` runs the
pipeline that many times per kind, interleaved (parquet, delta, parquet, ...), and reports the median.
Freshness: a paced producer sends ``--rate`` events/s (default 5k) for ``--seconds``; a reader polls
Redis every 5 ms for a sample of the keys and records produce time -> first readable online.
Results: a table on stdout and bench/results/ingest.json (ingest_delta.json when ``--batch`` names
delta, so the Parquet-only figures of record are not overwritten).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from tests.integration.kafka_broker import TansuBroker, create_topic  # noqa: E402
from tests.integration.redis_server import RedisServer  # noqa: E402

FEATURES = [f"f{i}" for i in range(10)]
FRESH_KEYS = 10_000_000
BATCH_SOURCES = {"parquet": 'ParquetSource("events_files", path="data/events")',
                 "delta": 'DeltaSource("events_delta", path="data/events_delta")'}
DEFS = """
from datetime import timedelta
from pitstop import DeltaSource, Entity, FeatureView, Field, Float64, KafkaSource, ParquetSource

driver = Entity("driver", join_keys=["driver_id"])
stream = KafkaSource("events", topic="{topic}", timestamp_field="event_timestamp",
                     batch_source={batch_source})
stats = FeatureView("stats", entities=[driver], source=stream, ttl=timedelta(days=1),
                    schema=[{fields}])
"""
YAML = """project: {project}
registry: {{path: data/registry.db}}
online_store: {{url: "{redis}"}}
kafka:
  bootstrap_servers: "{bootstrap}"
  group_id: "{group}"
  client: {client}
  session_timeout_ms: 6000
  heartbeat_interval_ms: 2000
ingest:
  batch_size: {batch_size}
  batch_ms: {batch_ms}
  offline_roll_seconds: {roll_seconds}
  metrics_port: 0
"""


def make_event(rng: random.Random, driver: int, ts: str) -> bytes:
    body = {"driver_id": driver, "event_timestamp": ts}
    body.update({f: round(rng.random() * 100, 5) for f in FEATURES})
    return json.dumps(body, separators=(",", ":")).encode()


def producer(bootstrap: str) -> Any:
    from confluent_kafka import Producer

    # murmur2 like the Java client; the producer is not what is measured
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all", "partitioner": "murmur2_random"})


def produce_all(bootstrap: str, topic: str, n: int, seed: int) -> int:
    rng = random.Random(seed)
    p = producer(bootstrap)
    size = 0
    ts = datetime.now(UTC).isoformat()
    for i in range(n):
        driver = rng.randrange(100_000)
        value = make_event(rng, driver, ts)
        size += len(value)
        while True:
            try:
                p.produce(topic, key=str(driver).encode(), value=value)
                break
            except BufferError:
                p.poll(0.05)
        if i % 10_000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    return size // n


def repo(root: Path, topic: str, redis_url: str, bootstrap: str, client: str, batch_size: int, batch_ms: int,
         batch: str = "parquet", roll_seconds: float = 1.0) -> Any:
    from pitstop import FeatureStore

    root.mkdir(parents=True, exist_ok=True)
    fields = ", ".join(f'Field("{f}", Float64)' for f in FEATURES)
    (root / "defs.py").write_text(DEFS.replace("{topic}", topic).replace("{fields}", fields)
                                  .replace("{batch_source}", BATCH_SOURCES[batch]))
    (root / "pitstop.yaml").write_text(YAML.format(project=f"bench{uuid.uuid4().hex[:8]}", redis=redis_url, bootstrap=bootstrap, group=f"g-{uuid.uuid4().hex[:8]}",
                                                   client=client, batch_size=batch_size, batch_ms=batch_ms,
                                                   roll_seconds=roll_seconds))
    store = FeatureStore(root)
    store.apply()
    return store


def bare_consume(bootstrap: str, topic: str, n: int, client: str) -> dict[str, float]:
    """Receive every message with the client alone; rate from the first message to the last."""
    group = f"bare-{uuid.uuid4().hex[:8]}"
    got, first = 0, None
    if client == "kafka-python":
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                 auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=2000,
                                 max_poll_records=5000)
        try:
            while got < n:
                for records in consumer.poll(timeout_ms=500, max_records=5000).values():
                    first = first or time.perf_counter()
                    got += len(records)
        finally:
            consumer.close()
    else:
        from confluent_kafka import Consumer

        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                             "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                             "heartbeat.interval.ms": 2000})
        consumer.subscribe([topic])
        try:
            while got < n:
                records = consumer.consume(num_messages=5000, timeout=0.5)
                if records:
                    first = first or time.perf_counter()
                    got += sum(1 for r in records if r.error() is None)
        finally:
            consumer.close()
    seconds = time.perf_counter() - (first or time.perf_counter())
    return {"messages": got, "seconds": seconds, "per_s": got / seconds}


def pipeline(root: Path, topic: str, redis_url: str, bootstrap: str, n: int, client: str,
             batch_size: int, batch_ms: int, batch: str = "parquet", roll_seconds: float = 1.0) -> dict[str, float]:
    """One Ingester until every event is written online, plus its final offline roll and commit.

    The loop rolls every ``roll_seconds`` while it runs (Parquet files or Delta commits, per ``batch``);
    the idle wait for the last roll is not work, so the time of the final roll + commit + close
    (measured from ``stop()``) is added instead. Afterwards the batch source is checked to hold all ``n`` rows.
    """
    from pitstop.ingestion import Ingester

    store = repo(root, topic, redis_url, bootstrap, client, batch_size, batch_ms, batch, roll_seconds)
    ingester = Ingester(store)
    thread = threading.Thread(target=ingester.run, daemon=True)
    thread.start()
    first = None
    try:
        while ingester.stats.events < n:
            if first is None and ingester.stats.events:
                first = time.perf_counter()
            if not thread.is_alive():
                raise RuntimeError("the ingester stopped")
            time.sleep(0.002)
        written = time.perf_counter() - (first or time.perf_counter())
        rolls_during = ingester.rolls()
    finally:
        stopping = time.perf_counter()
        ingester.stop()
        thread.join(timeout=60)
        final = time.perf_counter() - stopping
        store.close()
    assert ingester.stats.commits >= 1 and ingester.stats.offline_files >= 1
    offline_rows = offline_row_count(root, batch)
    assert offline_rows == n, f"{batch} batch source holds {offline_rows} rows, expected {n}"
    seconds = written + final
    # the first timestamp is taken when the first batch is already written: count it out
    first_batch = min(batch_size, n)
    rate = (n - first_batch) / seconds
    return {"batch": batch, "events": n, "seconds": seconds, "final_roll_commit_close_s": final, "per_s": rate,
            "batches": ingester.stats.batches, "rolls_before_last_event": rolls_during, "rolls": ingester.rolls(),
            "offline_files": ingester.stats.offline_files, "commits": ingester.stats.commits,
            "offline_rows": offline_rows}


def offline_row_count(root: Path, batch: str) -> int:
    """Rows in the stream's batch source: every Parquet file of the folder, or the Delta table's latest version."""
    import pyarrow.parquet as pq

    if batch == "delta":
        from deltalake import DeltaTable

        table: Any = DeltaTable(str(root / "data" / "events_delta"))
        return int(table.to_pyarrow_dataset().count_rows())
    return sum(pq.ParquetFile(p).metadata.num_rows for p in (root / "data" / "events").rglob("*.parquet"))


def freshness(root: Path, topic: str, redis_url: str, bootstrap: str, client: str, rate: int, seconds: float,
              seed: int, batch_size: int, batch_ms: int, batch: str = "parquet",
              roll_seconds: float = 1.0) -> dict[str, float]:
    """Paced production at ``rate``/s; produce time -> first readable online for 1 event in 25."""
    import numpy as np

    from pitstop.ingestion import Ingester

    store = repo(root, topic, redis_url, bootstrap, client, batch_size, batch_ms, batch, roll_seconds)
    reader_store = type(store)(root)
    ingester = Ingester(store)
    thread = threading.Thread(target=ingester.run, daemon=True)
    thread.start()
    rng = random.Random(seed)
    p = producer(bootstrap)
    pending: dict[int, float] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def read() -> None:
        while not done.is_set() or pending:
            with lock:
                keys = list(pending)
            if keys:
                got = reader_store.get_online_features(["stats:f0"], {"driver_id": keys}).to_dict()
                now = time.time()
                with lock:
                    for key, value in zip(got["driver_id"], got["f0"], strict=True):
                        if value is not None and key in pending:
                            latencies.append(now - pending.pop(key))
            time.sleep(0.005)
            if done.is_set() and time.time() - stop_at > 10:
                break

    stop_at = float("inf")
    try:
        # warm up: wait until the ingester owns its partitions and an event is readable
        p.produce(topic, key=b"0", value=make_event(rng, -1, datetime.now(UTC).isoformat()))
        p.flush(10)
        deadline = time.time() + 60
        while reader_store.get_online_features(["stats:f0"], {"driver_id": [-1]}).to_dict()["f0"][0] is None:
            if time.time() > deadline:
                raise RuntimeError("warm-up event never became readable")
            time.sleep(0.05)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        tick = 0.01
        per_tick = max(int(rate * tick), 1)
        start = time.perf_counter()
        seq = 0
        while time.perf_counter() - start < seconds:
            for _ in range(per_tick):
                seq += 1
                sent = time.time()
                driver = FRESH_KEYS + seq  # never written by anything else
                p.produce(topic, key=str(driver).encode(), value=make_event(rng, driver, datetime.now(UTC).isoformat()))
                if seq % 25 == 0:
                    with lock:
                        pending[driver] = sent
            p.poll(0)
            seq_time = start + (seq / per_tick) * tick
            pause = seq_time - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        produced_s = time.perf_counter() - start
        p.flush(30)
        stop_at = time.time()
        done.set()
        reader.join(timeout=30)
    finally:
        done.set()
        ingester.stop()
        thread.join(timeout=60)
        store.close()
        reader_store.close()
    arr = np.asarray(latencies) * 1000
    return {"rate_target": rate, "rate_achieved": seq / produced_s, "samples": len(arr), "unseen": len(pending),
            "p50_ms": float(np.percentile(arr, 50)), "p99_ms": float(np.percentile(arr, 99)),
            "max_ms": float(arr.max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--clients", default="kafka-python,confluent-kafka")
    parser.add_argument("--batch", default="parquet", help="batch sources to compare: parquet, delta or parquet,delta")
    parser.add_argument("--repeat", type=int, default=1, help="pipeline runs per batch source (median reported)")
    parser.add_argument("--roll-seconds", type=float, default=1.0, help="ingest.offline_roll_seconds")
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--batch-ms", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None,
                        help="default bench/results/ingest.json, or ingest_delta.json when --batch names delta")
    args = parser.parse_args()
    clients = args.clients.split(",")
    batches = args.batch.split(",")
    unknown = [b for b in batches if b not in BATCH_SOURCES]
    if unknown:
        parser.error(f"--batch: unknown {unknown[0]!r} (choose from {', '.join(BATCH_SOURCES)})")
    out = args.out or HERE / "results" / ("ingest_delta.json" if "delta" in batches else "ingest.json")
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "params": {k: v for k, v in vars(args).items() if k != "out"}, "clients": {}}
    with tempfile.TemporaryDirectory() as tmp, TansuBroker(Path(tmp) / "tansu") as broker, \
            RedisServer(Path(tmp) / "redis") as redis:
        topic = "events-throughput"
        create_topic(broker.bootstrap, topic, partitions=3)
        results["event_bytes"] = produce_all(broker.bootstrap, topic, args.events, args.seed)
        for client in clients:
            bare = bare_consume(broker.bootstrap, topic, args.events, client)
            runs: dict[str, list[dict[str, float]]] = {b: [] for b in batches}
            for i in range(args.repeat):
                for batch in batches:
                    runs[batch].append(pipeline(Path(tmp) / f"repo-{client}-{batch}-{i}", topic, redis.url,
                                                broker.bootstrap, args.events, client, args.batch_size,
                                                args.batch_ms, batch, args.roll_seconds))
                    print(json.dumps({client: runs[batch][-1]}), file=sys.stderr)
            per_batch: dict[str, Any] = {}
            for batch in batches:
                fresh_topic = f"events-fresh-{client}-{batch}"
                create_topic(broker.bootstrap, fresh_topic, partitions=3)
                fresh = freshness(Path(tmp) / f"fresh-{client}-{batch}", fresh_topic, redis.url, broker.bootstrap,
                                  client, args.rate, args.seconds, args.seed, args.batch_size, args.batch_ms,
                                  batch, args.roll_seconds)
                rates = [r["per_s"] for r in runs[batch]]
                median = statistics.median(rates)
                # the run whose rate is the median (the lower middle one for an even count)
                piped = min(runs[batch], key=lambda r, m=median: (abs(r["per_s"] - m), r["per_s"]))
                per_batch[batch] = {"pipeline": {**piped, "per_s": median, "per_s_runs": rates},
                                    "ratio": median / bare["per_s"], "freshness": fresh, "runs": runs[batch]}
            first = per_batch[batches[0]]
            entry: dict[str, Any] = {"bare": bare, "pipeline": first["pipeline"], "ratio": first["ratio"],
                                     "freshness": first["freshness"], "batches": per_batch}
            if {"parquet", "delta"} <= set(batches):
                entry["delta_vs_parquet"] = per_batch["delta"]["pipeline"]["per_s"] / per_batch["parquet"]["pipeline"]["per_s"]
            results["clients"][client] = entry
            print(json.dumps({client: {k: v for k, v in entry.items() if k != "batches"}}), file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    console = Console(width=200)
    table = Table(title=f"topic -> Redis, {args.events:,} events of ~{results['event_bytes']} B, 3 partitions, one process"
                        + (f", median of {args.repeat} pipeline runs" if args.repeat > 1 else ""))
    for col in ("client", "batch source", "bare consume msg/s", "pipeline events/s", "runs", "rolls", "pipeline / bare",
                "target >= 0.80", f"freshness p50 ms @{args.rate}/s", "p99 ms", "target p99 <= 500"):
        table.add_column(col)
    for client, r in results["clients"].items():
        for batch, b in r["batches"].items():
            f, p = b["freshness"], b["pipeline"]
            table.add_row(client, batch, f"{r['bare']['per_s']:,.0f}", f"{p['per_s']:,.0f}",
                          " / ".join(f"{x:,.0f}" for x in p["per_s_runs"]),
                          f"{p['rolls_before_last_event']} + final", f"{b['ratio']:.2f}",
                          "met" if b["ratio"] >= 0.8 else "missed", f"{f['p50_ms']:.0f}", f"{f['p99_ms']:.0f}",
                          "met" if f["p99_ms"] <= 500 else "missed")
    console.print(table)
    for client, r in results["clients"].items():
        if "delta_vs_parquet" in r:
            ratio = r["delta_vs_parquet"]
            print(f"{client}: delta / parquet pipeline events/s = {ratio:.3f} ({(1 - ratio) * 100:+.1f} % slower); "
                  f"target delta no more than 10 % slower (>= 0.90): {'met' if ratio >= 0.9 else 'missed'}")


if __name__ == "__main__":
    main()
