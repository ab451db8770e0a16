"""Where a pitstop serve worker spends its time under load: py-spy on one worker while wrk runs.

    .venv/bin/python bench/serve_profile.py                       # /features, 1 entity, feature service
    .venv/bin/python bench/serve_profile.py --case predict --entities 1 --seconds 15

Sets up the same repo, data and model as bench/serve.py (private redis-server), starts
``pitstop serve --workers 2``, drives it with ``wrk -t2 -c8`` and samples one worker with
``py-spy record --format raw`` (collapsed stacks; add --native for C frames). Prints the top
functions by cumulative share (the function is on the stack) and by self share (it is the leaf),
and keeps the collapsed stacks (--keep DIR) for a flame graph.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from datagen import generate  # noqa: E402
from serve import (  # noqa: E402
    BODIES,
    SHAPE,
    bodies_for,
    entity_lists,
    feature_refs,
    server,
    setup_pitstop,
    worker_pids,
)

from tests.integration.redis_server import RedisServer, free_port  # noqa: E402


def _function(frame: str) -> str:
    """``name (path/file.py:123)`` -> ``name (file.py)``; shortens site-packages paths."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})" if path else name


def summarize(collapsed: str, top: int) -> tuple[int, list[tuple[str, float]], list[tuple[str, float]]]:
    cumulative: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(f) for f in stack.split(";")]
        if frames and frames[0].startswith("process "):  # py-spy's --pid/--threads prefix
            frames = frames[1:]
        total += count
        for f in set(frames):
            cumulative[f] += count
        if frames:
            leaf[frames[-1]] += count
    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(f, n / total) for f, n in c.most_common(top)] if total else []
    return total, share(cumulative), share(leaf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("features", "features-list", "predict"), default="features")
    parser.add_argument("--entities", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--native", action="store_true")
    parser.add_argument("--idle", action="store_true", help="include idle (waiting) samples")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--keep", type=Path, default=None, help="copy the collapsed stacks here")
    parser.add_argument("--data", type=Path, default=HERE / ".data" / "serve")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")

    data = generate(args.data, **SHAPE)
    import json

    shape = json.loads((data / "shape.json").read_text())
    kind = {"features": "service", "features-list": "list", "predict": "predict"}[args.case]
    bodies = bodies_for(kind, entity_lists(shape["entities"], args.entities), feature_refs(shape))
    path = "/predict" if kind == "predict" else "/features"
    with tempfile.TemporaryDirectory(prefix="pitstop-serve-profile-") as tmp_name:
        tmp = Path(tmp_name)
        bodies_file = tmp / "bodies.jsonl"
        bodies_file.write_bytes(b"\n".join(bodies[:BODIES]) + b"\n")
        with RedisServer(tmp / "redis") as redis:
            setup_pitstop(data, shape, tmp / "repo", redis.url)
            port = free_port()
            cmd = [str(Path(sys.executable).parent / "pitstop"), "-r", str(tmp / "repo"), "serve", "--workers", "2",
                   "--bind", f"127.0.0.1:{port}"]
            url = f"http://127.0.0.1:{port}{path}"
            with server(cmd, f"http://127.0.0.1:{port}/ready", tmp / "serve.log") as proc:
                pids = worker_pids(proc)
                wrk = ["wrk", "-t2", "-c8", f"-d{args.seconds + 4:g}s", "--latency", "-s",
                       str(HERE / "serve_wrk.lua"), url, "--", str(bodies_file)]
                subprocess.run([*wrk[:3], "-d2s", *wrk[4:]], check=True, capture_output=True)  # warm-up
                load = subprocess.Popen(wrk, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                time.sleep(1)
                out = tmp / "stacks.txt"
                spy = [py_spy, "record", "--format", "raw", "-o", str(out), "-r", str(args.rate),
                       "-d", str(int(args.seconds)), "-p", str(pids[0]), "--nonblocking"]
                if args.native:
                    spy.append("--native")
                if args.idle:
                    spy.append("--idle")
                subprocess.run(spy, check=True, capture_output=True)
                wrk_out, _ = load.communicate()
        collapsed = out.read_text()
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(out, args.keep / f"stacks-{args.case}-{args.entities}.txt")
    total, cumulative, leaf = summarize(collapsed, args.top)
    print(f"{args.case}, {args.entities} entities: {total} samples of worker {pids[0]} (of {pids})")
    print("wrk:", wrk_out.strip().splitlines()[-1])
    print("\ncumulative share (function on the stack):")
    for f, s in cumulative:
        print(f"  {s:6.1%}  {f}")
    print("\nself share (leaf frame):")
    for f, s in leaf:
        print(f"  {s:6.1%}  {f}")


if __name__ == "__main__":
    main()
