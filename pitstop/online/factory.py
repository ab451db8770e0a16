"""Choose and open the online store named by a URL (``online_store.url`` in pitstop.yaml).

Accepted URLs:
  * ``redis://host:port/db``, ``rediss://...`` (TLS), ``unix:///path/to/redis.sock`` → ``RedisOnlineStore``
  * ``redis+cluster://host:port[,host:port...]``, ``rediss+cluster://...`` → ``RedisClusterOnlineStore``
  * ``sqlite:///relative/path.db`` (resolved against the repo directory) or
    ``sqlite:////absolute/path.db`` → ``SQLiteOnlineStore``; missing parent directories are created.

The Redis client library is imported only when a Redis URL is used (it is the ``redis`` extra).
"""

from __future__ import annotations

from pathlib import Path

from pitstop.errors import ConfigError, OnlineStoreError
from pitstop.online.base import OnlineStore
from pitstop.redaction import redact_url

__all__ = ["ACCEPTED_SCHEMES", "open_online_store"]

ACCEPTED_SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://", "sqlite:///")
_SQLITE = "sqlite:///"


def open_online_store(url: str, project: str, base_dir: Path, *, key_ttl_seconds: float | None = None,
                      connect_timeout: float = 2.0, read_timeout: float = 5.0) -> OnlineStore:
    """The online store for ``url``, scoped to ``project``.

    Args:
        url: the store URL (see the module docstring).
        project: the feature-repo project (prefixes keys / selects rows).
        base_dir: directory that relative SQLite paths are resolved against (the repo directory).
        key_ttl_seconds: Redis only: entity keys expire this long after their last accepted write.
        connect_timeout: Redis only: seconds to wait for a connection to open.
        read_timeout: Redis only: seconds to wait for any one reply (or send).

    Raises:
        ConfigError: the URL has another scheme, names no SQLite file, or needs the missing ``redis`` package.
        OnlineStoreError: the store cannot be opened (e.g. the SQLite file is not writable).
    """
    if url.startswith(("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")):
        try:
            from pitstop.online.redis_cluster_store import CLUSTER_SCHEMES, RedisClusterOnlineStore
            from pitstop.online.redis_store import RedisOnlineStore
        except ModuleNotFoundError as exc:
            if exc.name != "redis":
                raise
            raise ConfigError(
                "online store URL is a Redis URL but the redis package is not installed; "
                "install it with: pip install 'pitstop[redis]'"
            ) from None
        if url.startswith("unix://") and len(url) <= len("unix://"):
            raise ConfigError(f"online store URL {redact_url(url)!r} names no socket path")
        if url.startswith(CLUSTER_SCHEMES):
            return RedisClusterOnlineStore(url, project, key_ttl_seconds=key_ttl_seconds, socket_timeout=read_timeout,
                                           connect_timeout=connect_timeout)
        return RedisOnlineStore(url, project, key_ttl_seconds=key_ttl_seconds, socket_timeout=read_timeout,
                                connect_timeout=connect_timeout)
    if url.startswith(_SQLITE):
        if key_ttl_seconds is not None:
            raise ConfigError(
                "online_store.key_ttl_seconds applies to Redis only; the SQLite store keeps values until "
                "their view is deleted (unset key_ttl_seconds, or use a redis:// URL)"
            )
        rest = url[len(_SQLITE) :]
        if not rest or rest.endswith("/"):
            raise ConfigError(f"online store URL {redact_url(url)!r} names no database file (e.g. sqlite:///data/online.db)")
        path = Path(rest).expanduser()
        if not path.is_absolute():
            path = Path(base_dir) / path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OnlineStoreError(f"SQLite online store {path}: cannot create its directory: {exc}") from exc
        from pitstop.online.sqlite_store import SQLiteOnlineStore

        return SQLiteOnlineStore(path, project)
    shown = redact_url(url)  # never echo credentials
    raise ConfigError(
        f"online store URL {shown!r} is not supported; use one of: "
        + ", ".join(f"{s}..." for s in ACCEPTED_SCHEMES)
    )
