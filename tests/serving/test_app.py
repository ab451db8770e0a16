"""The scoring app in-process (TestClient over a SQLite online store): shapes, policies and 4xx errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from tests.serving.conftest import RateModel


def _error_field(response) -> str:
    body = response.json()
    assert set(body) == {"error", "message", "fields"}, body
    return body["fields"][0]["field"]


def test_features_by_service_has_feast_shape_and_statuses(client: TestClient) -> None:
    r = client.post("/features", json={"feature_service": "svc", "entities": {"driver_id": [1, 2, 99]},
                                       "request_data": {"bonus": [1.0, 1.0, 1.0]}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["metadata"]["feature_names"] == ["driver_id", "rate", "trips", "rate_plus"]
    keys, rate, trips, plus = body["results"]
    assert keys["values"] == [1, 2, 99]
    assert rate["values"] == [0.2, None, None]
    assert rate["statuses"] == ["PRESENT", "OUTSIDE_MAX_AGE", "NOT_FOUND"]
    assert trips["values"][0] == 20
    assert plus["values"][0] == pytest.approx(1.2)
    assert rate["event_timestamps"][0].endswith("Z") and rate["event_timestamps"][2] is None


def test_features_by_list_with_full_names(client: TestClient) -> None:
    r = client.post("/features", json={"features": ["stats:city", "forever:signup"], "entities": {"driver_id": [1]},
                                       "full_feature_names": True})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["feature_names"] == ["driver_id", "stats__city", "forever__signup"]
    assert [res["values"] for res in r.json()["results"]] == [[1], ["b"], [2019]]


def test_predict_scores_the_batch_with_one_model_call(client: TestClient) -> None:
    before = RateModel.calls
    r = client.post("/predict", json={"model": "rate", "entities": {"driver_id": [1, 3]},
                                      "request_data": {"bonus": [1.0, 2.0]}, "return_features": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["model"], body["version"]) == ("rate", 1)
    assert body["predictions"] == pytest.approx([0.2 * 10 + 20 + 1.2, 0.7 * 10 + 70 + 2.7])
    assert RateModel.calls == before + 1
    assert body["features"]["values"]["trips"] == [20, 70]
    assert body["features"]["statuses"]["rate"] == ["PRESENT", "PRESENT"]


def test_predict_rejects_missing_features_naming_entity_and_feature(client: TestClient) -> None:
    r = client.post("/predict", json={"model": "rate", "entities": {"driver_id": [1, 2]},
                                      "request_data": {"bonus": [0.0, 0.0]}})
    assert r.status_code == 422
    assert _error_field(r) == "entities[1]"
    message = r.json()["message"]
    assert "driver_id=2" in message and "'rate'" in message and "OUTSIDE_MAX_AGE" in message


def test_predict_uses_declared_defaults(client: TestClient) -> None:
    r = client.post("/predict", json={"model": "rate_default", "entities": {"driver_id": [2]},
                                      "request_data": {"bonus": [0.5]}, "return_features": True})
    # rate_plus has no default and its input (rate) is expired: still rejected, naming rate_plus
    assert r.status_code == 422 and "'rate_plus'" in r.json()["message"]


def test_predict_defaults_fill_when_declared_for_every_missing_input(client: TestClient, served_store) -> None:
    served_store.models.register("filled", RateModel(), "pyfunc", feature_service="svc", alias="production",
                                 serving={"defaults": {"rate": 0.0, "trips": 1, "rate_plus": 0.0}})
    r = client.post("/predict", json={"model": "filled", "entities": {"driver_id": [2, 1]},
                                      "request_data": {"bonus": [0.0, 0.0]}})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == pytest.approx([1.0, 0.2 * 10 + 20 + 0.2])


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"model": "nope", "entities": {"driver_id": [1]}}, 404, "model"),
    ({"model": "rate", "alias": "staging", "entities": {"driver_id": [1]}}, 404, "alias"),
    ({"model": "rate", "version": 7, "entities": {"driver_id": [1]}}, 404, "version"),
    ({"model": "rate", "version": 2**64, "entities": {"driver_id": [1]}}, 404, "version"),  # found by schemathesis
    ({"model": "rate", "version": 1, "alias": "production", "entities": {"driver_id": [1]}}, 422, "body"),
    ({"model": "bad name!", "entities": {"driver_id": [1]}}, 422, "model"),
    ({"model": "rate", "entities": {}}, 422, "entities"),
    ({"model": "rate"}, 422, "entities"),
    ({"model": "rate", "entities": {"driver_id": []}, "request_data": {"bonus": []}}, 422, "entities.driver_id"),
    ({"model": "rate", "entities": {"driver_id": ["one"]}, "request_data": {"bonus": [1]}}, 422,
     "entities.driver_id[0]"),
    ({"model": "rate", "entities": {"driver_id": [1, 2.5]}, "request_data": {"bonus": [1, 1]}}, 422,
     "entities.driver_id[1]"),
    ({"model": "rate", "entities": {"driver_id": [2**70]}, "request_data": {"bonus": [1]}}, 422,
     "entities.driver_id[0]"),
    ({"model": "rate", "entities": {"driver_id": [1, 2]}, "request_data": {"bonus": [1]}}, 422,
     "request_data.bonus"),
    ({"model": "rate", "entities": {"driver_id": [1]}}, 422, "request_data.bonus"),
    ({"model": "rate", "entities": {"driver_id": [1]}, "request_data": {"bonus": ["x"]}}, 422,
     "request_data.bonus[0]"),
    ({"model": "rate", "entities": {"drvier_id": [1]}, "request_data": {"bonus": [1]}}, 422, "entities.drvier_id"),
    ({"model": "rate", "entities": {"driver_id": [1] * 6}, "request_data": {"bonus": [1] * 6}}, 422, "entities"),
])
def test_predict_bad_requests_name_the_field(client: TestClient, body: dict, status: int, field: str) -> None:
    r = client.post("/predict", json=body)
    assert r.status_code == status, r.text
    assert _error_field(r) == field


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"features": ["stats:nope"], "entities": {"driver_id": [1]}}, 422, "features"),
    ({"features": ["nope:rate"], "entities": {"driver_id": [1]}}, 422, "features"),
    ({"features": ["rate"], "entities": {"driver_id": [1]}}, 422, "features"),
    ({"feature_service": "nope", "entities": {"driver_id": [1]}}, 404, "feature_service"),
    ({"entities": {"driver_id": [1]}}, 422, "body"),
    ({"features": ["stats:rate"], "feature_service": "svc", "entities": {"driver_id": [1]}}, 422, "body"),
    ({"features": ["stats:rate"], "entities": {"driver_id": [None]}}, 422, "entities.driver_id[0]"),
    ({"features": ["stats:rate"], "entities": {"driver_id": [True]}}, 422, "entities.driver_id[0]"),
    ({"features": ["stats:rate"], "entities": {"driver_id": [1]}, "extra": 1}, 422, "extra"),
])
def test_features_bad_requests_name_the_field(client: TestClient, body: dict, status: int, field: str) -> None:
    r = client.post("/features", json=body)
    assert r.status_code == status, r.text
    assert _error_field(r) == field


def test_malformed_json_is_a_4xx(client: TestClient) -> None:
    r = client.post("/features", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request"


def test_push_then_read_online(client: TestClient) -> None:
    now = int(time.time())
    r = client.post("/push/speed_push", json={"rows": [
        {"driver_id": 7, "event_timestamp": datetime.fromtimestamp(now - 60, UTC).isoformat(), "speed": 1.0},
        {"driver_id": 7, "event_timestamp": now, "speed": 2.0},
    ]})
    assert r.status_code == 200, r.text
    assert r.json() == {"written": 1, "stale": 0}
    got = client.post("/features", json={"features": ["pushed:speed"], "entities": {"driver_id": [7]}}).json()
    assert got["results"][1]["values"] == [2.0]


@pytest.mark.parametrize(("source", "rows", "status", "field"), [
    ("nope", [{"driver_id": 1}], 404, "source"),
    ("speed_push", [{"driver_id": 1, "speed": 1.0}], 422, "rows[0].event_timestamp"),
    ("speed_push", [{"driver_id": 1, "event_timestamp": "yesterday", "speed": 1.0}], 422, "rows.event_timestamp[0]"),
    ("speed_push", [{"driver_id": 1, "event_timestamp": 1e300, "speed": 1.0}], 422, "rows.event_timestamp[0]"),
    ("speed_push", [{"driver_id": 1, "event_timestamp": 0, "speed": "fast"}], 422, "rows.speed[0]"),
    ("speed_push", [{"driver_id": "a", "event_timestamp": 0, "speed": 1.0}], 422, "rows.driver_id[0]"),
    ("speed_push", [{"driver_id": 1, "event_timestamp": 0, "speed": 1.0, "color": "red"}], 422, "rows[0].color"),
])
def test_push_bad_rows_name_the_field(client: TestClient, source: str, rows: list, status: int, field: str) -> None:
    r = client.post(f"/push/{source}", json={"rows": rows})
    assert r.status_code == status, r.text
    assert _error_field(r) == field


def test_models_health_ready_metrics_and_docs(client: TestClient) -> None:
    models = client.get("/models").json()["models"]
    rate = next(m for m in models if m["name"] == "rate")
    assert rate["aliases"] == ["production"] and rate["served"] is True
    assert rate["signature"] == ["stats:rate", "stats:trips", "rate_plus:rate_plus"]
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["models"]["rate@production"] == 1
    client.post("/predict", json={"model": "rate", "entities": {"driver_id": [1]}, "request_data": {"bonus": [0]}})
    text = client.get("/metrics").text
    assert 'pitstop_predictions_total{model="rate",version="1"}' in text
    assert 'pitstop_http_request_duration_seconds_count{endpoint="/predict",method="POST",status="200"}' in text
    assert 'pitstop_feature_values_total{status="PRESENT"}' in text
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/features", "/predict", "/push/{source}", "/models", "/health", "/ready", "/metrics"} <= set(paths)


def test_alias_move_is_picked_up_by_the_watcher(client: TestClient, served_store) -> None:
    from tests.serving.conftest import OffsetModel

    v2 = served_store.models.register("rate", OffsetModel(), "pyfunc", feature_service="svc")
    body = {"model": "rate", "entities": {"driver_id": [1]}, "request_data": {"bonus": [0.0]}}
    assert client.post("/predict", json=body).json()["version"] == 1
    served_store.models.set_alias("rate", "production", v2.version)
    cache = client.app.state.service.cache
    import time

    deadline = time.monotonic() + 10
    while cache.served()["rate@production"] != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    answer = client.post("/predict", json=body).json()
    assert answer["version"] == 2
    assert answer["predictions"][0] == pytest.approx(1000 + 0.2 * 10 + 20 + 0.2)
    # a pinned version keeps answering from that version
    assert client.post("/predict", json={**body, "version": 1}).json()["version"] == 1


def test_model_whose_features_were_removed_answers_409(client: TestClient, served_store) -> None:
    served_store.models.register("orphan", RateModel(), "pyfunc", feature_service="svc", alias="production")
    service = client.app.state.service
    # simulate a registry where the model's inputs no longer resolve
    served = service.cache.get("orphan")
    object.__setattr__(served.version, "signature", ["stats:gone"])
    r = client.post("/predict", json={"model": "orphan", "entities": {"driver_id": [1]}})
    assert r.status_code == 409 and _error_field(r) == "model"


def test_sklearn_predict_proba_matches_the_estimator_on_the_same_inputs(client: TestClient, served_store) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.standard_normal((80, 3)), columns=["rate", "trips", "rate_plus"])
    model = LogisticRegression().fit(frame, (frame["rate"] + frame["trips"] > 0).astype(int))
    served_store.models.register("lr", model, "sklearn", feature_service="svc", alias="production",
                                 serving={"predict_method": "predict_proba"})
    r = client.post("/predict", json={"model": "lr", "entities": {"driver_id": [1, 3]},
                                      "request_data": {"bonus": [0.5, -1.0]}})
    assert r.status_code == 200, r.text
    expected = model.predict_proba(pd.DataFrame({"rate": [0.2, 0.7], "trips": [20.0, 70.0],
                                                 "rate_plus": [0.7, -0.3]}))[:, 1]
    assert r.json()["predictions"] == pytest.approx(expected.tolist())
    served = client.app.state.service.cache.get("lr")
    assert served.model.accepts_array  # fitted on the signature's names, in order: the array lane was used


def test_event_timestamps_agree_between_library_and_service(client: TestClient, served_store) -> None:
    online = served_store.get_online_features(["stats:rate", "forever:signup"], {"driver_id": [1, 99]})
    body = client.post("/features", json={"features": ["stats:rate", "forever:signup"],
                                          "entities": {"driver_id": [1, 99]}}).json()
    for name, result in zip(body["metadata"]["feature_names"], body["results"], strict=True):
        expected = [None if t is None else t.isoformat().replace("+00:00", "Z")
                    for t in online.event_timestamps[name]]
        assert result["event_timestamps"] == expected, name
    assert online.event_timestamps["rate"][0].tzinfo is not None and online.event_timestamps["rate"][1] is None
