"""The latest row per entity in a time range: what materialization copies to the online store.

"Latest" uses the same order as the point-in-time join: greatest event timestamp, then greatest
created timestamp. Rows stream out as Arrow record batches, so memory is bounded by the batch
size, not by the data size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import duckdb
import pyarrow as pa

from pitstop.errors import OfflineStoreError
from pitstop.offline.pit_sql import ViewQuery, quote, scan

NO_CREATED_SQL = "0"


def latest_rows_sql(view: ViewQuery, start_us: int, end_us: int) -> str:
    """Keys, ``__ts`` and ``__cr`` (epoch µs; 0 without a created column) and features, one row per key."""
    keys = ", ".join(quote(k) for k in view.join_keys)
    feats = ", ".join(quote(f) for f in view.features)
    ts = f"epoch_us(CAST({quote(view.timestamp_field)} AS TIMESTAMP))"
    cr = (f"COALESCE(epoch_us(CAST({quote(view.created_field)} AS TIMESTAMP)), 0)"
          if view.created_field else NO_CREATED_SQL)
    return (
        f"SELECT {keys}, __ts, __cr, {feats} FROM ("
        f"SELECT {keys}, {ts} AS __ts, {cr} AS __cr, {feats} FROM {scan(view.files)}) "
        f"WHERE __ts >= {start_us} AND __ts < {end_us} "
        f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY __ts DESC, __cr DESC) = 1"
    )


def earliest_event_sql(view: ViewQuery) -> str:
    """The smallest event timestamp of the view's data, in epoch µs (NULL when empty)."""
    return f"SELECT min(epoch_us(CAST({quote(view.timestamp_field)} AS TIMESTAMP))) FROM {scan(view.files)}"


def iter_latest_rows(
    connect: Callable[[], duckdb.DuckDBPyConnection], view: ViewQuery, start_us: int, end_us: int, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """Stream the latest row per entity with ``start_us <= event < end_us`` in batches of ``batch_rows``."""
    con = connect()
    try:
        rel = con.sql(latest_rows_sql(view, start_us, end_us))
        reader_fn = getattr(rel, "to_arrow_reader", None) or rel.fetch_record_batch
        reader = reader_fn(batch_rows)
        yield from reader
    except duckdb.Error as exc:
        raise OfflineStoreError(f"reading the latest rows of view {view.name!r} failed: {exc}") from exc
    finally:
        con.close()


def earliest_event_us(connect: Callable[[], duckdb.DuckDBPyConnection], view: ViewQuery) -> int | None:
    """The view's earliest event time in epoch µs, or None when it has no rows."""
    con = connect()
    try:
        value = con.execute(earliest_event_sql(view)).fetchall()[0][0]
        return None if value is None else int(value)
    except duckdb.Error as exc:
        raise OfflineStoreError(f"reading the earliest event of view {view.name!r} failed: {exc}") from exc
    finally:
        con.close()
