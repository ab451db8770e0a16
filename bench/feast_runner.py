"""Feast side of the benchmarks: Feast 0.67's DuckDB offline and Redis online stores on ``datagen.py`` data.

Run with the interpreter of the venv that ``bench/setup_feast.sh`` makes, not the project's::

    bench/.feast-venv/bin/python bench/feast_runner.py historical DATA_DIR [--work DIR] [--created-cutoff]
    bench/.feast-venv/bin/python bench/feast_runner.py materialize DATA_DIR --redis-url URL --work DIR
    bench/.feast-venv/bin/python bench/feast_runner.py online DATA_DIR --redis-url URL --work DIR \
        [--entities K] [--iterations N]     # URL: redis://127.0.0.1:PORT/0

Every mode prints one JSON line on stdout and nothing else; anything Feast, ibis, DuckDB or tqdm print
goes to stderr. Peak RSS is the caller's to measure. The Redis server is the caller's too: these modes
only connect to ``--redis-url`` (a plain ``redis://host:port/db`` URL, no auth).

``historical`` writes a throwaway Feast repo (feature_store.yaml, a local registry file, a sqlite
online store that is never used) into a temporary directory, registers one entity and one FeatureView
per ``view_{v}.parquet`` with ``FeatureStore.apply``, loads ``entity_rows.parquet`` into pandas (timed
apart, as ``load_seconds``), and times ``get_historical_features(...).to_arrow()`` for every feature of
every view (``seconds``).

What Feast 0.67's DuckDB store computes (read from feast/infra/offline_stores/ibis.py,
``point_in_time_join`` and ``deduplicate``; duckdb.py only supplies the parquet reader):

* Candidates for an entity row are the view's rows with an equal join key and
  ``event_timestamp <= entity ts`` (inclusive upper bound), and, when the view has a ttl,
  ``event_timestamp + ttl >= entity ts``, i.e. ``entity ts - ttl <= event_timestamp``: the ttl
  lower bound is inclusive too. A ttl of zero (or none) means no lower bound.
* The winner is the first by ``event_timestamp DESC, created DESC`` (``row_number`` over a window
  per entity row); a tie on both is broken arbitrarily by DuckDB.
* By default the created timestamp is only that tie-break: a row created after the entity row's
  timestamp (a late correction) is still returned, so the default join can leak. Feast 0.67 adds an
  opt-in ``get_historical_features(..., filter_by_created_timestamp=True)`` (the DuckDB store declares
  ``supports_filter_by_created_timestamp``) that adds ``created <= entity ts`` (inclusive) to the
  candidate condition; ``--created-cutoff`` turns it on, for a like-for-like no-leakage comparison.
* Entity rows are keyed by (event_timestamp, join keys); duplicate entity rows get the same id and
  thus the same features, and every entity row comes back once (a left join). Output order is not
  the input order. Extra entity columns (``label``) pass through.
* Feast copies the entity DataFrame (``make_df_tzaware``) and hands it to DuckDB as an ibis
  memtable; whole view files are scanned (no pruning by the entity rows' time range).

``materialize`` writes a fresh repo into ``--work`` (feature_store.yaml with a Redis online store, a
local registry file), applies the same definitions with ``online=True`` and times
``FeatureStore.materialize(2024-12-31, 2025-04-02)``, which covers every row ``datagen.py`` writes. It
then checks five random entities with ``get_online_features`` against the newest row per entity read
straight from the parquet files (``sample_non_null``, ``sample_matches_latest``) and reports the Redis
key count. ``online`` reuses that repo's registry and Redis (so ``materialize`` must have run first;
its feature_store.yaml is rewritten to point at ``--redis-url``) and times
``get_online_features(every feature of every view, K random existing ids).to_dict()``, N times after
50 warm-up calls, in process.

What Feast 0.67 does here (read from feast/infra/compute_engines/local and online_stores/redis.py):

* Materialization runs per view on the "local" compute engine with the pandas backend: the offline
  store reads *all* rows of the view within [start, end] (``pull_latest_features`` is off by default),
  pandas sorts and drops duplicates to the newest row per entity (event ts, then created ts), and
  the whole result is converted to protobuf and written in one ``online_write_batch`` call
  (``materialization.online_write_batch_size`` defaults to None = one batch).
* The Redis store's write is two non-transactional pipelines per batch: an HMGET of every key's
  ``_ts:<view>`` field (to skip rows no newer than what is stored), then one HSET per entity
  (``online_store.skip_dedup`` would drop the read pipeline).
* One Redis hash per entity key, shared by all views: key = serialized entity key (version 3) +
  project name; fields = 4-byte murmur3 of ``"<view>:<feature>"`` holding a serialized ValueProto,
  plus ``_ts:<view>`` holding a serialized protobuf Timestamp. ``get_online_features`` sends one
  HMGET per (entity, view) in a single pipeline and does not apply the view ttl to what it reads.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT = "pitstop_bench"
ENTITY_NAME = "entity"
JOIN_KEY = "entity_id"
TIMESTAMP_FIELD = "event_timestamp"
CREATED_FIELD = "created"
REPORTED_FEATURES = ("f0_0", "f1_0", "f2_0")
# datagen.py's rows have event timestamps in [2025-01-01, 2025-04-01); this range covers all of them
MATERIALIZE_START = datetime(2024, 12, 31, tzinfo=UTC)
MATERIALIZE_END = datetime(2025, 4, 2, tzinfo=UTC)
SAMPLE_ENTITIES = 5
WARMUP_CALLS = 50


@dataclass(frozen=True)
class Shape:
    """The part of ``shape.json`` that defines the feature views."""

    views: int
    features_per_view: int
    ttl_days: list[int]

    @classmethod
    def read(cls, data_dir: Path) -> Shape:
        raw = json.loads((data_dir / "shape.json").read_text())
        return cls(views=int(raw["views"]), features_per_view=int(raw.get("features_per_view", 10)),
                   ttl_days=[int(d) for d in raw["ttl_days"]])

    def feature_names(self, view: int) -> list[str]:
        return [f"f{view}_{j}" for j in range(self.features_per_view)]

    def feature_refs(self) -> list[str]:
        return [f"view_{v}:{name}" for v in range(self.views) for name in self.feature_names(v)]


def redis_connection_string(url: str) -> str:
    """Turn ``redis://host:port/db`` into the ``host:port,db=N`` connection string of Feast's Redis store."""
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise ValueError(f"expected redis://host:port/db, got {url!r}")
    if parts.username or parts.password or parts.query:
        raise ValueError(f"auth and query parameters are not supported: {url!r}")
    db = int(parts.path.lstrip("/") or 0)
    return f"{parts.hostname}:{parts.port or 6379},db={db}"


def _write_repo_config(repo_dir: Path, redis_url: str | None = None, spark_conf: dict[str, str] | None = None) -> None:
    """Write a minimal feature_store.yaml (by hand, no yaml dep) with the DuckDB offline store.

    The online store is a never-used sqlite file unless ``redis_url`` is given, in which case it is
    Feast's Redis store (``type: redis``, ``connection_string: "host:port,db=N"``) with its defaults.
    With ``spark_conf`` the offline store is Feast's Spark store (``type: spark``) with that conf.
    """
    offline_store = "  type: duckdb\n"
    if spark_conf is not None:
        offline_store = "  type: spark\n  spark_conf:\n" + "".join(
            f"    {key}: \"{value}\"\n" for key, value in spark_conf.items())
    if redis_url is None:
        online_store = f"  type: sqlite\n  path: {repo_dir / 'online_store.db'}\n"
    else:
        online_store = f"  type: redis\n  connection_string: \"{redis_connection_string(redis_url)}\"\n"
    (repo_dir / "feature_store.yaml").write_text(
        f"project: {PROJECT}\n"
        "provider: local\n"
        f"registry: {repo_dir / 'registry.db'}\n"
        "online_store:\n"
        f"{online_store}"
        "offline_store:\n"
        f"{offline_store}"
        "entity_key_serialization_version: 3\n"
    )


def _definitions(data_dir: Path, shape: Shape, online: bool = False, spark: bool = False) -> list[Any]:
    """The Entity and one FeatureView per benchmark view (``online`` as given).

    Sources are FileSources, or SparkSources over the same Parquet files when ``spark``.
    """
    from feast import Entity, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64, Int64

    entity = Entity(name=ENTITY_NAME, join_keys=[JOIN_KEY], value_type=ValueType.INT64)
    objects: list[Any] = [entity]
    for v in range(shape.views):
        path = str((data_dir / f"view_{v}.parquet").resolve())
        if spark:
            from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

            source = SparkSource(name=f"view_{v}_source", path=path, file_format="parquet",
                                 timestamp_field=TIMESTAMP_FIELD, created_timestamp_column=CREATED_FIELD)
        else:
            source = FileSource(
                name=f"view_{v}_source",
                path=path,
                timestamp_field=TIMESTAMP_FIELD,
                created_timestamp_column=CREATED_FIELD,
            )
        schema = [Field(name=JOIN_KEY, dtype=Int64)]
        schema += [Field(name=name, dtype=Float64) for name in shape.feature_names(v)]
        objects.append(FeatureView(name=f"view_{v}", entities=[entity], ttl=timedelta(days=shape.ttl_days[v]),
                                   schema=schema, source=source, online=online))
    return objects


def run_historical(data_dir: Path, work: Path | None, created_cutoff: bool,
                   spark_conf: dict[str, str] | None = None, out: Path | None = None) -> dict[str, Any]:
    """Apply a throwaway repo for ``data_dir`` and time one historical retrieval of every feature.

    With ``spark_conf`` Feast's Spark offline store runs instead of its DuckDB store; its entity rows
    are then a Spark DataFrame over ``entity_rows.parquet`` (the cheapest of its entity inputs: a
    pandas frame goes through ``createDataFrame``), and the session's start is timed apart.
    ``out`` keeps the result as Parquet, for a value check by the caller.
    """
    import feast
    import pyarrow.parquet as pq
    from feast import FeatureStore

    shape = Shape.read(data_dir)
    with tempfile.TemporaryDirectory(prefix="feast-bench-", dir=work) as tmp:
        repo_dir = Path(tmp)
        _write_repo_config(repo_dir, spark_conf=spark_conf)
        store = FeatureStore(repo_path=str(repo_dir))
        store.apply(_definitions(data_dir, shape, spark=spark_conf is not None))

        start = time.perf_counter()
        if spark_conf is not None:
            from pyspark import SparkConf
            from pyspark.sql import SparkSession

            session = SparkSession.builder.config(conf=SparkConf().setAll(list(spark_conf.items()))).getOrCreate()
            entity_df: Any = session.read.parquet(str(data_dir / "entity_rows.parquet"))
        else:
            entity_df = pq.read_table(data_dir / "entity_rows.parquet").to_pandas()
        load_seconds = time.perf_counter() - start

        start = time.perf_counter()
        result = store.get_historical_features(
            entity_df=entity_df, features=shape.feature_refs(), filter_by_created_timestamp=created_cutoff,
        ).to_arrow()
        seconds = time.perf_counter() - start
        if out is not None:
            pq.write_table(result, out)

    non_null = {name: result.num_rows - result.column(name).null_count
                for name in REPORTED_FEATURES if name in result.column_names}
    return {"engine": "feast-spark" if spark_conf is not None else "feast", "version": feast.__version__, "created_cutoff": created_cutoff,
            "seconds": seconds, "load_seconds": load_seconds, "rows": result.num_rows,
            "columns": result.num_columns, "non_null": non_null}


def _entity_count(data_dir: Path) -> int:
    """How many entity ids ``datagen.py`` wrote: ids are ``0 .. entities - 1``, each with rows."""
    return int(json.loads((data_dir / "shape.json").read_text())["entities"])


def _redis_info(redis_url: str) -> dict[str, int]:
    """Key count and memory of the Redis database behind ``redis_url`` (redis-py comes with Feast's extra)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        memory = client.info("memory")
        return {"redis_keys": int(client.dbsize()), "redis_used_memory_bytes": int(memory["used_memory"])}
    finally:
        client.close()


def _fresh_repo(work: Path, redis_url: str) -> Path:
    """Create ``work`` if needed and (re)write a Redis-backed repo there, dropping any previous registry.

    A stale registry would keep views from an earlier data set, and ``materialize`` with no view list
    materializes every registered view, so every ``materialize`` run starts from an empty registry.
    """
    work.mkdir(parents=True, exist_ok=True)
    (work / "registry.db").unlink(missing_ok=True)
    _write_repo_config(work, redis_url)
    return work


def _latest_rows(data_dir: Path, shape: Shape, ids: list[int]) -> dict[tuple[int, str], float]:
    """The newest value (by event ts, then created ts) of every feature of ``ids``, from the parquet files."""
    import pyarrow.parquet as pq

    latest: dict[tuple[int, str], float] = {}
    for v in range(shape.views):
        names = shape.feature_names(v)
        table = pq.read_table(data_dir / f"view_{v}.parquet", filters=[(JOIN_KEY, "in", ids)],
                              columns=[JOIN_KEY, TIMESTAMP_FIELD, CREATED_FIELD, *names])
        newest: dict[int, dict[str, Any]] = {}
        for row in table.to_pylist():
            key = row[JOIN_KEY]
            seen = newest.get(key)
            order = (row[TIMESTAMP_FIELD], row[CREATED_FIELD])
            if seen is None or order > (seen[TIMESTAMP_FIELD], seen[CREATED_FIELD]):
                newest[key] = row
        for key, row in newest.items():
            latest.update({(key, name): row[name] for name in names})
    return latest


def _check_sample(store: Any, data_dir: Path, shape: Shape, entities: int, seed: int) -> dict[str, int]:
    """Read ``SAMPLE_ENTITIES`` random entities back through Feast and compare with the parquet files."""
    ids = sorted(random.Random(seed).sample(range(entities), SAMPLE_ENTITIES))
    served = store.get_online_features(features=shape.feature_refs(),
                                       entity_rows=[{JOIN_KEY: i} for i in ids]).to_dict()
    expected = _latest_rows(data_dir, shape, ids)
    values = [(key, name, served[name][row]) for v in range(shape.views) for name in shape.feature_names(v)
              for row, key in enumerate(ids)]
    return {"sample_entities": len(ids), "sample_values": len(values),
            "sample_non_null": sum(value is not None for _, _, value in values),
            "sample_matches_latest": sum(value is not None and value == expected.get((key, name))
                                         for key, name, value in values)}


def run_materialize(data_dir: Path, work: Path, redis_url: str) -> dict[str, Any]:
    """Apply online views into a fresh repo in ``work``; time materializing all of ``data_dir`` into Redis."""
    import feast
    from feast import FeatureStore

    shape = Shape.read(data_dir)
    entities = _entity_count(data_dir)
    repo_dir = _fresh_repo(work, redis_url)
    store = FeatureStore(repo_path=str(repo_dir))

    start = time.perf_counter()
    store.apply(_definitions(data_dir, shape, online=True))
    apply_seconds = time.perf_counter() - start

    start = time.perf_counter()
    store.materialize(start_date=MATERIALIZE_START, end_date=MATERIALIZE_END)
    seconds = time.perf_counter() - start

    pairs = entities * shape.views
    return {"engine": "feast", "mode": "materialize", "version": feast.__version__, "seconds": seconds,
            "views": shape.views, "entity_keys": entities, "pairs": pairs,
            "pairs_per_second": pairs / seconds,
            "apply_seconds": apply_seconds, **_redis_info(redis_url),
            **_check_sample(store, data_dir, shape, entities, seed=7)}


def _percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty list."""
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


def run_online(data_dir: Path, work: Path, redis_url: str, entities: int, iterations: int,
               seed: int) -> dict[str, Any]:
    """Time ``iterations`` in-process ``get_online_features(...).to_dict()`` calls of ``entities`` random ids."""
    import feast
    from feast import FeatureStore

    if not (work / "registry.db").exists():
        raise SystemExit(f"no registry in {work}: run the materialize mode with the same --work first")
    shape = Shape.read(data_dir)
    population = range(_entity_count(data_dir))
    _write_repo_config(work, redis_url)
    store = FeatureStore(repo_path=str(work))
    features = shape.feature_refs()
    rng = random.Random(seed)
    requests = [[{JOIN_KEY: i} for i in rng.sample(population, entities)]
                for _ in range(WARMUP_CALLS + iterations)]

    for rows in requests[:WARMUP_CALLS]:
        store.get_online_features(features=features, entity_rows=rows).to_dict()

    latencies_ms: list[float] = []
    null_values = 0
    for rows in requests[WARMUP_CALLS:]:
        start = time.perf_counter_ns()
        result = store.get_online_features(features=features, entity_rows=rows).to_dict()
        latencies_ms.append((time.perf_counter_ns() - start) / 1e6)
        null_values += sum(value is None for name in features for value in result[name.split(":", 1)[1]])

    latencies_ms.sort()
    return {"engine": "feast", "mode": "online", "version": feast.__version__, "entities": entities,
            "features": len(features), "iterations": iterations, "warmup": WARMUP_CALLS,
            "p50_ms": _percentile(latencies_ms, 0.50), "p99_ms": _percentile(latencies_ms, 0.99),
            "mean_ms": statistics.fmean(latencies_ms), "min_ms": latencies_ms[0], "max_ms": latencies_ms[-1],
            "null_values": null_values}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    historical = commands.add_parser("historical", help="time get_historical_features over DATA_DIR")
    historical.add_argument("data_dir", type=Path)
    historical.add_argument("--work", type=Path, default=None,
                            help="directory for the throwaway Feast repo (default: the system temp dir)")
    historical.add_argument("--created-cutoff", action="store_true",
                            help="pass filter_by_created_timestamp=True (drop rows created after the entity ts)")
    historical.add_argument("--spark-conf", default=None,
                            help="JSON object of Spark settings: run Feast's Spark offline store with them")
    historical.add_argument("--out", type=Path, default=None, help="write the training set here (Parquet)")
    materialize = commands.add_parser("materialize", help="time materializing all of DATA_DIR into Redis")
    online = commands.add_parser("online", help="time get_online_features against a materialized Redis")
    for sub in (materialize, online):
        sub.add_argument("data_dir", type=Path)
        sub.add_argument("--redis-url", required=True, help="redis://host:port/db of a running Redis")
        sub.add_argument("--work", type=Path, required=True,
                         help="Feast repo directory (feature_store.yaml, registry.db) shared by both modes")
    online.add_argument("--entities", type=int, default=1, help="entity ids per call (K)")
    online.add_argument("--iterations", type=int, default=1000,
                        help=f"timed calls (N), after {WARMUP_CALLS} warm-up calls")
    online.add_argument("--seed", type=int, default=0, help="seed for the random entity ids")
    args = parser.parse_args(argv)

    # Keep fd 1 for the result alone: Feast, ibis and DuckDB (native code included) write to stderr.
    sys.stdout.flush()
    result_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        data_dir = args.data_dir.resolve()
        if args.command == "historical":
            spark_conf = json.loads(args.spark_conf) if args.spark_conf else None
            report = run_historical(data_dir, args.work, args.created_cutoff, spark_conf, args.out)
        elif args.command == "materialize":
            report = run_materialize(data_dir, args.work.resolve(), args.redis_url)
        else:
            report = run_online(data_dir, args.work.resolve(), args.redis_url, args.entities, args.iterations,
                                args.seed)
    finally:
        sys.stdout.flush()
        os.dup2(result_fd, 1)
        os.close(result_fd)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
