"""A private, throwaway redis-server for tests and benchmarks (never the shared one on 6379).

Usage::

    with RedisServer(tmp_dir) as server:
        store = RedisOnlineStore(server.url, "test")
"""

from __future__ import annotations

import shutil
import socket

from tests.support.local_server import LocalServer, free_port

__all__ = ["RedisServer", "RedisServerMissing", "free_port"]

SETUP_HINT = "run `bash scripts/setup.sh` (it installs redis-server)"


class RedisServerMissing(RuntimeError):
    """``redis-server`` is not on PATH."""


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer(LocalServer):
    """A redis-server subprocess on a free port, without persistence, bound to 127.0.0.1.

    Args:
        workdir: directory for the server's working files and log.
        start_timeout: seconds to wait for the first PING answer.
    """

    name = "redis-server"
    probe = "PING"
    log_name = "redis.log"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, port: int) -> list[str]:
        """redis-server without persistence on ``port``.

        Raises:
            RedisServerMissing: redis-server is not installed.
        """
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerMissing(f"redis-server is not on PATH; {SETUP_HINT}")
        return [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
                "--dir", str(self.workdir), "--logfile", str(self.log_path)]

    def ready(self, port: int) -> bool:
        return _answers_ping(port)
