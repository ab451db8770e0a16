"""SQL text for the point-in-time join (DuckDB dialect). Pure functions: no connection here.

The rule, for an entity row (keys, t) and a view with ttl T: among the view's rows with the same
keys, ``event_ts <= t`` and (with the created cutoff) ``created_ts <= t``, take the greatest
(event_ts, created_ts); when T is set it must also satisfy ``event_ts >= t - T`` (inclusive),
otherwise the features are null.

How it is computed without an N x R join. A feature row becomes *known* at
``avail = max(event_ts, created_ts)`` (just ``event_ts`` without the cutoff). For each key, the
answer at time t is the best (event_ts, created_ts) among rows known by t. Walking a key's rows in
``avail`` order with a running maximum of (event_ts, created_ts), a row can only become the answer
at its own ``avail`` and only if it is the running maximum there; every other row is never the
answer. Keeping just those rows gives a timeline whose last entry with ``avail <= t`` is the answer
for t: one ASOF join per view. The ttl is then a check on the matched row's event_ts, because the
best row has the greatest event_ts among the known rows: if it is too old, every known row is.
"""

from __future__ import annotations

from dataclasses import dataclass

ROW = "__pitstop_row"
ETS = "__pitstop_ets"
_TWO_64 = "18446744073709551616"


def quote(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """Quote a string literal for DuckDB."""
    return "'" + text.replace("'", "''") + "'"


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


def scan(files: tuple[str, ...]) -> str:
    """A DuckDB table function reading the view's Parquet files."""
    return f"read_parquet([{', '.join(literal(f) for f in files)}], union_by_name=true)"


def timeline_sql(view: ViewQuery, created_cutoff: bool) -> str:
    """Rows of ``view`` that are the answer for some time: keys, __ts, __avail, features (see module doc)."""
    keys = ", ".join(quote(k) for k in view.join_keys)
    feats = ", ".join(quote(f) for f in view.features)
    ts = f"epoch_us(CAST({quote(view.timestamp_field)} AS TIMESTAMP))"
    if view.created_field is None:
        # no tie-break column: every row is its own best; equal timestamps are broken arbitrarily
        return f"SELECT {keys}, {ts} AS __ts, {ts} AS __avail, {feats} FROM {scan(view.files)}"
    cr = f"COALESCE(epoch_us(CAST({quote(view.created_field)} AS TIMESTAMP)), -9223372036854775807)"
    avail = "GREATEST(__ts, __cr)" if created_cutoff else "__ts"
    order = f"CAST(__ts AS HUGEINT) * {_TWO_64} + __cr"
    return (
        f"SELECT {keys}, __ts, __avail, {feats} FROM ("
        f"SELECT {keys}, __ts, __cr, {avail} AS __avail, {feats}, "
        f"max({order}) OVER (PARTITION BY {keys} ORDER BY {avail} "
        f"RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS __best "
        f"FROM (SELECT {keys}, {ts} AS __ts, {cr} AS __cr, {feats} FROM {scan(view.files)})"
        f") WHERE __best = {order}"
    )


def view_join_sql(view: ViewQuery, entity: str, timeline: str, aliases: dict[str, str]) -> str:
    """One row per entity row, ordered like the entity rows: the view's features (renamed by ``aliases``)."""
    on = " AND ".join(f"e.{quote(k)} = tl.{quote(k)}" for k in view.join_keys)
    ok = f"tl.__ts >= e.{ETS} - {view.ttl_us}" if view.ttl_us is not None else "tl.__ts IS NOT NULL"
    cols = ", ".join(f"CASE WHEN {ok} THEN tl.{quote(f)} END AS {quote(aliases[f])}" for f in view.features)
    return (
        f"SELECT {cols} FROM {entity} AS e ASOF LEFT JOIN {timeline} AS tl "
        f"ON {on} AND e.{ETS} >= tl.__avail ORDER BY e.{ROW}"
    )
