"""The whole user journey with real processes on one machine (issue 6):

init -> apply -> training set -> train + register -> materialize -> serve (gunicorn) -> produce events to
Kafka -> ingest -> /predict reflects the streamed values -> move the alias -> /predict answers from the new
version with no failed request -> a training set built afterwards includes the streamed rows.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pitstop import FeatureStore
from pitstop.settings import load_settings
from tests.integration.kafka_broker import create_topic, unique_name
from tests.integration.serve_process import ServeProcess, send
from tests.support.stream_repo import produce

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREDICT = {"model": "trip_completion", "entities": {"driver_id": [1001], "customer_id": [2001]},
           "request_data": {"trip_distance_km": [10.0]}, "return_features": True}


def run(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def test_the_whole_journey(tmp_path: Path, redis_url: str, kafka_bootstrap: str) -> None:
    repo = tmp_path / "repo"
    topic = unique_name("driver-stats")
    env = {
        **os.environ,
        "PITSTOP_PROJECT": f"journey_{uuid.uuid4().hex[:8]}",
        "PITSTOP_ONLINE_STORE_URL": redis_url,
        "PITSTOP_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PITSTOP_KAFKA_GROUP_ID": unique_name("journey"),
        "PITSTOP_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "PITSTOP_KAFKA_HEARTBEAT_INTERVAL_MS": "2000",
        "PITSTOP_INGEST_BATCH_MS": "100",
        "PITSTOP_INGEST_OFFLINE_ROLL_SECONDS": "0.5",
        "PITSTOP_INGEST_METRICS_PORT": "0",
        "PITSTOP_SERVING_MODEL_REFRESH_SECONDS": "0.2",
    }
    cli = [sys.executable, "-m", "pitstop.cli"]

    # init -> apply -> training set -> train + register -> materialize
    run([*cli, "init", str(repo)], env)
    sources = repo / "sources.py"
    sources.write_text(sources.read_text().replace('topic="driver_stats"', f'topic="{topic}"'))
    create_topic(kafka_bootstrap, topic, partitions=3)
    run([*cli, "-r", str(repo), "apply"], env)
    run([*cli, "-r", str(repo), "training-set", "--entities", str(repo / "data/entity_rows.parquet"),
         "--service", "driver_activity", "--out", str(tmp_path / "train.parquet")], env)
    assert len(pd.read_parquet(tmp_path / "train.parquet")) == 1000
    assert "version 1 as production" in run([sys.executable, str(repo / "train.py")], env).stdout
    run([*cli, "-r", str(repo), "materialize-incremental"], env)

    key = run([*cli, "-r", str(repo), "auth", "create-key", "journey-app", "--scope", "predict", "-q"],
              env).stdout.strip()
    assert key.startswith("psk_")
    server = ServeProcess(repo, tmp_path, workers=2, env=env, token=key)
    ingest_log = (tmp_path / "ingest.log").open("wb")
    ingester = subprocess.Popen([*cli, "-r", str(repo), "ingest"], env=env, stdout=ingest_log,
                                stderr=subprocess.STDOUT)
    try:
        server.start()
        assert server.request("POST", "/features", {"features": ["driver_hourly_stats:conv_rate"],
                                                    "entities": {"driver_id": [1001]}})[0] == 403  # predict only
        status, before = server.request("POST", "/predict", PREDICT)
        assert status == 200, before
        assert before["version"] == 1 and 0.0 < before["predictions"][0] < 1.0

        # produce fresh driver stats -> ingest -> /predict uses them
        now = datetime.now(UTC)
        produce(kafka_bootstrap, topic, [{"driver_id": 1001, "event_timestamp": now.isoformat(),
                                          "conv_rate": 0.987, "acc_rate": 0.123, "avg_daily_trips": 39}])
        deadline = time.monotonic() + 60
        after = before
        while time.monotonic() < deadline:
            after = server.request("POST", "/predict", PREDICT)[1]
            if after["features"]["values"]["conv_rate"][0] == pytest.approx(0.987, abs=1e-6):
                break
            assert ingester.poll() is None, (tmp_path / "ingest.log").read_text()[-3000:]
            time.sleep(0.2)
        values = after["features"]["values"]
        assert values["conv_rate"][0] == pytest.approx(0.987, abs=1e-6), "the streamed event never reached /predict"
        assert values["acc_rate"][0] == pytest.approx(0.123, abs=1e-6)
        assert values["avg_daily_trips"] == [39]
        assert after["predictions"][0] != before["predictions"][0]

        # move the alias (train.py registers version 2 as production) under load: no request fails
        answers: list[tuple[int, int | None]] = []
        stop = threading.Event()

        def hammer() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            try:
                while not stop.is_set():
                    try:
                        code, body = send(conn, "POST", "/predict", PREDICT, key)
                        answers.append((code, body.get("version") if code == 200 else None))
                    except (OSError, http.client.HTTPException):
                        answers.append((-1, None))
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            finally:
                conn.close()

        clients = [threading.Thread(target=hammer) for _ in range(3)]
        for t in clients:
            t.start()
        try:
            assert "version 2 as production" in run([sys.executable, str(repo / "train.py")], env).stdout
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (answers and answers[-1][1] == 2):
                time.sleep(0.1)
            time.sleep(1.0)
        finally:
            stop.set()
            for t in clients:
                t.join(30)
        failed = [a for a in answers if a[0] != 200]
        assert not failed, f"{len(failed)} of {len(answers)} requests failed during the swap"
        assert {v for _, v in answers} == {1, 2} and answers[-1][1] == 2
        assert server.request("POST", "/predict", PREDICT)[1]["version"] == 2

        # SIGTERM: the ingester finishes its batch, commits and leaves
        ingester.send_signal(signal.SIGTERM)
        assert ingester.wait(60) == 0, (tmp_path / "ingest.log").read_text()[-3000:]
    finally:
        if ingester.poll() is None:
            ingester.kill()
            ingester.wait()
        ingest_log.close()
        server.stop()

    # training sets built afterwards include the streamed row (appended to the view's Parquet folder)
    settings = load_settings(repo, environ={k: v for k, v in env.items() if k.startswith("PITSTOP_")})
    with FeatureStore(repo, settings=settings) as store:
        # the ingester stamped the row's created time when it wrote it, a few seconds after `now`: ask later
        rows = pd.DataFrame({"driver_id": [1001], "event_timestamp": [now + timedelta(minutes=5)]})
        got = store.get_historical_features(rows, ["driver_hourly_stats:conv_rate"]).to_pandas()
    assert got["conv_rate"].iloc[0] == pytest.approx(0.987, abs=1e-6)
    assert json.loads(json.dumps(after))  # the answers were plain JSON
