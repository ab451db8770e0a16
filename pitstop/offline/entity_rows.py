"""Normalize the many forms of entity rows (DataFrame, Arrow, Parquet path, SQL) into one Arrow table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pitstop.errors import RetrievalError

EntityRows = pd.DataFrame | pa.Table | str | Path


def looks_like_path(value: str | Path) -> bool:
    """A Path, or a string naming an existing file or ending in .parquet (anything else is SQL)."""
    if isinstance(value, Path):
        return True
    text = value.strip()
    return text.endswith(".parquet") or ("\n" not in text and Path(text).expanduser().exists())


def to_arrow_table(entity_df: Any, run_sql: Any) -> pa.Table:
    """Entity rows as an Arrow table; ``run_sql(query) -> pa.Table`` evaluates SQL over the sources."""
    if isinstance(entity_df, pa.Table):
        return entity_df
    if isinstance(entity_df, pd.DataFrame):
        return pa.Table.from_pandas(entity_df, preserve_index=False)
    if isinstance(entity_df, str | Path):
        if looks_like_path(entity_df):
            path = Path(entity_df).expanduser()
            if not path.exists():
                raise RetrievalError(f"entity rows file {path} does not exist")
            return pq.read_table(path)
        return run_sql(str(entity_df))
    raise RetrievalError(
        f"entity_df must be a pandas DataFrame, a pyarrow Table, a Parquet path or a SQL query, not {type(entity_df).__name__}"
    )


def epoch_us(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    """Microseconds since the epoch, UTC; naive timestamps are taken as UTC, strings are parsed.

    pitstop keeps microseconds: finer nanosecond timestamps (pandas' default unit) are truncated.
    """
    typ = column.type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        try:
            column = pa.chunked_array(pd.to_datetime(column.to_pandas(), utc=True, format="ISO8601"))
        except (ValueError, TypeError) as exc:
            raise RetrievalError(f"entity rows column {name!r} holds text that is not a timestamp: {exc}") from exc
        typ = column.type
    if pa.types.is_date(typ):
        column = column.cast(pa.timestamp("us"))
        typ = column.type
    if not pa.types.is_timestamp(typ):
        raise RetrievalError(f"entity rows column {name!r} must hold timestamps, not {typ}")
    return pc.cast(pc.cast(column, pa.timestamp("us", tz=typ.tz), safe=False), pa.int64())
