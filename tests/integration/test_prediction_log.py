"""The prediction log of a real `pitstop serve` (gunicorn, 2 workers, Redis): SIGTERM loses nothing, overload counts drops."""

from __future__ import annotations

import http.client
import re
from pathlib import Path

import pyarrow.compute as pc
import pytest

from tests.integration.serve_process import ServeProcess, send
from tests.serving.conftest import build_served_repo

pytestmark = pytest.mark.integration

PREDICT = {"model": "rate", "entities": {"driver_id": [1, 3]}, "request_data": {"bonus": [0.5, 0.0]}}


def read_log(repo: Path) -> object:
    from deltalake import DeltaTable

    return DeltaTable(str(repo / "data" / "prediction_log" / "rate")).to_pyarrow_table()


def dropped(server: ServeProcess) -> float:
    _, text = server.request("GET", "/metrics")
    match = re.search(r"^pitstop_prediction_log_dropped_total ([0-9.e+]+)", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_sigterm_writes_every_buffered_prediction(tmp_path: Path, redis_url: str) -> None:
    repo = tmp_path / "repo"
    store = build_served_repo(repo, redis_url)
    server = ServeProcess(repo, tmp_path, workers=2, env={"PITSTOP_MONITORING_LOG_FLUSH_SECONDS": "600"})
    ids = [f"req-{i}" for i in range(150)]
    answers = {}
    with store, server:
        for request_id in ids:  # a fresh connection each: both workers get requests
            status, body = server.request("POST", "/predict", {**PREDICT, "request_id": request_id})
            assert status == 200 and body["request_id"] == request_id
            answers[request_id] = body["predictions"]
        status, body = server.request("POST", "/predict", PREDICT)
        generated = body["request_id"]
        assert status == 200 and re.fullmatch(r"[0-9a-f]{32}", generated)
        assert not (repo / "data" / "prediction_log" / "rate" / "_delta_log").exists()  # nothing flushed yet
        assert server.stop() == 0
    table = read_log(repo)
    assert table.num_rows == 2 * 151  # two entities per request, nothing lost
    assert set(table.column("request_id").to_pylist()) == {*ids, generated}
    row = table.filter(pc.equal(table.column("request_id"), "req-7")).sort_by("row").to_pylist()
    assert [r["driver_id"] for r in row] == [1, 3]
    assert [r["rate"] for r in row] == [0.2, 0.7]
    assert [r["rate__status"] for r in row] == ["PRESENT", "PRESENT"]
    assert [r["bonus"] for r in row] == [0.5, 0.0]
    assert [r["prediction"] for r in row] == answers["req-7"]
    assert {r["version"] for r in row} == {1} and {r["alias"] for r in row} == {"production"}
    assert str(table.schema.field("event_timestamp").type) == "timestamp[us, tz=UTC]"


def test_a_full_buffer_drops_and_counts_and_never_fails_a_request(tmp_path: Path, redis_url: str) -> None:
    repo = tmp_path / "repo"
    store = build_served_repo(repo, redis_url)
    server = ServeProcess(repo, tmp_path, workers=2, env={
        "PITSTOP_MONITORING_LOG_FLUSH_SECONDS": "600", "PITSTOP_MONITORING_LOG_BUFFER_ROWS": "10"})
    with store, server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for _ in range(40):
            status, _ = send(conn, "POST", "/predict", PREDICT)
            assert status == 200
        conn.close()
        lost = dropped(server)
        assert server.stop() == 0
    table = read_log(repo)
    assert 0 < table.num_rows <= 20  # at most 10 rows per worker
    assert lost > 0 and table.num_rows + lost == 80
