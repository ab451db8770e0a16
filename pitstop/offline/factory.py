"""Build the offline engine named by the settings (``offline_store.engine``)."""

from __future__ import annotations

from typing import Any

from pitstop.offline.base import OfflineEngine
from pitstop.settings import OfflineStoreSettings

__all__ = ["open_offline_engine"]


def open_offline_engine(settings: OfflineStoreSettings, *, spark_session: Any = None) -> OfflineEngine:
    """DuckDB (embedded, the default) or Spark; each loads on first use, so `pitstop plan` and imports stay fast.

    Raises:
        MissingExtraError: ``spark`` is chosen and pyspark is not installed (``pitstop[spark]``).
    """
    if settings.engine == "spark":
        from pitstop.offline.spark_engine import SparkOfflineEngine

        return SparkOfflineEngine(settings, spark_session)
    from pitstop.offline.duckdb_engine import DuckDBOfflineEngine

    return DuckDBOfflineEngine(settings)
