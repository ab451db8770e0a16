"""The registry interface: persisted definitions and the history of applies.

Implementations: ``SQLiteRegistry`` (one file, the default). A PostgreSQL registry implements
the same Protocol so serving replicas, ingesters and schedulers can share one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

Specs = dict[str, dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class ApplyRecord:
    """One past apply: its number (the definitions version), time and counts of changes."""

    version: int
    applied_at: datetime
    summary: dict[str, Any]


@dataclass(frozen=True)
class MaterializationRun:
    """One view's materialization of [start, end): outcome, rows written and stale rows skipped."""

    view: str
    start: datetime
    end: datetime
    rows: int
    stale: int
    status: str
    """``success`` or ``failed``."""
    error: str | None
    started_at: datetime
    finished_at: datetime


class Registry(Protocol):
    """Stores definition specs as ``{kind: {name: spec}}``; writes are all-or-nothing."""

    def version(self) -> int:
        """The number of the last apply (0 before the first). Cheap: used to refresh caches."""
        ...

    def load_specs(self) -> Specs:
        """Every registered spec."""
        ...

    def apply_specs(self, specs: Specs, summary: dict[str, Any]) -> int:
        """Replace the registered specs with ``specs`` in one transaction; returns the new version."""
        ...

    def history(self, limit: int = 50) -> list[ApplyRecord]:
        """The most recent applies, newest first."""
        ...

    def watermarks(self) -> dict[str, datetime]:
        """Per view, the end of the last successful incremental materialization (UTC)."""
        ...

    def set_watermark(self, view: str, value: datetime) -> None:
        """Move a view's watermark; ``apply`` never touches watermarks."""
        ...

    def record_run(self, run: MaterializationRun) -> None:
        """Append one run to the materialization history."""
        ...

    def runs(self, limit: int = 50) -> list[MaterializationRun]:
        """Recent materialization runs, newest first."""
        ...

    def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take the named lock unless another owner holds an unexpired one; re-entrant for ``owner``."""
        ...

    def release_lock(self, name: str, owner: str) -> None:
        """Release the lock if ``owner`` holds it."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
