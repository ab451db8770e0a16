"""Feast's real client (its RemoteOnlineStore, from the Feast virtualenv) and Feast-shaped HTTP calls
against a real `pitstop serve` with auth on."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pitstop.auth.keyring import ApiKeys
from tests.integration.serve_process import ServeProcess
from tests.serving.conftest import build_served_repo

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def feast_python() -> str:
    """The Feast virtualenv's python, made by bench/setup_feast.sh on first use (a few minutes once)."""
    out = subprocess.run(["bash", str(ROOT / "bench" / "setup_feast.sh")], capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, f"bench/setup_feast.sh failed:\n{out.stderr[-3000:]}"
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, str]]:
    root = tmp_path_factory.mktemp("feast-client")
    repo = root / "repo"
    store = build_served_repo(repo)
    secret = ApiKeys(store.registry).create("feast-client", ["features:read", "push"]).secret
    server = ServeProcess(repo, root, workers=1, env={"PITSTOP_AUTH_ENABLED": "true"}, token=secret)
    with store, server:
        yield server, secret


def test_feast_remote_online_store_reads_from_pitstop(feast_python: str, served, tmp_path: Path) -> None:
    server, secret = served
    env = {**os.environ, "FEAST_OIDC_TOKEN": secret}
    run = subprocess.run([feast_python, str(ROOT / "tests" / "interop" / "feast_client.py"), str(tmp_path / "client"),
                          f"http://127.0.0.1:{server.port}"], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["driver_id"] == [1, 99]
    assert got["rate"] == [0.2, None]
    assert got["trips"] == [20, None]
    assert got["city"] == ["b", None]


def test_feast_client_without_a_token_is_refused(feast_python: str, served, tmp_path: Path) -> None:
    server, _ = served
    env = {k: v for k, v in os.environ.items() if k != "FEAST_OIDC_TOKEN"}
    run = subprocess.run([feast_python, str(ROOT / "tests" / "interop" / "feast_client.py"), str(tmp_path / "client"),
                          f"http://127.0.0.1:{server.port}"], capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode != 0
    assert "FEAST_OIDC_TOKEN" in run.stderr or "401" in run.stderr


def test_feast_shaped_push_then_read(served) -> None:
    server, _ = served
    now = int(time.time())
    status, text = server.request("POST", "/push", {"push_source_name": "speed_push", "to": "online",
                                                    "df": {"driver_id": [5], "event_timestamp": [now], "speed": [7.5]}})
    assert status == 200, text
    status, body = server.request("POST", "/get-online-features",
                                  {"features": ["pushed:speed"], "entities": {"driver_id": [5]}})
    assert status == 200, body
    assert body["metadata"]["feature_names"] == ["driver_id", "speed"]
    assert body["results"][1]["values"] == [7.5] and body["results"][1]["statuses"] == ["PRESENT"]
