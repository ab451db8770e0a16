"""SQL text for the point-in-time join (DuckDB dialect). Pure functions: no connection here.

The rule, for an entity row (keys, t) and a view with ttl T: among the view's rows with the same
keys, ``event_ts <= t`` and (with the created cutoff) ``created_ts <= t``, take the greatest
(event_ts, created_ts); when T is set it must also satisfy ``event_ts >= t - T`` (inclusive),
otherwise the features are null. A null created timestamp counts as the smallest one.

Late materialization. The join never carries feature values: each feature row is named by its
*row id* ``__pitstop_fid = file_index << 40 | row number in that file`` (``fid_file``/``fid_row``
split it), the join yields one row id (or null) per entity row, and the engine then gathers the
feature columns from Parquet with Arrow ``take``. Narrow sorts, and payloads read once.

How the general join is computed without an N x R join. A feature row becomes *known* at
``avail = max(event_ts, created_ts)`` (just ``event_ts`` without the cutoff). For each key, the
answer at time t is the best (event_ts, created_ts) among rows known by t. Walking a key's rows in
``avail`` order with a running maximum of (event_ts, created_ts), a row can only become the answer
at its own ``avail`` and only if it is the running maximum there; every other row is never the
answer. Keeping just those rows gives a timeline whose last entry with ``avail <= t`` is the answer
for t: one ASOF join per view. The ttl is then a check on the matched row's event_ts, because the
best row has the greatest event_ts among the known rows: if it is too old, every known row is.
Without a created column (or without the cutoff) a row is known at its event time, so the window
is only needed to settle equal event times by the created timestamp.
"""

from __future__ import annotations

from pitstop.offline.view_query import CR, ETS, MIN_US, ROW, TS, ViewQuery

__all__ = ["CR", "ETS", "FID", "MIN_US", "ROW", "TS", "ViewQuery"]

FID = "__pitstop_fid"
FID_SHIFT = 40
"""Bits of a row id that hold the row number inside its file (files of up to 2**40 rows)."""
_TWO_64 = "18446744073709551616"


def quote(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """Quote a string literal for DuckDB."""
    return "'" + text.replace("'", "''") + "'"


def fid_file(fid: int) -> int:
    """The index (into ``ViewQuery.files``) of the file holding row id ``fid``."""
    return fid >> FID_SHIFT


def fid_row(fid: int) -> int:
    """The row number, inside its file, of row id ``fid``."""
    return fid & ((1 << FID_SHIFT) - 1)


def scan(files: tuple[str, ...], *, row_numbers: bool = False) -> str:
    """A DuckDB table function reading the view's Parquet files (with ``file_row_number`` if asked)."""
    extra = ", file_row_number=true" if row_numbers else ""
    return f"read_parquet([{', '.join(literal(f) for f in files)}], union_by_name=true{extra})"


def epoch_sql(column: str) -> str:
    """Epoch microseconds of a timestamp column; naive timestamps are UTC (the session time zone).

    Casting to TIMESTAMPTZ is free for zone-aware columns, unlike a cast to TIMESTAMP.
    """
    return f"epoch_us(CAST({quote(column)} AS TIMESTAMPTZ))"


def rows_sql(view: ViewQuery, *, with_fid: bool = True) -> str:
    """The view's rows, narrow: join keys, __pitstop_ts, __pitstop_cr (null-free), __pitstop_fid.

    Rows keep the files' order (DuckDB preserves insertion order), so for a single file the
    position of a row in the result is its row id.
    """
    keys = ", ".join(quote(k) for k in view.join_keys)
    cr = f"COALESCE({epoch_sql(view.created_field)}, {MIN_US})" if view.created_field else str(MIN_US)
    fid = f", (CAST(file_index AS BIGINT) << {FID_SHIFT}) | file_row_number AS {FID}" if with_fid else ""
    return (f"SELECT {keys}, {epoch_sql(view.timestamp_field)} AS {TS}, {cr} AS {CR}{fid} "
            f"FROM {scan(view.files, row_numbers=with_fid)}")


def timeline_sql(view: ViewQuery, created_cutoff: bool, *, only_keys_of: str | None = None) -> str:
    """Rows of ``view`` that are the answer for some time: keys, __ts, __avail, __fid (see module doc).

    ``only_keys_of`` names a relation whose join keys restrict the rows considered (a semi-join).
    """
    keys = ", ".join(quote(k) for k in view.join_keys)
    source = f"SELECT * FROM ({rows_sql(view)}) WHERE {TS} IS NOT NULL"
    if only_keys_of is not None:
        source += f" AND ({keys}) IN (SELECT {keys} FROM {only_keys_of})"
    cols = f"{keys}, {TS} AS __ts, {FID} AS __fid"
    if view.created_field is None:
        # no tie-break column: every row is its own best; equal timestamps are broken arbitrarily
        return f"SELECT {cols}, {TS} AS __avail FROM ({source})"
    avail = f"GREATEST({TS}, {CR})" if created_cutoff else TS
    order = f"CAST({TS} AS HUGEINT) * {_TWO_64} + {CR}"
    return (
        f"SELECT {keys}, __ts, __avail, __fid FROM ("
        f"SELECT {cols}, {avail} AS __avail, {order} AS __order, "
        f"max({order}) OVER (PARTITION BY {keys} ORDER BY {avail} "
        f"RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS __best "
        f"FROM ({source})"
        f") WHERE __best = __order"
    )


def match_sql(view: ViewQuery, entity: str, timeline: str) -> str:
    """Per entity row (any order): __pitstop_row and the matched row id __pitstop_fid, or null."""
    on = " AND ".join(f"e.{quote(k)} = tl.{quote(k)}" for k in view.join_keys)
    ok = f"tl.__ts >= e.{ETS} - {view.ttl_us}" if view.ttl_us is not None else "tl.__ts IS NOT NULL"
    return (
        f"SELECT e.{ROW} AS {ROW}, CASE WHEN {ok} THEN tl.__fid END AS {FID} "
        f"FROM {entity} AS e ASOF LEFT JOIN {timeline} AS tl ON {on} AND e.{ETS} >= tl.__avail"
    )
