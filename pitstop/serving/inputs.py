"""Checks on request entities, request data and pushed rows, so a bad request answers 422 naming the field
at fault. The rules themselves live in ``pitstop.boundary`` (shared with the ingester, ``FeatureStore.push``
and entity rows); this module only names the request field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from pitstop.boundary import MAX_US, TimeUnit, check_keys, check_value, shown, timestamp_us
from pitstop.definitions import FeatureView, ParquetSource
from pitstop.definitions.dtypes import DType
from pitstop.definitions.resolve import ResolvedFeatures
from pitstop.errors import InvalidValueError
from pitstop.offline.source_check import source_schema
from pitstop.serving.errors import ApiError

_INT_TYPES = ("Int64", "Int32")


@dataclass(frozen=True)
class RequestShape:
    """What a resolved feature selection needs from a request: join keys (with declared kinds) and request fields."""

    join_keys: tuple[str, ...]
    key_kinds: dict[str, str | None]
    """``int`` or ``str`` when some selected view declares the key in its schema, else None (either, not mixed)."""
    request_fields: dict[str, DType]


def request_shape(resolved: ResolvedFeatures, root: Path | str | None = None) -> RequestShape:
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


def key_kind(view: FeatureView, key: str, root: Path | str | None) -> str | None:
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


def _source_key_kind(source: ParquetSource, key: str, root: Path | str) -> str | None:
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
                raise ApiError(422, "invalid_request", f"{shown(name)} is given twice (also in {where[name]})", field)
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
    return f"{shown(name)} is not used by the requested features ({known})"


def _check_key(key: str, values: list[Any], declared: str | None, field: str) -> None:
    try:
        check_keys(key, values, declared)
    except InvalidValueError as exc:
        raise ApiError(422, "invalid_entity_key", exc.reason, f"{field}[{exc.row}]") from exc


def _check_value_types(values: list[Any], dtype: DType, field: str, unit: TimeUnit = "s") -> None:
    for i, value in enumerate(values):
        if value is None:
            continue
        try:
            check_value(value, dtype, unit)
        except ValueError as exc:
            raise ApiError(422, "invalid_request_data", f"expected {dtype}: {exc}", f"{field}[{i}]") from exc


def rows_to_table(views: list[FeatureView], rows: list[dict[str, Any]], root: Path | str | None = None, *,
                  unit: TimeUnit = "s", latest: int = MAX_US) -> pa.Table:
    """Pushed JSON rows as a table typed by the views' schema, after the boundary rules.

    Args:
        views: the views fed by the pushed source.
        rows: the JSON rows.
        root: the offline root (to learn undeclared key types from the source's files).
        unit: the unit of numeric times (``PushRequest.timestamp_unit``).
        latest: the latest accepted event or created time (``pitstop.boundary.latest_us``).

    Raises:
        ApiError: 422 naming ``rows[i].column`` for a missing or unknown column, or ``rows.column[i]``
            for a value that does not fit its type, unit or time window.
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
            columns[name] = _timestamps(values, field, unit, latest, nulls=name != source.timestamp_field)
            continue
        if name in view.join_keys:
            _check_key(name, values, key_kind(view, name, root), field)
            columns[name] = pa.array(values)
            continue
        dtype = dtypes.get(name)
        if dtype is None:
            raise ApiError(422, "invalid_request", f"{shown(name)} is not a column of feature views "
                           f"{', '.join(v.name for v in views)}", f"rows[0].{name}")
        if dtype.name == "Timestamp":
            columns[name] = _timestamps(values, field, unit, MAX_US, nulls=True)
            continue
        _check_value_types(values, dtype, field, unit)
        try:
            columns[name] = pa.array(values, type=dtype.to_arrow())
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise ApiError(422, "invalid_request", f"values do not fit {dtype}: {shown(str(exc))}", field) from exc
    return pa.table(columns)


def _timestamps(values: list[Any], field: str, unit: TimeUnit, latest: int, *, nulls: bool) -> pa.Array:
    """ISO 8601 text (naive = UTC) or epoch numbers in ``unit`` per value, as a UTC microsecond timestamp array."""
    micros: list[int | None] = []
    for i, value in enumerate(values):
        if value is None and nulls:
            micros.append(None)
            continue
        try:
            micros.append(timestamp_us(value, unit, latest))
        except ValueError as exc:
            raise ApiError(422, "invalid_timestamp", str(exc), f"{field}[{i}]") from exc
    return pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
