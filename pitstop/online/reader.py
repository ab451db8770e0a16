"""get_online_features: latest values for entity rows, with statuses, ttl and on-demand features.

One online-store read (one network round trip) serves every view and entity row of a request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pitstop.definitions.resolve import ResolvedFeatures
from pitstop.errors import RetrievalError
from pitstop.online.base import OnlineStore, ViewRead
from pitstop.online.keys_canonical import canonical_keys
from pitstop.online.view_schema import view_schema
from pitstop.timeutil import epoch_us, from_epoch_us

PRESENT = "PRESENT"
NOT_FOUND = "NOT_FOUND"
OUTSIDE_MAX_AGE = "OUTSIDE_MAX_AGE"

EventTimes = tuple[Sequence[bool], Sequence[int]]

EntityRows = Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]


@dataclass
class OnlineResponse:
    """Columnar online features: entity keys first, then features in requested order."""

    feature_names: list[str]
    values: dict[str, list[Any]]
    statuses: dict[str, list[str]]
    event_us: dict[str, EventTimes | None]
    """Per column: (found flags, event times in µs) of its view, shared by the view's columns; None for
    entity keys and on-demand features."""

    @cached_property
    def event_timestamps(self) -> dict[str, list[datetime | None]]:
        """Per column, the event time of each value (aware UTC), or None (no value, keys, on-demand)."""
        return self._timestamps(lambda event: [from_epoch_us(ev) for ev in event])

    def naive_event_timestamps(self) -> dict[str, list[datetime | None]]:
        """``event_timestamps`` as naive UTC datetimes, built in bulk (for serializers that mark UTC themselves)."""
        return self._timestamps(lambda event: np.asarray(event, dtype="datetime64[us]").astype(object).tolist())

    def _timestamps(self, convert: Callable[[Sequence[int]], list[datetime]]) -> dict[str, list[datetime | None]]:
        """Apply ``convert`` once per view (its columns share one EventTimes) and blank the values not found."""
        n = len(self.values[self.feature_names[0]]) if self.feature_names else 0
        converted: dict[int, list[datetime | None]] = {}
        out: dict[str, list[datetime | None]] = {}
        for name in self.feature_names:
            times = self.event_us[name]
            if times is None:
                out[name] = [None] * n
                continue
            if id(times) not in converted:
                found, event = times
                converted[id(times)] = [t if f else None for t, f in zip(convert(event), found, strict=True)]
            out[name] = converted[id(times)]
        return out

    def to_dict(self) -> dict[str, list[Any]]:
        """``{column: values}``, entity keys first."""
        return {name: self.values[name] for name in self.feature_names}

    def to_pandas(self) -> pd.DataFrame:
        """The values as a DataFrame, one row per entity row."""
        return pd.DataFrame(self.to_dict())

    to_df = to_pandas


def columnar(entity_rows: EntityRows) -> tuple[dict[str, list[Any]], int]:
    """Entity rows as columns: accepts a list of dicts (same keys in each) or a dict of equal-length lists."""
    if isinstance(entity_rows, Mapping):
        cols = {k: list(v) if not isinstance(v, str | bytes) else [v] for k, v in entity_rows.items()}
        lengths = {len(v) for v in cols.values()}
        if len(lengths) > 1:
            raise RetrievalError(f"entity columns have different lengths: { {k: len(v) for k, v in cols.items()} }")
        return cols, lengths.pop() if lengths else 0
    rows = list(entity_rows)
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k not in names]
    cols = {}
    for name in names:
        missing = [i for i, row in enumerate(rows) if name not in row]
        if missing:
            raise RetrievalError(f"entity row {missing[0]} lacks {name!r}, which other rows have")
        cols[name] = [row[name] for row in rows]
    return cols, len(rows)


def read_online_features(online: OnlineStore, resolved: ResolvedFeatures, entity_rows: EntityRows,
                         *, now: datetime | None = None) -> OnlineResponse:
    """Read, apply ttl, compute on-demand features; raises RetrievalError naming a missing or bad field."""
    cols, n = columnar(entity_rows)
    if n == 0:
        raise RetrievalError("entity rows are empty: pass at least one entity")
    keys = resolved.join_keys
    for key in keys:
        if key not in cols:
            raise RetrievalError(f"entity rows lack join key {key!r} (given: {', '.join(cols) or 'nothing'})")
    for name in resolved.request_fields:
        if name not in cols:
            raise RetrievalError(f"request data lacks {name!r}, which an on-demand feature view needs")
    try:
        key_table = canonical_keys(pa.table({k: cols[k] for k in keys}))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise RetrievalError(f"entity key values have mixed or unsupported types: {exc}") from exc
    reads = _online_reads(resolved)
    results = online.read(key_table, reads) if reads else {}
    now_us = epoch_us(now or datetime.now(UTC))
    values: dict[str, list[Any]] = {k: cols[k] for k in keys}
    statuses: dict[str, list[str]] = {k: [PRESENT] * n for k in keys}
    stamps: dict[str, EventTimes | None] = dict.fromkeys(keys)
    for sel, read in zip(resolved.views.values(), reads, strict=True):
        res = results[sel.view.name]
        ttl = read.view.ttl_us
        status = [
            NOT_FOUND if not found else (OUTSIDE_MAX_AGE if ttl is not None and now_us - ev > ttl else PRESENT)
            for found, ev in zip(res.found, res.event_us, strict=True)
        ]
        ts = (res.found, res.event_us)
        all_present = status.count(PRESENT) == n
        for feat in sel.features:
            name = sel.aliases[feat]
            column = res.values[feat]
            values[name] = list(column) if all_present else [
                v if s == PRESENT else None for v, s in zip(column, status, strict=True)]
            statuses[name] = status
            stamps[name] = ts
    for osel in resolved.on_demand.values():
        inputs: dict[str, list[Any]] = {}
        worst = [PRESENT] * n
        for view_name, feats in osel.view.view_inputs():
            vsel = resolved.views[view_name]
            for feat in feats:
                col = vsel.aliases[feat]
                inputs[feat] = values[col]
                worst = [w if w != PRESENT else s for w, s in zip(worst, statuses[col], strict=True)]
        for fld in osel.view.request_fields:
            inputs[fld.name] = cols[fld.name]
        out = osel.view.transform_columns(inputs, n)
        for feat in osel.features:
            name = osel.aliases[feat]
            values[name] = out[feat]
            statuses[name] = worst
            stamps[name] = None
    names = keys + resolved.output_names
    return OnlineResponse(names, {k: values[k] for k in names}, {k: statuses[k] for k in names},
                          {k: stamps[k] for k in names})


def _online_reads(resolved: ResolvedFeatures) -> list[ViewRead]:
    """What the online store reads per view for ``resolved`` (derived once per resolution)."""
    reads: list[ViewRead] | None = resolved.engine_cache.get("online_reads")
    if reads is None:
        reads = [ViewRead(view_schema(sel.view), list(sel.features)) for sel in resolved.views.values()]
        resolved.engine_cache["online_reads"] = reads
    return reads
