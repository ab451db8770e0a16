"""A private, throwaway redis-server for tests and benchmarks (never the shared one on 6379).

Usage::

    with RedisServer(tmp_dir) as server:
        store = RedisOnlineStore(server.url, "test")
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

__all__ = ["RedisServer", "RedisServerMissing", "free_port"]

SETUP_HINT = "run `bash scripts/setup.sh` (it installs redis-server)"


class RedisServerMissing(RuntimeError):
    """``redis-server`` is not on PATH."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A redis-server subprocess on a free port, without persistence, bound to 127.0.0.1.

    Args:
        workdir: directory for the server's working files and log.
        start_timeout: seconds to wait for the first PING answer.
    """

    def __init__(self, workdir: Path, *, start_timeout: float = 10.0) -> None:
        self.workdir = Path(workdir)
        self.start_timeout = start_timeout
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING.

        Raises:
            RedisServerMissing: redis-server is not installed.
            RuntimeError: the server did not answer within ``start_timeout`` (the message holds its log).
        """
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerMissing(f"redis-server is not on PATH; {SETUP_HINT}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.workdir / "redis.log"
        for _ in range(3):  # the free port can be taken between probing and binding
            self.port = free_port()
            args = [binary, "--port", str(self.port), "--save", "", "--appendonly", "no",
                    "--bind", "127.0.0.1", "--dir", str(self.workdir), "--logfile", str(log)]
            self._proc = subprocess.Popen(args, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + self.start_timeout
            while time.monotonic() < deadline and self._proc.poll() is None:
                if _answers_ping(self.port):
                    return self
                time.sleep(0.05)
            self.stop()
        text = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
        raise RuntimeError(f"redis-server did not answer PING within {self.start_timeout}s; log tail:\n{text}")

    def stop(self) -> None:
        """Terminate the server (kill it if it does not exit within 5 s)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
