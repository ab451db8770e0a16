"""Serving benchmark (issue 4): pitstop serve vs feast serve over HTTP on loopback, same data.

    .venv/bin/python bench/serve.py                    # pitstop and Feast, ~10 minutes
    .venv/bin/python bench/serve.py --no-feast --duration 5

Data: bench/datagen.py, 100k entities x 2 rows per entity x 3 views x 10 float64 features (30
features), materialized by each engine into its own private redis-server. pitstop serves a repo
written by pitstop_runner.make_repo plus a FeatureService ``bench_svc`` over the 30 features and a
scikit-learn LogisticRegression registered on it as ``bench_model@production``; Feast serves the
repo feast_runner.py materializes, plus the same FeatureService (serve_feast.py).

Cases: POST /features (pitstop) or /get-online-features (Feast) with 1 and 50 entities x 30
features; POST /predict with 1 and 50 entities (pitstop only; Feast has no /predict). Entity ids are
seeded random existing ids, 1000 pre-serialized bodies per case, identical ids for both engines.

Modes, each after a warm-up:
  (a) closed loop: ``wrk -t2 -c8 -d<duration>s --latency`` (bench/serve_wrk.lua), flat out;
  (b) open loop: bench/serve_load.py at a fixed rate (500/s), latency from each request's due time.

Servers: pitstop serve --workers 2 (gunicorn + uvicorn workers, no recycling, each worker on its own
SO_REUSEPORT socket, blocking work on 4 threads per worker, every request carrying an API key);
with --variants also auth off (``noauth``: no credentials) and an OIDC JWT from a local issuer
(``jwt``) instead of the key, which show what auth costs; and the same server
with one listening socket shared by the workers (``shared``: gunicorn's default accept) and with the
online read and model call run on the event loop (``inline``: the code before issue 10, which shows
the cost of moving work off the loop);
feast serve defaults (1 worker, recycling after 1000 +- 50 requests, access log on) and tuned
(--workers 2 --max-requests 0 --no-access-log), with an explicit feature list or a feature
service name in the body. Any non-2xx answer or connection error is counted and reported; a
run with errors is flagged and its throughput counts only successful answers.

Keep-alive connections per worker are sampled during every run (``connections_per_worker``).

Results: a table on stdout, bench/results/serve.json, and (with --markdown) a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from datagen import generate  # noqa: E402
from historical import feast_python, run_measured  # noqa: E402
from pitstop_runner import make_repo  # noqa: E402
from serve_load import open_loop  # noqa: E402

from tests.integration.redis_server import RedisServer, free_port  # noqa: E402
from tests.support.jwks import LocalIssuer  # noqa: E402

SHAPE = {"entities": 100_000, "rows_per_entity": 2, "views": 3, "entity_rows": 1000}
SERVICE = "bench_svc"
MODEL = "bench_model"
JOIN_KEY = "entity_id"
BODIES = 1000
SEED = 4
ENTITY_COUNTS = (1, 50)
WRK_THREADS, WRK_CONNECTIONS = 2, 8
OPEN_LOOP_CONNECTIONS = 16

PITSTOP_VARIANTS = {  # name: (environment of the server, cases)
    "shared": ({"PITSTOP_SERVING_REUSE_PORT": "false"}, [
        ("features_1", "/features", "service", 1, "ab"),
        ("features_50", "/features", "service", 50, "b"),
        ("predict_1", "/predict", "predict", 1, "b"),
    ]),
    "inline": ({"PITSTOP_SERVING_THREADS": "0"}, [
        ("features_1", "/features", "service", 1, "ab"),
        ("predict_1", "/predict", "predict", 1, "ab"),
    ]),
    # the cost of auth: the main run sends an API key; these send nothing (auth off) or an OIDC JWT
    "noauth": ({"PITSTOP_AUTH_ENABLED": "false"}, [
        ("features_1", "/features", "service", 1, "ab"),
        ("predict_1", "/predict", "predict", 1, "b"),
    ]),
    "jwt": ({}, [
        ("features_1", "/features", "service", 1, "ab"),
        ("predict_1", "/predict", "predict", 1, "b"),
    ]),
    # the cost of the prediction log: two fresh servers, the same cases, log off and on (the default)
    "nolog": ({"PITSTOP_MONITORING_LOG_ENABLED": "false"}, [
        ("predict_1", "/predict", "predict", 1, "ab"),
    ]),
    "log": ({}, [
        ("predict_1", "/predict", "predict", 1, "ab"),
    ]),
}

FEATURE_SERVICE_DEF = f"""
from pitstop import FeatureService

{SERVICE} = FeatureService("{SERVICE}", features=[{{views}}])
"""


# ---------------------------------------------------------------- setup


def feature_refs(shape: dict) -> list[str]:
    return [f"view_{v}:f{v}_{j}" for v in range(shape["views"]) for j in range(shape["features_per_view"])]


def setup_pitstop(data: Path, shape: dict, work: Path, redis_url: str) -> dict:
    """Write, apply and materialize the repo; register a model over the feature service."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from pitstop import FeatureStore

    work.mkdir(parents=True, exist_ok=True)
    refs = make_repo(data, shape, work, redis_url)
    views = ", ".join(f"view_{v}" for v in range(shape["views"]))
    with (work / "defs.py").open("a") as f:
        f.write(FEATURE_SERVICE_DEF.replace("{views}", views))
    store = FeatureStore(work)
    try:
        store.apply()
        t0 = time.perf_counter()
        outcomes = store.materialize(datetime(2024, 12, 31, tzinfo=UTC), datetime(2025, 4, 2, tzinfo=UTC))
        seconds = time.perf_counter() - t0
        columns = [r.split(":")[1] for r in refs]
        rng = np.random.default_rng(SEED)
        x = pd.DataFrame(rng.standard_normal((2000, len(columns))), columns=columns)
        y = (x.to_numpy() @ rng.standard_normal(len(columns)) + rng.standard_normal(2000) > 0).astype(int)
        model = LogisticRegression(max_iter=500).fit(x, y)
        version = store.models.register(MODEL, model, "sklearn", feature_service=SERVICE, alias="production",
                                        serving={"predict_method": "predict_proba"})
    finally:
        store.close()
    return {"materialize_seconds": seconds, "pairs": sum(o.rows for o in outcomes),
            "model_version": version.version, "signature_len": len(version.signature)}


def setup_feast(feast_py: str, data: Path, work: Path, redis_url: str) -> dict:
    mat, peak = run_measured([feast_py, str(HERE / "feast_runner.py"), "materialize", str(data),
                              "--redis-url", redis_url, "--work", str(work)])
    svc, _ = run_measured([feast_py, str(HERE / "serve_feast.py"), str(work), SERVICE])
    return {"materialize_seconds": mat["seconds"], "pairs": mat["pairs"], "sample_matches_latest":
            mat["sample_matches_latest"], "sample_values": mat["sample_values"], "feature_service": svc,
            "peak_gb": peak}


# ---------------------------------------------------------------- bodies


def entity_lists(entities: int, k: int) -> list[list[int]]:
    rng = random.Random(SEED * 1000 + k)
    return [rng.sample(range(entities), k) for _ in range(BODIES)]


def bodies_for(kind: str, ids: list[list[int]], refs: list[str]) -> list[bytes]:
    out = []
    for row in ids:
        if kind == "service":
            body: dict[str, Any] = {"feature_service": SERVICE, "entities": {JOIN_KEY: row}}
        elif kind == "list":
            body = {"features": refs, "entities": {JOIN_KEY: row}}
        else:  # predict
            body = {"model": MODEL, "entities": {JOIN_KEY: row}}
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return out


def bench_key(repo: Path) -> str:
    """An API key for the benchmark client (features:read, predict, metrics), never written to the results."""
    from pitstop import FeatureStore
    from pitstop.auth.keyring import ApiKeys

    with FeatureStore(repo) as store:
        return ApiKeys(store.registry).create("bench-client", ["features:read", "predict", "metrics"]).secret


# ---------------------------------------------------------------- servers


def http(method: str, url: str, body: bytes | None = None, timeout: float = 10.0,
         authorization: str | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@contextmanager
def server(cmd: list[str], ready_url: str, log: Path, cwd: Path | None = None, timeout: float = 90.0,
           env: dict[str, str] | None = None):
    """Run ``cmd`` in its own process group until ``ready_url`` answers 200; stop the group on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True,
                                env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            try:
                if http("GET", ready_url, timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{ready_url} not ready after {timeout}s:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        time.sleep(3.0)  # /ready answered from the first worker up: let the other workers finish booting
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def worker_pids(proc: subprocess.Popen) -> list[int]:
    """The gunicorn workers (children of the master, which may be a child of a CLI wrapper)."""
    out = subprocess.run(["ps", "-o", "pid=,ppid=", "-g", str(proc.pid)], capture_output=True, text=True).stdout
    pairs = [tuple(int(x) for x in line.split()) for line in out.splitlines() if line.strip()]
    parents = {ppid for _, ppid in pairs}
    return [pid for pid, _ in pairs if pid not in parents and pid != proc.pid]


# ---------------------------------------------------------------- load


def log_counters(base: str, authorization: str) -> tuple[float, float]:
    """(predictions served, prediction-log rows dropped) from the server's /metrics, summed over workers."""
    status, text = http("GET", base + "/metrics", authorization=authorization)
    if status != 200:
        raise RuntimeError(f"GET /metrics answered {status}: {text[:300]!r}")
    body = text.decode()

    def total(pattern: str) -> float:
        return sum(float(v) for v in re.findall(pattern, body, re.M))

    return (total(rf'^pitstop_predictions_total{{model="{MODEL}",version="\d+"}} ([0-9.e+]+)'),
            total(r"^pitstop_prediction_log_dropped_total ([0-9.e+]+)"))


def prediction_log_check(repo: Path, served: float, dropped: float, log_path: str = "data/prediction_log") -> dict:
    """After the server stopped (SIGTERM): every served prediction is a log row or a counted drop."""
    from deltalake import DeltaTable

    rows = DeltaTable(str(repo / log_path / MODEL)).to_pyarrow_dataset().count_rows()
    return {"served": int(served), "logged": int(rows), "dropped": int(dropped), "lost": int(served - rows - dropped)}


def run_wrk(url: str, bodies_file: Path, seconds: float, authorization: str | None = None) -> dict:
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds:g}s", "--latency", "--timeout", "10s",
           "-s", str(HERE / "serve_wrk.lua"), url, "--", str(bodies_file)]
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, "BENCH_AUTHORIZATION": authorization or ""})
    stdout, stderr = proc.stdout, proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {stderr[-2000:]}")
    line = next(ln for ln in reversed(stdout.splitlines()) if ln.startswith("{"))
    raw = json.loads(line)
    duration = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in raw if k.startswith("errors_"))
    ok = raw["requests"] - raw["errors_status"]
    out = {"mode": "closed_loop", "threads": WRK_THREADS, "connections": WRK_CONNECTIONS, "duration_s": duration,
           "requests": raw["requests"], "completed_ok": ok, "errors": errors, "non_2xx": raw["errors_status"],
           "rps": ok / duration, "p50_ms": raw["p50_us"] / 1000, "p90_ms": raw["p90_us"] / 1000,
           "p99_ms": raw["p99_us"] / 1000, "p999_ms": raw["p999_us"] / 1000, "max_ms": raw["max_us"] / 1000,
           "mean_ms": raw["mean_us"] / 1000, "wrk": raw}
    return out


def _wrk_cpu(url: str, bodies_file: Path, seconds: float, authorization: str | None = None) -> dict:
    """run_wrk, with wrk's CPU time (user + system) from the resource usage of reaped children."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = run_wrk(url, bodies_file, seconds, authorization)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out["loadgen_cpu_s"] = cpu
    out["loadgen_cpu_share"] = cpu / out["duration_s"]
    return out


def sanity(url: str, body: bytes, kind: str, authorization: str | None = None) -> dict:
    """One request before the load: it must answer 200 with the expected shape."""
    status, raw = http("POST", url, body, authorization=authorization)
    if status != 200:
        raise RuntimeError(f"{url} answered {status}: {raw[:500]!r}")
    data = json.loads(raw)
    if kind == "predict":
        return {"predictions": len(data["predictions"]), "model_version": data["version"]}
    names = data["metadata"]["feature_names"]
    values = {n: r["values"] for n, r in zip(names, data["results"], strict=True)}
    statuses = [s for r in data["results"] for s in r["statuses"]]
    return {"feature_names": len(names), "present": sum(s == "PRESENT" for s in statuses),
            "statuses": len(statuses), "values": values}


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int, children: bool = False) -> float:
    """CPU seconds (user + system) of a process, plus its reaped children's when ``children``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / _TICK


def server_cpu(group: int, redis_pid: int) -> float:
    """CPU seconds of a server's process group (workers recycled meanwhile included) and of its redis-server."""
    out = subprocess.run(["ps", "-o", "pid=", "-g", str(group)], capture_output=True, text=True).stdout
    pids = [int(x) for x in out.split()]
    return sum(_proc_cpu(pid, children=pid == group) for pid in pids) + _proc_cpu(redis_pid)


def redis_pid(redis: RedisServer) -> int:
    """The redis-server's pid (RedisServer keeps its Popen private; read it without changing that class)."""
    proc = getattr(redis, "_proc", None)
    return proc.pid if proc is not None else -1


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@contextmanager
def cpu_meter(out: dict, cpu_pids: tuple[int, int] | None):
    """Record the server's CPU per successful request and how busy the whole machine was."""
    busy0, total0 = machine_busy()
    server0 = server_cpu(*cpu_pids) if cpu_pids else 0.0
    yield
    busy1, total1 = machine_busy()
    out["machine_busy_share"] = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
    if cpu_pids:
        seconds = server_cpu(*cpu_pids) - server0
        out["server_cpu_s"] = seconds
        out["server_cpu_ms_per_ok"] = 1000 * seconds / out["completed_ok"] if out["completed_ok"] else None


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def connections_per_worker(group: int, port: int) -> list[int]:
    """Established connections to ``port`` held by each worker of the server's process group (sorted)."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "01" and int(f[1].rsplit(":", 1)[1], 16) == port:  # ESTABLISHED, server side
                established.add(f[9])
    out = subprocess.run(["ps", "-o", "pid=", "-g", str(group)], capture_output=True, text=True).stdout
    workers = [int(pid) for pid in out.split() if int(pid) != group]  # the group leader is the master
    return sorted((len(_socket_inodes(pid) & established) for pid in workers), reverse=True)


@contextmanager
def conn_meter(out: dict, group: int | None, port: int | None):
    """Sample the keep-alive connections per worker every 0.5 s; keep the most uneven sample."""
    if group is None or port is None:
        yield
        return
    stop = threading.Event()
    samples: list[list[int]] = []

    def sample() -> None:
        while not stop.wait(0.5):
            samples.append(connections_per_worker(group, port))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        samples = [s for s in samples if s]  # empty while a recycled worker is replaced
        if samples:
            out["connections_per_worker"] = max(samples, key=lambda c: (max(c) - min(c), sum(c)))


def measure(url: str, bodies: list[bytes], bodies_file: Path, modes: str, args: argparse.Namespace,
            cpu_pids: tuple[int, int] | None = None, authorization: str | None = None) -> dict:
    out: dict = {}
    port = int(url.split(":")[2].split("/")[0])
    group = cpu_pids[0] if cpu_pids else None
    if "a" in modes:
        run_wrk(url, bodies_file, args.warmup, authorization)
        extra: dict = {}
        with cpu_meter(extra, cpu_pids), conn_meter(extra, group, port):
            out["a"] = _wrk_cpu(url, bodies_file, args.duration, authorization)
            extra["completed_ok"] = out["a"]["completed_ok"]
        out["a"].update({k: v for k, v in extra.items() if k != "completed_ok"})
    if "b" in modes:
        open_loop(url, bodies, rate=args.rate, duration=args.warmup, connections=OPEN_LOOP_CONNECTIONS,
                  authorization=authorization)
        extra = {}
        with cpu_meter(extra, cpu_pids), conn_meter(extra, group, port):
            out["b"] = open_loop(url, bodies, rate=args.rate, duration=args.duration,
                                 connections=OPEN_LOOP_CONNECTIONS, authorization=authorization)
            extra["completed_ok"] = out["b"]["completed_ok"]
        out["b"].update({k: v for k, v in extra.items() if k != "completed_ok"})
    for mode, r in out.items():
        flag = f" ERRORS={r['errors']}" if r["errors"] else ""
        rate = r.get("rps", r.get("achieved_rps"))
        cpu = r.get("server_cpu_ms_per_ok")
        cpu_text = f"  server CPU {cpu:.2f} ms/req" if cpu else ""
        conns = r.get("connections_per_worker")
        print(f"    ({mode}) {rate:8.0f} req/s  p50 {r['p50_ms']:.2f}  p99 {r['p99_ms']:.2f}  "
              f"max {r['max_ms']:.1f} ms{flag}{cpu_text}  machine busy {r['machine_busy_share']:.0%}"
              f"  connections/worker {conns}", file=sys.stderr, flush=True)
    return out


def run_cases(name: str, base: str, cases: list[tuple[str, str, str, int, str]], bodies: dict, tmp: Path,
              args: argparse.Namespace, cpu_pids: tuple[int, int] | None = None,
              authorization: str | None = None) -> dict:
    """cases: (case key, endpoint path, body kind, entities, modes); ``authorization``: the header sent."""
    results: dict = {}
    for key, path, kind, k, modes in cases:
        url = base + path
        case_bodies = bodies[(kind, k)]
        bodies_file = tmp / f"{name}-{key}.jsonl"
        bodies_file.write_bytes(b"\n".join(case_bodies) + b"\n")
        print(f"  {name} {key}", file=sys.stderr, flush=True)
        check = sanity(url, case_bodies[0], kind, authorization)
        results[key] = {"endpoint": path, "body": kind, "entities": k, "check": {
            c: v for c, v in check.items() if c != "values"}, **measure(url, case_bodies, bodies_file, modes, args, cpu_pids,
                                                                  authorization)}
        results[key]["_values"] = check.get("values")
    return results


# ---------------------------------------------------------------- report


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def code_state() -> dict:
    """The commit measured, and pitstop/ files that differ from it (the server code is edited concurrently)."""
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {"commit": git("rev-parse", "--short", "HEAD"), "subject": git("log", "-1", "--format=%s"),
            "pitstop_uncommitted": git("status", "--porcelain", "--", "pitstop").splitlines()}


def machine() -> dict:
    free = subprocess.run(["free", "-g"], capture_output=True, text=True).stdout
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return {"nproc": os.cpu_count(), "cpu": cpu, "free_g": free, "python": platform.python_version(),
            "platform": platform.platform(), "wrk": (wrk.stdout or wrk.stderr).splitlines()[0]}


def fmt(r: dict | None, field: str, digits: int = 2) -> str:
    if not r:
        return "n/a"
    value = r.get(field)
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if field in ("rps", "achieved_rps") else f"{value:.{digits}f}"


VARIANTS = [  # (label, results key)
    ("pitstop, 2 workers, feature service", "pitstop"),
    ("pitstop, 2 workers, feature list", "pitstop_list"),
    ("pitstop, one shared listening socket", "pitstop_shared"),
    ("pitstop, work on the event loop", "pitstop_inline"),
    ("pitstop, auth off (no credentials)", "pitstop_noauth"),
    ("pitstop, OIDC JWT instead of an API key", "pitstop_jwt"),
    ("pitstop, prediction log off", "pitstop_nolog"),
    ("pitstop, prediction log on (fresh server)", "pitstop_log"),
    ("pitstop, prediction log off (second server)", "pitstop_nolog2"),
    ("pitstop, prediction log on (second server)", "pitstop_log2"),
    ("Feast tuned, 2 workers, feature list", "feast_tuned"),
    ("Feast tuned, 2 workers, feature service", "feast_tuned_service"),
    ("Feast defaults, 1 worker, feature list", "feast_default"),
]
CASES = [("features_1", "/features 1"), ("features_50", "/features 50"),
         ("predict_1", "/predict 1"), ("predict_50", "/predict 50")]


def table_rows(results: dict) -> list[list[str]]:
    rows = []
    tuned = results["runs"].get("feast_tuned", {})
    for case, label in CASES:
        for mode in ("a", "b"):
            for vlabel, variant in VARIANTS:
                runs = results["runs"].get(variant)
                if runs is None:
                    continue
                r = runs.get(case, {}).get(mode)
                if r is None:
                    if variant == "feast_tuned" and case.startswith("predict"):
                        rows.append([label, f"({mode})", "Feast (no /predict)", *["n/a"] * 7, ""])
                    continue
                rate_field = "rps" if mode == "a" else "achieved_rps"
                ratio = ""
                base = tuned.get(case, {}).get(mode)
                if variant == "pitstop" and base:
                    ratio = (f"{r[rate_field] / base[rate_field]:.1f}x req/s, p99 {r['p99_ms'] / base['p99_ms']:.2f}x"
                             if mode == "a" else f"p99 {r['p99_ms'] / base['p99_ms']:.2f}x")
                rate = fmt(r, rate_field)
                if mode == "b" and r[rate_field] < 0.98 * results["config"]["rate"]:
                    rate += " (overloaded)"  # below the offered rate: latency is the growing backlog
                conns = "/".join(str(c) for c in r.get("connections_per_worker", [])) or "n/a"
                rows.append([label, f"({mode})", vlabel, rate, fmt(r, "p50_ms"), fmt(r, "p99_ms"),
                             fmt(r, "max_ms", 1), str(r["errors"]), fmt(r, "server_cpu_ms_per_ok"), conns, ratio])
    return rows


HEADER = ["request", "mode", "server", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "server CPU ms/req",
          "connections/worker", "pitstop/Feast tuned"]


def targets(results: dict) -> list[dict]:
    runs = results["runs"]
    p = runs.get("pitstop", {})
    f = runs.get("feast_tuned", {})
    out = []

    def get(d: dict, case: str, mode: str) -> dict | None:
        return d.get(case, {}).get(mode)

    a = get(p, "features_1", "a")
    fa = get(f, "features_1", "a")
    if a:
        ratio = a["rps"] / fa["rps"] if fa else None
        met = a["errors"] == 0 and a["p99_ms"] <= 10 and ratio is not None and ratio >= 2
        out.append({"target": "(a) /features 1 entity, feature service: >= 2x Feast tuned req/s with p99 <= 10 ms",
                    "value": f"{ratio:.2f}x, p99 {a['p99_ms']:.2f} ms" if ratio else f"p99 {a['p99_ms']:.2f} ms",
                    "met": met if ratio is not None else None})
    for case, limit in (("features_1", 2.0), ("features_50", 8.0), ("predict_1", 5.0)):
        b = get(p, case, "b")
        if b:
            out.append({"target": f"(b) {case.replace('_', ' ')} entit{'y' if case.endswith('_1') else 'ies'} "
                                  f"at {results['config']['rate']:g}/s: p99 <= {limit:g} ms",
                        "value": f"p99 {b['p99_ms']:.2f} ms, errors {b['errors']}",
                        "met": b["errors"] == 0 and b["p99_ms"] <= limit})
    off = runs.get("pitstop_noauth", {})
    for label, variant in (("API key", p), ("OIDC JWT", runs.get("pitstop_jwt", {}))):
        b, b0 = get(variant, "features_1", "b"), get(off, "features_1", "b")
        if b and b0:
            extra = b["p99_ms"] - b0["p99_ms"]
            out.append({"target": f"(b) {label} vs auth off, /features 1 entity at {results['config']['rate']:g}/s: "
                                  "p99 cost <= 0.3 ms",
                        "value": f"p99 {b['p99_ms']:.2f} vs {b0['p99_ms']:.2f} ms ({extra:+.2f} ms)",
                        "met": extra <= 0.3})
        a, a0 = get(variant, "features_1", "a"), get(off, "features_1", "a")
        if a and a0:
            share = a["rps"] / a0["rps"]
            out.append({"target": f"(a) {label} vs auth off, /features 1 entity: throughput >= 95%",
                        "value": f"{a['rps']:,.0f} vs {a0['rps']:,.0f} req/s ({share:.1%})", "met": share >= 0.95})
    # the last log-off/log-on pair measured (fresh servers running the same cases), else the main server
    nolog = runs.get("pitstop_nolog2") or runs.get("pitstop_nolog", {})
    logged = runs.get("pitstop_log2") or runs.get("pitstop_log") or p
    b, b0 = get(logged, "predict_1", "b"), get(nolog, "predict_1", "b")
    if b and b0:
        extra = b["p99_ms"] - b0["p99_ms"]
        out.append({"target": f"(b) prediction log on vs off, /predict 1 entity at {results['config']['rate']:g}/s: "
                              "p99 cost <= 0.2 ms",
                    "value": f"p99 {b['p99_ms']:.2f} vs {b0['p99_ms']:.2f} ms ({extra:+.2f} ms)", "met": extra <= 0.2})
    a, a0 = get(logged, "predict_1", "a"), get(nolog, "predict_1", "a")
    if a and a0:
        share = a["rps"] / a0["rps"]
        out.append({"target": "(a) prediction log on vs off, /predict 1 entity: throughput >= 95%",
                    "value": f"{a['rps']:,.0f} vs {a0['rps']:,.0f} req/s ({share:.1%})", "met": share >= 0.95})
    for key, label in (("prediction_log", "main server"), ("prediction_log_log", "log-on server"),
                       ("prediction_log_log2", "second log-on server")):
        check = results.get(key)
        if check:
            out.append({"target": f"prediction log, {label}: 0 predictions lost (logged + counted drops = served, "
                                  "after SIGTERM)",
                        "value": f"served {check['served']:,}, logged {check['logged']:,}, "
                                 f"dropped {check['dropped']:,}, lost {check['lost']:,}", "met": check["lost"] == 0})
    return out


def compare_values(results: dict) -> dict:
    """Do pitstop and Feast return the same feature values for the first body of each case?"""
    out = {}
    p = results["runs"].get("pitstop", {})
    f = results["runs"].get("feast_tuned", {})
    for case in ("features_1", "features_50"):
        pv, fv = p.get(case, {}).get("_values"), f.get(case, {}).get("_values")
        if pv and fv:
            names = [n for n in pv if n != JOIN_KEY]
            same = sum(pv[n] == fv.get(n) for n in names)
            out[case] = {"columns": len(names), "equal_columns": same}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-feast", action="store_true")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up before each run")
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop rate of mode (b), requests/s")
    parser.add_argument("--skip-main", action="store_true", help="only the --variants servers (no main pitstop run)")
    parser.add_argument("--variants", default="shared,inline,noauth,jwt,nolog,log",
                        help="extra pitstop servers to measure, comma-separated: shared (one listening socket), "
                             "inline (work on the event loop); '' for none")
    parser.add_argument("--feast-default", action=argparse.BooleanOptionalAction, default=True,
                        help="also run feast serve with its defaults")
    parser.add_argument("--data", type=Path, default=HERE / ".data" / "serve")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "serve.json")
    parser.add_argument("--markdown", action="store_true", help="also print the table as markdown")
    parser.add_argument("--report", type=Path, default=None, help="only print the tables of a saved results file")
    args = parser.parse_args()
    if args.report:
        report(json.loads(args.report.read_text()), args.markdown)
        return
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)

    results: dict = {"machine": machine(), "code": code_state(), "loadavg_before": loadavg(), "started": datetime.now(UTC).isoformat(),
                     "config": {"shape": SHAPE, "duration_s": args.duration, "warmup_s": args.warmup,
                                "rate": args.rate, "wrk": f"-t{WRK_THREADS} -c{WRK_CONNECTIONS}",
                                "open_loop_connections": OPEN_LOOP_CONNECTIONS, "bodies_per_case": BODIES,
                                "command": " ".join([Path(sys.executable).name, *sys.argv])},
                     "setup": {}, "runs": {}}
    feast_py = None if args.no_feast else feast_python()
    data = generate(args.data, **SHAPE)
    shape = json.loads((data / "shape.json").read_text())
    refs = feature_refs(shape)
    bodies = {}
    for k in ENTITY_COUNTS:
        ids = entity_lists(shape["entities"], k)
        for kind in ("service", "list", "predict"):
            bodies[(kind, k)] = bodies_for(kind, ids, refs)

    pitstop_bin = str(Path(sys.executable).parent / "pitstop")
    with tempfile.TemporaryDirectory(prefix="pitstop-serve-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with RedisServer(tmp / "redis-pitstop") as redis:
            print("pitstop: materialize + register model", file=sys.stderr, flush=True)
            results["setup"]["pitstop"] = setup_pitstop(data, shape, tmp / "pitstop-repo", redis.url)
            key_header = f"Bearer {bench_key(tmp / 'pitstop-repo')}"  # auth is on, as users run it
            port = free_port()
            cmd = [pitstop_bin, "-r", str(tmp / "pitstop-repo"), "serve", "--workers", "2",
                   "--bind", f"127.0.0.1:{port}"]
            results["config"]["pitstop_serve"] = " ".join(["pitstop", *cmd[1:]])
            base = f"http://127.0.0.1:{port}"
            with server(cmd, base + "/ready", tmp / "pitstop.log") if not args.skip_main else nullcontext() as proc:
                if proc is None:
                    served = dropped = 0.0
                else:
                    results["setup"]["pitstop"]["workers"] = len(worker_pids(proc))
                    cpu_pids = (proc.pid, redis_pid(redis))
                    results["runs"]["pitstop"] = run_cases("pitstop", base, [
                        ("features_1", "/features", "service", 1, "ab"),
                        ("features_50", "/features", "service", 50, "ab"),
                        ("predict_1", "/predict", "predict", 1, "ab"),
                        ("predict_50", "/predict", "predict", 50, "ab"),
                    ], bodies, tmp, args, cpu_pids, key_header)
                    results["runs"]["pitstop_list"] = run_cases("pitstop_list", base, [
                        ("features_1", "/features", "list", 1, "a"),
                        ("features_50", "/features", "list", 50, "a"),
                    ], bodies, tmp, args, cpu_pids, key_header)
                    served, dropped = log_counters(base, key_header)
            if not args.skip_main:
                results["prediction_log"] = prediction_log_check(tmp / "pitstop-repo", served, dropped)
            issuer = LocalIssuer()
            for variant in filter(None, args.variants.split(",")):
                # "log2" is "log" again on a fresh server (the first server after setup runs slower)
                env, cases = PITSTOP_VARIANTS[variant.rstrip("0123456789")]
                log_path = f"data/prediction_log_{variant}"  # each server's log apart, for the loss check
                env = {**env, "PITSTOP_MONITORING_LOG_PATH": log_path}
                authorization: str | None = key_header
                if variant == "noauth":
                    authorization = None
                elif variant == "jwt":
                    env = {**env, "PITSTOP_AUTH_OIDC_ISSUER": issuer.url, "PITSTOP_AUTH_OIDC_AUDIENCE": "pitstop",
                           "PITSTOP_AUTH_OIDC_JWKS_URL": issuer.jwks_url}
                    authorization = f"Bearer {issuer.token(scope='features:read predict', expires_in=3600)}"
                port = free_port()
                cmd = [pitstop_bin, "-r", str(tmp / "pitstop-repo"), "serve", "--workers", "2",
                       "--bind", f"127.0.0.1:{port}"]
                results["config"][f"pitstop_{variant}_serve"] = " ".join(
                    [*(f"{k}={v}" for k, v in env.items()), "pitstop", *cmd[1:]])
                base = f"http://127.0.0.1:{port}"
                with server(cmd, base + "/ready", tmp / f"pitstop-{variant}.log", env=env) as proc:
                    results["runs"][f"pitstop_{variant}"] = run_cases(f"pitstop_{variant}", base, cases, bodies,
                                                                      tmp, args, (proc.pid, redis_pid(redis)),
                                                                      authorization)
                    if variant.startswith("log"):
                        served, dropped = log_counters(base, key_header)
                if variant.startswith("log"):
                    results[f"prediction_log_{variant}"] = prediction_log_check(tmp / "pitstop-repo", served, dropped,
                                                                               log_path)
            issuer.close()

        if feast_py:
            feast_bin = str(Path(feast_py).parent / "feast")
            with RedisServer(tmp / "redis-feast") as redis:
                print("feast: materialize + feature service", file=sys.stderr, flush=True)
                work = tmp / "feast-repo"
                results["setup"]["feast"] = setup_feast(feast_py, data, work, redis.url)
                variants = [("feast_tuned", ["--workers", "2", "--max-requests", "0", "--no-access-log"], [
                    ("features_1", "/get-online-features", "list", 1, "ab"),
                    ("features_50", "/get-online-features", "list", 50, "ab"),
                ]), ("feast_tuned_service", None, [
                    ("features_1", "/get-online-features", "service", 1, "a"),
                    ("features_50", "/get-online-features", "service", 50, "a"),
                ])]
                if args.feast_default:
                    variants.append(("feast_default", [], [
                        ("features_1", "/get-online-features", "list", 1, "ab"),
                        ("features_50", "/get-online-features", "list", 50, "ab"),
                    ]))
                flags: list[str] = []
                running = None
                try:
                    for name, new_flags, cases in variants:
                        if new_flags is not None:  # None: keep the server of the previous variant
                            if running is not None:
                                running.__exit__(None, None, None)
                            port = free_port()
                            flags = new_flags
                            cmd = [feast_bin, "-c", str(work), "serve", "-h", "127.0.0.1", "-p", str(port), *flags]
                            results["config"][f"{name}_serve"] = " ".join(["feast", *cmd[1:]])
                            base = f"http://127.0.0.1:{port}"
                            running = server(cmd, base + "/health", tmp / f"{name}.log")
                            proc = running.__enter__()
                            results["setup"][name] = {"workers": len(worker_pids(proc))}
                        results["runs"][name] = run_cases(name, base, cases, bodies, tmp, args,
                                                          (proc.pid, redis_pid(redis)))
                finally:
                    if running is not None:
                        running.__exit__(None, None, None)

    results["values_match"] = compare_values(results)
    for runs in results["runs"].values():
        for case in runs.values():
            case.pop("_values", None)
    results["loadavg_after"] = loadavg()
    results["targets"] = targets(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    report(results, args.markdown)


def report(results: dict, markdown: bool) -> None:
    config = results["config"]
    console = Console(width=220)
    table = Table(title=f"HTTP serving, 30 features, loopback: (a) wrk {config['wrk']} {config['duration_s']:g}s flat out; "
                        f"(b) open loop {config['rate']:g} req/s for {config['duration_s']:g}s")
    for col in HEADER:
        table.add_column(col)
    rows = table_rows(results)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for t in results["targets"]:
        met = "n/a (no Feast run)" if t["met"] is None else ("met" if t["met"] else "MISSED")
        console.print(f"  {met:>7}  {t['target']}: {t['value']}")
    console.print(f"  values pitstop vs Feast: {results['values_match']}")
    console.print(f"  load average before {results['loadavg_before']}, after {results['loadavg_after']}")
    if markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "---|" * len(HEADER))
        for row in rows:
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
