"""Push: application rows for a PushSource's views, written online through the guard and optionally offline.

Pushed rows follow the boundary rules (``pitstop.boundary``): event and created times are
timestamps, ISO-8601 text or numbers in the declared ``timestamp_unit``, between 1900 and now plus
``online_store.max_future_seconds``; feature values must fit their dtypes (no NaN, no infinities,
no Float32 or integer overflow). A refused value raises ``InvalidValueError`` naming column and row.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pitstop.boundary import MAX_US, TimeUnit
from pitstop.boundary.columns import check_feature_column, timestamps_us
from pitstop.definitions import DeltaSource, FeatureView
from pitstop.errors import RetrievalError
from pitstop.offline.delta_append import append_delta
from pitstop.online.base import NO_CREATED, OnlineStore, WriteBatch, WriteResult
from pitstop.online.keys_canonical import canonical_keys
from pitstop.online.view_schema import view_schema
from pitstop.storage import resolve_path

PushMode = Literal["online", "offline", "online_and_offline"]


_TS = pa.timestamp("us", tz="UTC")


def to_table(rows: pd.DataFrame | pa.Table | list[dict[str, object]]) -> pa.Table:
    """Rows as an Arrow table (a pandas NaN becomes null, pandas' missing value)."""
    if isinstance(rows, pa.Table):
        return rows
    try:
        if isinstance(rows, pd.DataFrame):
            return pa.Table.from_pandas(rows, preserve_index=False)
        return pa.Table.from_pylist(list(rows))
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise RetrievalError(f"pushed rows cannot be read as a table (a column mixes types?): {exc}") from exc


def latest_per_key(view: FeatureView, table: pa.Table) -> WriteBatch:
    """A guarded write batch holding, per entity key, the row with the greatest (event, created)."""
    source = view.source.batch
    ts = source.timestamp_field
    for col in [*view.join_keys, ts, *view.feature_names]:
        if col not in table.column_names:
            raise RetrievalError(f"pushed rows for feature view {view.name!r} lack column {col!r}")
    event = timestamps_us(table.column(ts), ts).to_numpy()
    created_col = source.created_timestamp_column
    if created_col and created_col in table.column_names:
        created = pc.fill_null(timestamps_us(table.column(created_col), created_col, nulls=True), NO_CREATED).to_numpy()
    else:
        created = np.full(table.num_rows, NO_CREATED, dtype=np.int64)
    keys = canonical_keys(table.select(view.join_keys))
    frame = keys.to_pandas()
    frame["__ev"], frame["__cr"], frame["__i"] = event, created, np.arange(table.num_rows)
    keep = frame.sort_values(["__ev", "__cr"]).drop_duplicates(view.join_keys, keep="last")["__i"].to_numpy()
    keep = np.sort(keep)
    idx = pa.array(keep)
    try:
        values = pa.table({f.name: table.column(f.name).take(idx).cast(f.dtype.to_arrow()) for f in view.features})
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise RetrievalError(f"pushed rows for feature view {view.name!r} do not fit its schema: {exc}") from exc
    return WriteBatch(view_schema(view), keys.take(idx), event[keep], created[keep], values)


def append_offline(view: FeatureView, table: pa.Table, root: Path | str) -> str:
    """Append rows to the view's batch source: one Delta commit, or a new Parquet file written atomically."""
    source = view.source.batch
    if isinstance(source, DeltaSource):
        append_delta(source, root, table)
        return source.path
    where = resolve_path(source.path, root)
    if isinstance(where, str):
        raise RetrievalError(f"cannot append to source {source.name!r}: {where} is in object storage, where pushed "
                             "rows go to Delta tables; make the batch source a DeltaSource")
    folder = where
    if folder.suffix == ".parquet":
        raise RetrievalError(f"cannot append to source {source.name!r}: its path {source.path!r} is one file; "
                             "point the batch source at a folder to receive pushed rows")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"part-{uuid.uuid4().hex}.parquet"
    tmp = folder / f".{target.name}.tmp"
    pq.write_table(table, tmp)
    tmp.replace(target)
    return str(target)


def checked_rows(views: list[FeatureView], table: pa.Table, unit: TimeUnit = "s", latest: int = MAX_US) -> pa.Table:
    """``table`` with its times as UTC timestamps, after the boundary rules (vectorized).

    Args:
        views: the views fed by the pushed source.
        table: the pushed rows.
        unit: the unit of numeric times.
        latest: the latest accepted event or created time (epoch µs; ``pitstop.boundary.latest_us``).

    Raises:
        InvalidValueError: a time or a feature value is refused; names column, row and reason.
    """
    source = views[0].source.batch
    dtypes = {f.name: f.dtype for v in views for f in v.features}
    for i, name in enumerate(table.column_names):
        column = table.column(i)
        if name in (source.timestamp_field, source.created_timestamp_column):
            us = timestamps_us(column, name, unit=unit, latest=latest, nulls=name != source.timestamp_field)
        elif name in dtypes:
            check_feature_column(column, name, dtypes[name], unit=unit)
            if dtypes[name].name != "Timestamp" or pa.types.is_timestamp(column.type):
                continue
            us = timestamps_us(column, name, unit=unit, nulls=True)
        else:
            continue
        table = table.set_column(i, pa.field(name, _TS), us.cast(_TS))
    return table


def push_rows(online: OnlineStore, views: list[FeatureView], rows: pa.Table, mode: PushMode, root: Path | str,
              unit: TimeUnit = "s", latest: int = MAX_US) -> WriteResult:
    """Write ``rows`` for every view fed by the pushed source, after ``checked_rows``."""
    rows = checked_rows(views, rows, unit, latest)
    result = WriteResult()
    batches = [latest_per_key(v, rows) for v in views] if mode != "offline" else []
    if batches:
        result += online.write(batches)
    if mode != "online":
        for view in views[:1]:  # views sharing a source share its files: append once
            append_offline(view, rows, root)
    return result
