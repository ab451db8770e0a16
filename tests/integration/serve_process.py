"""Run ``pitstop serve`` (gunicorn, uvicorn workers) as a real process for integration tests."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.integration.redis_server import free_port


class ServeProcess:
    """``pitstop -r REPO serve`` on a free port; ``start()`` returns once ``/ready`` answers 200."""

    def __init__(self, repo: Path, log_dir: Path, workers: int = 2, env: dict[str, str] | None = None,
                 token: str | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.repo = repo
        self.tls = tls  # speak HTTPS with this client context
        self.extra_args: list[str] = []  # more `pitstop serve` options
        self.token = token  # sent as a bearer credential on every request()
        self.workers = workers
        self.port = free_port()
        self.log_path = log_dir / f"serve-{self.port}.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServeProcess:
        cmd = [sys.executable, "-m", "pitstop.cli", "-r", str(self.repo), "serve", "--workers", str(self.workers),
               "--bind", f"127.0.0.1:{self.port}", "--graceful-timeout", "10", *self.extra_args]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pitstop serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                status, _ = self.request("GET", "/ready", timeout=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"pitstop serve was not ready within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def request(self, method: str, path: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
        conn = (http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=self.tls)
                if self.tls else http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout))
        try:
            return send(conn, method, path, body, self.token)
        finally:
            conn.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def send(conn: http.client.HTTPConnection, method: str, path: str, body: Any = None,
         token: str | None = None) -> tuple[int, Any]:
    """One request on a (keep-alive) connection; returns (status, decoded JSON or text)."""
    payload = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"} if payload is not None else {}
    if token:
        headers["authorization"] = f"Bearer {token}"
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    data = response.read()
    kind = response.getheader("content-type", "")
    return response.status, json.loads(data) if kind.startswith("application/json") else data.decode()
