"""Build the offline engine named by the settings."""

from __future__ import annotations

from pitstop.offline.base import OfflineEngine
from pitstop.settings import OfflineStoreSettings

__all__ = ["open_offline_engine"]


def open_offline_engine(settings: OfflineStoreSettings) -> OfflineEngine:
    """The embedded DuckDB engine (loaded on first use, so `pitstop plan` and imports stay fast)."""
    from pitstop.offline.duckdb_engine import DuckDBOfflineEngine

    return DuckDBOfflineEngine(settings)
