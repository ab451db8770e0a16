"""Normalize the many forms of entity rows (DataFrame, Arrow, Parquet path, SQL) into one Arrow table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pitstop.boundary.columns import timestamps_us
from pitstop.errors import NotFoundError, RetrievalError

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
                raise NotFoundError(f"entity rows file {path} does not exist")
            return pq.read_table(path)
        return run_sql(str(entity_df))
    raise RetrievalError(
        f"entity_df must be a pandas DataFrame, a pyarrow Table, a Parquet path or a SQL query, not {type(entity_df).__name__}"
    )


def epoch_us(column: pa.ChunkedArray, name: str) -> pa.Array:
    """Microseconds since the epoch, UTC, by the boundary rules (``pitstop.boundary``).

    Timestamps (naive = UTC), dates and ISO-8601 text are accepted; numbers are refused (their unit
    is unknown), as are nulls, words such as ``now``, ``today``, ``NaT`` or ``""``, and times outside
    1900-01-01..2262-04-11. Finer than microseconds (pandas' default nanoseconds) is truncated.

    Raises:
        InvalidValueError: (a RetrievalError) naming the entity-row column, the row and the reason.
    """
    return timestamps_us(column, name, unit=None)
