"""The offline engine interface: point-in-time joins over the batch sources.

DuckDB is the embedded default (``DuckDBOfflineEngine``); a Spark engine implements the same
Protocol for data that outgrows one machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import pyarrow as pa

from pitstop.offline.pit_sql import ViewQuery

Progress = Callable[[str, int, int], None]
"""``progress(description, done, total)``, called as the join advances."""


class OfflineEngine(Protocol):
    """Reads batch sources and joins them to entity rows point-in-time correctly."""

    def run_sql(self, query: str, sources: dict[str, tuple[str, ...]]) -> pa.Table:
        """Evaluate ``query`` with each source name bound to a table over its files."""
        ...

    def point_in_time(
        self,
        keys: pa.Table,
        views: list[tuple[ViewQuery, dict[str, str]]],
        *,
        created_cutoff: bool,
        progress: Progress | None = None,
    ) -> list[pa.Table]:
        """For each view, its features (renamed by the alias map) aligned row by row with ``keys``.

        ``keys`` holds the join keys, ``__pitstop_row`` (0..n-1) and ``__pitstop_ets`` (epoch µs, UTC).
        """
        ...
