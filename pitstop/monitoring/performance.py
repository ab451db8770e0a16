"""Model performance from delayed labels: join labels to logged predictions, then a metric per window and version.

Two ways to join:

* by id: the labels carry ``request_id`` (and ``row`` or the entity keys when a request scored
  several entities); each label meets the prediction logged under that id;
* by time: the labels carry the entity keys and ``event_timestamp`` (when the outcome was known);
  each label meets the latest prediction for those keys at or before that time (the point-in-time
  rule of training sets), optionally no older than ``tolerance``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from pitstop.errors import PitstopError

__all__ = ["JoinMode", "join_labels", "metric_table", "metrics_for"]

JoinMode = Literal["id", "time"]
METRICS = ("auc", "accuracy", "log_loss", "rmse", "mae")


class LabelError(PitstopError):
    """The labels table cannot be joined to the prediction log (a missing column, a wrong type)."""


def join_labels(log: pa.Table, labels: pa.Table, *, keys: Sequence[str], label_column: str = "label",
                mode: JoinMode | None = None, tolerance: timedelta | None = None) -> pd.DataFrame:
    """Logged predictions with their labels: columns ``event_timestamp, version, prediction, label``.

    Args:
        log: prediction-log rows (``request_id, row, event_timestamp, version, prediction`` and the keys).
        labels: the delayed labels.
        keys: the model's entity key columns.
        label_column: the labels' outcome column.
        mode: ``id`` or ``time``; default: ``id`` when the labels have ``request_id``.
        tolerance: with ``time``, the oldest prediction a label may meet.

    Raises:
        LabelError: a column the join needs is missing.
    """
    import duckdb

    if label_column not in labels.column_names:
        raise LabelError(f"the labels have no column {label_column!r} (their columns: {', '.join(labels.column_names)}); "
                         "pass the outcome column with --label-column")
    if "prediction" not in log.column_names:
        raise LabelError("the logged predictions are not numbers (column prediction_json); performance metrics "
                         "need one number per prediction")
    mode = mode or ("id" if "request_id" in labels.column_names else "time")
    con = duckdb.connect()
    con.register("log", log)
    con.register("labels", labels.rename_columns(["__label" if c == label_column else c for c in labels.column_names]))
    if mode == "id":
        if "request_id" not in labels.column_names:
            raise LabelError("joining labels by id needs a request_id column in the labels")
        extra = [c for c in ("row", *keys) if c in labels.column_names and c in log.column_names]
        on = " AND ".join(f'p."{c}" = l."{c}"' for c in ("request_id", *extra))
        sql = f"SELECT p.event_timestamp, p.version, p.prediction, l.__label AS label FROM labels l JOIN log p ON {on}"
    else:
        missing = [c for c in (*keys, "event_timestamp") if c not in labels.column_names]
        if missing:
            raise LabelError(f"joining labels by time needs the entity keys and event_timestamp; the labels lack "
                             f"{', '.join(missing)} (or give request_id to join by id)")
        on = " AND ".join(f'p."{c}" = l."{c}"' for c in keys)
        window = ""
        if tolerance is not None:
            window = f" WHERE l.event_timestamp - p.event_timestamp <= INTERVAL '{int(tolerance.total_seconds())} seconds'"
        sql = (f"SELECT p.event_timestamp, p.version, p.prediction, l.__label AS label FROM labels l "
               f"ASOF JOIN log p ON {on} AND l.event_timestamp >= p.event_timestamp{window}")
    try:
        frame = con.execute(sql).df()
    except duckdb.Error as exc:
        raise LabelError(f"cannot join the labels to the prediction log: {exc}") from exc
    finally:
        con.close()
    return frame


def _is_binary(labels: np.ndarray) -> bool:
    return bool(len(labels)) and set(np.unique(labels).tolist()) <= {0, 1}


def default_metrics(predictions: np.ndarray, labels: np.ndarray) -> tuple[str, ...]:
    """AUC, accuracy and log loss for 0/1 labels scored in [0, 1]; accuracy for class labels; else RMSE and MAE."""
    predictions, labels = predictions.astype(float), labels.astype(float)
    if _is_binary(labels) and np.all((predictions >= 0) & (predictions <= 1)):
        return ("auc", "accuracy", "log_loss")
    if np.all(labels == np.round(labels)) and np.all(predictions == np.round(predictions)):
        return ("accuracy",)
    return ("rmse", "mae")


def metrics_for(predictions: np.ndarray, labels: np.ndarray, names: Sequence[str] | None = None) -> dict[str, float]:
    """The metrics of one group: by default AUC, accuracy and log loss for 0/1 labels with scores in [0, 1],
    accuracy for other integer labels, RMSE and MAE otherwise."""
    from scipy.stats import rankdata

    predictions, labels = predictions.astype(float), labels.astype(float)
    names = names or default_metrics(predictions, labels)
    out: dict[str, float] = {}
    for name in names:
        if name not in METRICS:
            raise LabelError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
        if name == "auc":
            positives = labels == 1
            n_pos, n_neg = int(positives.sum()), int((~positives).sum())
            if n_pos == 0 or n_neg == 0:
                out[name] = math.nan
                continue
            ranks = rankdata(predictions)
            out[name] = float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
        elif name == "accuracy":
            guess = (predictions >= 0.5).astype(float) if _is_binary(labels) else np.round(predictions)
            out[name] = float(np.mean(guess == labels))
        elif name == "log_loss":
            p = np.clip(predictions, 1e-15, 1 - 1e-15)
            out[name] = float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
        elif name == "rmse":
            out[name] = float(np.sqrt(np.mean((predictions - labels) ** 2)))
        else:
            out[name] = float(np.mean(np.abs(predictions - labels)))
    return out


def metric_table(joined: pd.DataFrame, *, window: timedelta | None, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (version, window start): labelled rows and each metric. ``window=None``: one window."""
    if joined.empty:
        return pd.DataFrame(columns=["version", "window_start", "rows"])
    frame = joined.dropna(subset=["prediction", "label"]).copy()
    if window is not None:
        step = pd.Timedelta(window)
        frame["window_start"] = frame["event_timestamp"].dt.floor(step)
    else:
        frame["window_start"] = frame["event_timestamp"].min()
    names = metrics or default_metrics(frame["prediction"].to_numpy(), frame["label"].to_numpy())
    rows: list[dict[str, Any]] = []
    for (version, start), group in frame.groupby(["version", "window_start"], sort=True):
        values = metrics_for(group["prediction"].to_numpy(), group["label"].to_numpy(), names)
        rows.append({"version": int(version), "window_start": start, "rows": len(group), **values})
    return pd.DataFrame(rows)
