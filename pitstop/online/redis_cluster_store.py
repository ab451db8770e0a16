"""Redis Cluster online store: the standalone store's layout and guard, with every command routed by slot.

URL: ``redis+cluster://[[user]:password@]host:port[,host:port...]`` (``rediss+cluster://`` for TLS);
the hosts are seeds, the client discovers the rest of the cluster from them.

Invariants (on top of ``redis_store``'s):
  * A guard-script call only carries keys of one hash slot (Redis refuses cross-slot scripts), so
    a write sorts its rows by slot (stable, so equal timestamps keep their order) and cuts calls
    at slot boundaries. A pipeline chunk goes out to all its nodes, one buffer per node, and its
    replies are read only after the next chunk has been sent, so the nodes never idle.
  * A read groups its HMGETs by node and costs one round trip to every node involved, in parallel.
  * Topology changes are followed, not surfaced: MOVED refreshes the slot map and re-sends, ASK
    re-sends to the importing node after ASKING, TRYAGAIN / CLUSTERDOWN / a lost connection
    wait with capped backoff and re-send. Re-sending is safe: the guard makes a write idempotent.
    After ``routing_attempts`` rounds the call fails with ``OnlineStoreError``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pitstop.errors import OnlineStoreError
from pitstop.online.base import WriteBatch, WriteResult
from pitstop.online.codec import layout_for
from pitstop.online.hash_slots import hash_slots, key_slot
from pitstop.online.keys import redis_key_array
from pitstop.online.redis_store import GUARD_SCRIPT, RedisOnlineStore, guard_calls, redact_url

__all__ = ["CLUSTER_SCHEMES", "ClusterURL", "RedisClusterOnlineStore", "parse_cluster_url"]

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
_ASKING = b"*1\r\n$6\r\nASKING\r\n"


@dataclass(frozen=True)
class ClusterURL:
    """A parsed ``redis+cluster://`` URL: seed nodes, credentials, TLS."""

    seeds: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    tls: bool


def parse_cluster_url(url: str) -> ClusterURL:
    """Seeds and credentials of a ``redis+cluster://`` / ``rediss+cluster://`` URL.

    Raises:
        OnlineStoreError: the URL names no host, a port is not a number, or it selects a database
            other than 0 (Redis Cluster has only database 0).
    """
    shown = redact_url(url)
    scheme, sep, rest = url.partition("://")
    if not sep or f"{scheme}://" not in CLUSTER_SCHEMES:
        raise OnlineStoreError(f"{shown!r} is not a Redis Cluster URL ({' or '.join(CLUSTER_SCHEMES)})")
    # urlsplit cannot parse several host:port pairs, so split the credentials and path off by hand.
    creds, at, hosts = rest.rpartition("@") if "@" in rest.split("/", 1)[0] else ("", "", rest)
    hosts, _, path = hosts.partition("/")
    if path not in ("", "0"):
        raise OnlineStoreError(f"Redis Cluster URL {shown!r} selects database {path!r}; a cluster has only database 0")
    seeds = []
    for item in filter(None, hosts.split(",")):
        parsed = urlsplit(f"//{item}")
        try:
            port = parsed.port or 6379
        except ValueError:
            raise OnlineStoreError(f"Redis Cluster URL {shown!r}: {item!r} is not host:port") from None
        if not parsed.hostname:
            raise OnlineStoreError(f"Redis Cluster URL {shown!r}: {item!r} names no host")
        seeds.append((parsed.hostname, port))
    if not seeds:
        raise OnlineStoreError(f"Redis Cluster URL {shown!r} names no host (e.g. redis+cluster://10.0.0.1:6379,10.0.0.2:6379)")
    username = password = None
    if at:
        user, colon, secret = creds.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    return ClusterURL(tuple(seeds), username, password, scheme.startswith("rediss"))


@dataclass
class _Command:
    """One packed command (RESP pieces) bound for the node that owns ``slot``."""

    slot: int
    pieces: list[Any]
    entities: int = 0


@dataclass
class _InFlight:
    """Commands sent and not yet read: per node, the borrowed connection and the command indices."""

    commands: list[_Command]
    todo: list[int]
    asking: dict[int, ClusterNode]
    sent: list[tuple[ClusterNode, Any, list[int]]] = field(default_factory=list)
    lost: bool = False

    def release(self) -> None:
        for node, conn, _ in self.sent:
            node.redis_connection.connection_pool.release(conn)
        self.sent = []

    def abandon(self) -> None:
        """Drop the connections: replies may be pending on them, so they must never be reused."""
        for _, conn, _ in self.sent:
            conn.disconnect()
        self.release()


@dataclass
class _Retry:
    """What reading a flight left to do: indices to re-send, ASK targets, and whether to refresh or wait."""

    indices: list[int] = field(default_factory=list)
    refresh: bool = False
    wait: bool = False
    asking: dict[int, ClusterNode] = field(default_factory=dict)


class RedisClusterOnlineStore(RedisOnlineStore):
    """Online store on a Redis Cluster (same keys, records and guard as ``RedisOnlineStore``).

    Args:
        url: ``redis+cluster://[[user]:password@]host:port[,host:port...]`` or ``rediss+cluster://...``.
        project: the feature-repo project; it prefixes every key.
        socket_timeout: seconds to wait for any one reply or send.
        connect_timeout: seconds to wait for a connection to open; default ``min(socket_timeout, 2)``.
        script_batch: most entities per guard-script call.
        pipeline_entities: entities per pipeline chunk when writing.
        routing_attempts: rounds of re-sending after MOVED / ASK / TRYAGAIN / lost connections.
        key_ttl_seconds: as ``RedisOnlineStore``'s: written keys expire this long after their last write.

    The cluster is contacted on first use, not here, so a store can be opened while Redis starts.
    """

    def __init__(
        self,
        url: str,
        project: str,
        *,
        socket_timeout: float = 5.0,
        connect_timeout: float | None = None,
        script_batch: int = 1000,
        pipeline_entities: int = 20_000,
        routing_attempts: int = 6,
        key_ttl_seconds: float | None = None,
    ) -> None:
        self._configure(url, project, script_batch, pipeline_entities, key_ttl_seconds)
        self._parsed = parse_cluster_url(url)
        self._socket_timeout = socket_timeout
        self._connect_timeout = min(socket_timeout, 2.0) if connect_timeout is None else connect_timeout
        self._routing_attempts = routing_attempts
        self._tag_start = len(self._prefix.encode()) + 1  # the byte after "{"
        self._scripted: set[str] = set()  # nodes known to hold the guard script
        self._cluster: RedisCluster | None = None
        self._connect_lock = threading.Lock()

    _label = "Redis Cluster online store"
    _client_errors = (RedisError, RedisClusterException)

    def _connected(self) -> RedisCluster:
        """The cluster client, created (and the slot map fetched) on first use by any thread."""
        if self._cluster is not None:
            return self._cluster
        with self._connect_lock:
            if self._cluster is not None:
                return self._cluster
            p = self._parsed
            with self._redis_errors("connecting"):
                self._cluster = RedisCluster(
                    startup_nodes=[ClusterNode(host, port) for host, port in p.seeds],
                    username=p.username,
                    password=p.password,
                    ssl=p.tls,
                    socket_timeout=self._socket_timeout,
                    socket_connect_timeout=self._connect_timeout,
                    require_full_coverage=True,
                )
        return self._cluster

    def _commands(self) -> Any:
        """The cluster client: it routes a plain single-key command (e.g. the generation marker's) to its slot."""
        return self._connected()

    # ------------------------------------------------------------------ writes

    def write(self, batches: list[WriteBatch]) -> WriteResult:
        """Write every row through the guard script, one slot per call; see ``OnlineStore.write``.

        Raises:
            OnlineStoreError: the cluster is unreachable, keeps redirecting beyond the routing
                attempts, or rejected a command; rows sent before the failure may be stored
                (re-running the write is harmless).
        """
        for batch in batches:
            batch.check()
        if not any(len(batch) for batch in batches):
            return WriteResult()
        result = WriteResult()
        errors: list[Exception] = []
        what = "guarded write"
        in_flight: deque[tuple[_InFlight, list[Any]]] = deque()
        try:
            # One chunk in flight while the next is encoded and sent: the nodes never wait for the client.
            for chunk in self._slot_chunks(batches):
                in_flight.append((self._send(chunk, list(range(len(chunk))), {}, what, True), [None] * len(chunk)))
                if len(in_flight) > 1:
                    result += self._collect(*in_flight.popleft(), errors)
            while in_flight:
                result += self._collect(*in_flight.popleft(), errors)
        finally:
            for flight, _ in in_flight:  # only left on an error: their replies will never be read
                flight.abandon()
        if errors:
            raise OnlineStoreError(f"Redis Cluster online store at {self._shown_url}: guarded write failed: {errors[0]}")
        return result

    def _collect(self, flight: _InFlight, replies: list[Any], errors: list[Exception]) -> WriteResult:
        self._settle(flight, replies, "guarded write", True)
        result = WriteResult()
        for reply in replies:
            if isinstance(reply, Exception):
                errors.append(reply)
            else:
                result += WriteResult(written=int(reply[0]), stale=int(reply[1]))
        return result

    def _slot_chunks(self, batches: list[WriteBatch]) -> Iterator[list[_Command]]:
        """Guard calls of about ``pipeline_entities`` rows each, every call within one slot."""
        for batch in batches:
            view = batch.view
            keys = redis_key_array(self.project, batch.keys, view.join_keys)
            slots = hash_slots(keys, self._tag_start)
            order = np.argsort(slots, kind="stable")
            slots = slots[order]
            take = order if not np.array_equal(order, np.arange(len(order))) else None
            if take is not None:
                keys = keys.take(take)
            n = len(batch)
            # Call boundaries: where the slot changes, and every script_batch rows within a slot.
            starts = np.flatnonzero(np.r_[True, slots[1:] != slots[:-1]])
            ends = np.r_[starts[1:], n]
            ranges = [(int(a), min(int(a) + self._script_batch, int(e)))
                      for s, e in zip(starts, ends, strict=True) for a in range(int(s), int(e), self._script_batch)]
            groups: list[list[tuple[int, int]]] = [[]]
            for call_range in ranges:
                groups[-1].append(call_range)
                if call_range[1] - groups[-1][0][0] >= self._pipeline_entities:
                    groups.append([])
            for group in filter(None, groups):
                lo, hi = group[0][0], group[-1][1]
                rows = np.arange(lo, hi) if take is None else take[lo:hi]
                values = batch.values.take(rows)
                records = layout_for(view.features).encode(values, batch.event_us[rows], batch.created_us[rows])
                local = [(a - lo, b - lo) for a, b in group]
                yield [
                    _Command(int(slots[lo + a]), call.pieces, call.entities)
                    for a, call in guard_calls(records, keys.slice(lo, hi - lo), view.name, local, self._key_ttl_ms)
                ]

    # ------------------------------------------------------------------- reads

    def _round_trip(self, commands: list[bytes], keys: list[bytes], what: str) -> list[Any]:
        """Send each command to the node owning its key, all nodes at once; replies in command order."""
        routed = [_Command(key_slot(key), [command]) for command, key in zip(commands, keys, strict=True)]
        return self._execute(routed, what, scripts=False)

    # ---------------------------------------------------------------- routing

    def _execute(self, commands: list[_Command], what: str, *, scripts: bool) -> list[Any]:
        """Replies to ``commands`` in order, following redirections (other errors come back as objects)."""
        replies: list[Any] = [None] * len(commands)
        self._settle(self._send(commands, list(range(len(commands))), {}, what, scripts), replies, what, scripts)
        return replies

    def _send(
        self, commands: list[_Command], todo: list[int], asking: dict[int, ClusterNode], what: str, scripts: bool
    ) -> _InFlight:
        """Send ``commands[i]`` for every ``i`` in ``todo`` to its node, one write per node; read nothing."""
        cluster = self._connected()
        flight = _InFlight(commands, todo, asking)
        with self._redis_errors(what):
            by_node: dict[str, tuple[ClusterNode, list[int]]] = {}
            for i in todo:
                node = asking.get(i) or cluster.nodes_manager.get_node_from_slot(commands[i].slot)
                by_node.setdefault(node.name, (node, []))[1].append(i)
            try:
                for node, indices in by_node.values():
                    if scripts and node.name not in self._scripted:
                        node.redis_connection.script_load(GUARD_SCRIPT)
                        self._scripted.add(node.name)
                    conn = node.redis_connection.connection_pool.get_connection()
                    flight.sent.append((node, conn, indices))
                    pieces: list[Any] = []
                    for i in indices:
                        if i in asking:
                            pieces.append(_ASKING)
                        pieces.extend(commands[i].pieces)
                    # One buffer per node: a syscall per RESP piece costs more than the copy.
                    conn.send_packed_command([b"".join(pieces)], check_health=False)
            except (RedisConnectionError, RedisTimeoutError):
                flight.lost = True
            except BaseException:
                flight.abandon()
                raise
        return flight

    def _read(self, flight: _InFlight, replies: list[Any], what: str) -> _Retry:
        """Read every reply of ``flight`` into ``replies``; say which commands must be re-sent and how."""
        cluster = self._connected()
        retry = _Retry()
        with self._redis_errors(what):
            try:
                if not flight.lost:
                    for node, conn, indices in flight.sent:
                        for i in indices:
                            if i in flight.asking:
                                conn.read_response()  # +OK to ASKING
                            try:
                                replies[i] = conn.read_response()
                            except MovedError:
                                retry.indices.append(i)
                                retry.refresh = True
                            except AskError as exc:
                                retry.indices.append(i)
                                target = cluster.get_node(host=exc.host, port=exc.port)
                                if target is None:
                                    retry.refresh = True
                                else:
                                    retry.asking[i] = target
                            except (TryAgainError, ClusterDownError):
                                retry.indices.append(i)
                                retry.wait = True
                            except NoScriptError:  # the node lost its scripts (restart, failover, SCRIPT FLUSH)
                                retry.indices.append(i)
                                self._scripted.discard(node.name)
                            except ResponseError as exc:
                                replies[i] = exc
            except (RedisConnectionError, RedisTimeoutError):
                flight.lost = True
            except BaseException:
                flight.abandon()
                raise
            if flight.lost:  # re-send whatever has no reply yet, on fresh connections and a fresh slot map
                flight.abandon()
                retry = _Retry([i for i in flight.todo if replies[i] is None], refresh=True, wait=True)
                self._scripted.clear()
            else:
                flight.release()
        return retry

    def _settle(self, flight: _InFlight, replies: list[Any], what: str, scripts: bool) -> None:
        """Read ``flight`` and re-send redirected commands until all are answered or attempts run out."""
        delay = 0.02
        for _ in range(self._routing_attempts):
            retry = self._read(flight, replies, what)
            if not retry.indices:
                return
            if retry.wait:
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
            if retry.refresh:
                with self._redis_errors(what):
                    self._connected().nodes_manager.initialize()
            flight = self._send(flight.commands, retry.indices, retry.asking, what, scripts)
        self._read(flight, replies, what)
        missing = sum(1 for i in flight.todo if replies[i] is None)
        if missing:
            raise OnlineStoreError(
                f"Redis Cluster online store at {self._shown_url}: {what} failed: {missing} command(s) still "
                f"redirected or refused after {self._routing_attempts} attempts "
                "(is the cluster resharding or failing over?)"
            )

    # ----------------------------------------------------------- maintenance

    def delete_views(self, views: list[str]) -> None:
        """Remove the named views' values for every entity of this project, on every primary.

        Raises:
            OnlineStoreError: a node is unreachable or rejected a command.
        """
        if not views:
            return
        fields = [name.encode() for name in views]
        match = f"{self._prefix}{{*"
        cluster = self._connected()
        with self._redis_errors("deleting views"):
            for node in cluster.get_primaries():
                client = node.redis_connection
                for keys in _scan_pages(client, match):
                    pipe = client.pipeline(transaction=False)
                    for key in keys:
                        pipe.hdel(key, *fields)
                    pipe.execute()

    def ping(self) -> None:
        """Raise OnlineStoreError unless every primary answers and the cluster state is ok."""
        cluster = self._connected()
        with self._redis_errors("ping"):
            for node in cluster.get_primaries():
                state = node.redis_connection.cluster("INFO").get("cluster_state")
                if state != "ok":
                    raise OnlineStoreError(
                        f"Redis Cluster online store at {self._shown_url}: node {node.name} reports cluster_state {state!r}"
                    )

    def close(self) -> None:
        """Close every pooled connection (the store reconnects if used again)."""
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
            self._scripted.clear()


def _scan_pages(client: Any, match: str) -> Iterator[list[bytes]]:
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor=cursor, match=match, count=1000)
        if keys:
            yield keys
        if cursor == 0:
            return

