"""Materialization: copy the latest offline row per entity in [start, end) into the online store.

Every write goes through the online store's event-time guard, so a re-run, an overlapping run or
a concurrent stream writer can never replace a newer value with an older one. Incremental runs
start each view at its watermark and move the watermark only after all of that view's rows were
written, so a run killed at any moment is simply repeated next time.

Self-healing (see docs/online.md): a watermark only counts for the online store it was written
against. Each incremental run reads (creating when missing) the store's generation marker before
it writes anything and records it with every watermark it moves; a watermark of another
generation (store emptied, replaced, failed over), one without a generation (older pitstop) and
one that ``apply`` reset (view changed) is void, and the view is refilled from ``end - ttl`` (or
its earliest data) as on a first run. Incremental windows start ``lookback`` before the watermark
so rows that land late still arrive; the write guard makes the overlap harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pitstop.boundary import latest_us
from pitstop.definitions import FeatureView
from pitstop.errors import MaterializationError, NotFoundError, RetrievalError
from pitstop.log import get_logger
from pitstop.offline.base import OfflineEngine
from pitstop.offline.source_check import source_files
from pitstop.offline.view_query import CR, MIN_US, TS, ViewQuery
from pitstop.online.base import NO_CREATED, OnlineStore, WriteBatch, WriteResult
from pitstop.online.keys_canonical import canonical_keys
from pitstop.online.view_schema import view_schema
from pitstop.registry.base import MaterializationRun, Registry, Watermark
from pitstop.timeutil import epoch_us, from_epoch_us, to_utc

log = get_logger(__name__)

BATCH_ROWS = 100_000
"""Entities per Arrow batch read from DuckDB and handed to the online store."""

RowsProgress = Callable[[str, int], None]
"""``progress(view_name, rows_written_so_far)``."""

INCREMENTAL = "incremental"
FIRST_RUN = "first run"
RANGE = "range"
"""An explicit ``materialize START END`` (watermarks untouched)."""
REFILL_GENERATION = "refill: store generation changed"
REFILL_UNKNOWN = "refill: store generation unknown"
"""The watermark was written by a pitstop that did not record the store generation."""


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
    reason: str = INCREMENTAL
    """Why this window: ``incremental``, ``first run``, ``refill: ...`` or ``range``."""
    future: int = 0
    """Rows not written because their event or created time is beyond now plus
    ``online_store.max_future_seconds`` (they would win every later write)."""

    @property
    def refill(self) -> bool:
        """Whether the view was refilled because its watermark was void."""
        return self.reason.startswith("refill")


def _query(view: FeatureView, root: Path | str) -> ViewQuery | None:
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


def _drop_future(view: FeatureView, table: pa.Table, max_future_seconds: float | None) -> tuple[pa.Table, int]:
    """``table`` without rows whose event or created time is beyond now plus the bound; and how many there were."""
    latest = latest_us(max_future_seconds)
    ahead = pc.or_(pc.greater(table.column(TS), latest), pc.greater(table.column(CR), latest))
    future = pc.sum(pc.cast(ahead, pa.int64())).as_py() or 0
    if future:
        log.warning("materializing %s: skipped %d rows with an event or created time beyond now plus "
                    "online_store.max_future_seconds (%s s); fix their times in the source", view.name, future,
                    max_future_seconds)
        table = table.filter(pc.invert(ahead))
    return table, future


def materialize_view(
    engine: OfflineEngine, online: OnlineStore, view: FeatureView, root: Path | str, start: datetime, end: datetime,
    *, batch_rows: int = BATCH_ROWS, progress: RowsProgress | None = None, max_future_seconds: float | None = 300.0,
) -> ViewOutcome:
    """Write the latest row per entity with ``start <= event < end`` of ``view`` online, guarded.

    Rows timed beyond now plus ``max_future_seconds`` are skipped and counted (``ViewOutcome.future``).
    """
    started = time.perf_counter()
    query = _query(view, root)
    result = WriteResult()
    future = 0
    if query is not None:
        for table in engine.latest_rows(query, epoch_us(start), epoch_us(end), batch_rows):
            table, ahead = _drop_future(view, table, max_future_seconds)
            future += ahead
            if table.num_rows:
                result += online.write([_batch(view, table)])
            if progress:
                progress(view.name, result.written + result.stale)
    return ViewOutcome(view.name, to_utc(start), to_utc(end), result.written, result.stale,
                       time.perf_counter() - started, future=future)


def select_views(views: dict[str, FeatureView], names: list[str] | None) -> list[FeatureView]:
    """The online views to materialize: all of them, or the named ones (which must exist and be online)."""
    if names is None:
        return [v for v in views.values() if v.online]
    chosen = []
    for name in names:
        if name not in views:
            raise NotFoundError(f"cannot materialize unknown feature view {name!r}; known: {', '.join(sorted(views))}")
        if not views[name].online:
            raise RetrievalError(f"feature view {name!r} has online=False; it is never materialized")
        chosen.append(views[name])
    return chosen


def _first_start(engine: OfflineEngine, view: FeatureView, root: Path | str, end: datetime) -> datetime:
    """Where a first run (or a refill) starts: ``end - ttl``, or the view's earliest data without a ttl."""
    if view.ttl is not None:
        return end - view.ttl
    query = _query(view, root)
    first = engine.earliest_event_us(query) if query else None
    return from_epoch_us(first) if first is not None else end


def incremental_start(view: FeatureView, watermark: datetime, end: datetime, lookback: timedelta) -> datetime:
    """``lookback`` before ``watermark``, but never further back than ``end - ttl`` (older rows are expired)."""
    start = watermark - lookback
    if view.ttl is not None:
        start = max(start, min(watermark, end - view.ttl))
    return start


def plan_window(
    view: FeatureView, state: Watermark | None, generation: str | None, end: datetime, lookback: timedelta,
    first_start: Callable[[], datetime],
) -> tuple[datetime | None, str]:
    """An incremental run's start for ``view`` and why (None: nothing to do, the watermark is at ``end``).

    ``generation`` is the online store's marker now; ``first_start()`` where a first run starts.
    """
    if state is None:
        return first_start(), FIRST_RUN
    if state.reset_reason is not None or state.value is None:
        return first_start(), f"refill: {state.reset_reason or 'watermark reset'}"
    if state.generation is None:
        return first_start(), REFILL_UNKNOWN
    if state.generation != generation:
        return first_start(), REFILL_GENERATION
    if state.value >= end:
        return None, INCREMENTAL
    return incremental_start(view, state.value, end, lookback), INCREMENTAL


def run(
    *, engine: OfflineEngine, online: OnlineStore, registry: Registry, views: list[FeatureView], root: Path | str,
    end: datetime, start: datetime | None = None, progress: RowsProgress | None = None,
    lookback: timedelta = timedelta(0), definitions_version: int | None = None,
    max_future_seconds: float | None = 300.0,
) -> list[ViewOutcome]:
    """Materialize ``views`` over [start, end), or incrementally from each watermark when ``start`` is None.

    Each view is independent: a failure is recorded, the other views still run, and the
    MaterializationError raised at the end names every failed view. Incremental runs move a view's
    watermark to ``end`` only after its rows were all written, recording the online store's
    generation with it, and only if ``apply`` did not reset it meanwhile.

    Args:
        lookback: incremental windows start this long before the watermark (late-landing rows).
        definitions_version: the registry version ``views`` were read at; an incremental run
            refuses to start when an apply happened since (it would refill with old definitions).
        max_future_seconds: rows timed beyond now plus this are skipped (``online_store.max_future_seconds``).

    Raises:
        MaterializationError: some views failed, or the definitions changed as the run started.
        OnlineStoreError: the online store's generation marker cannot be read or created.
    """
    end = to_utc(end)
    states: dict[str, Watermark] = {}
    generation: str | None = None
    if start is None:
        states = registry.watermark_states()
        if definitions_version is not None and registry.version() != definitions_version:
            raise MaterializationError("the definitions changed (an apply) while this materialization started; "
                                       "nothing was written: re-run it")
        # Created before any write: a crash after the writes but before the watermark moves leaves a
        # watermark of the old generation, so the next run refills again (never the opposite).
        generation = online.generation(create=True)
    outcomes: list[ViewOutcome] = []
    failures: list[str] = []
    for view in views:
        state = states.get(view.name)
        if start is not None:
            view_start, reason = to_utc(start), RANGE
        else:
            planned, reason = plan_window(view, state, generation, end, lookback,
                                          partial(_first_start, engine, view, root, end))
            view_start = end if planned is None else planned
        if view_start >= end:
            outcomes.append(ViewOutcome(view.name, view_start, end, 0, 0, 0.0, skipped=True, reason=reason))
            continue
        if reason.startswith("refill"):
            log.warning("refilling %s from %s (%s)", view.name, view_start, reason)
        began = datetime.now(UTC)
        try:
            outcome = materialize_view(engine, online, view, root, view_start, end, progress=progress,
                                       max_future_seconds=max_future_seconds)
        except Exception as exc:
            log.error("materializing %s [%s, %s) failed: %s", view.name, view_start, end, exc)
            registry.record_run(MaterializationRun(view.name, view_start, end, 0, 0, "failed", f"{type(exc).__name__}: {exc}",
                                                   began, datetime.now(UTC), reason))
            failures.append(f"{view.name}: {type(exc).__name__}: {exc}")
            continue
        outcome = replace(outcome, reason=reason)
        if start is None and not registry.set_watermark(view.name, end, generation=generation,
                                                        resets=state.resets if state else 0):
            log.warning("feature view %s changed (apply) while it was materialized; its watermark stays void "
                        "and the next incremental run refills it", view.name)
        registry.record_run(MaterializationRun(view.name, view_start, end, outcome.rows, outcome.stale, "success", None,
                                               began, datetime.now(UTC), reason))
        log.info("materialized %s [%s, %s) (%s): %d rows, %d stale, %.2fs", view.name, view_start, end, reason,
                 outcome.rows, outcome.stale, outcome.seconds)
        outcomes.append(outcome)
    if failures:
        raise MaterializationError(
            "materialization failed for " + "; ".join(failures) + " (their watermarks were not moved; re-run to retry)"
        )
    return outcomes
