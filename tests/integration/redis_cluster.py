"""A private, throwaway Redis Cluster for tests and benchmarks: N cluster-mode redis-servers on free ports.

The slots are split evenly between the nodes with CLUSTER ADDSLOTSRANGE and the nodes are joined
with CLUSTER MEET; the cluster is ready when every node reports ``cluster_state:ok``.

Usage::

    with RedisCluster(tmp_dir, nodes=3) as cluster:
        store = RedisClusterOnlineStore(cluster.url, "test")
"""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType
from typing import Self

import redis

from tests.integration.redis_server import RedisServer, free_port

__all__ = ["RedisCluster"]

SLOTS = 16384


class ClusterNodeServer(RedisServer):
    """One cluster-enabled redis-server (its node id and slots live in its own nodes.conf)."""

    name = "redis-server (cluster mode)"
    bus_port = 0

    def command(self, port: int) -> list[str]:
        # The bus port defaults to port + 10000, which may be taken or above 65535: pick a free one.
        self.bus_port = free_port()
        return super().command(port) + [
            "--cluster-enabled", "yes",
            "--cluster-port", str(self.bus_port),
            "--cluster-config-file", str(self.workdir / f"nodes-{port}.conf"),
            "--cluster-node-timeout", "2000",
        ]


class RedisCluster:
    """A Redis Cluster of ``nodes`` primaries (no replicas) on 127.0.0.1.

    Args:
        workdir: parent directory of the nodes' working directories.
        nodes: number of primaries (at least 1).
        ready_timeout: seconds to wait for every node to report ``cluster_state:ok``.
    """

    def __init__(self, workdir: Path, *, nodes: int = 3, ready_timeout: float = 30.0) -> None:
        self.servers = [ClusterNodeServer(Path(workdir) / f"node{k}") for k in range(nodes)]
        self.ready_timeout = ready_timeout
        self._clients: dict[int, redis.Redis] = {}

    @property
    def url(self) -> str:
        """``redis+cluster://`` with every node as a seed."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers)

    def client(self, k: int) -> redis.Redis:
        """A plain client of node ``k`` (for assertions and for moving slots), closed by ``stop``."""
        port = self.servers[k].port
        cached = self._clients.get(port)
        if cached is None:
            cached = self._clients[port] = redis.Redis(host="127.0.0.1", port=port)
        return cached

    def start(self) -> Self:
        """Start every node, assign the slots, join the nodes and wait for ``cluster_state:ok``.

        Raises:
            RuntimeError: a node did not start or the cluster did not converge in time.
        """
        try:
            for server in self.servers:
                server.start()
            per = SLOTS // len(self.servers)
            for k in range(len(self.servers)):
                lo, hi = k * per, SLOTS - 1 if k == len(self.servers) - 1 else (k + 1) * per - 1
                self.client(k).execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)
            for server in self.servers[1:]:
                self.client(0).execute_command("CLUSTER", "MEET", "127.0.0.1", server.port, server.bus_port)
            self._wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ok(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        states: list[str] = []
        while time.monotonic() < deadline:
            states = []
            for k in range(len(self.servers)):
                info = self.client(k).cluster("INFO")
                states.append(f"{info.get('cluster_state')}/{info.get('cluster_known_nodes')}")
            if all(s == f"ok/{len(self.servers)}" for s in states):
                return
            time.sleep(0.1)
        raise RuntimeError(f"Redis Cluster did not converge within {self.ready_timeout}s: {states}")

    def node_of_slot(self, slot: int) -> int:
        """Index of the node that owns ``slot`` now."""
        for lo, hi, primary, *_ in self.client(0).execute_command("CLUSTER", "SLOTS"):
            if lo <= slot <= hi:
                port = int(primary[1])
                return next(k for k, s in enumerate(self.servers) if s.port == port)
        raise LookupError(f"slot {slot} is not covered")

    def node_id(self, k: int) -> str:
        return self.client(k).execute_command("CLUSTER", "MYID").decode()

    def stop(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        for server in self.servers:
            server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
