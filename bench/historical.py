"""Offline benchmark: pitstop's point-in-time join vs Feast 0.67's DuckDB offline store, same files, same run.

    .venv/bin/python bench/historical.py                 # all three shapes, with Feast
    .venv/bin/python bench/historical.py --shapes s1 --no-feast --repeat 3

Each engine runs in its own subprocess per measurement; wall time is what the runner reports for
``get_historical_features(...).to_arrow()`` (entity rows already loaded into pandas for both), and
peak RSS is the child's maximum resident set (``os.wait4``), so the interpreter and imports count
for both. Feast runs in its own virtualenv (``bench/setup_feast.sh``) with its created-timestamp
filter on, so both compute the same leak-free join; non-null counts are compared as a sanity check.
Results are printed as a table and saved to ``bench/results/historical.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from datagen import generate  # noqa: E402

HERE = Path(__file__).parent
SHAPES = {
    "s1": {"entities": 100_000, "rows_per_entity": 10, "views": 3, "entity_rows": 1_000_000},
    "s2": {"entities": 100_000, "rows_per_entity": 10, "views": 3, "entity_rows": 10_000_000},
    "s3": {"entities": 1_000_000, "rows_per_entity": 10, "views": 1, "entity_rows": 1_000_000},
}
# Feast 0.67 figures the issue quotes for this machine class (seconds, GB), for reference only
QUOTED_FEAST = {"s1": (4.4, 1.9), "s2": (51.8, 11.7), "s3": (6.7, 1.3)}


def run_measured(cmd: list[str]) -> tuple[dict, float]:
    """Run ``cmd``; return its JSON line and its peak RSS in GB."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    stdout = proc.stdout.read()
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1]), usage.ru_maxrss / 1e6


def feast_python() -> str | None:
    try:
        out = subprocess.run(["bash", str(HERE / "setup_feast.sh")], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        print(f"Feast unavailable: {exc.stderr[-500:]}", file=sys.stderr)
        return None
    return out.stdout.strip().splitlines()[-1]


def measure(cmd: list[str], repeat: int) -> dict:
    runs = [run_measured(cmd) for _ in range(repeat)]
    secs = [r[0]["seconds"] for r in runs]
    return {"seconds": statistics.median(secs), "seconds_all": secs, "peak_gb": max(r[1] for r in runs),
            "rows": runs[0][0]["rows"], "non_null": runs[0][0].get("non_null")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="s1,s2,s3")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-feast", action="store_true")
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "historical.json")
    args = parser.parse_args()
    feast = None if args.no_feast else feast_python()
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
               "shapes": {}}
    for name in args.shapes.split(","):
        shape = SHAPES[name]
        data = generate(args.data / name, **shape)
        row = {"shape": shape}
        row["pitstop"] = measure([sys.executable, str(HERE / "pitstop_runner.py"), "historical", str(data)], args.repeat)
        if feast:
            row["feast"] = measure([feast, str(HERE / "feast_runner.py"), "historical", str(data), "--created-cutoff"],
                                   args.repeat)
        results["shapes"][name] = row
        print(json.dumps({name: row}), file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    table = Table(title="get_historical_features(...).to_arrow(): median seconds, peak RSS")
    for col in ("shape", "pitstop s", "pitstop GB", "feast s", "feast GB", "speed-up", "memory ratio", "non-null equal"):
        table.add_column(col)
    for name, row in results["shapes"].items():
        p, f = row["pitstop"], row.get("feast")
        s = row["shape"]
        label = f"{name}: E={s['entities']:,} R={s['rows_per_entity']} V={s['views']} N={s['entity_rows']:,}"
        if f:
            table.add_row(label, f"{p['seconds']:.2f}", f"{p['peak_gb']:.2f}", f"{f['seconds']:.2f}", f"{f['peak_gb']:.2f}",
                          f"{f['seconds'] / p['seconds']:.1f}x", f"{p['peak_gb'] / f['peak_gb']:.2f}",
                          str(p["non_null"] == f["non_null"]))
        else:
            q = QUOTED_FEAST[name]
            table.add_row(label, f"{p['seconds']:.2f}", f"{p['peak_gb']:.2f}", f"({q[0]})", f"({q[1]})",
                          f"{q[0] / p['seconds']:.1f}x", f"{p['peak_gb'] / q[1]:.2f}", "n/a")
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
