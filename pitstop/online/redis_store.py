"""Redis online store: one hash per entity, one field per view, writes guarded by a Lua script.

Layout (see ``keys`` and ``codec``): key ``ps1:<project>:{<entity part>}``, field = view name,
value = codec record, whose bytes 1..16 hold (event_us, created_us) as biased big-endian u64.

Invariants:
  * The write guard runs inside Redis: one script call compares and writes many entities, and
    Redis runs a script atomically, so concurrent writers never clobber a newer value. The
    comparison splits each timestamp into two 32-bit halves, which Lua's double numbers hold
    exactly; byte-string comparison is avoided because Lua compares strings with ``strcoll``
    (locale dependent).
  * A read is one network round trip: one pipelined HMGET per distinct entity key, asking for the
    fields of every requested view keyed by it, sent in a single write and answered in order.
  * Every Redis failure surfaces as ``OnlineStoreError`` naming the URL (password redacted).

Script calls declare their keys in KEYS, but one call spans many hash slots, so this class targets
standalone Redis (or a proxy); ``RedisClusterOnlineStore`` cuts calls at slot boundaries instead.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.retry import Retry

from pitstop.errors import OnlineStoreError
from pitstop.online.base import ViewRead, ViewResult, WriteBatch, WriteResult, merge_reads
from pitstop.online.codec import layout_for
from pitstop.online.keys import generation_key, project_prefix, redis_key_array, redis_keys
from pitstop.redaction import redact_url

__all__ = ["RedisOnlineStore", "redact_url"]

GUARD_SCRIPT = """
-- pitstop write guard v2. KEYS[i]: entity hash. ARGV[1]: field (view name);
-- ARGV[2]: records back to back; ARGV[3]: record width, or '' when ARGV[4] lists each record's
-- end (u32 big-endian, 1-based inclusive); ARGV[5]: key ttl in ms, or '' for none (a written
-- key's expiry restarts). Returns {written, stale}.
local field, data, width, ends, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local written, stale, first = 0, 0, 1
for i = 1, #KEYS do
  local last
  if width then last = first + width - 1 else last = struct.unpack('>I4', ends, 4 * i - 3) end
  local rec = string.sub(data, first, last)
  first = last + 1
  local old = redis.call('HGET', KEYS[i], field)
  local take = true
  if old and #old >= 17 then
    local o1, o2, o3, o4 = struct.unpack('>I4I4I4I4', old, 2)
    local n1, n2, n3, n4 = struct.unpack('>I4I4I4I4', rec, 2)
    if n1 ~= o1 then take = n1 > o1
    elseif n2 ~= o2 then take = n2 > o2
    elseif n3 ~= o3 then take = n3 > o3
    else take = n4 >= o4 end
  end
  if take then
    redis.call('HSET', KEYS[i], field, rec)
    if ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
    written = written + 1
  else
    stale = stale + 1
  end
end
return {written, stale}
"""
GUARD_SHA = hashlib.sha1(GUARD_SCRIPT.encode()).hexdigest()
_SHA_BYTES = GUARD_SHA.encode()

class RedisOnlineStore:
    """Online store on a standalone Redis server.

    Args:
        url: ``redis://[[user]:password@]host:port/db``, ``rediss://...`` (TLS) or ``unix:///path.sock``.
        project: the feature-repo project; it prefixes every key, so projects can share a server.
        socket_timeout: seconds to wait for any one reply or send (``online_store.read_timeout_seconds``).
        connect_timeout: seconds to wait for a connection to open; default ``min(socket_timeout, 2)``
            (``online_store.connect_timeout_seconds``).
        script_batch: entities per guard-script call (one EVALSHA); Redis serves no other client
            while one runs (~5 µs per entity).
        pipeline_entities: entities per pipeline chunk when writing (encoded, sent and
            acknowledged together).
        key_ttl_seconds: when set, an entity's hash expires this long after its last accepted
            write (of any view), so entities that stop receiving data stop holding memory.
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
        key_ttl_seconds: float | None = None,
    ) -> None:
        self._configure(url, project, script_batch, pipeline_entities, key_ttl_seconds)
        self._script_loaded = False
        try:
            self._client = redis.Redis.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=min(socket_timeout, 2.0) if connect_timeout is None else connect_timeout,
                # One quick retry covers a dropped idle connection without stretching a real outage.
                retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1),
            )
        except ValueError as exc:
            raise OnlineStoreError(f"invalid Redis URL {self._shown_url}: {exc}") from None

    # What error messages call this store, and which client exceptions become OnlineStoreError.
    _label = "Redis online store"
    _client_errors: tuple[type[Exception], ...] = (RedisError,)

    def _configure(self, url: str, project: str, script_batch: int, pipeline_entities: int,
                   key_ttl_seconds: float | None) -> None:
        """Settings every Redis store variant shares (no connection is made)."""
        self.url = url
        self.project = project
        self._shown_url = redact_url(url)
        self._key_ttl_ms = key_ttl_ms(key_ttl_seconds)
        self._script_batch = script_batch
        self._pipeline_entities = pipeline_entities
        self._prefix = project_prefix(project)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._shown_url!r}, project={self.project!r})"

    @contextmanager
    def _redis_errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except self._client_errors as exc:
            raise OnlineStoreError(f"{self._label} at {self._shown_url}: {what} failed: {exc}") from exc

    # ------------------------------------------------------------------ writes

    def write(self, batches: list[WriteBatch]) -> WriteResult:
        """Write every row through the guard script; see ``OnlineStore.write``.

        Script calls stream over one connection with one pipeline chunk in flight while the next
        is encoded, so Redis never idles waiting for the client.

        Raises:
            OnlineStoreError: Redis is unreachable or rejected a command; rows sent before the
                failure may be stored (re-running the write is harmless).
        """
        for batch in batches:
            batch.check()
        if not any(len(batch) for batch in batches):
            return WriteResult()
        if not self._script_loaded:
            with self._redis_errors("loading the write-guard script"):
                self._client.script_load(GUARD_SCRIPT)
            self._script_loaded = True
        result, missing = self._stream(self._chunks(batches))
        if missing:  # the server lost its scripts mid-write (SCRIPT FLUSH, restart, failover)
            with self._redis_errors("loading the write-guard script"):
                self._client.script_load(GUARD_SCRIPT)
            retried, still_missing = self._stream(iter([missing]))
            if still_missing:
                raise OnlineStoreError(f"Redis online store at {self._shown_url}: the write-guard script keeps vanishing")
            result += retried
        return result

    def _chunks(self, batches: list[WriteBatch]) -> Iterator[list[_ScriptCall]]:
        """Script calls grouped into pipeline chunks of about ``pipeline_entities`` entities, encoded lazily."""
        step = self._pipeline_entities
        for batch in batches:
            for start in range(0, len(batch), step):
                stop = min(start + step, len(batch))
                yield list(self._script_calls(batch, start, stop))

    def _script_calls(self, batch: WriteBatch, start: int, stop: int) -> Iterator[_ScriptCall]:
        view = batch.view
        values = batch.values.slice(start, stop - start)
        records = layout_for(view.features).encode(values, batch.event_us[start:stop], batch.created_us[start:stop])
        keys = redis_key_array(self.project, batch.keys.slice(start, stop - start), view.join_keys)
        n = stop - start
        ranges = [(a, min(a + self._script_batch, n)) for a in range(0, n, self._script_batch)]
        for _, call in guard_calls(records, keys, view.name, ranges, self._key_ttl_ms):
            yield call

    def _stream(self, chunks: Iterator[list[_ScriptCall]]) -> tuple[WriteResult, list[_ScriptCall]]:
        """Send chunks over one connection, reading a chunk's replies only after sending the next.

        Returns the counts and the calls the server rejected with NOSCRIPT (to retry).
        """
        result = WriteResult()
        missing: list[_ScriptCall] = []
        errors: list[Exception] = []
        pool = self._client.connection_pool
        with self._redis_errors("guarded write"):
            conn = pool.get_connection()
            try:
                in_flight: deque[list[_ScriptCall]] = deque()
                for chunk in chunks:
                    conn.send_packed_command([piece for call in chunk for piece in call.pieces], check_health=False)
                    in_flight.append(chunk)
                    if len(in_flight) > 1:
                        result += self._replies(conn, in_flight.popleft(), missing, errors)
                while in_flight:
                    result += self._replies(conn, in_flight.popleft(), missing, errors)
            except BaseException:
                conn.disconnect()  # replies may be pending: never hand this connection out again
                raise
            finally:
                pool.release(conn)
        if errors:
            raise OnlineStoreError(f"Redis online store at {self._shown_url}: guarded write failed: {errors[0]}")
        return result, missing

    @staticmethod
    def _replies(conn: Any, chunk: list[_ScriptCall], missing: list[_ScriptCall], errors: list[Exception]) -> WriteResult:
        result = WriteResult()
        for call in chunk:
            try:
                written, stale = conn.read_response()
            except NoScriptError:
                missing.append(call)
            except ResponseError as exc:  # keep reading: the connection stays in step
                errors.append(exc)
            else:
                result += WriteResult(written=int(written), stale=int(stale))
        return result

    # ------------------------------------------------------------------- reads

    def read(self, entity_keys: pa.Table, reads: list[ViewRead]) -> dict[str, ViewResult]:
        """Latest values per entity row and view in one round trip; see ``OnlineStore.read``.

        Raises:
            EntityKeyError: a join key is missing from ``entity_keys``, null, or of an unsupported type.
            FeatureRefError: a requested feature is not in its view's schema.
            OnlineStoreError: Redis is unreachable or rejected a command.
        """
        views = merge_reads(reads)
        n = entity_keys.num_rows
        if not views or n == 0:
            return {name: ViewResult.empty(n, feats) for name, (_, feats) in views.items()}
        # Views keyed by the same join keys live in the same hash: one HMGET covers all of them.
        groups: dict[tuple[str, ...], list[str]] = {}
        for name, (schema, _) in views.items():
            groups.setdefault(tuple(sorted(schema.join_keys)), []).append(name)
        commands: list[bytes] = []  # packed HMGETs, sent together
        command_keys: list[bytes] = []
        slots: dict[tuple[str, ...], list[int]] = {}
        for join_keys, names in groups.items():
            head = b"*%d\r\n$5\r\nHMGET\r\n" % (len(names) + 2)
            fields = b"".join(_bulk(name.encode()) for name in names)
            index: dict[bytes, int] = {}
            row_slots = []
            for key in redis_keys(self.project, entity_keys, join_keys):
                slot = index.get(key)
                if slot is None:
                    slot = index[key] = len(commands)
                    commands.append(head + _bulk(key) + fields)
                    command_keys.append(key)
                row_slots.append(slot)
            slots[join_keys] = row_slots
        replies = self._round_trip(commands, command_keys, "read")
        for reply in replies:
            if isinstance(reply, Exception):
                raise OnlineStoreError(f"Redis online store at {self._shown_url}: read failed: {reply}")
        out: dict[str, ViewResult] = {}
        for join_keys, names in groups.items():
            row_slots = slots[join_keys]
            for pos, name in enumerate(names):
                schema, features = views[name]
                records = [replies[slot][pos] for slot in row_slots]
                decoded = layout_for(schema.features).decode(records, features)
                out[name] = ViewResult(found=decoded.found, event_us=decoded.event_us, values=decoded.values)
        return out

    def _round_trip(self, commands: list[bytes], keys: list[bytes], what: str) -> list[Any]:
        """Send packed commands at once and read their replies in order (errors as exception objects).

        ``keys[i]`` is the key ``commands[i]`` touches (a Cluster store routes by it). Packing by
        hand skips redis-py's per-argument encoding, which dominated small reads.
        """
        packed, count = b"".join(commands), len(commands)
        pool = self._client.connection_pool
        replies: list[Any] = []
        with self._redis_errors(what):
            conn = pool.get_connection()
            try:
                conn.send_packed_command([packed], check_health=False)
                for _ in range(count):
                    try:
                        replies.append(conn.read_response())
                    except ResponseError as exc:
                        replies.append(exc)
            except BaseException:
                conn.disconnect()
                raise
            finally:
                pool.release(conn)
        return replies

    # ----------------------------------------------------------- maintenance

    def delete_views(self, views: list[str]) -> None:
        """Remove the named views' values for every entity of this project (SCAN + HDEL, batched).

        Not atomic with concurrent writes: a write racing the scan may survive.

        Raises:
            OnlineStoreError: Redis is unreachable or rejected a command.
        """
        if not views:
            return
        fields = [name.encode() for name in views]
        match = f"{self._prefix}{{*"
        with self._redis_errors("deleting views"):
            cursor = 0
            while True:
                cursor, keys = self._client.scan(cursor=cursor, match=match, count=1000)
                if keys:
                    pipe = self._client.pipeline(transaction=False)
                    for key in keys:
                        pipe.hdel(key, *fields)
                    pipe.execute()
                if cursor == 0:
                    break

    def generation(self, create: bool = False) -> str | None:
        """This project's generation marker (key ``ps1:<project>:__generation__``); see ``OnlineStore.generation``.

        Written with SET NX and no expiry, so ``key_ttl_seconds`` never expires it, and two
        materializers creating it at once agree on one id. FLUSHALL, a restart without persistence
        or a failover to an empty replica removes it.

        Raises:
            OnlineStoreError: Redis is unreachable or rejected a command.
        """
        client = self._commands()
        key = generation_key(self.project)
        with self._redis_errors("reading the store generation"):
            if create:
                client.set(key, secrets.token_hex(16), nx=True)
            value = client.get(key)
        return None if value is None else value.decode()

    def _commands(self) -> Any:
        """The client for plain single-key commands."""
        return self._client

    def ping(self) -> None:
        """Raise OnlineStoreError naming the URL unless Redis answers within the socket timeouts."""
        with self._redis_errors("ping"):
            self._client.ping()

    def close(self) -> None:
        """Close every pooled connection (the store reconnects if used again)."""
        self._client.close()


@dataclass
class _ScriptCall:
    """One packed EVALSHA command (RESP pieces, sent as they are) and how many entities it carries."""

    pieces: list[Any]
    entities: int


def guard_calls(
    records: Any, keys: pa.Array, view_name: str, ranges: list[tuple[int, int]], key_ttl_ms: int | None = None
) -> Iterator[tuple[int, _ScriptCall]]:
    """One packed guard-script EVALSHA per ``(a, b)`` row range of ``records``/``keys``, with ``a``.

    ``records`` is the codec's encoding of the rows; ``keys`` their Redis keys (Arrow strings);
    ``key_ttl_ms`` restarts each written key's expiry.
    """
    key_data, key_bounds = _bulk_strings(keys)
    field = _bulk(view_name.encode())
    ttl = _bulk(b"" if key_ttl_ms is None else b"%d" % key_ttl_ms)
    offsets = records.offsets
    for a, b in ranges:
        data = records.data[int(offsets[a]) : int(offsets[b])]
        if records.width is not None:
            width, ends = str(records.width).encode(), b""
        else:
            width, ends = b"", (offsets[a + 1 : b + 1] - offsets[a]).astype(">u4").tobytes()
        head = b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n%s" % (b - a + 8, _SHA_BYTES, _bulk(b"%d" % (b - a)))
        pieces = [
            head,
            key_data[int(key_bounds[a]) : int(key_bounds[b])],
            field,
            b"$%d\r\n" % len(data), data, b"\r\n",
            _bulk(width),
            _bulk(ends),
            ttl,
        ]
        yield a, _ScriptCall(pieces, b - a)


def key_ttl_ms(seconds: float | None) -> int | None:
    """``online_store.key_ttl_seconds`` as the whole milliseconds PEXPIRE takes (None: keys never expire).

    Raises:
        OnlineStoreError: the ttl is not positive.
    """
    if seconds is None:
        return None
    if not seconds > 0:
        raise OnlineStoreError(f"key_ttl_seconds must be positive, got {seconds!r}")
    return max(1, round(seconds * 1000))


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _bulk_strings(values: pa.Array) -> tuple[pa.Buffer, np.ndarray]:
    """Every value framed as a RESP bulk string, back to back, and the n + 1 boundaries between them.

    Built with Arrow kernels: packing a million keys one by one in Python costs seconds.
    """
    lengths = pc.binary_length(values).cast(pa.string())
    framed = pc.binary_join_element_wise("$", lengths, "\r\n", values, "\r\n", "")
    _, offsets, data = framed.buffers()  # string arrays: int32 offsets (a pipeline chunk is far below 2 GB)
    bounds = np.frombuffer(offsets, dtype=np.int32, count=len(framed) + 1, offset=framed.offset * 4)
    return data, bounds
