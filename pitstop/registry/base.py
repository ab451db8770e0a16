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

    def close(self) -> None:
        """Release connections."""
        ...
