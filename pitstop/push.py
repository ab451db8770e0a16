"""Push: application rows for a PushSource's views, written online through the guard and optionally offline."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pitstop.definitions import FeatureView
from pitstop.errors import RetrievalError
from pitstop.offline.entity_rows import epoch_us
from pitstop.online.base import NO_CREATED, OnlineStore, WriteBatch, WriteResult
from pitstop.online.keys_canonical import canonical_keys
from pitstop.online.view_schema import view_schema

PushMode = Literal["online", "offline", "online_and_offline"]


def to_table(rows: pd.DataFrame | pa.Table | list[dict[str, object]]) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows
    if isinstance(rows, pd.DataFrame):
        return pa.Table.from_pandas(rows, preserve_index=False)
    return pa.Table.from_pylist(list(rows))


def latest_per_key(view: FeatureView, table: pa.Table) -> WriteBatch:
    """A guarded write batch holding, per entity key, the row with the greatest (event, created)."""
    source = view.source.batch
    ts = source.timestamp_field
    for col in [*view.join_keys, ts, *view.feature_names]:
        if col not in table.column_names:
            raise RetrievalError(f"pushed rows for feature view {view.name!r} lack column {col!r}")
    event = epoch_us(table.column(ts), ts).to_numpy()
    created_col = source.created_timestamp_column
    if created_col and created_col in table.column_names:
        created = epoch_us(table.column(created_col), created_col).to_numpy()
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


def append_offline(view: FeatureView, table: pa.Table, root: Path) -> Path:
    """Append rows to the view's batch source folder as a new Parquet file, written atomically."""
    source = view.source.batch
    folder = Path(source.path).expanduser()
    folder = folder if folder.is_absolute() else root / folder
    if folder.suffix == ".parquet":
        raise RetrievalError(f"cannot append to source {source.name!r}: its path {source.path!r} is one file; "
                             "point the batch source at a folder to receive pushed rows")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"part-{uuid.uuid4().hex}.parquet"
    tmp = folder / f".{target.name}.tmp"
    pq.write_table(table, tmp)
    tmp.replace(target)
    return target


def push_rows(online: OnlineStore, views: list[FeatureView], rows: pa.Table, mode: PushMode, root: Path) -> WriteResult:
    """Write ``rows`` for every view fed by the pushed source."""
    result = WriteResult()
    batches = [latest_per_key(v, rows) for v in views] if mode != "offline" else []
    if batches:
        result += online.write(batches)
    if mode != "online":
        for view in views[:1]:  # views sharing a source share its files: append once
            append_offline(view, rows, root)
    return result
