"""DuckDBOfflineEngine: point-in-time joins over Parquet with DuckDB, in bounded memory.

Each view's timeline (see ``pit_sql``) is built once into a temporary table, then entity rows are
joined to it in chunks with one ASOF join per view. DuckDB runs under a memory limit with a temp
directory, so timelines and sorts larger than memory spill to disk instead of failing.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import duckdb
import pyarrow as pa

from pitstop.errors import ConfigError, OfflineStoreError
from pitstop.log import get_logger
from pitstop.offline.base import Progress
from pitstop.offline.pit_sql import ETS, ROW, ViewQuery, quote, scan, timeline_sql, view_join_sql
from pitstop.settings import OfflineStoreSettings

log = get_logger(__name__)

CHUNK_ROWS = 4_000_000
"""Entity rows joined per ASOF pass; bounds the memory of one pass."""


def memory_limit_bytes(setting: str) -> str:
    """DuckDB memory limit text; a percentage is taken of physical memory."""
    text = setting.strip()
    if text.endswith("%"):
        try:
            share = float(text[:-1]) / 100
        except ValueError as exc:
            raise ConfigError(f"offline_store.memory_limit {setting!r} is not a percentage") from exc
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return f"{int(total * share) // (1 << 20)}MB"
    return text


def to_arrow(rel: duckdb.DuckDBPyRelation) -> pa.Table:
    """Arrow result of a relation across DuckDB versions (2.x renamed the method)."""
    method = getattr(rel, "to_arrow_table", None) or rel.arrow
    return method()


class DuckDBOfflineEngine:
    """The embedded offline engine. One DuckDB connection per retrieval, so calls are thread-safe."""

    def __init__(self, settings: OfflineStoreSettings) -> None:
        self.settings = settings
        self._memory_limit = memory_limit_bytes(settings.memory_limit)
        self._temp_dir = settings.temp_directory or str(Path(tempfile.gettempdir()) / "pitstop-duckdb")
        self._lock = threading.Lock()

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A fresh connection with the memory limit, spill directory and UTC time zone set."""
        config: dict[str, str | int] = {"memory_limit": self._memory_limit, "temp_directory": self._temp_dir}
        if self.settings.threads:
            config["threads"] = self.settings.threads
        try:
            con = duckdb.connect(config=config)
            con.execute("SET TimeZone = 'UTC'")
        except duckdb.Error as exc:
            raise ConfigError(f"offline_store settings rejected by DuckDB: {exc}") from exc
        return con

    def run_sql(self, query: str, sources: dict[str, tuple[str, ...]]) -> pa.Table:
        con = self.connect()
        try:
            for name, files in sources.items():
                if files:
                    con.execute(f"CREATE TEMP VIEW {quote(name)} AS SELECT * FROM {scan(files)}")
            return to_arrow(con.sql(query))
        except duckdb.Error as exc:
            raise OfflineStoreError(f"entity query failed: {exc}") from exc
        finally:
            con.close()

    def point_in_time(
        self,
        keys: pa.Table,
        views: list[tuple[ViewQuery, dict[str, str]]],
        *,
        created_cutoff: bool,
        progress: Progress | None = None,
    ) -> list[pa.Table]:
        con = self.connect()
        n = keys.num_rows
        chunks = [(lo, min(n, lo + CHUNK_ROWS)) for lo in range(0, max(n, 1), CHUNK_ROWS)]
        total = len(views) * (1 + len(chunks))
        done = 0
        results: list[pa.Table] = []
        try:
            for i, (view, aliases) in enumerate(views):
                if progress:
                    progress(f"timeline {view.name}", done, total)
                con.execute(f"CREATE OR REPLACE TEMP TABLE __tl_{i} AS {timeline_sql(view, created_cutoff)}")
                done += 1
                parts = []
                for lo, hi in chunks:
                    if progress:
                        progress(f"join {view.name}", done, total)
                    cols = [*view.join_keys, ROW, ETS]
                    chunk = keys.select(cols).slice(lo, hi - lo)
                    con.register("__entity_chunk", chunk)
                    parts.append(to_arrow(con.sql(view_join_sql(view, "__entity_chunk", f"__tl_{i}", aliases))))
                    con.unregister("__entity_chunk")
                    done += 1
                results.append(pa.concat_tables(parts) if len(parts) > 1 else parts[0])
                con.execute(f"DROP TABLE __tl_{i}")
            if progress:
                progress("done", total, total)
            return results
        except duckdb.Error as exc:
            raise OfflineStoreError(f"point-in-time join failed: {exc}") from exc
        finally:
            con.close()
