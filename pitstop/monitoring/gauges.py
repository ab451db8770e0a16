"""Drift results as Prometheus gauges (for ``pitstop monitor run``'s endpoint and ``pitstop serve``'s /metrics)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["DriftCollector", "cached"]


class DriftCollector(Collector):
    """Yields the latest drift result of every model version as gauges, read from ``results()`` at each scrape."""

    def __init__(self, results: Callable[[], list[dict[str, Any]]]) -> None:
        self._results = results

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["model", "version", "feature"]
        score = GaugeMetricFamily("pitstop_feature_drift_score",
                                  "Effect size of the latest drift check: Wasserstein distance in reference "
                                  "standard deviations (numeric) or Jensen-Shannon distance (categorical).", labels=labels)
        p_value = GaugeMetricFamily("pitstop_feature_drift_p_value",
                                    "Corrected p-value of the latest drift test of each feature.", labels=labels)
        drifted = GaugeMetricFamily("pitstop_feature_drifted",
                                    "1 when the latest check flagged the feature (test and effect size agree).",
                                    labels=labels)
        mv_p = GaugeMetricFamily("pitstop_multivariate_drift_p_value",
                                 "p-value of the latest MMD test across a version's numeric features.",
                                 labels=["model", "version"])
        mv_flag = GaugeMetricFamily("pitstop_multivariate_drifted", "1 when the latest MMD test flagged drift.",
                                    labels=["model", "version"])
        rows = GaugeMetricFamily("pitstop_drift_window_rows", "Logged rows in the latest drift check's window.",
                                 labels=["model", "version"])
        age = GaugeMetricFamily("pitstop_drift_check_age_seconds", "Seconds since the latest drift check.",
                                labels=["model", "version"])
        now = datetime.now(UTC)
        for result in self._results():
            model, version = str(result.get("model")), str(result.get("version"))
            for feature in result.get("features", []):
                key = [model, version, str(feature["feature"])]
                score.add_metric(key, float(feature["effect"]))
                p_value.add_metric(key, float(feature["p_adjusted"]))
                drifted.add_metric(key, 1.0 if feature["drifted"] else 0.0)
            multivariate = result.get("multivariate")
            if multivariate:
                mv_p.add_metric([model, version], float(multivariate["p_value"]))
                mv_flag.add_metric([model, version], 1.0 if multivariate["drifted"] else 0.0)
            rows.add_metric([model, version], float(result.get("current_rows", 0)))
            try:
                age.add_metric([model, version], (now - datetime.fromisoformat(result["at"])).total_seconds())
            except (KeyError, TypeError, ValueError):
                pass
        yield from (score, p_value, drifted, mv_p, mv_flag, rows, age)


def cached(read: Callable[[], list[dict[str, Any]]], seconds: float) -> Callable[[], list[dict[str, Any]]]:
    """``read`` called at most once per ``seconds`` (scrapes are frequent, results change per run)."""
    state: dict[str, Any] = {"at": -1e18, "value": []}
    lock = threading.Lock()

    def get() -> list[dict[str, Any]]:
        with lock:
            if time.monotonic() - state["at"] >= seconds:
                try:
                    state["value"] = read()
                except Exception:  # a scrape must answer even when the results cannot be read
                    state["value"] = []
                state["at"] = time.monotonic()
            return list(state["value"])

    return get
