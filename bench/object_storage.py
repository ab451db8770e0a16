"""Training sets from object storage vs local disk (issue 13), same data, same run.

    .venv/bin/python bench/object_storage.py            # shape s1, 3 repeats each, ~3 minutes

Data: bench/datagen.py shape s1 (100k entities x 10 rows x 3 views x 10 features, 1M entity rows).
The three view files are uploaded to a private SeaweedFS (S3 API on 127.0.0.1, the server the tests
use) and read through ``s3://`` ParquetSource paths. Cases, each in its own process:
  * local: the files on local disk (today's path);
  * s3 cold: an empty host cache, so every file is listed, HEADed and downloaded first;
  * s3 warm: the cache filled by an earlier run (listing and one HEAD per file, no download).
Prints median seconds and the ratio to local; target (issue 13): s3 <= 1.5x local.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from datagen import generate  # noqa: E402
from historical import SHAPES  # noqa: E402
from pitstop_runner import make_repo  # noqa: E402

from tests.integration.s3_server import S3Server  # noqa: E402

RUN = """
import json, sys, time
import pyarrow.parquet as pq
from pitstop import FeatureStore
repo, entities, refs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
store = FeatureStore(repo)
entity_df = pq.read_table(entities).to_pandas()
t0 = time.perf_counter()
table = store.get_historical_features(entity_df, refs).to_arrow()
print(json.dumps({"seconds": time.perf_counter() - t0, "rows": table.num_rows,
                  "non_null": table.num_rows - table.column("f0_0").null_count}))
"""


def run_case(repo: Path, entities: Path, refs: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", RUN, str(repo), str(entities), json.dumps(refs)],
                         capture_output=True, text=True, env={**os.environ, **env}, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="s1")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "object_storage.json")
    args = parser.parse_args()
    data = generate(args.data / args.shape, **SHAPES[args.shape])
    shape = json.loads((data / "shape.json").read_text())
    results: dict = {"shape": args.shape, "repeat": args.repeat, "cases": {}}
    with tempfile.TemporaryDirectory(prefix="pitstop-s3-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with S3Server(tmp / "s3") as server:
            from pyarrow import fs

            s3 = fs.S3FileSystem(access_key=server.access_key, secret_key=server.secret_key,
                                 endpoint_override=f"127.0.0.1:{server.port}", scheme="http", region="us-east-1")
            t0 = time.perf_counter()
            for v in range(shape["views"]):
                fs.copy_files(str(data / f"view_{v}.parquet"), f"{server.bucket}/s1/view_{v}.parquet",
                              destination_filesystem=s3)
            results["upload_seconds"] = time.perf_counter() - t0
            local_repo, s3_repo = tmp / "local", tmp / "s3repo"
            local_repo.mkdir()
            s3_repo.mkdir()
            refs = make_repo(data, shape, local_repo)
            make_repo(data, shape, s3_repo)
            defs = (s3_repo / "defs.py").read_text()
            for v in range(shape["views"]):
                defs = defs.replace(str(data / f"view_{v}.parquet"), f"s3://{server.bucket}/s1/view_{v}.parquet")
            (s3_repo / "defs.py").write_text(defs)
            cache = tmp / "cache"
            (s3_repo / "pitstop.yaml").write_text((s3_repo / "pitstop.yaml").read_text()
                                                  + f"storage:\n  cache_dir: {cache}\n")
            env = {**server.env, "AWS_ENDPOINT_URL": server.endpoint}
            subprocess.run([sys.executable, "-m", "pitstop.cli", "-r", str(local_repo), "apply"], check=True,
                           capture_output=True, env={**os.environ, **env})
            subprocess.run([sys.executable, "-m", "pitstop.cli", "-r", str(s3_repo), "apply"], check=True,
                           capture_output=True, env={**os.environ, **env})
            entities = data / "entity_rows.parquet"
            for _ in range(args.repeat):
                for case in ("local", "s3 cold", "s3 warm"):
                    if case == "s3 cold":
                        shutil.rmtree(cache, ignore_errors=True)
                    repo = local_repo if case == "local" else s3_repo
                    got = run_case(repo, entities, refs, env)
                    results["cases"].setdefault(case, []).append(got)
                    print(f"  {case}: {got['seconds']:.2f} s", file=sys.stderr, flush=True)
    local = statistics.median(r["seconds"] for r in results["cases"]["local"])
    table = Table(title=f"Training set {args.shape} (1M entity rows x 30 features): local disk vs S3 (SeaweedFS, "
                        f"loopback), median of {args.repeat}")
    for col in ("source files", "seconds", "vs local", "rows", "non-null f0_0"):
        table.add_column(col)
    for case, runs in results["cases"].items():
        med = statistics.median(r["seconds"] for r in runs)
        results.setdefault("median", {})[case] = med
        table.add_row(case, f"{med:.2f}", f"{med / local:.2f}x", f"{runs[0]['rows']:,}", f"{runs[0]['non_null']:,}")
    same = len({(r["rows"], r["non_null"]) for runs in results["cases"].values() for r in runs}) == 1
    Console(width=150).print(table)
    print(f"upload of the 3 files: {results['upload_seconds']:.2f} s; identical row and non-null counts in every "
          f"case: {same}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
