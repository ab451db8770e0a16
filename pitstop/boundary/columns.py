"""The boundary rules over whole Arrow columns (DataFrames, Arrow tables, entity rows, decoded batches).

Vectorized: a 10-million-row column costs a cast and a min/max; rows are only looked at one by one
to name the first offending row, using the scalar rules of ``timestamps`` and ``values`` for the
reason, so a column and a JSON value get the same answer.
"""

from __future__ import annotations

import re
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pitstop.boundary.timestamps import (
    MAX_US,
    MIN_US,
    UNIT_US,
    WORDS,
    TimeUnit,
    shown,
    timestamp_us,
    window_reason,
)
from pitstop.boundary.values import FLOAT32_MAX, INT_RANGE, check_value
from pitstop.definitions.dtypes import DType
from pitstop.errors import InvalidValueError

__all__ = ["arrow_iso_us", "check_feature_column", "timestamps_us"]

_UTC_US = pa.timestamp("us", tz="UTC")
Column: TypeAlias = "pa.Array | pa.ChunkedArray"


def _array(column: Column) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _first(mask: Any) -> int:
    """Index of the first true value of a boolean Arrow array (nulls count as false)."""
    return int(np.flatnonzero(pc.fill_null(mask, False).to_numpy(zero_copy_only=False))[0])


def _any(mask: Any) -> bool:
    return bool(pc.any(pc.fill_null(mask, False)).as_py())


def timestamps_us(column: Column, name: str, *, unit: TimeUnit | None = "s", latest: int = MAX_US,
                  nulls: bool = False) -> pa.Array:
    """A column of times as epoch microseconds (int64 Arrow array, nulls kept when ``nulls``).

    Args:
        column: timestamps (any unit or zone; naive is UTC), dates, ISO-8601 text, or numbers of ``unit``.
        name: the column name, for errors.
        unit: the unit of numbers; None refuses numeric columns (their unit cannot be known).
        latest: the latest accepted time (epoch µs), e.g. ``latest_us(max_future_seconds)`` for writers.
        nulls: whether a null is allowed (else it is refused, naming its row).

    Raises:
        InvalidValueError: a value is not a time or falls outside ``[1900-01-01, latest]``; names column and row.
    """
    arr = _array(column)
    typ = arr.type
    if pa.types.is_dictionary(typ):
        arr = arr.dictionary_decode()
        typ = arr.type
    if pa.types.is_timestamp(typ):
        us = pc.cast(pc.cast(arr, pa.timestamp("us", tz=typ.tz), safe=False), pa.int64())
    elif pa.types.is_date(typ):
        us = pc.cast(pc.cast(arr, pa.timestamp("us")), pa.int64())
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
        us = _parse_text(arr, name)
    elif pa.types.is_integer(typ) or pa.types.is_floating(typ):
        if unit is None:
            raise InvalidValueError(name, None, f"holds numbers ({typ}), whose unit is unknown; give timestamps "
                                    "or ISO-8601 text (e.g. pandas.to_datetime(column, unit='s'))")
        us = _numbers_us(arr, name, unit, latest)
    elif pa.types.is_null(typ):
        us = pa.nulls(len(arr), pa.int64())
    else:
        raise InvalidValueError(name, None, f"must hold timestamps, ISO-8601 text or epoch numbers, not {typ}")
    if not nulls and us.null_count:
        row = _first(pc.is_null(us))
        raise InvalidValueError(name, row, "is missing (null); every row needs a time")
    if len(us) - us.null_count:
        bounds = pc.min_max(us).as_py()
        if bounds["min"] < MIN_US or bounds["max"] > latest:
            row = _first(pc.or_(pc.less(us, MIN_US), pc.greater(us, latest)))
            value = arr[row].as_py()
            number_unit = unit if isinstance(value, int | float) else None
            reason = window_reason(us[row].as_py(), value, number_unit, latest)
            raise InvalidValueError(name, row, reason or "outside the accepted window")
    return us


_ZONE = re.compile(r"(?:[Zz]|[+-]\d\d(?::?\d\d)?)$")


def arrow_iso_us(arr: pa.Array | pa.ChunkedArray) -> Any:
    """ISO-8601 text -> UTC µs timestamps by Arrow's parser alone, or None when Arrow cannot parse it all.

    All values with a zone (``Z``, ``+02:00``) or all without (naive is UTC); mixed or other forms give None.
    """
    first = next((v for v in (arr.chunks[0] if isinstance(arr, pa.ChunkedArray) and arr.num_chunks else arr)
                  if v.is_valid), None) if len(arr) else None
    zoned = first is not None and _ZONE.search(first.as_py()) is not None
    # a failing cast costs a full scan: try the form the first value has first
    attempts = (_UTC_US, pa.timestamp("us")) if zoned else (pa.timestamp("us"), _UTC_US)
    for target in attempts:
        try:
            return pc.cast(arr, target).cast(_UTC_US)  # naive -> UTC keeps the wall time
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return None


def _parse_text(arr: pa.Array, name: str) -> pa.Array:
    """ISO-8601 text -> epoch µs; Arrow's parser first, pandas' ISO-8601 parser for the rest."""
    parsed_by_arrow = arrow_iso_us(arr)
    if parsed_by_arrow is not None:
        return pc.cast(parsed_by_arrow, pa.int64())
    import pandas as pd

    words = pc.is_in(pc.utf8_lower(pc.utf8_trim_whitespace(arr)), value_set=pa.array(sorted(WORDS)))
    parsed = pd.to_datetime(arr.to_pandas(), utc=True, format="ISO8601", errors="coerce")
    us = pc.cast(pc.cast(pa.Array.from_pandas(parsed), _UTC_US, safe=False), pa.int64())
    bad = pc.or_(words, pc.and_(pc.is_valid(arr), pc.is_null(us)))
    if _any(bad):
        row = _first(bad)
        value = arr[row].as_py()
        try:
            timestamp_us(value)
            reason = f"{shown(value)} is not an ISO-8601 time"
        except ValueError as exc:
            reason = str(exc)
        raise InvalidValueError(name, row, reason)
    return us


def _numbers_us(arr: pa.Array, name: str, unit: TimeUnit, latest: int) -> pa.Array:
    per = UNIT_US[unit]
    if pa.types.is_floating(arr.type):
        bad = pc.invert(pc.is_finite(arr))
        if _any(bad):
            row = _first(bad)
            raise InvalidValueError(name, row, f"{arr[row].as_py()!r} is not a time")
    # check the window in the column's own unit, so converting cannot overflow
    if pa.types.is_integer(arr.type):
        low, high = _int_bounds(MIN_US, latest, unit)
        outside = pc.or_(pc.less(arr, pa.scalar(low, pa.int64())), pc.greater(arr, pa.scalar(high, pa.int64())))
    else:
        outside = pc.or_(pc.less(arr, MIN_US / per), pc.greater(arr, latest / per))
    if _any(outside):
        row = _first(outside)
        value = arr[row].as_py()
        raise InvalidValueError(name, row, window_reason(value * per, value, unit, latest) or "outside the window")
    if pa.types.is_integer(arr.type):
        ints = pc.cast(arr, pa.int64())
        return pc.divide(ints, 1000) if unit == "ns" else pc.multiply(ints, int(per))
    scaled = pc.multiply(pc.cast(arr, pa.float64()), per)
    return pc.cast(pc.trunc(scaled) if unit == "ns" else pc.round(scaled, round_mode="half_to_even"), pa.int64())


def _int_bounds(low_us: int, high_us: int, unit: str) -> tuple[int, int]:
    """The integers of ``unit`` whose time lies in ``[low_us, high_us]`` (as the scalar rule converts them)."""
    if unit == "ns":
        return low_us * 1000 - 999, high_us * 1000 + 999
    per = int(UNIT_US[unit])
    return -(-low_us // per), high_us // per


def check_feature_column(column: Column, name: str, dtype: DType, *, unit: TimeUnit = "s") -> None:
    """Refuse values of ``column`` that ``dtype`` cannot hold: NaN/infinities and overflows of a float dtype,
    integers out of range or fractional numbers for an int dtype, out-of-window times (vectorized).

    Other mismatches are left to the cast to ``dtype.to_arrow()`` that follows.

    Raises:
        InvalidValueError: names the column, the first offending row and the reason.
    """
    arr = _array(column)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    target = dtype.element or dtype
    if dtype.element is not None:
        if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)) or not len(arr.flatten()):
            return
        parents = pc.list_parent_indices(arr).to_numpy()
        values = arr.flatten()
    else:
        parents, values = None, arr
    bad = _bad_values(values, target)
    if bad is not None and _any(bad):
        i = _first(bad)
        value = values[i].as_py()
        try:
            check_value(value, target, unit)
            reason = f"{shown(value)} does not fit {target}"
        except ValueError as exc:
            reason = str(exc)
        row = i if parents is None else int(parents[i])
        raise InvalidValueError(name, row, reason if parents is None else f"list element: {reason}")
    if target.name == "Timestamp" and not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        timestamps_us(values, name, unit=unit, nulls=True)


def _bad_values(values: pa.Array, target: DType) -> Any:
    typ = values.type
    if target.name in ("Float64", "Float32") and pa.types.is_floating(typ):
        bad = pc.invert(pc.is_finite(values))
        if target.name == "Float32" and not pa.types.is_float32(typ) and not pa.types.is_float16(typ):
            bad = pc.or_(bad, pc.greater(pc.abs(values), FLOAT32_MAX))
        return bad
    if target.name in INT_RANGE:
        low, high = INT_RANGE[target.name]
        if pa.types.is_floating(typ):
            return pc.or_(pc.invert(pc.is_finite(values)), pc.not_equal(pc.floor(values), values))
        if pa.types.is_integer(typ) and target.name == "Int32" and typ.bit_width >= 32:
            return pc.or_(pc.less(values, low), pc.greater(values, high))
    return None
