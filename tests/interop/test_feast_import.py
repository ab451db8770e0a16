"""`pitstop import feast`: Feast's own example repository (made by the real `feast init`) translated,
applied, and its training set equal to Feast's on the same data."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pitstop import FeatureStore
from pitstop.cli.app import cli
from tests.interop.test_feast_client import ROOT, feast_python  # noqa: F401  (the Feast venv fixture)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCRIPT = str(ROOT / "tests" / "interop" / "feast_training_set.py")
FEATURES = ["conv_rate", "acc_rate", "avg_daily_trips", "conv_rate_plus_val1", "conv_rate_plus_val2"]


def test_feast_init_repo_imports_applies_and_matches_feasts_training_set(feast_python: str, tmp_path: Path) -> None:  # noqa: F811
    made = subprocess.run([feast_python, SCRIPT, "init", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    feast_repo = Path(made.stdout.strip().splitlines()[-1])
    ours = tmp_path / "pitstop_repo"
    result = CliRunner().invoke(cli, ["-r", str(ours), "--json", "import", "feast", str(feast_repo)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["project"] == "demo" and report["config_written"]
    assert "FeatureService driver_activity_v2" in report["translated"]
    skipped = {(s["what"], s["why"]) for s in report["skipped"]}
    assert ("LabelView driver_quality_labels", "label views have no pitstop equivalent") in skipped
    assert any("driver_metadata" in why and "Map" in why for _, why in skipped)
    assert all(s["where"].startswith("feature_definitions.py:") for s in report["skipped"])

    applied = CliRunner().invoke(cli, ["-r", str(ours), "apply"])
    assert applied.exit_code == 0, applied.output

    stats = pd.read_parquet(feast_repo / "data" / "driver_stats.parquet", columns=["driver_id", "event_timestamp"])
    rng = np.random.default_rng(3)
    picks = stats.sample(60, random_state=3).reset_index(drop=True)
    # entity rows at, just after and well after feature rows (ttl is one day), plus an unknown driver
    offsets = pd.to_timedelta(rng.choice([0, 1, 1800, 86_400, 90_000], len(picks)), unit="s")
    entities = pd.DataFrame({"driver_id": list(picks["driver_id"]) + [99_999],
                             "event_timestamp": list(picks["event_timestamp"] + offsets) + [picks["event_timestamp"][0]],
                             "val_to_add": rng.integers(0, 10, len(picks) + 1),
                             "val_to_add_2": rng.integers(10, 20, len(picks) + 1)})
    entities_path = tmp_path / "entities.parquet"
    entities.to_parquet(entities_path)
    feast_out = tmp_path / "feast.parquet"
    run = subprocess.run([feast_python, SCRIPT, "historical", str(feast_repo), str(entities_path), str(feast_out),
                          "driver_activity_v2"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]

    with FeatureStore(ours) as store:
        # Feast's default join keeps rows created after the entity row's time; pitstop's needs created_cutoff=False
        got = store.get_historical_features(entities, feature_service="driver_activity_v2",
                                            created_cutoff=False).to_pandas()
    want = pd.read_parquet(feast_out)
    keys = ["driver_id", "event_timestamp", "val_to_add", "val_to_add_2"]
    got = got.sort_values(keys).reset_index(drop=True)
    want = want.sort_values(keys).reset_index(drop=True)
    assert len(got) == len(want) == len(entities)
    assert want[FEATURES].notna().sum().min() > 10, "the sample should hit feature rows"
    for name in FEATURES:
        left, right = got[name].astype("float64"), want[name].astype("float64")
        assert left.isna().equals(right.isna()), name
        np.testing.assert_allclose(left.fillna(0), right.fillna(0), rtol=1e-6, err_msg=name)
