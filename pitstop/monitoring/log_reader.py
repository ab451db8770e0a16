"""Reading and pruning the prediction log (one Delta table per model)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from pitstop.errors import NotFoundError, OfflineStoreError
from pitstop.extras import require_extra
from pitstop.monitoring.prediction_log import TIME_COLUMN, log_location
from pitstop.redaction import redact_text
from pitstop.settings import MonitoringSettings
from pitstop.storage import is_remote
from pitstop.timeutil import to_utc

__all__ = ["log_models", "prune_log", "read_log"]


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


def read_log(settings: MonitoringSettings, offline_root: Path | str, model: str, *,
             since: datetime | None = None, until: datetime | None = None, version: int | None = None,
             columns: list[str] | None = None) -> pa.Table:
    """Logged rows of ``model`` with ``since <= event_timestamp < until`` (of ``version`` only, if given).

    Raises:
        NotFoundError: the model has no log table yet.
        OfflineStoreError: the table cannot be read.
    """
    import pyarrow.dataset as ds

    location = log_location(settings, offline_root, model)
    dataset = _table(location, model).to_pyarrow_dataset()
    condition = None
    kind = pa.timestamp("us", tz="UTC")
    for op, bound in ((">=", since), ("<", until)):
        if bound is None:
            continue
        value = pa.scalar(to_utc(bound), kind)
        term = ds.field(TIME_COLUMN) >= value if op == ">=" else ds.field(TIME_COLUMN) < value
        condition = term if condition is None else condition & term
    if version is not None:
        term = ds.field("version") == version
        condition = term if condition is None else condition & term
    if columns is not None:
        columns = [c for c in columns if c in dataset.schema.names]
    try:
        return dataset.to_table(columns=columns, filter=condition)
    except Exception as exc:
        raise OfflineStoreError(f"cannot read the prediction log {location}: {redact_text(str(exc))}") from exc


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
