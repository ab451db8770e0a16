"""What /features and /predict compute: response bodies, the missing-feature policy, one model call per batch."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from pitstop.online.reader import PRESENT, OnlineResponse
from pitstop.serving.errors import ApiError
from pitstop.serving.metrics import FEATURE_VALUES
from pitstop.serving.model_cache import ServedModel


def features_body(response: OnlineResponse) -> dict[str, Any]:
    """Feast's response shape: metadata plus one result per column (entity keys first)."""
    # naive UTC datetimes, built in bulk, which orjson writes (OPT_NAIVE_UTC | OPT_UTC_Z: "...Z") several
    # times faster than aware ones
    stamps = response.naive_event_timestamps()
    results = [
        {"values": response.values[name], "statuses": response.statuses[name], "event_timestamps": stamps[name]}
        for name in response.feature_names
    ]
    count_statuses(response, response.feature_names)
    return {"metadata": {"feature_names": response.feature_names}, "results": results}


def count_statuses(response: OnlineResponse, names: list[str]) -> None:
    """Add the statuses of ``names`` to the metrics (features of one view share one status list: count it once)."""
    lists: dict[int, tuple[list[str], int]] = {}
    for name in names:
        column = response.statuses[name]
        seen = lists.get(id(column))
        lists[id(column)] = (column, seen[1] + 1 if seen else 1)
    counts: Counter[str] = Counter()
    for column, times in lists.values():
        for status, count in Counter(column).items():
            counts[status] += count * times
    for status, count in counts.items():
        FEATURE_VALUES.labels(status).inc(count)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def model_inputs(served: ServedModel, response: OnlineResponse, keys: list[str]) -> pd.DataFrame | np.ndarray:
    """The model's input frame in signature order, with declared defaults filled in.

    Raises:
        ApiError: 422 naming the entity and feature when a value is missing, expired or null and the
            model's registration declares no default for it.
    """
    defaults = served.version.serving.defaults
    columns: dict[str, list[Any]] = {}
    for col in served.columns:
        values, statuses = response.values[col], response.statuses[col]
        bad = [i for i, (v, s) in enumerate(zip(values, statuses, strict=True)) if s != PRESENT or _missing(v)]
        if bad:
            if col not in defaults:
                i = bad[0]
                entity = ", ".join(f"{k}={response.values[k][i]!r}" for k in keys)
                status = statuses[i] if statuses[i] != PRESENT else "NULL"
                mv = served.version
                more = f" (and {len(bad) - 1} more entities)" if len(bad) > 1 else ""
                raise ApiError(
                    422, "missing_feature",
                    f"feature {col!r} is {status} for entity {entity}{more}; "
                    f"model {mv.name!r} version {mv.version} declares no default for it, so it is not scored",
                    f"entities[{i}]",
                )
            values = list(values)
            for i in bad:
                values[i] = defaults[col]
        columns[col] = values
    try:  # all-numeric inputs (the usual case): one float64 block, far cheaper than a frame built column by column
        block = np.array([columns[c] for c in served.columns], dtype=np.float64).T
    except (TypeError, ValueError):
        return pd.DataFrame(columns, columns=served.columns)
    if served.model.accepts_array:
        return block
    return pd.DataFrame(block, columns=served.columns, copy=False)


def run_model(served: ServedModel, inputs: pd.DataFrame | np.ndarray) -> list[Any]:
    """One model call for the whole batch; returns plain JSON-able predictions in row order."""
    proba = served.version.serving.predict_method == "predict_proba"
    if isinstance(inputs, np.ndarray):
        out = served.model.predict_array(inputs, proba=proba)
    else:
        out = served.model.predict_proba(inputs) if proba else served.model.predict(inputs)
    if proba and out.ndim == 2 and out.shape[1] == 2:
        out = out[:, 1]
    if out.ndim > 1 and out.shape[-1] == 1:
        out = out.reshape(len(inputs))
    return np.asarray(out).tolist()
