"""How gunicorn's workers share keep-alive connections: one SO_REUSEPORT socket per worker vs one shared socket.

    .venv/bin/python bench/serve_connections.py [--trials 12] [--connections 16]

Builds a small served repo (tests/serving/conftest.py), then for ``serving.reuse_port`` true and
false starts ``pitstop serve --workers 2`` and, per trial, opens the connections at once, sends one
request on each, and counts the established connections each worker holds (from /proc). Prints the
splits, larger share first.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from serve import connections_per_worker  # noqa: E402

from tests.integration.redis_server import free_port  # noqa: E402
from tests.serving.conftest import build_served_repo  # noqa: E402


def trial(group: int, port: int, connections: int) -> list[int]:
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    try:
        for s in socks:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        for s in socks:
            s.recv(4096)
        time.sleep(0.2)
        return connections_per_worker(group, port)
    finally:
        for s in socks:
            s.close()
        time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pitstop-conns-") as tmp:
        repo = Path(tmp) / "repo"
        build_served_repo(repo).close()
        pitstop = str(Path(sys.executable).parent / "pitstop")
        for reuse_port in ("true", "false"):
            port = free_port()
            proc = subprocess.Popen([pitstop, "-r", str(repo), "serve", "--workers", "2", "--bind", f"127.0.0.1:{port}"],
                                    env={**os.environ, "PITSTOP_SERVING_REUSE_PORT": reuse_port},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                for _ in range(200):
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2):
                            break
                    except OSError:
                        time.sleep(0.2)
                splits = [trial(proc.pid, port, args.connections) for _ in range(args.trials)]
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
            mean = sum(max(s) for s in splits) / len(splits)
            print(f"reuse_port={reuse_port}: {' '.join('/'.join(map(str, s)) for s in splits)}  "
                  f"(mean larger share {mean:.1f} of {args.connections})")


if __name__ == "__main__":
    main()
