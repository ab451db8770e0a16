"""Run the scoring app: gunicorn with uvicorn workers (production) or one uvicorn process (dev).

Both use ``ClientLimitsProtocol`` (pitstop.serving.protocol) for HTTP/1.1 connections, so slow or
silent clients are closed after ``serving.client_timeout_seconds`` and idle keep-alive connections
after ``serving.keepalive``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pitstop.errors import ConfigError


@dataclass(frozen=True)
class ServeOptions:
    """How ``pitstop serve`` runs (defaults come from the ``serving`` settings)."""

    repo: Path
    bind: str
    workers: int
    timeout: int
    graceful_timeout: int
    keepalive: int
    max_requests: int
    access_log: bool = False
    client_timeout: float = 10.0
    max_header_bytes: int = 65_536
    reuse_port: bool = False
    certfile: str | None = None
    keyfile: str | None = None


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def check_auth_bind(bind: str, auth_enabled: bool) -> None:
    """Refuse to serve without auth on anything but a loopback address.

    Raises:
        ConfigError: auth is off and ``bind`` is reachable from other hosts.
    """
    host, _ = _split_bind(bind)
    if not auth_enabled and not (host in LOOPBACK_HOSTS or host.startswith("127.")):
        raise ConfigError(f"refusing to serve without auth on {bind}: auth.enabled=false (or --no-auth) is allowed "
                          "on a loopback bind only (127.0.0.1:PORT); create a key with `pitstop auth create-key` "
                          "instead")


def check_tls_files(certfile: str | None, keyfile: str | None) -> None:
    """Both TLS files exist and are readable (checked before any worker starts).

    Raises:
        ConfigError: naming the missing or unreadable file.
    """
    for label, path in (("certfile", certfile), ("keyfile", keyfile)):
        if path is None:
            continue
        try:
            Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"serving.{label} {path!r} cannot be read: {exc.strerror}") from None


def _split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"serving.bind must be host:port, got {bind!r}")
    return host.strip("[]"), int(port)


def _prepare_env(repo: Path, multiprocess: bool) -> str | None:
    """Tell workers where the repo is and, with several workers, where Prometheus shares its counters."""
    os.environ["PITSTOP_REPO"] = str(repo.resolve())
    if not multiprocess:
        return None
    folder = tempfile.mkdtemp(prefix="pitstop-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    import prometheus_client.values as values  # may have been imported before the variable was set

    values.ValueClass = values.get_value_class()
    return folder


def run_dev(options: ServeOptions) -> None:
    """One uvicorn process, for development and debugging."""
    import uvicorn

    from pitstop.serving.protocol import protocol_class

    host, port = _split_bind(options.bind)
    _prepare_env(options.repo, multiprocess=False)
    uvicorn.run("pitstop.serving.app:create_app", factory=True, host=host, port=port,
                ssl_certfile=options.certfile, ssl_keyfile=options.keyfile, access_log=options.access_log, timeout_graceful_shutdown=options.graceful_timeout,
                timeout_keep_alive=options.keepalive,
                http=protocol_class(options.client_timeout, options.max_header_bytes))


def run_gunicorn(options: ServeOptions) -> None:
    """gunicorn master with ``options.workers`` uvicorn workers; SIGTERM drains in-flight requests."""
    from gunicorn.app.base import BaseApplication

    from pitstop.serving.protocol import protocol_class

    host, port = _split_bind(options.bind)
    metrics_dir = _prepare_env(options.repo, multiprocess=True)

    def child_exit(_server: Any, worker: Any) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

    config: dict[str, Any] = {
        "bind": options.bind,
        "workers": options.workers,
        "worker_class": _worker_class(protocol_class(options.client_timeout, options.max_header_bytes),
                                      (host, port) if options.reuse_port else None),
        "timeout": options.timeout,
        "graceful_timeout": options.graceful_timeout,
        "keepalive": options.keepalive,
        "max_requests": options.max_requests,
        "max_requests_jitter": options.max_requests // 10 if options.max_requests else 0,
        "accesslog": "-" if options.access_log else None,
        "errorlog": "-",
        "proc_name": "pitstop-serve",
        "child_exit": child_exit,
    }
    if options.certfile:
        config["certfile"], config["keyfile"] = options.certfile, options.keyfile
    if options.reuse_port:
        config["reuse_port"] = True
        config["when_ready"] = _close_shared_listeners

    class _App(BaseApplication):
        def load_config(self) -> None:
            for key, value in config.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from pitstop.serving.app import create_app

            return create_app(options.repo)

    try:
        _App().run()
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _worker_class(protocol: type, own_socket: tuple[str, int] | None) -> type:
    """uvicorn's gunicorn worker, speaking HTTP/1.1 through ``protocol``.

    With ``own_socket`` (``serving.reuse_port``) each worker listens on its own ``SO_REUSEPORT``
    socket bound to that address, so the kernel spreads new connections evenly over the workers
    (by a hash of the client address and port) instead of letting whichever worker wakes first
    accept a whole burst of them from the one shared socket.
    """
    from uvicorn_worker import UvicornWorker

    def init_process(self: Any) -> None:
        if own_socket is not None:
            self.sockets = [_reuse_port_socket(*own_socket, self.cfg.backlog)]
        UvicornWorker.init_process(self)

    return type("PitstopUvicornWorker", (UvicornWorker,), {
        "CONFIG_KWARGS": {"loop": "auto", "http": protocol}, "init_process": init_process})


def _reuse_port_socket(host: str, port: int, backlog: int) -> Any:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=backlog, reuse_port=True)
    sock.setblocking(False)
    return sock


def _close_shared_listeners(arbiter: Any) -> None:
    """gunicorn ``when_ready`` hook with ``reuse_port``: the master stops listening before forking.

    A listening socket that no worker accepts from would still get its share of connections from
    the kernel's ``SO_REUSEPORT`` group, so the master's own socket is closed; workers bind theirs.
    """
    for listener in arbiter.LISTENERS:
        listener.close()
