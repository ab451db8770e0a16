"""What an offline engine is asked about one view, in engine-neutral terms (no SQL, no engine types)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CR", "ETS", "MIN_US", "ROW", "TS", "ViewQuery"]

ROW = "__pitstop_row"
"""Entity-row position (0..n-1) in the keys table of a point-in-time join."""
ETS = "__pitstop_ets"
"""Entity-row time, epoch µs UTC, in the keys table of a point-in-time join."""
TS = "__pitstop_ts"
"""A feature row's event time, epoch µs UTC (in the latest rows that materialization reads)."""
CR = "__pitstop_cr"
"""A feature row's created time, epoch µs UTC, ``MIN_US`` when the source has none."""
MIN_US = -9223372036854775808
"""Stand-in for a null created timestamp: smaller than every real one."""


@dataclass(frozen=True)
class ViewQuery:
    """What the join needs to know about one view: where its rows are and which columns to take."""

    name: str
    files: tuple[str, ...]
    join_keys: tuple[str, ...]
    timestamp_field: str
    created_field: str | None
    features: tuple[str, ...]
    ttl_us: int | None
