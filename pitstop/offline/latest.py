"""The latest row per entity in a time range: what materialization copies to the online store.

"Latest" uses the same order as the point-in-time join: greatest event timestamp, then greatest
created timestamp. DuckDB finds, per entity key, only the winning row's id and timestamps
(``arg_max`` over a narrow scan); the feature values are then gathered from Parquet with Arrow
``take`` in row-id order, so each row group is read once and memory is bounded by the chunk of
entities being written, never by the size of the data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import duckdb
import numpy as np
import pyarrow as pa

from pitstop.errors import OfflineStoreError
from pitstop.offline.duckdb_engine import gather, to_arrow
from pitstop.offline.pit_sql import CR, FID, MIN_US, TS, ViewQuery, epoch_sql, quote, rows_sql, scan

_ORDER = f"(CAST({TS} AS HUGEINT) * 18446744073709551616 + {CR})"


def latest_ids_sql(view: ViewQuery, start_us: int, end_us: int) -> str:
    """Per key with an event in [start_us, end_us): the winning row's event and created µs and row id."""
    keys = ", ".join(quote(k) for k in view.join_keys)
    return (
        f"SELECT {keys}, arg_max({TS}, {_ORDER}) AS {TS}, arg_max({CR}, {_ORDER}) AS {CR}, "
        f"arg_max({FID}, {_ORDER}) AS {FID} FROM ({rows_sql(view)}) "
        f"WHERE {TS} >= {start_us} AND {TS} < {end_us} GROUP BY {keys}"
    )


def earliest_event_sql(view: ViewQuery) -> str:
    """The smallest event timestamp of the view's data, in epoch µs (NULL when empty)."""
    return f"SELECT min({epoch_sql(view.timestamp_field)}) FROM {scan(view.files)}"


def iter_latest_rows(
    connect: Callable[[], duckdb.DuckDBPyConnection], view: ViewQuery, start_us: int, end_us: int, batch_rows: int
) -> Iterator[pa.Table]:
    """Tables of up to ``batch_rows`` entities: join keys, ``__pitstop_ts``, ``__pitstop_cr``
    (``MIN_US`` when the source has no created column) and the view's features."""
    con = connect()
    try:
        ids = to_arrow(con.sql(latest_ids_sql(view, start_us, end_us)))
    except duckdb.Error as exc:
        raise OfflineStoreError(f"reading the latest rows of view {view.name!r} failed: {exc}") from exc
    finally:
        con.close()
    if ids.num_rows == 0:
        return
    # row-id order makes each chunk's gather touch one contiguous run of row groups
    ids = ids.take(pa.array(np.argsort(ids.column(FID).to_numpy(), kind="stable")))
    aliases = {f: f for f in view.features}
    for lo in range(0, ids.num_rows, batch_rows):
        chunk = ids.slice(lo, batch_rows)
        values = gather(view, aliases, chunk.column(FID).to_numpy())
        out = chunk.drop_columns([FID])
        for name in view.features:
            out = out.append_column(name, values.column(name))
        yield out


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


__all__ = ["MIN_US", "earliest_event_us", "iter_latest_rows", "latest_ids_sql"]
