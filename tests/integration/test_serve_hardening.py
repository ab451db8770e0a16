"""Issue 10 against a real gunicorn process: a frozen Redis gives bounded 503s, idle and slow clients are closed."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.integration.redis_server import RedisServer
from tests.integration.serve_process import ServeProcess, send
from tests.serving.conftest import build_served_repo

pytestmark = pytest.mark.integration

TIMEOUT_MS = 500
FEATURES = {"feature_service": "svc", "entities": {"driver_id": [1]}, "request_data": {"bonus": [1.0]}}
PREDICT = {"model": "rate", "entities": {"driver_id": [1, 3]}, "request_data": {"bonus": [0.0, 0.0]}}


def _workers(pid: int) -> set[int]:
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children |= {int(c) for c in (task / "children").read_text().split()}
    return children


def _health_ms(port: int) -> float:
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        status, body = send(conn, "GET", "/health")
    finally:
        conn.close()
    assert status == 200 and body == {"status": "ok"}
    return 1000 * (time.monotonic() - t0)


@pytest.mark.slow
def test_frozen_redis_gives_bounded_503s_health_stays_fast_and_service_recovers(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as redis:  # private: this test freezes it
        repo = tmp_path / "repo"
        store = build_served_repo(repo, redis.url)
        server = ServeProcess(repo, tmp_path, workers=2, env={
            "PITSTOP_SERVING_REQUEST_TIMEOUT_MS": str(TIMEOUT_MS), "PITSTOP_SERVING_TIMEOUT": "10"})
        with store, server:
            assert server.proc is not None
            workers = _workers(server.proc.pid)
            assert len(workers) == 2
            frozen = threading.Event()
            stop = threading.Event()
            # (request start relative to the freeze or None before it, seconds taken, status, error code)
            results: list[tuple[float | None, float, int, str | None]] = []
            freeze_at = [0.0]
            messages: list[str] = []

            def client(path: str, body: dict) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                try:
                    while not stop.is_set():
                        t0 = time.monotonic()
                        status, answer = send(conn, "POST", path, body)
                        since = t0 - freeze_at[0] if frozen.is_set() else None
                        code = answer.get("error") if isinstance(answer, dict) else None
                        results.append((since, time.monotonic() - t0, status, code))
                        if status == 503:
                            messages.append(answer["message"])
                finally:
                    conn.close()

            threads = [threading.Thread(target=client, args=(p, b), daemon=True)
                       for p, b in [("/features", FEATURES), ("/predict", PREDICT)] * 3]
            for t in threads:
                t.start()
            time.sleep(1.0)
            os.kill(redis._proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]
            freeze_at[0] = time.monotonic()
            frozen.set()
            try:
                health = []
                while time.monotonic() - freeze_at[0] < 8.0:  # longer than the Redis read timeout (5 s)
                    health.append(_health_ms(server.port))
                    time.sleep(0.1)
            finally:
                os.kill(redis._proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
            thawed = time.monotonic()
            recovered = None
            while time.monotonic() - thawed < 20 and recovered is None:
                if server.request("POST", "/features", FEATURES)[0] == 200:
                    recovered = time.monotonic() - thawed
                time.sleep(0.1)
            stop.set()
            for t in threads:
                t.join(30)

            before = [r for r in results if r[0] is None]
            during = [r for r in results if r[0] is not None and 0.05 < r[0] < 7.5]
            # before the freeze the service answers (a rare 503 past the deadline on a starved CPU is allowed)
            assert before and all(r[2] in (200, 503) for r in before), before[:5]
            assert sum(r[2] == 200 for r in before) >= 0.9 * len(before), before[:5]
            assert len(during) > 20 and all(r[2] == 503 and r[3] == "store_unavailable" for r in during), during[:5]
            assert max(r[1] for r in during) < 2 * TIMEOUT_MS / 1000, max(r[1] for r in during)
            assert all("online store redis://127.0.0.1:" in m for m in messages), \
                set(messages)
            assert max(health) < 200, health
            assert recovered is not None, server.log()
            assert _workers(server.proc.pid) == workers  # no worker was killed or restarted
            assert "WORKER TIMEOUT" not in server.log()


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``sock`` (reads until EOF), or None if still open after ``seconds``."""
    t0 = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - t0


@pytest.fixture
def limited_server(tmp_path: Path):
    repo = tmp_path / "repo"
    store = build_served_repo(repo)
    server = ServeProcess(repo, tmp_path, workers=1, env={
        "PITSTOP_SERVING_KEEPALIVE": "1", "PITSTOP_SERVING_CLIENT_TIMEOUT_SECONDS": "2",
        "PITSTOP_SERVING_MAX_HEADER_BYTES": "8192"})
    with store, server:
        yield server


@pytest.mark.slow
def test_idle_keep_alive_silent_and_slow_clients_are_closed(limited_server: ServeProcess) -> None:
    port = limited_server.port
    # idle keep-alive connection: closed about serving.keepalive (1 s) after its last response
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    assert send(conn, "GET", "/health")[0] == 200
    assert conn.sock is not None
    closed = _closed_within(conn.sock, 5)
    assert closed is not None and 0.5 < closed < 2.5, closed
    conn.close()

    # a connection that never sends a request: closed after serving.client_timeout_seconds (2 s)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        closed = _closed_within(sock, 6)
        assert closed is not None and 1.5 < closed < 4, closed

    # slowloris: a header byte every 0.2 s keeps the idle timer from firing, not the client timeout
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        with pytest.raises(OSError):
            while time.monotonic() - t0 < 8:
                sock.sendall(b"x")
                time.sleep(0.2)
        assert 1.5 < time.monotonic() - t0 < 4

    # an oversized request head: 431, then closed
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 431")

    # a normal client is unaffected
    assert limited_server.request("GET", "/health")[0] == 200
