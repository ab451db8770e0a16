"""Run the scoring app: gunicorn with uvicorn workers (production) or one uvicorn process (dev)."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pitstop.errors import ConfigError

WORKER_CLASS = "uvicorn_worker.UvicornWorker"


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

    host, port = _split_bind(options.bind)
    _prepare_env(options.repo, multiprocess=False)
    uvicorn.run("pitstop.serving.app:create_app", factory=True, host=host, port=port,
                access_log=options.access_log, timeout_graceful_shutdown=options.graceful_timeout,
                timeout_keep_alive=options.keepalive)


def run_gunicorn(options: ServeOptions) -> None:
    """gunicorn master with ``options.workers`` uvicorn workers; SIGTERM drains in-flight requests."""
    from gunicorn.app.base import BaseApplication

    _split_bind(options.bind)
    metrics_dir = _prepare_env(options.repo, multiprocess=True)

    def child_exit(_server: Any, worker: Any) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

    config: dict[str, Any] = {
        "bind": options.bind,
        "workers": options.workers,
        "worker_class": WORKER_CLASS,
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

    class _App(BaseApplication):  # type: ignore[misc]
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
