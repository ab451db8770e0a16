"""The offline engine interface: point-in-time joins and latest rows over the batch sources.

Callers (training sets, materialization, entity-row SQL) use only this Protocol and the
engine-neutral ``ViewQuery`` and Arrow tables. DuckDB is the embedded default
(``DuckDBOfflineEngine``); another engine implements the same methods.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import pyarrow as pa

from pitstop.offline.view_query import ViewQuery

Progress = Callable[[str, int, int], None]
"""``progress(description, done, total)``, called as the join advances."""


class OfflineEngine(Protocol):
    """Reads batch sources: point-in-time joins for training sets, latest rows for materialization."""

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

    def latest_rows(self, view: ViewQuery, start_us: int, end_us: int, batch_rows: int) -> Iterator[pa.Table]:
        """Per entity with an event in ``[start_us, end_us)``, its latest row (greatest event time, then
        created time), in tables of at most ``batch_rows`` rows: the join keys, ``__pitstop_ts``,
        ``__pitstop_cr`` (``MIN_US`` without a created column) and the view's features.

        Raises:
            OfflineStoreError: the source cannot be read.
        """
        ...

    def earliest_event_us(self, view: ViewQuery) -> int | None:
        """The view's earliest event time in epoch µs, or None when it has no rows."""
        ...
