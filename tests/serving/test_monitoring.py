"""Monitoring end to end through the app: log, profile at registration, drift, skew, delayed labels, gauges, CLI."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from pitstop import FeatureStore
from pitstop.cli.app import cli
from pitstop.serving import create_app
from tests.support.monitor_repo import DRIVERS, make_monitor_repo


def traffic(store: FeatureStore, tag: str, batch: int = 30) -> dict[str, list[Any]]:
    """Score every driver once, ``batch`` per request; returns request id -> predictions (the log is flushed)."""
    answers = {}
    with TestClient(create_app(store=store)) as client:
        assert client.app.state.service.cache.ready.wait(10)
        for start in range(0, DRIVERS, batch):
            request_id = f"{tag}-{start}"
            ids = list(range(start, min(start + batch, DRIVERS)))
            response = client.post("/predict", json={"model": "score", "entities": {"driver_id": ids},
                                                     "request_id": request_id})
            assert response.status_code == 200, response.text
            answers[request_id] = response.json()["predictions"]
    return answers


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("monitor")
    store, frame = make_monitor_repo(root)
    before = traffic(store, "before")
    shift_at = datetime.now(UTC)
    shifted = frame.assign(x=frame["x"] + 0.3, event_timestamp=shift_at)
    store.push("stats_push", shifted, to="online")  # online only: the offline data never sees these values
    after = traffic(store, "after")
    yield store, root, before, after, shift_at
    store.close()


def test_every_prediction_is_logged_with_its_inputs(monitored: Any) -> None:
    store, _, before, after, _ = monitored
    log = store.monitor.log("score").to_pandas()
    assert len(log) == 2 * DRIVERS
    row = log[(log.request_id == "before-30") & (log.row == 2)].iloc[0]
    assert row.driver_id == 32 and row.prediction == pytest.approx(before["before-30"][2])
    assert row.x__status == "PRESENT" and row.city in {"a", "b", "c"}


def test_unshifted_traffic_shows_no_drift_and_no_skew(monitored: Any) -> None:
    store, _, _, _, shift_at = monitored
    report = store.monitor.drift("score", since="1h", until=shift_at)
    assert report.drifted == [] and report.current_rows == DRIVERS and report.reference_rows == DRIVERS
    skew = store.monitor.skew("score", since="1h", until=shift_at, sample=500)
    assert skew.set_index("feature")["mismatched"].to_dict() == {"x": 0, "y": 0, "city": 0}


def test_a_shift_pushed_online_is_flagged_as_drift_and_as_skew(monitored: Any) -> None:
    store, _, _, _, shift_at = monitored
    report = store.monitor.drift("score", since=shift_at)
    assert [f.feature for f in report.features if f.drifted] == ["x"]
    (x,) = [f for f in report.features if f.feature == "x"]
    assert x.effect == pytest.approx(0.3, abs=0.05)
    skew = store.monitor.skew("score", since=shift_at, sample=500).set_index("feature")
    assert skew.loc["x", "values_differ"] == 500 and skew.loc["x", "share"] == 1.0
    assert skew.loc["y", "mismatched"] == 0 and "online 0." in skew.loc["x", "example"] or skew.loc["x", "example"]


def test_the_profile_is_made_at_registration_and_remade_from_the_dataset(monitored: Any) -> None:
    store, root, *_ = monitored
    path = root / ".pitstop" / "profiles" / "score" / "1.parquet"
    assert path.exists()
    first = store.monitor.profile("score")
    path.unlink()  # as for a version registered before profiles existed
    again = store.monitor.profile("score")
    assert path.exists() and again.numeric["x"] == first.numeric["x"]


def test_delayed_labels_by_id_give_the_metric_computed_by_hand(monitored: Any) -> None:
    store, *_ , before, _, _ = monitored
    rng = np.random.default_rng(3)
    rows = [(rid, i, p, int(rng.random() < p)) for rid, preds in before.items() for i, p in enumerate(preds)]
    labels = pd.DataFrame(rows, columns=["request_id", "row", "p", "label"])
    frame = store.monitor.performance("score", labels.drop(columns="p"), window=None)
    assert len(frame) == 1 and frame.loc[0, "rows"] == DRIVERS
    accuracy = float(np.mean((labels.p >= 0.5).astype(int) == labels.label))
    assert frame.loc[0, "accuracy"] == pytest.approx(accuracy)
    pos, neg = labels.p[labels.label == 1].to_numpy(), labels.p[labels.label == 0].to_numpy()
    auc = float(np.mean(pos[:, None] > neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg[None, :]))
    assert frame.loc[0, "auc"] == pytest.approx(auc)


def test_delayed_labels_by_time_meet_the_latest_prediction_before_them(monitored: Any) -> None:
    store, _, _, after, _ = monitored
    later = datetime.now(UTC) + timedelta(seconds=1)
    latest = {int(rid.split("-")[1]) + i: p for rid, preds in after.items() for i, p in enumerate(preds)}
    labels = pd.DataFrame({"driver_id": list(latest), "event_timestamp": [later] * len(latest),
                           "outcome": [1.0] * len(latest)})
    frame = store.monitor.performance("score", labels, label_column="outcome", window=None, metrics=["mae"])
    expected = float(np.mean([1.0 - p for p in latest.values()]))  # each label meets the shifted-era prediction
    assert frame.loc[0, "rows"] == DRIVERS and frame.loc[0, "mae"] == pytest.approx(expected)


def test_cli_table_json_html_and_exit_status(monitored: Any, tmp_path: Path) -> None:
    store, root, _, _, shift_at = monitored
    runner = CliRunner()
    since = shift_at.isoformat()
    result = runner.invoke(cli, ["-r", str(root), "--json", "monitor", "drift", "score", "--since", since])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["drifted"][0] == "x"
    page = tmp_path / "report.html"
    result = runner.invoke(cli, ["-r", str(root), "monitor", "drift", "score", "--since", since, "--html", str(page),
                                 "--fail-on-drift"])
    assert result.exit_code == 3 and "DRIFT" in result.output
    assert "<svg" in page.read_text() and "http" not in page.read_text().split("<body>")[1]  # self-contained
    result = runner.invoke(cli, ["-r", str(root), "monitor", "skew", "score", "--since", since, "--sample", "50"])
    assert result.exit_code == 0 and "values differ" in result.output
    result = runner.invoke(cli, ["-r", str(root), "monitor", "drift", "nosuch"])
    assert result.exit_code != 0


def test_run_once_exports_drift_gauges_on_serve_metrics(monitored: Any) -> None:
    store, *_ = monitored
    reports = store.monitor.run_once(since="1h")
    assert list(reports) == ["score:1"]
    with TestClient(create_app(store=store)) as client:
        text = client.get("/metrics").text
    flag = re.search(r'pitstop_feature_drifted\{feature="x",model="score",version="1"\} ([0-9.]+)', text)
    assert flag is not None, text[-3000:]
    assert 'pitstop_feature_drift_score{feature="y",model="score",version="1"}' in text
