"""/push cannot poison state: boundary rules on times and values, push sources only, bounded bodies and errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pitstop.serving import create_app
from pitstop.serving.fast_path import MAX_BODY_BYTES
from tests.support.stream_repo import make_stream_repo

NOW = int(time.time())


def _row(ts: object, speed: object = 1.0, driver: int = 7) -> dict[str, object]:
    return {"driver_id": driver, "event_timestamp": ts, "speed": speed}


def _refused(r, field: str, *words: str) -> dict:
    assert r.status_code == 422, r.text
    body = r.json()
    assert set(body) == {"error", "message", "fields"}, body
    assert body["fields"][0]["field"] == field, body
    for word in words:
        assert word in body["fields"][0]["reason"], body
    return body


@pytest.mark.parametrize(("ts", "unit", "words"), [
    (NOW * 1_000_000, "s", ["read as epoch seconds", "timestamp_unit='us'"]),
    (NOW * 1_000, "s", ["read as epoch seconds", "timestamp_unit='ms'"]),
    ("2200-01-01T00:00:00Z", "s", ["later than the latest accepted time", "max_future_seconds"]),
    (NOW + 3600, "s", ["later than the latest accepted time"]),
    ("", "s", ["not an ISO-8601 time"]),
    ("NaT", "s", ["not an ISO-8601 time"]),
    ("now", "s", ["not an ISO-8601 time"]),
    ("today", "s", ["not an ISO-8601 time"]),
    ("1800-01-01", "s", ["year 1,800", "1900-01-01"]),
    (True, "s", ["expected an ISO-8601 time"]),
])
def test_push_refuses_times_outside_the_rules(client: TestClient, ts: object, unit: str, words: list[str]) -> None:
    r = client.post("/push/speed_push", json={"rows": [_row(NOW), _row(ts)], "timestamp_unit": unit})
    _refused(r, "rows.event_timestamp[1]", *words)
    got = client.post("/features", json={"features": ["pushed:speed"], "entities": {"driver_id": [7]}}).json()
    assert got["results"][1]["statuses"] != ["PRESENT"] or got["results"][1]["values"] != [1.0]  # nothing written


@pytest.mark.parametrize(("ts", "unit"), [(NOW * 1000, "ms"), (NOW * 1_000_000, "us"), (NOW * 10**9, "ns"), (NOW, "s"),
                                          (datetime.fromtimestamp(NOW, UTC).isoformat(), "ms")])
def test_push_reads_numbers_in_the_declared_unit(client: TestClient, ts: object, unit: str) -> None:
    r = client.post("/push/speed_push", json={"rows": [_row(ts, 3.5)], "timestamp_unit": unit})
    assert r.status_code == 200, r.text
    got = client.post("/features", json={"features": ["pushed:speed"], "entities": {"driver_id": [7]}}).json()
    assert got["results"][1]["values"] == [3.5]
    assert got["results"][1]["event_timestamps"] == [datetime.fromtimestamp(NOW, UTC).isoformat().replace("+00:00", "Z")]


def test_push_float_overflow_is_refused(client: TestClient) -> None:
    r = client.post("/push/speed_push", content=b'{"rows": [{"driver_id": 7, "event_timestamp": %d, "speed": 1e400}]}'
                    % NOW, headers={"content-type": "application/json"})
    _refused(r, "rows.speed[0]", "inf")


def test_push_nan_is_refused(client: TestClient) -> None:
    r = client.post("/push/speed_push", content=b'{"rows": [{"driver_id": 7, "event_timestamp": %d, "speed": NaN}]}'
                    % NOW, headers={"content-type": "application/json"})
    _refused(r, "rows.speed[0]", "send null for a missing value")


def test_push_to_a_parquet_source_is_refused_naming_source(client: TestClient) -> None:
    r = client.post("/push/stats_src", json={"rows": [{"driver_id": 1, "event_timestamp": NOW, "rate": 1.0}]})
    body = _refused(r, "source", "Parquet source", "push sources only")
    assert body["error"] == "not_a_push_source"


def test_push_to_a_kafka_source_is_refused_naming_source(tmp_path: Path) -> None:
    store = make_stream_repo(tmp_path, online_url="sqlite:///data/online.db", bootstrap="127.0.0.1:1", topic="t",
                             group="g")
    with store, TestClient(create_app(store=store)) as c:
        r = c.post("/push/trips_stream", json={"rows": [{"driver_id": 1, "event_timestamp": NOW, "speed": 1.0,
                                                          "trips": 1, "city": "x"}]})
        _refused(r, "source", "Kafka source", "push sources only")


def test_invalid_utf8_and_truncated_json_name_the_body(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    r = client.post("/push/speed_push", content=b'{"rows": [{"driver_id": 7, "speed": "\xff\xfe"}]}', headers=headers)
    _refused(r, "body", "UTF-8")
    r = client.post("/push/speed_push", content=b'{"rows": [{"driver_id": 7', headers=headers)
    _refused(r, "body", "invalid JSON")


def test_a_huge_name_comes_back_as_a_short_excerpt(client: TestClient) -> None:
    name = "n" * 10_000_000
    r = client.post("/push/speed_push", json={"rows": [{**_row(NOW), name: 1}]})
    assert r.status_code == 422
    assert len(r.content) < 3_000, len(r.content)
    r = client.post(f"/push/{'s' * 5_000}", json={"rows": [_row(NOW)]})
    assert r.status_code in (404, 414, 422) and len(r.content) < 3_000
    r = client.post("/features", json={"features": ["pushed:speed"], "entities": {name: [1]}})
    assert r.status_code == 422 and len(r.content) < 3_000, len(r.content)


def test_a_body_over_the_limit_answers_413(client: TestClient) -> None:
    big = b'{"rows": [' + b" " * (MAX_BODY_BYTES + 10) + b"]}"
    r = client.post("/push/speed_push", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text[:200]
    assert r.json()["fields"][0]["field"] == "body"

    def chunks():  # no Content-Length: counted as it streams
        yield b'{"rows": ['
        for _ in range(17):
            yield b" " * (1 << 20)
        yield b"]}"

    r = client.post("/push/speed_push", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text[:200]


def test_python_push_applies_the_same_rules(served_store) -> None:
    import pandas as pd

    from pitstop.errors import InvalidValueError

    frame = pd.DataFrame({"driver_id": [7, 8], "event_timestamp": [NOW, NOW * 1_000_000], "speed": [1.0, 2.0]})
    with pytest.raises(InvalidValueError, match=r"column 'event_timestamp', row 1: .*timestamp_unit='us'"):
        served_store.push("speed_push", frame)
    frame = pd.DataFrame({"driver_id": [7], "event_timestamp": [NOW * 1000], "speed": [2.0]})
    assert served_store.push("speed_push", frame, timestamp_unit="ms").written == 1
    for bad in ["", "NaT", "now", "today", "2200-01-01"]:
        frame = pd.DataFrame({"driver_id": [7], "event_timestamp": [bad], "speed": [2.0]})
        with pytest.raises(InvalidValueError, match="column 'event_timestamp', row 0"):
            served_store.push("speed_push", frame)
    future = pd.DataFrame({"driver_id": [7], "event_timestamp": [pd.Timestamp("2200-01-01", tz="UTC")], "speed": [1.0]})
    with pytest.raises(InvalidValueError, match="later than the latest accepted time"):
        served_store.push("speed_push", future)
