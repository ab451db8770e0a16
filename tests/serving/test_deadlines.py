"""Issue 10: blocking work runs off the event loop under a deadline; /ready names unloadable aliases."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pitstop import FeatureStore
from pitstop.serving import create_app
from pitstop.settings import ServingSettings
from tests.serving.conftest import RateModel, build_served_repo

FEATURES = {"feature_service": "svc", "entities": {"driver_id": [1]}, "request_data": {"bonus": [1.0]}}
PREDICT = {"model": "rate", "entities": {"driver_id": [1]}, "request_data": {"bonus": [0.0]}}


def _serve(store: FeatureStore, **serving: object) -> TestClient:
    settings = ServingSettings(model_refresh_seconds=0.05, **serving)  # type: ignore[arg-type]
    served = FeatureStore(store.repo_path, settings=store.settings.model_copy(update={"serving": settings}))
    return TestClient(create_app(store=served))


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[FeatureStore]:
    store = build_served_repo(tmp_path)
    yield store
    store.close()


def _hang_reads(store: FeatureStore, release: threading.Event) -> None:
    online = store.online
    real = online.read

    def hung(*args, **kwargs):  # a Redis that stopped answering
        release.wait(30)
        return real(*args, **kwargs)

    online.read = hung  # type: ignore[method-assign]


def test_a_hung_online_store_answers_503_within_the_deadline_and_health_stays_fast(repo: FeatureStore) -> None:
    release = threading.Event()
    with _serve(repo, request_timeout_ms=300, threads=2) as client:
        assert client.app.state.service.cache.ready.wait(10)
        _hang_reads(client.app.state.service.store, release)
        try:
            for path, body in (("/features", FEATURES), ("/predict", PREDICT)):
                t0 = time.monotonic()
                r = client.post(path, json=body)
                elapsed = time.monotonic() - t0
                assert r.status_code == 503, r.text
                assert r.json()["error"] == "store_unavailable" and r.json()["fields"] == []
                assert "online store sqlite:///" in r.json()["message"], r.json()
                assert elapsed < 0.3 * 2, elapsed
            # both threads are stuck now, and the two waiting slots fill up: then 503 at once
            t0 = time.monotonic()
            statuses = [client.post("/features", json=FEATURES).status_code for _ in range(4)]
            assert statuses == [503] * 4
            assert time.monotonic() - t0 < 4 * 0.3 * 2
            t0 = time.monotonic()
            assert client.get("/health").json() == {"status": "ok"}
            assert time.monotonic() - t0 < 0.2
        finally:
            release.set()
        deadline = time.monotonic() + 10
        while client.post("/features", json=FEATURES).status_code != 200:  # recovers without a restart
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_ready_is_bounded_by_the_deadline_when_the_online_store_hangs(repo: FeatureStore) -> None:
    release = threading.Event()
    with _serve(repo, request_timeout_ms=300) as client:
        assert client.app.state.service.cache.ready.wait(10)
        online = client.app.state.service.store.online
        online.ping = lambda: release.wait(30)  # type: ignore[method-assign]
        try:
            t0 = time.monotonic()
            r = client.get("/ready")
            assert time.monotonic() - t0 < 0.6
            assert r.status_code == 503 and "online store" in r.json()["message"], r.text
        finally:
            release.set()


def test_ready_is_503_naming_an_alias_whose_artifact_cannot_be_loaded(repo: FeatureStore) -> None:
    folder = repo.settings.resolve(repo.settings.artifacts.path) / "rate_default" / "1"
    tampered = [p for p in folder.rglob("*") if p.is_file()]
    assert tampered
    for path in tampered:
        path.write_bytes(path.read_bytes() + b"tampered")
    with _serve(repo) as client:
        assert client.app.state.service.cache.ready.wait(10)
        r = client.get("/ready")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["error"] == "not_ready" and "rate_default@production" in body["message"]
        assert "version 1" in body["models"]["rate_default@production"]
        # the other alias still serves, and a new loadable version heals the alias without a restart
        assert client.post("/predict", json=PREDICT).status_code == 200
        v2 = repo.models.register("rate_default", RateModel(), "pyfunc", feature_service="svc",
                                  serving={"defaults": {"rate": 0.0, "trips": -1}})
        repo.models.set_alias("rate_default", "production", v2.version)
        deadline = time.monotonic() + 10
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, client.get("/ready").text
            time.sleep(0.05)
        assert client.get("/ready").json()["models"]["rate_default@production"] == v2.version
