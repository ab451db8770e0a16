"""Training/serving skew: the values a model was served online against what the offline join gives for the same rows.

For a sample of logged rows, the offline point-in-time join is run with each row's entity keys,
request data and logging time as the entity row; both sides are compared per feature. A row counts
as a mismatch when one side has a value and the other none, or when the values differ (numbers by
more than a relative 1e-6, so float32 storage on one side does not count).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from pitstop.monitoring.prediction_log import STATUS_SUFFIX, TIME_COLUMN

__all__ = ["SKEW_COLUMNS", "compare_online_offline", "sample_rows"]

SKEW_COLUMNS = ["feature", "rows", "mismatched", "share", "online_only", "offline_only", "values_differ",
                "example"]


def sample_rows(log: pa.Table, size: int, seed: int = 0) -> pa.Table:
    """A uniform sample of at most ``size`` logged rows."""
    if log.num_rows <= size:
        return log
    rng = np.random.default_rng(seed)
    return log.take(pa.array(np.sort(rng.choice(log.num_rows, size, replace=False))))


def _present(values: pd.Series) -> np.ndarray:
    return ~values.isna().to_numpy()


def compare_online_offline(online: pd.DataFrame, offline: pd.DataFrame, features: Sequence[str],
                           keys: Sequence[str]) -> pd.DataFrame:
    """Per feature: rows compared, mismatches and their kinds, with one example. Rows align by position.

    ``online`` holds the logged values (and ``<feature>__status``); a value whose status is not
    ``PRESENT`` counts as absent (the model got a default or nothing).
    """
    rows = []
    for feature in features:
        if feature not in online.columns or feature not in offline.columns:
            continue
        served = online[feature].copy()
        status = online.get(feature + STATUS_SUFFIX)
        if status is not None:
            served[status.to_numpy() != "PRESENT"] = None
        truth = offline[feature].reset_index(drop=True)
        served = served.reset_index(drop=True)
        has_online, has_offline = _present(served), _present(truth)
        both = has_online & has_offline
        differ = np.zeros(len(served), dtype=bool)
        if both.any():
            a, b = served[both].to_numpy(), truth[both].to_numpy()
            try:
                fa, fb = a.astype(float), b.astype(float)
                unequal = ~np.isclose(fa, fb, rtol=1e-6, atol=0.0)
            except (TypeError, ValueError):
                unequal = np.array([str(x) != str(y) for x, y in zip(a, b, strict=True)])
            differ[np.flatnonzero(both)[unequal]] = True
        online_only = has_online & ~has_offline
        offline_only = has_offline & ~has_online
        bad = differ | online_only | offline_only
        example = ""
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            who = ", ".join(f"{k}={online[k].iloc[i]!r}" for k in keys if k in online.columns)
            at = online[TIME_COLUMN].iloc[i] if TIME_COLUMN in online.columns else ""
            example = f"{who} at {at}: online {served.iloc[i]!r}, offline {truth.iloc[i]!r}"
        n = len(served)
        rows.append({"feature": feature, "rows": n, "mismatched": int(bad.sum()),
                     "share": float(bad.sum() / n) if n else 0.0, "online_only": int(online_only.sum()),
                     "offline_only": int(offline_only.sum()), "values_differ": int(differ.sum()), "example": example})
    return pd.DataFrame(rows, columns=SKEW_COLUMNS)
