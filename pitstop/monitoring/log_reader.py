"""Reading and pruning the prediction log (one Delta table per model)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from pitstop.errors import NotFoundError, OfflineStoreError
from pitstop.extras import require_extra
from pitstop.monitoring.drift import DatasetColumns
from pitstop.monitoring.prediction_log import TIME_COLUMN, log_location
from pitstop.redaction import redact_text
from pitstop.settings import MonitoringSettings
from pitstop.storage import is_remote
from pitstop.timeutil import to_utc

__all__ = ["compact_log", "log_columns", "log_models", "prune_log", "read_log"]


def _table(location: str, model: str) -> Any:
    require_extra("delta", "reading the prediction log", "deltalake")
    from deltalake import DeltaTable

    from pitstop.offline.delta_append import delta_storage_options

    try:
        return DeltaTable(location, storage_options=delta_storage_options(location))
    except Exception as exc:  # delta-rs: TableNotFoundError and plain errors
        if "no log files" in str(exc).lower() or "not a delta table" in str(exc).lower() or \
                type(exc).__name__ == "TableNotFoundError":
            raise NotFoundError(f"model {model!r} has no prediction log yet at {location}: serve some /predict "
                                "requests first (monitoring.log_enabled must be true)") from exc
        raise OfflineStoreError(f"cannot read the prediction log {location}: {redact_text(str(exc))}") from exc


def _condition(since: datetime | None, until: datetime | None, version: int | None) -> Any:
    import pyarrow.dataset as ds

    condition = None
    kind = pa.timestamp("us", tz="UTC")
    terms = []
    if since is not None:
        terms.append(ds.field(TIME_COLUMN) >= pa.scalar(to_utc(since), kind))
    if until is not None:
        terms.append(ds.field(TIME_COLUMN) < pa.scalar(to_utc(until), kind))
    if version is not None:
        terms.append(ds.field("version") == version)
    for term in terms:
        condition = term if condition is None else condition & term
    return condition


def read_log(settings: MonitoringSettings, offline_root: Path | str, model: str, *,
             since: datetime | None = None, until: datetime | None = None, version: int | None = None,
             columns: list[str] | None = None) -> pa.Table:
    """Logged rows of ``model`` with ``since <= event_timestamp < until`` (of ``version`` only, if given).

    Raises:
        NotFoundError: the model has no log table yet.
        OfflineStoreError: the table cannot be read.
    """
    location = log_location(settings, offline_root, model)
    dataset = _table(location, model).to_pyarrow_dataset()
    if columns is not None:
        columns = [c for c in columns if c in dataset.schema.names]
    try:
        return dataset.to_table(columns=columns, filter=_condition(since, until, version))
    except Exception as exc:
        raise OfflineStoreError(f"cannot read the prediction log {location}: {redact_text(str(exc))}") from exc


def log_columns(settings: MonitoringSettings, offline_root: Path | str, model: str, *,
                since: datetime | None = None, until: datetime | None = None,
                version: int | None = None) -> DatasetColumns:
    """The same window as ``read_log``, decoded one column at a time (drift checks of big windows)."""
    location = log_location(settings, offline_root, model)
    return DatasetColumns(_table(location, model).to_pyarrow_dataset(), _condition(since, until, version))


def log_models(settings: MonitoringSettings, offline_root: Path | str) -> list[str]:
    """Models that have a local prediction-log table (object-storage logs are not listed)."""
    base = Path(str(log_location(settings, offline_root, "x"))[:-2])
    if is_remote(str(base)) or not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / "_delta_log").is_dir())


def prune_log(settings: MonitoringSettings, offline_root: Path | str, model: str, *,
              now: datetime, retention: timedelta) -> int:
    """Delete ``model``'s logged rows older than ``retention`` (one Delta commit); returns how many.

    The files they lived in go at the next ``vacuum`` (``pitstop compact``).
    """
    location = log_location(settings, offline_root, model)
    table = _table(location, model)
    cutoff = to_utc(now - retention).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        metrics = table.delete(f"{TIME_COLUMN} < '{cutoff}'")
    except Exception as exc:
        raise OfflineStoreError(f"cannot prune the prediction log {location}: {redact_text(str(exc))}") from exc
    return int(metrics.get("num_deleted_rows", 0) or 0)


def compact_log(settings: MonitoringSettings, offline_root: Path | str, model: str, *, retention_hours: float) -> int:
    """Merge ``model``'s small log files (each flush writes one per worker) and vacuum unused ones; files removed."""
    location = log_location(settings, offline_root, model)
    table = _table(location, model)
    try:
        before = len(table.file_uris())
        if before > 1:
            table.optimize.compact()
        table = _table(location, model)
        table.vacuum(retention_hours=int(retention_hours), enforce_retention_duration=False, dry_run=False)
        return before - len(table.file_uris())
    except Exception as exc:
        raise OfflineStoreError(f"cannot compact the prediction log {location}: {redact_text(str(exc))}") from exc
