"""Checks on request entities and request data, so a bad request answers 422 naming the field at fault."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from pitstop.definitions import FeatureView, ParquetSource
from pitstop.definitions.dtypes import DType
from pitstop.repo.validate import source_schema
from pitstop.resolve import ResolvedFeatures
from pitstop.serving.errors import ApiError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_MIN_US, _MAX_US = -62135596800 * 1_000_000, 253402300799 * 1_000_000
_INT_TYPES = ("Int64", "Int32")
_FLOAT_TYPES = ("Float64", "Float32")


@dataclass(frozen=True)
class RequestShape:
    """What a resolved feature selection needs from a request: join keys (with declared kinds) and request fields."""

    join_keys: tuple[str, ...]
    key_kinds: dict[str, str | None]
    """``int`` or ``str`` when some selected view declares the key in its schema, else None (either, not mixed)."""
    request_fields: dict[str, DType]


def request_shape(resolved: ResolvedFeatures, root: Path | None = None) -> RequestShape:
    """The request shape of ``resolved`` (cache it with the resolution)."""
    kinds: dict[str, str | None] = {}
    for key in resolved.join_keys:
        kinds[key] = None
        for sel in resolved.views.values():
            if key in sel.view.join_keys:
                kinds[key] = key_kind(sel.view, key, root)
                if kinds[key] is not None:
                    break
    fields = {f.name: f.dtype for sel in resolved.on_demand.values() for f in sel.view.request_fields}
    return RequestShape(tuple(resolved.join_keys), kinds, fields)


def key_kind(view: FeatureView, key: str, root: Path | None) -> str | None:
    """``int`` or ``str`` for a join key of ``view``: as declared in its schema, else as typed in its
    source's Parquet files under ``root`` (when readable from here); None when unknown."""
    declared = next((f.dtype for f in view.fields if f.name == key), None)
    if declared is not None:
        return "int" if declared.name in _INT_TYPES else "str" if declared.name == "String" else None
    if root is None:
        return None
    source = view.source.batch
    cache_key = (source.name, source.path, key, str(root))
    kind = _SOURCE_KEY_KINDS.get(cache_key)
    if kind is None:  # read a Parquet footer until the kind is known, not on every push request
        kind = _source_key_kind(source, key, root)
        if kind is not None:
            if len(_SOURCE_KEY_KINDS) > 4096:
                _SOURCE_KEY_KINDS.clear()
            _SOURCE_KEY_KINDS[cache_key] = kind
    return kind


_SOURCE_KEY_KINDS: dict[tuple[str, str, str, str], str] = {}


def _source_key_kind(source: ParquetSource, key: str, root: Path) -> str | None:
    try:
        schema = source_schema(source, root)
    except (OSError, pa.ArrowException):
        return None
    if schema is None or key not in schema.names:
        return None
    typ = schema.field(key).type
    typ = typ.value_type if pa.types.is_dictionary(typ) else typ
    if pa.types.is_integer(typ):
        return "int"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "str"
    return None


def check_columns(entities: dict[str, list[Any]], request_data: dict[str, list[Any]] | None, shape: RequestShape,
                  max_entities: int) -> tuple[dict[str, list[Any]], int]:
    """Validate and merge the request's columns; returns (columns, number of entities).

    Raises:
        ApiError: 422 naming the field: a missing or unknown key, an empty or ragged column,
            a value of the wrong type, or more entities than ``max_entities``.
    """
    sections = {"entities": entities, "request_data": request_data or {}}
    merged: dict[str, list[Any]] = {}
    where: dict[str, str] = {}
    for section, cols in sections.items():
        for name, values in cols.items():
            field = f"{section}.{name}"
            if name in merged:
                raise ApiError(422, "invalid_request", f"{name!r} is given twice (also in {where[name]})", field)
            if name not in shape.join_keys and name not in shape.request_fields:
                raise ApiError(422, "invalid_request", _unknown_column(name, shape), field)
            merged[name], where[name] = values, field
    if not entities:
        raise ApiError(422, "invalid_request", "give at least one join-key column", "entities")
    lengths = {name: len(values) for name, values in merged.items()}
    first = next(iter(lengths))
    n = lengths[first]
    for name, length in lengths.items():
        if length == 0:
            raise ApiError(422, "invalid_request", "is empty; give at least one value", where[name])
        if length != n:
            raise ApiError(422, "invalid_request", f"has {length} values but {where[first]} has {n}", where[name])
    if n > max_entities:
        raise ApiError(422, "too_many_entities",
                       f"{n} entities requested; at most {max_entities} per request (serving.max_entities)", "entities")
    for key in shape.join_keys:
        if key not in merged:
            raise ApiError(422, "invalid_request",
                           f"missing; the requested features need join keys {', '.join(shape.join_keys)}",
                           f"entities.{key}")
        _check_key(key, merged[key], shape.key_kinds[key], where[key])
    for name, dtype in shape.request_fields.items():
        if name not in merged:
            raise ApiError(422, "invalid_request", f"missing; an on-demand feature needs request data {name!r} ({dtype})",
                           f"request_data.{name}")
        _check_value_types(merged[name], dtype, where[name])
    return merged, n


def _unknown_column(name: str, shape: RequestShape) -> str:
    known = f"join keys: {', '.join(shape.join_keys) or 'none'}"
    if shape.request_fields:
        known += f"; request data: {', '.join(shape.request_fields)}"
    return f"{name!r} is not used by the requested features ({known})"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "str"
    if value is None:
        return "null"
    return type(value).__name__


def _check_key(key: str, values: list[Any], declared: str | None, field: str) -> None:
    expected = declared
    for i, value in enumerate(values):
        kind = _kind(value)
        if kind not in ("int", "str"):
            raise ApiError(422, "invalid_entity_key", f"join keys must be integers or strings, got {kind} {value!r}",
                           f"{field}[{i}]")
        if expected is None:
            expected = kind
        elif kind != expected:
            whose = f"{key!r} keys are" if declared else "the other values are"
            raise ApiError(422, "invalid_entity_key",
                           f"wrong key type: {value!r} is {'an integer' if kind == 'int' else 'a string'}, "
                           f"but {whose} {'integers' if expected == 'int' else 'strings'}",
                           f"{field}[{i}]")
        if kind == "int" and not INT64_MIN <= value <= INT64_MAX:
            raise ApiError(422, "invalid_entity_key", f"{value} does not fit a 64-bit integer key", f"{field}[{i}]")


def _check_value_types(values: list[Any], dtype: DType, field: str) -> None:
    for i, value in enumerate(values):
        kind = _kind(value)
        ok = (
            kind == "null"
            or (dtype.name in _INT_TYPES and kind == "int" and INT64_MIN <= value <= INT64_MAX)
            or (dtype.name in _FLOAT_TYPES and kind in ("int", "float"))
            or (dtype.name == "String" and kind == "str")
            or (dtype.name == "Bool" and kind == "bool")
            or (dtype.name == "Timestamp" and kind in ("str", "int", "float"))
        )
        if not ok:
            raise ApiError(422, "invalid_request_data", f"expected {dtype}, got {kind} {value!r}", f"{field}[{i}]")


def rows_to_table(views: list[FeatureView], rows: list[dict[str, Any]], root: Path | None = None) -> pa.Table:
    """Pushed JSON rows as a table typed by the views' schema; timestamps may be ISO 8601 text or epoch seconds.

    Raises:
        ApiError: 422 naming ``rows[i].column`` for a missing column or a value that does not fit its type.
    """
    view = views[0]
    source = view.source.batch
    time_cols = [c for c in (source.timestamp_field, source.created_timestamp_column) if c]
    needed = [*view.join_keys, source.timestamp_field, *{f.name for v in views for f in v.features}]
    dtypes: dict[str, DType] = {f.name: f.dtype for v in views for f in v.fields}
    columns: dict[str, pa.Array] = {}
    for i, row in enumerate(rows):
        for name in needed:
            if name not in row:
                raise ApiError(422, "invalid_request", f"missing column {name!r}", f"rows[{i}].{name}")
    names = list(dict.fromkeys(name for row in rows for name in row))
    for name in names:
        values = [row.get(name) for row in rows]
        field = f"rows.{name}"
        if name in time_cols:
            columns[name] = _timestamps(values, field)
            continue
        if name in view.join_keys:
            _check_key(name, values, key_kind(view, name, root), field)
            columns[name] = pa.array(values)
            continue
        dtype = dtypes.get(name)
        if dtype is None:
            raise ApiError(422, "invalid_request", f"{name!r} is not a column of feature views "
                           f"{', '.join(v.name for v in views)}", f"rows[0].{name}")
        if dtype.element is None:
            _check_value_types(values, dtype, field)
        try:
            columns[name] = pa.array(values, type=dtype.to_arrow()) if dtype.name != "Timestamp" else \
                _timestamps(values, field)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise ApiError(422, "invalid_request", f"values do not fit {dtype}: {exc}", field) from exc
    return pa.table(columns)


def _timestamps(values: list[Any], field: str) -> pa.Array:
    """Epoch seconds or ISO 8601 text (naive = UTC) per value, as a UTC microsecond timestamp array."""
    micros: list[int] = []
    for i, value in enumerate(values):
        kind = _kind(value)
        try:
            if kind in ("int", "float"):
                us = round(float(value) * 1_000_000)
            elif kind == "str":
                stamp = pd.Timestamp(value)
                stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
                us = stamp.value // 1000
            else:
                raise ValueError(f"got {kind}")
            if not _MIN_US <= us <= _MAX_US:
                raise ValueError("out of range (years 1-9999)")
        except (ValueError, OverflowError, TypeError) as exc:
            raise ApiError(422, "invalid_timestamp",
                           f"expected an ISO 8601 timestamp or epoch seconds, got {value!r}: {exc}",
                           f"{field}[{i}]") from exc
        micros.append(us)
    return pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
