"""The CLI end to end on a scaffolded repo: init, plan, apply, list, describe, training-set, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


def pitstop(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pitstop.cli", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "my_repo"
    result = pitstop("init", str(path))
    assert result.returncode == 0, result.stderr
    return path


def test_init_scaffolds_definitions_and_data(repo: Path) -> None:
    for name in ("pitstop.yaml", "entities.py", "views.py", "services.py", "generate_data.py", "data/entity_rows.parquet"):
        assert (repo / name).exists(), name
    assert pitstop("init", str(repo)).returncode != 0  # refuses a non-empty folder


def test_plan_apply_list_describe_training_set(repo: Path, tmp_path: Path) -> None:
    plan = json.loads(pitstop("--json", "plan", cwd=repo).stdout)
    assert plan["counts"]["add"] == 10  # 2 entities, 3 sources (one a Kafka stream), 3 views, 1 service, 1 request source
    applied = json.loads(pitstop("-r", str(repo), "--json", "apply").stdout)
    assert applied["version"] == 1
    assert json.loads(pitstop("-r", str(repo), "--json", "plan").stdout)["counts"] == {"add": 0, "change": 0, "remove": 0}
    views = json.loads(pitstop("-r", str(repo), "--json", "list", "views").stdout)
    assert {v["name"] for v in views} == {"driver_hourly_stats", "customer_profile", "trip_features"}
    described = json.loads(pitstop("-r", str(repo), "--json", "describe", "driver_activity").stdout)
    assert described["kind"] == "feature service"
    out = tmp_path / "train.parquet"
    result = pitstop("-r", str(repo), "--json", "training-set", "--entities", str(repo / "data/entity_rows.parquet"),
                     "--service", "driver_activity", "--out", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    frame = pd.read_parquet(out)
    assert summary["rows"] == len(frame) == 1000
    assert list(frame.columns) == ["driver_id", "customer_id", "event_timestamp", "trip_distance_km", "trip_completed",
                                   "conv_rate", "acc_rate", "avg_daily_trips", "current_balance", "expected_completion"]
    assert frame["conv_rate"].notna().mean() > 0.9


def test_errors_are_one_line_and_exit_nonzero(repo: Path) -> None:
    result = pitstop("-r", str(repo), "describe", "no_such_thing")
    assert result.returncode == 1
    assert "nothing named 'no_such_thing'" in result.stderr and "Traceback" not in result.stderr
    debug = pitstop("-r", str(repo), "--debug", "describe", "no_such_thing")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    missing = pitstop("-r", str(repo), "training-set", "--entities", "x.parquet", "--features", "nope:x")
    assert missing.returncode == 1 and "unknown feature view 'nope'" in missing.stderr


def test_example_training_script_registers_a_production_model(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert pitstop("init", str(repo)).returncode == 0
    assert pitstop("-r", str(repo), "apply").returncode == 0
    trained = subprocess.run([sys.executable, str(repo / "train.py")], capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr
    [version] = json.loads(pitstop("-r", str(repo), "--json", "models", "list").stdout)
    assert (version["name"], version["version"], version["feature_service"]) == ("trip_completion", 1, "driver_activity")
    assert "production" in json.dumps(version)
    assert version["signature"][0] == "driver_hourly_stats:conv_rate" and "accuracy" in version["metrics"]


def test_materialize_incremental_reports_refills(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert pitstop("init", str(repo)).returncode == 0
    assert pitstop("-r", str(repo), "apply").returncode == 0
    first = json.loads(pitstop("-r", str(repo), "--json", "materialize-incremental").stdout)
    assert {o["reason"] for o in first} == {"first run"} and not any(o["refill"] for o in first)
    for path in (repo / "data").glob("online.db*"):  # the online store comes back empty
        path.unlink()
    again = pitstop("-r", str(repo), "materialize-incremental")
    assert again.returncode == 0, again.stderr
    assert "refill: store generation changed" in again.stdout
    assert "refilling" in again.stderr  # logged as a warning too
    runs = json.loads(pitstop("-r", str(repo), "--json", "materialize-incremental").stdout)
    assert {o["reason"] for o in runs} == {"incremental"}
