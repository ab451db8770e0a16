"""Other tools' protocols in-process: MLflow's /invocations, the Open Inference Protocol, Feast's routes."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from pitstop.serving import create_app

# RateModel: 10 * rate + trips + rate_plus
ROWS = [[0.5, 3, 1.0], [1.0, 0, 2.0]]
WANT = [0.5 * 10 + 3 + 1.0, 1.0 * 10 + 0 + 2.0]


def _field(response) -> str:
    return response.json()["fields"][0]["field"]


@pytest.mark.parametrize("body", [
    {"dataframe_split": {"columns": ["rate", "trips", "rate_plus"], "data": ROWS}},
    {"dataframe_split": {"columns": ["trips", "rate_plus", "rate", "extra"],
                         "data": [[3, 1.0, 0.5, "x"], [0, 2.0, 1.0, "y"]]}},
    {"dataframe_records": [{"rate": 0.5, "trips": 3, "rate_plus": 1.0}, {"rate": 1.0, "trips": 0, "rate_plus": 2.0}]},
    {"instances": ROWS},
    {"instances": [{"rate": 0.5, "trips": 3, "rate_plus": 1.0}, {"rate": 1.0, "trips": 0, "rate_plus": 2.0}]},
    {"inputs": {"rate": [0.5, 1.0], "trips": [3, 0], "rate_plus": [1.0, 2.0]}},
    {"inputs": ROWS},
], ids=["split", "split-reordered", "records", "instances-rows", "instances-records", "inputs-columns", "inputs-rows"])
def test_invocations_accepts_every_mlflow_input_form(client: TestClient, body: dict) -> None:
    r = client.post("/invocations?model=rate", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": pytest.approx(WANT)}


@pytest.mark.parametrize(("body", "field"), [
    ({"dataframe_split": {"columns": ["rate", "trips"], "data": [[0.5, 3]]}}, "dataframe_split"),
    ({"dataframe_split": {"columns": ["rate", "trips", "rate_plus"], "data": [[0.5, 3]]}}, "dataframe_split.data[0]"),
    ({"dataframe_records": [{"rate": None, "trips": 3, "rate_plus": 1.0}]}, "dataframe_records.rate[0]"),
    ({"instances": [[0.5, 3]]}, "instances[0]"),
    ({"instances": [[0.5, 3, "fast"]]}, "instances.rate_plus[0]"),
    ({"instances": [["a", "b", "c"]]}, "instances.rate[0]"),
    ({"dataframe_records": [{"rate": True, "trips": 3, "rate_plus": 1.0}]}, "dataframe_records.rate[0]"),
    ({"inputs": {"rate": [1.0], "trips": [1, 2], "rate_plus": [1.0]}}, "inputs"),
    ({"instances": ROWS, "inputs": ROWS}, "body"),
    ({}, "body"),
])
def test_invocations_bad_inputs_name_the_field(client: TestClient, body: dict, field: str) -> None:
    r = client.post("/invocations?model=rate", json=body)
    assert r.status_code == 422, r.text
    assert _field(r).startswith(field), r.json()


def test_invocations_model_choice(client: TestClient) -> None:
    # two models are registered: without ?model= or serving.invocations_model the caller must choose
    r = client.post("/invocations", json={"instances": ROWS})
    assert r.status_code == 422 and _field(r) == "model"
    assert client.post("/invocations?model=nope", json={"instances": ROWS}).status_code == 404
    assert client.post("/invocations?model=rate@staging", json={"instances": ROWS}).status_code == 404
    assert client.post("/invocations?model=rate@production", json={"instances": ROWS}).status_code == 200


def test_invocations_default_model_setting_and_declared_defaults(served_store) -> None:
    serving = served_store.settings.serving.model_copy(update={"invocations_model": "rate_default"})
    settings = served_store.settings.model_copy(update={"serving": serving})
    from pitstop import FeatureStore

    with FeatureStore(served_store.repo_path, settings=settings) as store, TestClient(create_app(store=store)) as c:
        # rate_default declares rate=0.0 and trips=-1: a null or an absent column is filled in
        r = c.post("/invocations", json={"dataframe_records": [{"rate": None, "trips": 3, "rate_plus": 1.0}]})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == pytest.approx([0.0 + 3 + 1.0])
        r = c.post("/invocations", json={"inputs": {"rate": [1.0], "rate_plus": [1.0]}})
        assert r.json()["predictions"] == pytest.approx([10.0 - 1 + 1.0])


def test_open_inference_protocol_infer_metadata_and_health(client: TestClient) -> None:
    tensors = {"id": "req-1", "inputs": [
        {"name": "rate", "shape": [2], "datatype": "FP64", "data": [0.5, 1.0]},
        {"name": "trips", "shape": [2, 1], "datatype": "INT64", "data": [[3], [0]]},
        {"name": "rate_plus", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
    ]}
    r = client.post("/v2/models/rate/infer", json=tensors)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("rate", "1", "req-1")
    out = body["outputs"][0]
    assert out["name"] == "predict" and out["shape"] == [2] and out["datatype"] == "FP64"
    assert out["data"] == pytest.approx(WANT)
    # one [rows, inputs] tensor in the model's column order, on a fixed version
    matrix = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": [v for row in ROWS for v in row]}]}
    r = client.post("/v2/models/rate/versions/1/infer", json=matrix)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == pytest.approx(WANT)
    meta = client.get("/v2/models/rate").json()
    assert [i["name"] for i in meta["inputs"]] == ["rate", "trips", "rate_plus"] and meta["versions"] == ["1"]
    assert client.get("/v2/models/rate/ready").json() == {"name": "rate", "ready": True}
    assert client.get("/v2/models/rate/versions/9").status_code == 404
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "pitstop"


@pytest.mark.parametrize(("inputs", "field"), [
    ([{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}], "inputs[0]"),
    ([{"name": "rate", "shape": [2], "datatype": "FP64", "data": [1.0]}], "inputs[0]"),
    ([{"name": "rate", "shape": [1], "datatype": "FP64", "data": [1.0]},
      {"name": "trips", "shape": [1], "datatype": "FP64", "data": [1.0]}], "inputs"),
    ([{"name": "rate", "shape": [1], "datatype": "FP99", "data": [1.0]}], "inputs[0].datatype"),
])
def test_open_inference_protocol_bad_tensors_name_the_field(client: TestClient, inputs: list, field: str) -> None:
    r = client.post("/v2/models/rate/infer", json={"inputs": inputs})
    assert r.status_code == 422, r.text
    assert _field(r).startswith(field), r.json()


def test_protocol_routes_are_counted_per_template(client: TestClient) -> None:
    client.post("/v2/models/rate/infer", json={"inputs": [
        {"name": "x", "shape": [1, 3], "datatype": "FP64", "data": ROWS[0]}]})
    text = client.get("/metrics").text
    assert 'endpoint="/v2/models/{name}/infer"' in text
    assert 'pitstop_predictions_total{model="rate",version="1"}' in text


def test_feast_get_online_features_route_answers_like_features(client: TestClient) -> None:
    body = {"feature_service": "svc", "entities": {"driver_id": [1, 99]}, "request_data": {"bonus": [1.0, 1.0]},
            "include_feature_view_version_metadata": False}
    feast_route = client.post("/get-online-features", json=body)
    assert feast_route.status_code == 200, feast_route.text
    native = client.post("/features", json={k: v for k, v in body.items() if k != "include_feature_view_version_metadata"})
    assert feast_route.json() == native.json()


def test_feast_push_route_writes_columns_and_names_df_fields(client: TestClient) -> None:
    now = int(time.time())
    r = client.post("/push", json={"push_source_name": "speed_push", "to": "online",
                                   "df": {"driver_id": [8, 9], "event_timestamp": [now, now], "speed": [3.5, 4.5]}})
    assert r.status_code == 200, r.text
    assert r.json() == {"written": 2, "stale": 0}
    got = client.post("/features", json={"features": ["pushed:speed"], "entities": {"driver_id": [8, 9]}}).json()
    assert got["results"][1]["values"] == [3.5, 4.5]
    bad = client.post("/push", json={"push_source_name": "speed_push",
                                     "df": {"driver_id": [8], "event_timestamp": [now], "speed": ["fast"]}})
    assert bad.status_code == 422 and _field(bad) == "df.speed[0]"
    unknown = client.post("/push", json={"push_source_name": "nope", "df": {"driver_id": [8]}})
    assert unknown.status_code == 404 and _field(unknown) == "push_source_name"
    in_ms = client.post("/push", json={"push_source_name": "speed_push",
                                       "df": {"driver_id": [8], "event_timestamp": [now * 1000], "speed": [5.5]}})
    assert in_ms.status_code == 422 and _field(in_ms) == "df.event_timestamp[0]" and "timestamp_unit" in in_ms.text
    ms = client.post("/push", json={"push_source_name": "speed_push", "timestamp_unit": "ms",
                                    "df": {"driver_id": [8], "event_timestamp": [now * 1000 + 1], "speed": [5.5]}})
    assert ms.status_code == 200 and ms.json() == {"written": 1, "stale": 0}
    ragged = client.post("/push", json={"push_source_name": "speed_push", "df": {"driver_id": [8, 9], "speed": [1.0]}})
    assert ragged.status_code == 422 and _field(ragged) == "df"


def test_protocol_requests_reach_the_prediction_log(tmp_path) -> None:
    from tests.support.monitor_repo import make_monitor_repo

    store, _ = make_monitor_repo(tmp_path)
    try:
        with TestClient(create_app(store=store)) as c:
            assert c.app.state.service.cache.ready.wait(10)
            r = c.post("/invocations?model=score", json={"dataframe_records": [
                {"x": 0.5, "y": 1.0, "city": "a"}, {"x": 1.5, "y": 2.0, "city": "b"}]})
            assert r.status_code == 200, r.text
            r = c.post("/v2/models/score/infer", json={"id": "oip-1", "inputs": [
                {"name": "x", "shape": [1], "datatype": "FP64", "data": [2.5]},
                {"name": "y", "shape": [1], "datatype": "FP64", "data": [3.0]},
                {"name": "city", "shape": [1], "datatype": "BYTES", "data": ["c"]}]})
            assert r.status_code == 200, r.text
            predicted = r.json()["outputs"][0]["data"][0]
        log = store.monitor.log("score").to_pandas()
        assert len(log) == 3
        row = log[log.request_id == "oip-1"].iloc[0]
        assert (row.x, row.city, row.x__status) == (2.5, "c", "PRESENT")
        assert row.prediction == pytest.approx(predicted)
        assert sorted(log.city) == ["a", "b", "c"]
    finally:
        store.close()
