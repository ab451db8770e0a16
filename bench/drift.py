"""Drift benchmark (issue 14): pitstop's compare_tables vs Evidently 0.7's DataDriftPreset, same files.

    .venv/bin/python bench/drift.py                                   # 1M rows, ~12 minutes
    .venv/bin/python bench/drift.py --rows 100000 --false-alarm-windows 20   # quick check
    .venv/bin/python bench/drift.py --tools evidently                 # one tool only

Data (seeded, generated here): a reference window (the training set) and a current window of
``--rows`` rows x 25 features each: f00..f19 numeric (normal, lognormal, exponential, gamma, t, beta,
uniform, a bimodal mixture and six integer-valued ones: Poisson, binomial, geometric, negative
binomial, uniform integers) and c0..c4 categorical strings with 5, 10, 20, 35 and 50 categories of
Zipf-like frequencies. The current window comes from the same generator with another seed, except
three known shifts (``SHIFTS``): f00's mean + 0.1 standard deviation, f01's variance x 1.5 and a
new category in 5 % of c0's rows. Both windows are written as Parquet to a temporary directory.

Drift run: each tool runs in its own fresh subprocess (its own virtualenv for Evidently,
``bench/setup_evidently.sh``); "seconds" is what the child measures from reading the two Parquet
files to the list of drifted features (imports excluded, shown apart), peak memory is the child's
maximum resident set (``os.wait4``, so interpreter and imports count for both).

* Evidently: ``Report([DataDriftPreset()], include_tests=True).run(current, reference)`` on
  ``Dataset.from_pandas(..)`` with a ``DataDefinition`` naming the numeric and the categorical
  columns, defaults otherwise (method picked per column, drift share 0.5); a column has drifted
  when its "Value Drift" test fails.
* pitstop: ``pitstop.monitoring.compare_tables(reference, current, categorical=[...])`` on the
  Arrow tables, defaults otherwise; a feature has drifted when ``.drifted`` is true.

False alarms: ``--false-alarm-windows`` pairs of 1,000-row windows from the same distribution
(different seeds, no shift): the share of (window, feature) pairs each tool flags, overall, numeric
and categorical, and the share of windows with any flag. Both tools see identical windows (each
child draws them from the same seeds; drawing is not timed). For pitstop also at larger windows
(``--large-windows``, default 100k rows x 20 pairs and 1M rows x 5 pairs), where every test is
significant for negligible differences and only the effect threshold keeps features out.

Results: a table on stdout, bench/results/drift.json, and (with --markdown) markdown tables.
"""

from __future__ import annotations

# The children (``drift.py _child ...``) run in both virtualenvs, Evidently's included: keep the
# module-level imports to the standard library; numpy, pyarrow, pandas and rich are imported where used.
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ROOT = HERE.parent
PITSTOP_PYTHON = ROOT / ".venv" / "bin" / "python"
SEED = 14
FALSE_ALARM_SEED = 1_000  # window pair i draws its reference from seed + 2i and its current from seed + 2i + 1
LARGE_WINDOWS = "100000:20,1000000:5"
TOOLS = ("evidently", "pitstop")

# name, description, draw(rng, n); integer-valued ones are int64, the others float64
NUMERIC: list[tuple[str, str, Any]] = [
    ("f00", "normal(0, 1)", lambda r, n: r.normal(0.0, 1.0, n)),
    ("f01", "normal(5, 2)", lambda r, n: r.normal(5.0, 2.0, n)),
    ("f02", "lognormal(0, 0.5)", lambda r, n: r.lognormal(0.0, 0.5, n)),
    ("f03", "lognormal(1, 1)", lambda r, n: r.lognormal(1.0, 1.0, n)),
    ("f04", "Poisson(3), int", lambda r, n: r.poisson(3.0, n)),
    ("f05", "Poisson(20), int", lambda r, n: r.poisson(20.0, n)),
    ("f06", "uniform integers 0..9", lambda r, n: r.integers(0, 10, n)),
    ("f07", "exponential(2)", lambda r, n: r.exponential(2.0, n)),
    ("f08", "uniform(-1, 1)", lambda r, n: r.uniform(-1.0, 1.0, n)),
    ("f09", "gamma(2, 1)", lambda r, n: r.gamma(2.0, 1.0, n)),
    ("f10", "normal(100, 15)", lambda r, n: r.normal(100.0, 15.0, n)),
    ("f11", "Student t(5)", lambda r, n: r.standard_t(5.0, n)),
    ("f12", "beta(2, 5)", lambda r, n: r.beta(2.0, 5.0, n)),
    ("f13", "binomial(10, 0.3), int", lambda r, n: r.binomial(10, 0.3, n)),
    ("f14", "lognormal(3, 0.25)", lambda r, n: r.lognormal(3.0, 0.25, n)),
    ("f15", "normal(-2, 1) / normal(2, 1) mixture", lambda r, n: r.normal(0.0, 1.0, n) + 2.0 * r.choice((-1.0, 1.0), n)),
    ("f16", "geometric(0.2), int", lambda r, n: r.geometric(0.2, n)),
    ("f17", "normal(-3, 0.5)", lambda r, n: r.normal(-3.0, 0.5, n)),
    ("f18", "exponential(10)", lambda r, n: r.exponential(10.0, n)),
    ("f19", "negative binomial(5, 0.5), int", lambda r, n: r.negative_binomial(5, 0.5, n)),
]
# name, categories, Zipf exponent: category k (0-based) has weight 1 / (k + 1) ** exponent
CATEGORICAL_SPEC: list[tuple[str, int, float]] = [
    ("c0", 5, 0.8), ("c1", 10, 1.0), ("c2", 20, 1.2), ("c3", 35, 1.1), ("c4", 50, 1.3)]
CATEGORICAL = [name for name, _, _ in CATEGORICAL_SPEC]
FEATURES = [name for name, _, _ in NUMERIC] + CATEGORICAL
MULTIVARIATE = "<multivariate>"  # pitstop's whole-table test, kept out of the per-feature counts
SHIFTS = {  # the current window's known drifts (main comparison only)
    "f00": "mean + 0.1 sd",
    "f01": "variance x 1.5",
    "c0": "new category in 5 % of rows",
}


# ---------------------------------------------------------------- data


def make_table(rows: int, seed: int, shifted: bool = False):
    """One window of the generator as an Arrow table; ``shifted`` applies ``SHIFTS``.

    The shifts are applied after drawing (the new category from a second generator), so every
    feature outside ``SHIFTS`` is the same with and without them.
    """
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for name, _, draw in NUMERIC:
        columns[name] = np.asarray(draw(rng, rows))
    for name, k, exponent in CATEGORICAL_SPEC:
        weights = 1.0 / np.arange(1, k + 1) ** exponent
        codes = rng.choice(k, rows, p=weights / weights.sum()).astype(np.int32)
        columns[name] = (codes, [f"{name}_{i:02d}" for i in range(k)])
    if shifted:
        columns["f00"] = columns["f00"] + 0.1 * 1.0  # sd of normal(0, 1)
        columns["f01"] = 5.0 + (columns["f01"] - 5.0) * np.sqrt(1.5)
        codes, labels = columns["c0"]
        new = np.random.default_rng(seed + 7_777_777).random(rows) < 0.05
        columns["c0"] = (np.where(new, len(labels), codes).astype(np.int32), [*labels, "c0_new"])
    arrays = {}
    for name, value in columns.items():
        if isinstance(value, tuple):
            codes, labels = value
            arrays[name] = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(labels)).cast(pa.string())
        else:
            arrays[name] = pa.array(value)
    return pa.table(arrays)


def write_windows(rows: int, out: Path) -> tuple[Path, Path, float]:
    """The reference and the shifted current window as Parquet; (reference, current, seconds)."""
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    reference, current = out / "reference.parquet", out / "current.parquet"
    pq.write_table(make_table(rows, SEED), reference)
    pq.write_table(make_table(rows, SEED + 1, shifted=True), current)
    return reference, current, time.perf_counter() - t0


# ---------------------------------------------------------------- the tools (in the children)


def evidently_drift(reference, current) -> dict[str, dict]:
    """Evidently's DataDriftPreset on two pandas frames: feature -> {drifted, score, method, threshold}."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=[c for c in reference.columns if c not in CATEGORICAL],
                                categorical_columns=[c for c in reference.columns if c in CATEGORICAL])
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition))
    result = snapshot.dict()
    out: dict[str, dict] = {}
    for metric in result["metrics"]:  # one ValueDrift per column (plus DriftedColumnsCount)
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            out[config["column"]] = {"score": float(metric["value"]), "method": config["method"],
                                     "threshold": config["threshold"], "drifted": None}
    for test in result["tests"]:  # "Value Drift for column X": FAIL when the column drifted
        params = test["metric_config"]["params"]
        if test["id"] == "drift" and params["type"].endswith(":ValueDrift"):
            out[params["column"]]["drifted"] = test["status"] == "FAIL"
    missing = [c for c, r in out.items() if r["drifted"] is None]
    if missing:
        raise RuntimeError(f"no drift test result for {missing}")
    return out


def pitstop_drift(reference, current) -> dict[str, dict]:
    """pitstop's compare_tables on two Arrow tables: feature -> {drifted, p_adjusted, effect}."""
    from pitstop.monitoring import compare_tables

    report = compare_tables(reference, current, categorical=CATEGORICAL)
    out: dict[str, dict] = {f.feature: {"drifted": bool(f.drifted), "p_adjusted": float(f.p_adjusted),
                                        "effect": float(f.effect)} for f in report.features}
    mv = getattr(report, "multivariate", None)  # the MMD test over the numeric features: reported, not counted
    if mv is not None:
        out[MULTIVARIATE] = {"drifted": bool(mv.drifted), "p_value": float(mv.p_value)}
    return out


def run_tool(tool: str, reference, current) -> dict[str, dict]:
    """``reference`` and ``current`` are Arrow tables; Evidently gets them as pandas frames."""
    if tool == "evidently":
        return evidently_drift(reference.to_pandas(), current.to_pandas())
    return pitstop_drift(reference, current)


def child_compare(tool: str, reference_path: str, current_path: str) -> dict:
    """Read the two Parquet files with the tool's usual reader and run its drift report (timed)."""
    t0 = time.perf_counter()
    if tool == "evidently":
        import pandas as pd
        from evidently import Report  # noqa: F401  (import cost shown apart from the run)
        from evidently.presets import DataDriftPreset  # noqa: F401
    else:
        import pyarrow.parquet as pq

        from pitstop.monitoring import compare_tables  # noqa: F401
    imports = time.perf_counter() - t0
    t1 = time.perf_counter()
    if tool == "evidently":
        reference, current = pd.read_parquet(reference_path), pd.read_parquet(current_path)
    else:
        reference, current = pq.read_table(reference_path), pq.read_table(current_path)
    read = time.perf_counter() - t1
    features = evidently_drift(reference, current) if tool == "evidently" else pitstop_drift(reference, current)
    seconds = time.perf_counter() - t1
    return {"tool": tool, "seconds": seconds, "read_seconds": read, "import_seconds": imports,
            "rows": len(reference), "flagged": [f for f in FEATURES if features.get(f, {}).get("drifted")],
            "multivariate": features.get(MULTIVARIATE), "features": features}


def child_false_alarm(tool: str, rows: int, pairs: int, seed: int) -> dict:
    """``pairs`` unshifted window pairs of ``rows`` rows: how often each feature is flagged."""
    flags = dict.fromkeys(FEATURES, 0)
    methods: dict[str, set[str]] = {f: set() for f in FEATURES}
    windows_any = multivariate = 0
    seconds = 0.0
    for i in range(pairs):
        reference, current = make_table(rows, seed + 2 * i), make_table(rows, seed + 2 * i + 1)
        t0 = time.perf_counter()  # drawing the windows is not timed; Evidently's to_pandas is
        features = run_tool(tool, reference, current)
        seconds += time.perf_counter() - t0
        flagged = [f for f in FEATURES if features[f]["drifted"]]
        windows_any += bool(flagged)
        multivariate += bool(features.get(MULTIVARIATE, {}).get("drifted"))
        for f in flagged:
            flags[f] += 1
        for f in FEATURES:
            if "method" in features[f]:
                methods[f].add(features[f]["method"])
    numeric = [name for name, _, _ in NUMERIC]
    return {"tool": tool, "rows": rows, "pairs": pairs, "seed": seed, "seconds": seconds, "flags": flags,
            "rate": sum(flags.values()) / (pairs * len(FEATURES)),
            "rate_numeric": sum(flags[f] for f in numeric) / (pairs * len(numeric)),
            "rate_categorical": sum(flags[f] for f in CATEGORICAL) / (pairs * len(CATEGORICAL)),
            "windows_any": windows_any / pairs, "multivariate_flags": multivariate,
            "methods": {f: sorted(m) for f, m in methods.items() if m}}


def child_profile(reference_path: str, profile_path: str) -> dict:
    """pitstop's step at registration: profile the training set (read from Parquet), write the profile."""
    t0 = time.perf_counter()
    import pyarrow.parquet as pq

    from pitstop.monitoring import build_profile

    imports = time.perf_counter() - t0
    t1 = time.perf_counter()
    reference = pq.read_table(reference_path)
    profile = build_profile(reference, FEATURES, categorical=CATEGORICAL)
    data = profile.to_bytes()
    Path(profile_path).write_bytes(data)
    return {"tool": "pitstop profile", "seconds": time.perf_counter() - t1, "import_seconds": imports,
            "rows": reference.num_rows, "profile_kb": len(data) / 1000}


def child_check(profile_path: str, current_path: str) -> dict:
    """pitstop's drift check as ``pitstop monitor drift`` runs it: the stored profile vs the logged window."""
    t0 = time.perf_counter()

    from pitstop.monitoring import ReferenceProfile, drift_report
    from pitstop.monitoring.drift import DatasetColumns

    imports = time.perf_counter() - t0
    t1 = time.perf_counter()
    profile = ReferenceProfile.from_bytes(Path(profile_path).read_bytes())
    current = DatasetColumns(current_path)  # as monitor drift reads the log: one column at a time
    read = time.perf_counter() - t1
    report = drift_report(profile, current)
    flagged = [f.feature for f in report.features if f.drifted]
    return {"tool": "pitstop check", "seconds": time.perf_counter() - t1, "read_seconds": read,
            "import_seconds": imports, "rows": current.num_rows, "flagged": flagged,
            "multivariate": None if report.multivariate is None else
            {"drifted": report.multivariate.drifted, "p_value": report.multivariate.p_value}}


def child(argv: list[str]) -> None:
    """``drift.py _child compare TOOL REF CUR`` or ``drift.py _child false-alarm TOOL ROWS PAIRS SEED``."""
    kind, tool = argv[0], argv[1]
    if kind == "compare":
        out = child_compare(tool, argv[2], argv[3])
    elif kind == "profile":
        out = child_profile(argv[1], argv[2])
    elif kind == "check":
        out = child_check(argv[1], argv[2])
    else:
        out = child_false_alarm(tool, int(argv[2]), int(argv[3]), int(argv[4]))
    out["vm_hwm_mb"] = own_peak_mb()
    print(json.dumps(out))


def own_peak_mb() -> float | None:
    """This process's peak resident memory since its exec (VmHWM).

    Not the parent's ``wait4`` figure: Linux carries the RSS of the process image replaced at exec
    (here the forked copy of the parent, which holds the generated windows) into the child's
    ``ru_maxrss``, so that figure is never below the parent's own size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1000
    except OSError:
        pass
    return None


# ---------------------------------------------------------------- the parent


def evidently_python() -> str | None:
    try:
        out = subprocess.run(["bash", str(HERE / "setup_evidently.sh")], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        print(f"Evidently unavailable: {exc.stderr[-500:]}", file=sys.stderr)
        return None
    return out.stdout.strip().splitlines()[-1]


def measured(python: str, args: list[str]) -> dict:
    """One fresh child: its JSON line plus peak RSS (MB) and the process's wall time; or {"error": ...}."""
    from historical import run_measured

    t0 = time.perf_counter()
    try:
        result, peak_gb = run_measured([python, str(Path(__file__).resolve()), "_child", *args])
    except RuntimeError as exc:
        return {"error": str(exc)[-3000:]}
    peak = result.get("vm_hwm_mb") or peak_gb * 1000
    return {**result, "peak_mb": peak, "process_seconds": time.perf_counter() - t0}


def parse_large(spec: str) -> list[tuple[int, int]]:
    out = []
    for part in filter(None, spec.split(",")):
        rows, _, pairs = part.partition(":")
        out.append((int(rows), int(pairs or 5)))
    return out


def fmt_rate(r: dict | None, key: str) -> str:
    if not r or "error" in r:
        return "-"
    return f"{r[key] * 100:.1f} %"


def report(results: dict, markdown: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    params = results["params"]
    compare, alarms = results["compare"], results["false_alarm"]
    console = Console(width=200)
    fa = params["false_alarm_windows"]
    head = ["tool", "seconds (read + drift)", "import s", "process s", "peak MB", "flagged",
            f"false alarms ({fa} x 1k pairs)", "numeric", "categorical", "windows with any"]
    rows = []
    for tool in params["tools"]:
        c, a = compare.get(tool), alarms.get(tool)
        if c is None or "error" in c:
            first = ["-"] * 4 + ["error" if c else "-"]
        else:
            first = [f"{c['seconds']:.2f}", f"{c['import_seconds']:.2f}", f"{c['process_seconds']:.2f}",
                     f"{c['peak_mb']:,.0f}", ", ".join(c["flagged"]) or "none"]
        rows.append([tool, *first, fmt_rate(a, "rate"), fmt_rate(a, "rate_numeric"),
                     fmt_rate(a, "rate_categorical"), fmt_rate(a, "windows_any")])
    title = (f"drift: reference vs current, {params['rows']:,} rows x {len(FEATURES)} features each "
             f"(shifted: {', '.join(f'{k} {v}' for k, v in SHIFTS.items())})")
    large_head = ["tool", "window rows", "pairs", "false alarms", "numeric", "categorical", "windows with any",
                  "drift s per pair"]
    large_rows = [[r["tool"], f"{r['rows']:,}", str(r["pairs"]), fmt_rate(r, "rate"), fmt_rate(r, "rate_numeric"),
                   fmt_rate(r, "rate_categorical"), fmt_rate(r, "windows_any"), f"{r['seconds'] / r['pairs']:.2f}"]
                  for r in results["false_alarm_large"] if "error" not in r]

    table = Table(title=title)
    for col in head:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if large_rows:
        large = Table(title="false alarms on large windows (same distribution, different seeds)")
        for col in large_head:
            large.add_column(col)
        for row in large_rows:
            large.add_row(*row)
        console.print(large)
    steps = results.get("steps")
    step_head = ["pitstop step", "seconds", "import s", "process s", "peak MB", "flagged / profile size"]
    step_rows = []
    if steps and all("error" not in r for r in steps.values()):
        p, c = steps["profile"], steps["check"]
        step_rows = [
            ["profile the training set (once per version, at registration)", f"{p['seconds']:.2f}",
             f"{p['import_seconds']:.2f}", f"{p['process_seconds']:.2f}", f"{p['peak_mb']:,.0f}",
             f"{p['profile_kb']:,.0f} KB"],
            ["drift check: stored profile vs the window (pitstop monitor drift)", f"{c['seconds']:.2f}",
             f"{c['import_seconds']:.2f}", f"{c['process_seconds']:.2f}", f"{c['peak_mb']:,.0f}",
             ", ".join(c["flagged"]) or "none"]]
        steps_table = Table(title="pitstop's own split: the reference is profiled once, each check reads the profile")
        for col in step_head:
            steps_table.add_column(col)
        for row in step_rows:
            steps_table.add_row(*row)
        console.print(steps_table)
    ratios = results.get("ratios")
    by_column = [f"{tool}: " + ", ".join(f"{name} ({k}) {a['flags'][name] / a['pairs'] * 100:.0f} %"
                                         for name, k, _ in CATEGORICAL_SPEC)
                 for tool, a in alarms.items() if "error" not in a]
    by_column_title = f"categorical false alarms by column (categories), {fa} x 1k pairs"
    if by_column:
        console.print(f"{by_column_title}:\n  " + "\n  ".join(by_column))
    if ratios:
        console.print(f"Evidently / pitstop: time {ratios['seconds']:.1f}x, peak memory {ratios['peak_mb']:.1f}x")
    for tool, r in {**compare, **alarms}.items():
        if "error" in r:
            console.print(f"[red]{tool}: {r['error'][-1500:]}[/red]")
    for r in results["false_alarm_large"]:
        if "error" in r:
            console.print(f"[red]{r.get('tool')} {r.get('rows')}: {r['error'][-1500:]}[/red]")
    if markdown:
        print()
        print(f"| {' | '.join(head)} |")
        print("|" + "---|" * len(head))
        for row in rows:
            print(f"| {' | '.join(row)} |")
        if ratios:
            print(f"\nEvidently / pitstop: {ratios['seconds']:.1f}x the time, {ratios['peak_mb']:.1f}x the peak memory.")
        if step_rows:
            print()
            print(f"| {' | '.join(step_head)} |")
            print("|" + "---|" * len(step_head))
            for row in step_rows:
                print(f"| {' | '.join(row)} |")
        if by_column:
            print(f"\n{by_column_title}: " + "; ".join(by_column) + ".")
        if large_rows:
            print()
            print(f"| {' | '.join(large_head)} |")
            print("|" + "---|" * len(large_head))
            for row in large_rows:
                print(f"| {' | '.join(row)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the reference and of the current window")
    parser.add_argument("--false-alarm-windows", type=int, default=100, help="1,000-row window pairs per tool")
    parser.add_argument("--false-alarm-rows", type=int, default=1000)
    parser.add_argument("--large-windows", default=LARGE_WINDOWS,
                        help="ROWS:PAIRS,... pitstop-only false-alarm runs on large windows ('' to skip)")
    parser.add_argument("--large-tools", default="pitstop", help="tools run on --large-windows (Evidently: slow)")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--markdown", action="store_true", help="also print markdown tables (docs/benchmarks.md)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "drift.json")
    args = parser.parse_args()
    tools = [t for t in args.tools.split(",") if t]
    large_tools = [t for t in args.large_tools.split(",") if t in tools]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        parser.error(f"--tools: unknown {unknown[0]!r} (choose from {', '.join(TOOLS)})")
    sys.path.insert(0, str(HERE))
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's usage telemetry (only its UI sends any)
    pythons = {"pitstop": str(PITSTOP_PYTHON)}
    if "evidently" in tools:
        python = evidently_python()
        if python is None:
            tools.remove("evidently")
        else:
            pythons["evidently"] = python
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "params": {"rows": args.rows, "false_alarm_windows": args.false_alarm_windows,
                   "false_alarm_rows": args.false_alarm_rows, "large_windows": parse_large(args.large_windows),
                   "tools": tools, "seed": SEED, "false_alarm_seed": FALSE_ALARM_SEED},
        "shifts": SHIFTS, "features": {name: desc for name, desc, _ in NUMERIC}
        | {name: f"{k} categories, Zipf {s}" for name, k, s in CATEGORICAL_SPEC},
        "versions": {}, "compare": {}, "false_alarm": {}, "false_alarm_large": []}
    for tool in tools:
        module = "evidently" if tool == "evidently" else "pitstop"
        results["versions"][tool] = subprocess.run(
            [pythons[tool], "-c", f"import importlib.metadata as m; print(m.version({module!r}))"],
            capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp:
        reference, current, gen = write_windows(args.rows, Path(tmp))
        results["generate_seconds"] = gen
        print(f"generated 2 x {args.rows:,} rows in {gen:.1f} s", file=sys.stderr)
        for tool in tools:
            r = measured(pythons[tool], ["compare", tool, str(reference), str(current)])
            results["compare"][tool] = r
            print(json.dumps({tool: {k: v for k, v in r.items() if k != "features"}}), file=sys.stderr)
        if "pitstop" in tools:  # the same work split as pitstop does it: profile once, then each check
            profile = Path(tmp) / "profile.parquet"
            results["steps"] = {"profile": measured(pythons["pitstop"], ["profile", str(reference), str(profile)]),
                                "check": measured(pythons["pitstop"], ["check", str(profile), str(current)])}
            print(json.dumps({"pitstop steps": results["steps"]}), file=sys.stderr)
    for tool in tools:
        r = measured(pythons[tool], ["false-alarm", tool, str(args.false_alarm_rows), str(args.false_alarm_windows),
                                     str(FALSE_ALARM_SEED)])
        results["false_alarm"][tool] = r
        print(json.dumps({f"{tool} false alarms": r}), file=sys.stderr)
    for rows, pairs in parse_large(args.large_windows):
        for tool in large_tools:
            r = measured(pythons[tool], ["false-alarm", tool, str(rows), str(pairs), str(FALSE_ALARM_SEED)])
            results["false_alarm_large"].append({"tool": tool, "rows": rows, **r})
            print(json.dumps({f"{tool} false alarms @{rows}": r}), file=sys.stderr)
    ev, ps = results["compare"].get("evidently"), results["compare"].get("pitstop")
    if ev and ps and "error" not in ev and "error" not in ps:
        results["ratios"] = {"seconds": ev["seconds"] / ps["seconds"], "peak_mb": ev["peak_mb"] / ps["peak_mb"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    report(results, args.markdown)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(sys.argv[2:])
    else:
        main()
