"""The materialization scheduler: materialize-incremental on a cron expression, one run at a time.

A registry lock makes sure two schedulers (on one host or many sharing a registry) never run
materialization at once; the lock expires so a crashed scheduler cannot block the others forever.
A failed run is retried with exponential backoff until the next scheduled time. SIGTERM/SIGINT
stop the loop after the current run (a materialization killed mid-way is safe anyway).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from pitstop.errors import ConfigError, PitstopError
from pitstop.log import get_logger
from pitstop.materialize import ViewOutcome
from pitstop.registry.base import Registry

log = get_logger(__name__)
LOCK_NAME = "materialize"


@dataclass
class Scheduler:
    """Runs ``job`` at every cron tick; ``registry`` provides the cross-process lock.

    Args:
        cron: a 5-field cron expression, evaluated in UTC.
        job: the work of one run (``FeatureStore.materialize_incremental``, or a monitoring run).
        registry: where the lock lives.
        lock_ttl_seconds: how long a run may hold the lock before others may take it.
        max_retries: retries of a failed run (before the next tick).
        backoff_seconds: first retry delay; doubles each retry.
        lock_name: the registry lock runs hold (one per kind of job).
        describe: one line about a run's result, for the log.
    """

    cron: str
    job: Callable[[], Any]
    registry: Registry
    lock_ttl_seconds: float = 3600.0
    max_retries: int = 3
    backoff_seconds: float = 5.0
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    stop_event: threading.Event = field(default_factory=threading.Event)
    runs: int = 0
    lock_name: str = LOCK_NAME
    describe: Callable[[Any], str] = field(default=lambda outcomes: _describe_materialization(outcomes))

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise ConfigError(f"invalid cron expression {self.cron!r}; expected 5 fields like '*/15 * * * *'")

    def next_time(self, after: datetime) -> datetime:
        """The first tick strictly after ``after``."""
        return croniter(self.cron, after).get_next(datetime)

    def install_signal_handlers(self) -> None:
        """Stop cleanly on SIGTERM and SIGINT (call from the main thread)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def stop(self) -> None:
        """Ask the loop to exit after the current run."""
        log.info("scheduler stopping")
        self.stop_event.set()

    def run_once(self) -> bool:
        """One run under the lock with retries; False when another scheduler holds the lock."""
        if not self.registry.acquire_lock(self.lock_name, self.owner, self.lock_ttl_seconds):
            log.info("another scheduler holds the %r lock; skipping this tick", self.lock_name)
            return False
        try:
            delay = self.backoff_seconds
            for attempt in range(self.max_retries + 1):
                try:
                    result = self.job()
                    log.info("run %d done: %s", self.runs + 1, self.describe(result))
                    return True
                except PitstopError as exc:
                    if attempt == self.max_retries or self.stop_event.is_set():
                        log.error("run failed after %d attempts: %s", attempt + 1, exc)
                        return True
                    log.warning("run failed (attempt %d): %s; retrying in %.0fs", attempt + 1, exc, delay)
                    if self.stop_event.wait(delay):
                        return True
                    delay *= 2
            return True
        finally:
            self.runs += 1
            self.registry.release_lock(self.lock_name, self.owner)

    def serve_forever(self, *, max_runs: int | None = None) -> None:
        """Sleep until each tick and run; returns on stop() or after ``max_runs`` runs."""
        log.info("scheduler started: cron %r, owner %s", self.cron, self.owner)
        while not self.stop_event.is_set():
            now = datetime.now(UTC)
            tick = self.next_time(now)
            if self.stop_event.wait(max(0.0, (tick - now).total_seconds())):
                break
            self.run_once()
            if max_runs is not None and self.runs >= max_runs:
                break
        log.info("scheduler exited after %d runs", self.runs)


def _describe_materialization(outcomes: list[ViewOutcome]) -> str:
    return f"{len(outcomes)} views, {sum(o.rows for o in outcomes)} rows"
