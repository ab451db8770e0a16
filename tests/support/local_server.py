"""Throwaway local server processes for tests and benchmarks: a free port, a readiness probe, retries.

Subclasses say how to run the server (``command``) and how to tell it is ready (``ready``); this
class picks a free 127.0.0.1 port, starts it, waits for the probe (trying up to three ports, since
a free port can be taken between probing and binding) and stops it.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self, TypeVar

__all__ = ["LocalServer", "free_port", "started_or_fail"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """A server subprocess on a free port of 127.0.0.1, started by ``start()`` once ``ready(port)``.

    Args:
        workdir: directory for the server's working files and log.
        start_timeout: seconds to wait for the readiness probe on each port tried.
    """

    name: ClassVar[str] = "server"
    probe: ClassVar[str] = "its readiness probe"
    log_name: ClassVar[str] = "server.log"
    stop_timeout: ClassVar[float] = 5.0
    default_start_timeout: ClassVar[float] = 10.0

    def __init__(self, workdir: Path, *, start_timeout: float | None = None) -> None:
        self.workdir = Path(workdir)
        self.start_timeout = self.default_start_timeout if start_timeout is None else start_timeout
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / self.log_name

    def command(self, port: int) -> list[str]:
        """The argv that runs the server on ``port`` (raise when the binary is missing)."""
        raise NotImplementedError

    def ready(self, port: int) -> bool:
        """Whether the server on ``port`` answers."""
        raise NotImplementedError

    def start(self) -> Self:
        """Start the server and wait until it is ready.

        Raises:
            RuntimeError: no start succeeded within ``start_timeout`` (the message holds the log tail).
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            self.port = free_port()
            args = self.command(self.port)
            with self.log_path.open("ab") as log:
                self._proc = subprocess.Popen(args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + self.start_timeout
            while time.monotonic() < deadline and self._proc.poll() is None:
                if self.ready(self.port):
                    return self
                time.sleep(0.05)
            self.stop()
        text = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else "(no log)"
        raise RuntimeError(f"{self.name} did not answer {self.probe} within {self.start_timeout}s; log tail:\n{text}")

    def stop(self) -> None:
        """Terminate the server (kill it if it does not exit within ``stop_timeout``)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


ServerT = TypeVar("ServerT", bound=LocalServer)


@contextmanager
def started_or_fail(server: ServerT, missing: type[Exception]) -> Iterator[ServerT]:
    """Run ``server`` for a fixture; a missing binary fails the session with the setup hint, no traceback."""
    import pytest  # only fixtures use this; benchmarks import the servers without pytest

    message = None
    try:
        server.start()
    except missing as exc:
        message = str(exc)
    if message:
        pytest.fail(message, pytrace=False)
    try:
        yield server
    finally:
        server.stop()
