"""`pitstop serve` as a real gunicorn process over a real Redis: answers, metrics, hot swap under load, SIGTERM."""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pitstop import FeatureStore
from tests.integration.serve_process import ServeProcess, send
from tests.serving.conftest import OffsetModel, build_served_repo

pytestmark = pytest.mark.integration

PREDICT = {"model": "rate", "entities": {"driver_id": [1, 3]}, "request_data": {"bonus": [0.0, 0.0]}}


@pytest.fixture
def served(tmp_path: Path, redis_url: str) -> Iterator[tuple[FeatureStore, ServeProcess]]:
    repo = tmp_path / "repo"
    store = build_served_repo(repo, redis_url)
    server = ServeProcess(repo, tmp_path, workers=2, env={"PITSTOP_SERVING_MODEL_REFRESH_SECONDS": "0.2"})
    with store, server:
        yield store, server


def test_gunicorn_serves_features_and_predictions_from_redis(served: tuple[FeatureStore, ServeProcess]) -> None:
    _, server = served
    status, body = server.request("POST", "/predict", PREDICT)
    assert status == 200, body
    assert body["version"] == 1 and body["predictions"] == pytest.approx([22.2, 77.7])
    status, body = server.request("POST", "/features", {"feature_service": "svc", "entities": {"driver_id": [1]},
                                                        "request_data": {"bonus": [1.0]}})
    assert status == 200 and body["results"][1]["values"] == [0.2]
    status, body = server.request("POST", "/predict", {**PREDICT, "entities": {"driver_id": ["x", "y"]}})
    assert status == 422 and body["fields"][0]["field"] == "entities.driver_id[0]"


def test_metrics_add_up_over_workers(served: tuple[FeatureStore, ServeProcess]) -> None:
    _, server = served
    for _ in range(30):  # fresh connections: gunicorn spreads them over both workers
        assert server.request("POST", "/predict", PREDICT)[0] == 200
    _, text = server.request("GET", "/metrics")
    count = re.search(r'pitstop_predictions_total\{model="rate",version="1"\} ([0-9.e+]+)', text)
    assert count is not None, text[:2000]
    assert float(count.group(1)) == 60  # 30 requests x 2 entities, whichever worker answers /metrics


@pytest.mark.slow
def test_hot_swap_under_concurrent_load_fails_no_request(served: tuple[FeatureStore, ServeProcess]) -> None:
    store, server = served
    stop = threading.Event()
    results: list[list[tuple[int, int | None]]] = [[] for _ in range(6)]

    def client(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            while not stop.is_set():
                try:
                    status, body = send(conn, "POST", "/predict", PREDICT)
                    results[slot].append((status, body.get("version") if status == 200 else None))
                except (OSError, http.client.HTTPException) as exc:
                    results[slot].append((-1, None))
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                    print("request failed:", exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    time.sleep(1.0)
    v2 = store.models.register("rate", OffsetModel(), "pyfunc", feature_service="svc")
    store.models.set_alias("rate", "production", v2.version)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if all(r and r[-1][1] == 2 for r in results):
            break
        time.sleep(0.1)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(30)
    answers = [a for r in results for a in r]
    failures = [a for a in answers if a[0] != 200]
    assert not failures, f"{len(failures)} of {len(answers)} requests failed: {failures[:5]}"
    for r in results:
        versions = [v for _, v in r]
        assert versions[0] == 1 and versions[-1] == 2, "every connection moved from version 1 to 2"
        first_new = versions.index(2)
        assert set(versions[first_new:]) == {2}, "a worker never goes back to the old version"
    assert len(answers) > 100


def test_sigterm_drains_and_exits_cleanly(served: tuple[FeatureStore, ServeProcess]) -> None:
    _, server = served
    assert server.request("GET", "/health") == (200, {"status": "ok"})
    assert server.stop() == 0
    assert "Shutting down: Master" in server.log() or "Handling signal: term" in server.log()
