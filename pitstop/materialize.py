"""Materialization: copy the latest offline row per entity in [start, end) into the online store.

Every write goes through the online store's event-time guard, so a re-run, an overlapping run or
a concurrent stream writer can never replace a newer value with an older one. Incremental runs
start each view at its watermark and move the watermark only after all of that view's rows were
written, so a run killed at any moment is simply repeated next time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from pitstop.definitions import FeatureView
from pitstop.errors import MaterializationError, RetrievalError
from pitstop.log import get_logger
from pitstop.offline.latest import earliest_event_us, iter_latest_rows
from pitstop.offline.pit_sql import CR, MIN_US, TS, ViewQuery
from pitstop.online.base import NO_CREATED, OnlineStore, WriteBatch, WriteResult
from pitstop.online.keys_canonical import canonical_keys
from pitstop.online.view_schema import view_schema
from pitstop.registry.base import MaterializationRun, Registry
from pitstop.repo.validate import source_files
from pitstop.timeutil import epoch_us, from_epoch_us, to_utc

log = get_logger(__name__)

BATCH_ROWS = 100_000
"""Entities per Arrow batch read from DuckDB and handed to the online store."""

RowsProgress = Callable[[str, int], None]
"""``progress(view_name, rows_written_so_far)``."""


@dataclass(frozen=True)
class ViewOutcome:
    """What one view's materialization did."""

    view: str
    start: datetime
    end: datetime
    rows: int
    stale: int
    seconds: float
    skipped: bool = False


def _query(view: FeatureView, root: Path) -> ViewQuery | None:
    source = view.source.batch
    files = source_files(source, root)
    if not files:
        return None
    return ViewQuery(view.name, tuple(str(f) for f in files), tuple(view.join_keys), source.timestamp_field,
                     source.created_timestamp_column, tuple(view.feature_names), None)


def _batch(view: FeatureView, table: pa.Table) -> WriteBatch:
    values = pa.table({f.name: table.column(f.name).cast(f.dtype.to_arrow()) for f in view.features})
    created = table.column(CR).to_numpy().astype(np.int64, copy=True)
    created[created == MIN_US] = NO_CREATED
    return WriteBatch(view_schema(view), canonical_keys(table.select(list(view.join_keys))),
                      table.column(TS).to_numpy().astype(np.int64), created, values)


def materialize_view(
    connect: Callable[[], object], online: OnlineStore, view: FeatureView, root: Path, start: datetime, end: datetime,
    *, batch_rows: int = BATCH_ROWS, progress: RowsProgress | None = None,
) -> ViewOutcome:
    """Write the latest row per entity with ``start <= event < end`` of ``view`` online, guarded."""
    started = time.perf_counter()
    query = _query(view, root)
    result = WriteResult()
    if query is not None:
        for table in iter_latest_rows(connect, query, epoch_us(start), epoch_us(end), batch_rows):  # type: ignore[arg-type]
            result += online.write([_batch(view, table)])
            if progress:
                progress(view.name, result.written + result.stale)
    return ViewOutcome(view.name, to_utc(start), to_utc(end), result.written, result.stale,
                       time.perf_counter() - started)


def select_views(views: dict[str, FeatureView], names: list[str] | None) -> list[FeatureView]:
    """The online views to materialize: all of them, or the named ones (which must exist and be online)."""
    if names is None:
        return [v for v in views.values() if v.online]
    chosen = []
    for name in names:
        if name not in views:
            raise RetrievalError(f"cannot materialize unknown feature view {name!r}; known: {', '.join(sorted(views))}")
        if not views[name].online:
            raise RetrievalError(f"feature view {name!r} has online=False; it is never materialized")
        chosen.append(views[name])
    return chosen


def run(
    *, connect: Callable[[], object], online: OnlineStore, registry: Registry, views: list[FeatureView], root: Path,
    end: datetime, start: datetime | None = None, progress: RowsProgress | None = None,
) -> list[ViewOutcome]:
    """Materialize ``views`` over [start, end), or incrementally from each watermark when ``start`` is None.

    Each view is independent: a failure is recorded, the other views still run, and the
    MaterializationError raised at the end names every failed view. Incremental runs move a view's
    watermark to ``end`` only after its rows were all written.
    """
    end = to_utc(end)
    watermarks = registry.watermarks() if start is None else {}
    outcomes: list[ViewOutcome] = []
    failures: list[str] = []
    for view in views:
        if start is not None:
            view_start = to_utc(start)
        elif view.name in watermarks:
            view_start = watermarks[view.name]
        elif view.ttl is not None:
            view_start = end - view.ttl
        else:
            query = _query(view, root)
            first = earliest_event_us(connect, query) if query else None  # type: ignore[arg-type]
            view_start = from_epoch_us(first) if first is not None else end
        if view_start >= end:
            outcomes.append(ViewOutcome(view.name, view_start, end, 0, 0, 0.0, skipped=True))
            continue
        began = datetime.now(UTC)
        try:
            outcome = materialize_view(connect, online, view, root, view_start, end, progress=progress)
        except Exception as exc:
            log.error("materializing %s [%s, %s) failed: %s", view.name, view_start, end, exc)
            registry.record_run(MaterializationRun(view.name, view_start, end, 0, 0, "failed", f"{type(exc).__name__}: {exc}",
                                                   began, datetime.now(UTC)))
            failures.append(f"{view.name}: {type(exc).__name__}: {exc}")
            continue
        if start is None:
            registry.set_watermark(view.name, end)
        registry.record_run(MaterializationRun(view.name, view_start, end, outcome.rows, outcome.stale, "success", None,
                                               began, datetime.now(UTC)))
        log.info("materialized %s [%s, %s): %d rows, %d stale, %.2fs", view.name, view_start, end, outcome.rows,
                 outcome.stale, outcome.seconds)
        outcomes.append(outcome)
    if failures:
        raise MaterializationError(
            "materialization failed for " + "; ".join(failures) + " (their watermarks were not moved; re-run to retry)"
        )
    return outcomes
