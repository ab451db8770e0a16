"""Every route needs its scope: the route table covers the app, and keys are checked in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Route

from pitstop import FeatureStore
from pitstop.auth.keyring import ApiKeys
from pitstop.serving import create_app
from pitstop.serving.route_scopes import OPEN, ROUTE_SCOPES
from pitstop.settings import AuthSettings, ServingSettings
from tests.serving.conftest import build_served_repo

FEATURES = {"features": ["stats:rate"], "entities": {"driver_id": [1]}}
PREDICT = {"model": "rate", "entities": {"driver_id": [1]}, "request_data": {"bonus": [0.0]}}


def test_every_route_of_the_app_has_a_scope() -> None:
    app = create_app(store=None, repo_path="/nonexistent")  # routes exist before the lifespan runs
    missing = []
    for route in app.routes:
        if isinstance(route, APIRoute | Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD" and (method, route.path) not in ROUTE_SCOPES:
                    missing.append(f"{method} {route.path}")
    assert missing == [], f"routes without an entry in pitstop/serving/route_scopes.py: {missing}"


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    writer = build_served_repo(tmp_path)
    keys = ApiKeys(writer.registry)
    secrets = {name: keys.create(name, scopes).secret for name, scopes in {
        "reader": ["features:read"], "scorer": ["predict"], "pusher": ["push:speed_push"], "ops": ["metrics"],
        "root": ["admin"]}.items()}
    settings = writer.settings.model_copy(update={
        "serving": ServingSettings(model_refresh_seconds=0.05), "auth": AuthSettings(key_refresh_seconds=0.1)})
    with FeatureStore(tmp_path, settings=settings) as store, TestClient(create_app(store=store)) as client:
        assert client.app.state.service.cache.ready.wait(10)
        yield client, secrets
    writer.close()


def call(client: TestClient, method: str, path: str, secret: str | None, body: object = None) -> int:
    headers = {"authorization": f"Bearer {secret}"} if secret else {}
    return client.request(method, path, json=body, headers=headers).status_code


def test_anonymous_requests_are_refused_except_probes(secured: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = secured
    for (method, path), scope in ROUTE_SCOPES.items():
        path = path.replace("{source}", "speed_push")
        response = client.request(method, path, follow_redirects=False)
        if path.startswith("/ui"):  # a browser: open pages answer, the rest send it to sign in
            if scope == OPEN:
                assert response.status_code in (200, 303, 404, 422), (method, path)
            else:
                assert response.status_code == 303, (method, path)
                assert response.headers["location"].startswith("/ui/login?next=")
            continue
        if scope == OPEN:
            assert response.status_code in (200, 503), (method, path)
        else:
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["error"] == "unauthorized"


def test_scopes_decide(secured: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = secured
    assert call(client, "POST", "/features", keys["reader"], FEATURES) == 200
    assert call(client, "POST", "/predict", keys["reader"], PREDICT) == 403
    assert call(client, "POST", "/predict", keys["scorer"], PREDICT) == 200
    assert call(client, "POST", "/features", keys["scorer"], FEATURES) == 403
    push = {"rows": [{"driver_id": 5, "event_timestamp": "2026-01-01T00:00:00Z", "speed": 1.0}]}
    assert call(client, "POST", "/push/speed_push", keys["pusher"], push) == 200
    assert call(client, "POST", "/push/other_source", keys["pusher"], push) == 403
    assert call(client, "GET", "/metrics", keys["ops"]) == 200
    assert call(client, "GET", "/models", keys["ops"]) == 403
    assert call(client, "GET", "/openapi.json", keys["ops"]) == 200  # any valid credential
    for path in ("/models", "/metrics"):
        assert call(client, "GET", path, keys["root"]) == 200
    response = client.post("/predict", json=PREDICT, headers={"authorization": f"Bearer {keys['reader']}"})
    assert "predict" in response.json()["message"] and response.json()["error"] == "forbidden"
    assert keys["reader"] not in response.text


def test_unknown_routes_are_refused(secured: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = secured
    assert call(client, "GET", "/admin/secret", keys["root"]) == 404
    assert call(client, "GET", "/features", keys["root"]) == 405


def test_revoked_key_stops_working_within_the_refresh_bound(secured: tuple[TestClient, dict[str, str]]) -> None:
    import time

    client, keys = secured
    assert call(client, "POST", "/features", keys["reader"], FEATURES) == 200
    ApiKeys(client.app.state.service.store.registry).revoke("reader")
    deadline = time.monotonic() + 5
    while call(client, "POST", "/features", keys["reader"], FEATURES) == 200:
        assert time.monotonic() < deadline, "revoked key still accepted after 5 s"
        time.sleep(0.05)
    assert call(client, "POST", "/features", keys["reader"], FEATURES) == 401


def test_the_openapi_schema_declares_bearer_auth_on_protected_routes(
        secured: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = secured
    schema = client.get("/openapi.json", headers={"authorization": f"Bearer {keys['ops']}"}).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert schema["paths"]["/features"]["post"]["security"] == [{"bearer": []}]
    assert schema["paths"]["/push/{source}"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in schema["paths"]["/health"]["get"]
    assert "401" in schema["paths"]["/predict"]["post"]["responses"]


def test_a_push_is_logged_with_its_principal(secured: tuple[TestClient, dict[str, str]],
                                             caplog: pytest.LogCaptureFixture) -> None:
    client, keys = secured
    push = {"rows": [{"driver_id": 5, "event_timestamp": "2026-01-01T00:00:00Z", "speed": 1.0}]}
    with caplog.at_level("INFO", logger="pitstop.serving.app"):
        assert call(client, "POST", "/push/speed_push", keys["pusher"], push) == 200
    assert any("push to speed_push by key:pusher: 1 rows written" in r.getMessage() for r in caplog.records)
    assert all(keys["pusher"] not in r.getMessage() for r in caplog.records)
