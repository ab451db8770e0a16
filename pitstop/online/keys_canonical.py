"""One canonical Arrow type per join-key family, so writers and readers encode keys identically.

Parquet may store a key as int32 while a request carries a Python int (int64): both become int64;
every string type becomes utf8.
"""

from __future__ import annotations

import pyarrow as pa

from pitstop.errors import RetrievalError


def canonical_keys(table: pa.Table) -> pa.Table:
    """``table`` with integer keys as int64 and string keys as utf8; other types are rejected."""
    cols = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = col.type
        if pa.types.is_integer(t):
            cols.append(col.cast(pa.int64()) if t != pa.int64() else col)
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
            cols.append(col.cast(pa.string()))
        elif pa.types.is_null(t):
            raise RetrievalError(f"join key {name!r} has no values (null)")
        else:
            raise RetrievalError(f"join key {name!r} has type {t}; join keys must be integers or strings")
    return pa.table(cols, names=table.column_names)
