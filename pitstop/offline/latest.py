"""SQL for the latest row per entity in a time range: what materialization copies to the online store.

"Latest" uses the same order as the point-in-time join: greatest event timestamp, then greatest
created timestamp. DuckDB finds, per entity key, only the winning row's id and timestamps
(``arg_max`` over a narrow scan); ``DuckDBOfflineEngine.latest_rows`` then gathers the feature
values from Parquet with Arrow ``take`` in row-id order, so each row group is read once and memory
is bounded by the chunk of entities being written, never by the size of the data.
"""

from __future__ import annotations

from pitstop.offline.pit_sql import CR, FID, TS, ViewQuery, epoch_sql, quote, rows_sql, scan

__all__ = ["earliest_event_sql", "latest_ids_sql"]

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
