"""MLflow models served by pitstop, against a real local MLflow tracking store (file backend) in the test."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from pitstop import FeatureStore
from pitstop.errors import ModelRegistryError
from pitstop.interop.mlflow import follow_alias, log_lineage, register_from_mlflow, resolve_mlflow
from pitstop.serving import create_app
from tests.serving.conftest import build_served_repo

mlflow = pytest.importorskip("mlflow")  # in [dev]; the import-hygiene test covers its absence

COLUMNS = ["rate", "trips", "rate_plus"]

# warnings MLflow's own code raises (its input-example code trips a pandas 3 deprecation; its type-hint
# inference warns about pickled models): not ours to fix
pytestmark = [pytest.mark.filterwarnings("ignore:Operation with range is deprecated"),
              pytest.mark.filterwarnings("ignore::UserWarning:mlflow"),
              pytest.mark.filterwarnings("ignore:Any type hint is inferred")]


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh MLflow tracking store (file backend, in maintenance mode in MLflow 3: allowed explicitly)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    uri = f"file://{tmp_path / 'mlruns'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield uri


def train(coef: float, register_as: str = "trip_completion", columns: list[str] = COLUMNS) -> str:
    """Fit a linear model on (rate, trips, rate_plus), log and register it; returns its MLflow version."""
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({c: rng.random(200) * (100 if c == "trips" else 1) for c in columns})
    frame["trips"] = frame["trips"].round().astype("int64") if "trips" in frame else 0
    target = coef * (frame[columns[0]] * 10 + frame.get("trips", 0))
    model = LinearRegression().fit(frame, target)
    with mlflow.start_run():
        mlflow.log_metric("rmse", 0.01 * coef)
        info = mlflow.sklearn.log_model(model, name="model", input_example=frame.head(3),
                                        registered_model_name=register_as, serialization_format="cloudpickle")
    return str(info.registered_model_version)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FeatureStore]:
    s = build_served_repo(tmp_path / "repo")
    yield s
    s.close()


def test_register_from_mlflow_keeps_origin_and_serves_like_mlflow(tracking: str, store: FeatureStore) -> None:
    version = train(1.0)
    mlflow.MlflowClient().set_registered_model_alias("trip_completion", "champion", version)
    mv = register_from_mlflow(store, "trip_completion", "models:/trip_completion@champion", "svc", alias="production")
    assert (mv.flavor, mv.version, mv.aliases) == ("mlflow", 1, ["production"])
    assert mv.origin["version_uri"] == f"models:/trip_completion/{version}"
    assert mv.origin["signature"] == COLUMNS and mv.origin["run_id"]
    assert mv.metrics == {"rmse": pytest.approx(0.01)}
    # importing the same MLflow version again returns the same pitstop version
    again = register_from_mlflow(store, "trip_completion", f"models:/trip_completion/{version}", "svc")
    assert again.version == 1 and len(store.models.list("trip_completion")) == 1
    with TestClient(create_app(store=store)) as client:
        assert client.app.state.service.cache.ready.wait(10)
        r = client.post("/predict", json={"model": "trip_completion", "entities": {"driver_id": [1, 3]},
                                          "request_data": {"bonus": [1.0, 2.0]}, "return_features": True})
        assert r.status_code == 200, r.text
        feats = r.json()["features"]["values"]
        frame = pd.DataFrame({c: feats[c] for c in COLUMNS})
        frame["trips"] = frame["trips"].astype("int64")
        want = mlflow.pyfunc.load_model("models:/trip_completion@champion").predict(frame)
        assert r.json()["predictions"] == pytest.approx(list(want))
        # the same model through MLflow's own scoring protocol
        r = client.post("/invocations?model=trip_completion", json={"dataframe_split": {
            "columns": COLUMNS, "data": frame.values.tolist()}})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == pytest.approx(list(want))


def test_signature_mismatch_is_refused_naming_the_columns(tracking: str, store: FeatureStore) -> None:
    version = train(1.0, "other", ["rate", "trips", "speed"])
    with pytest.raises(ModelRegistryError, match="speed") as info:
        register_from_mlflow(store, "other", f"models:/other/{version}", "svc")
    assert "rate_plus" in str(info.value)
    assert store.models.list("other") == []


@pytest.mark.parametrize("uri", ["models:/nope@champion", "models:/trip_completion@nope", "s3://bucket/model",
                                 "models:/trip_completion"])
def test_bad_mlflow_uris_fail_clearly(tracking: str, store: FeatureStore, uri: str) -> None:
    train(1.0)
    with pytest.raises(ModelRegistryError, match="MLflow|models:/"):
        resolve_mlflow(uri)


def test_follow_moves_the_pitstop_alias_when_mlflow_moves_and_serving_swaps(tracking: str, store: FeatureStore) -> None:
    client = mlflow.MlflowClient()
    v1 = train(1.0)
    client.set_registered_model_alias("trip_completion", "champion", v1)
    step = follow_alias(store, "trip_completion", "champion", "production", "svc", once=True)
    assert step is not None and (step.imported, step.moved, step.pitstop_version) == (True, True, 1)
    body = {"model": "trip_completion", "entities": {"driver_id": [1]}, "request_data": {"bonus": [1.0]}}
    with TestClient(create_app(store=store)) as http:
        assert http.app.state.service.cache.ready.wait(10)
        before = http.post("/predict", json=body).json()["predictions"][0]
        v2 = train(3.0)
        client.set_registered_model_alias("trip_completion", "champion", v2)
        step = follow_alias(store, "trip_completion", "champion", "production", once=True)
        assert step is not None and (step.imported, step.moved, step.pitstop_version) == (True, True, 2)
        assert store.models.get("trip_completion", alias="production").origin["version"] == v2
        # a poll with nothing new changes nothing
        step = follow_alias(store, "trip_completion", "champion", "production", once=True)
        assert step is not None and (step.imported, step.moved) == (False, False)
        deadline = time.monotonic() + 10
        while True:
            after = http.post("/predict", json=body).json()["predictions"][0]
            if after != before or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert after == pytest.approx(before * 3, rel=1e-6)


def test_log_lineage_records_the_dataset_on_the_run(tracking: str, store: FeatureStore) -> None:
    entities = pd.DataFrame({"driver_id": [1, 3], "event_timestamp": [pd.Timestamp.now(tz="UTC")] * 2,
                             "bonus": [1.0, 1.0]})
    job = store.get_historical_features(entities, feature_service="svc")
    with mlflow.start_run() as run:
        logged = log_lineage(store, job, "svc")
    got = mlflow.MlflowClient().get_run(run.info.run_id).data
    assert got.params["pitstop.dataset_id"] == job.dataset_id and job.dataset_id.startswith("ds_")
    assert got.tags["pitstop.feature_service"] == "svc"
    assert got.params["pitstop.definitions_version"] == logged["pitstop.definitions_version"]


def test_alias_move_under_load_fails_no_request(tracking: str, store: FeatureStore, tmp_path: Path) -> None:
    """A real `pitstop serve` (2 workers) under steady /predict load while `follow` moves the alias."""
    from tests.integration.serve_process import ServeProcess

    client = mlflow.MlflowClient()
    v1 = train(1.0)
    client.set_registered_model_alias("trip_completion", "champion", v1)
    follow_alias(store, "trip_completion", "champion", "production", "svc", once=True)
    server = ServeProcess(store.repo_path, tmp_path, workers=2,
                          env={"PITSTOP_SERVING_MODEL_REFRESH_SECONDS": "0.2", "MLFLOW_ALLOW_FILE_STORE": "true"})
    body = {"model": "trip_completion", "entities": {"driver_id": [1]}, "request_data": {"bonus": [1.0]}}
    answers: list[tuple[int, float | None]] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            status, got = server.request("POST", "/predict", body)
            answers.append((status, got["predictions"][0] if status == 200 else None))

    with server:
        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        v2 = train(3.0)
        client.set_registered_model_alias("trip_completion", "champion", v2)
        follow_alias(store, "trip_completion", "champion", "production", once=True)
        time.sleep(3.0)
        stop.set()
        for t in threads:
            t.join()
    statuses = {status for status, _ in answers}
    values = sorted({round(v, 6) for _, v in answers if v is not None})
    assert statuses == {200}, f"{len(answers)} requests, statuses {statuses}"
    assert len(values) == 2 and values[1] == pytest.approx(values[0] * 3, rel=1e-5), values
    assert answers[-1][1] == pytest.approx(values[1])


def test_mlflows_own_scoring_client_against_a_real_serve(tmp_path: Path) -> None:
    """MLflow's ScoringServerClient (no auth headers: a loopback server with auth off) scores through /invocations."""
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    from tests.integration.serve_process import ServeProcess

    store = build_served_repo(tmp_path / "repo")
    # test repos serve with auth off on loopback (tests/support/repos.py)
    server = ServeProcess(store.repo_path, tmp_path, workers=1, env={"PITSTOP_SERVING_INVOCATIONS_MODEL": "rate"})
    with store, server:
        client = ScoringServerClient("127.0.0.1", server.port)
        client.wait_server_ready(timeout=10)
        frame = pd.DataFrame({"rate": [0.5, 1.0], "trips": [3, 0], "rate_plus": [1.0, 2.0]})
        got = client.invoke(frame).get_predictions()
        # the same rows as an Open Inference Protocol request to the same server
        status, oip = server.request("POST", "/v2/models/rate/infer", {"inputs": [
            {"name": "rows", "shape": [2, 3], "datatype": "FP64", "data": frame.to_numpy().ravel().tolist()}]})
    want = [0.5 * 10 + 3 + 1.0, 1.0 * 10 + 0 + 2.0]
    assert list(np.ravel(got)) == pytest.approx(want)
    assert status == 200 and oip["outputs"][0]["data"] == pytest.approx(want)
