"""Prometheus metrics of the scoring service.

Under gunicorn, ``pitstop serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before any
worker starts, so ``/metrics`` on any worker reports the sum over all workers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_SECONDS = Histogram(
    "pitstop_http_request_duration_seconds", "Time to answer a request, by endpoint and status code.",
    ["endpoint", "method", "status"],
    buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
PREDICTIONS = Counter("pitstop_predictions_total", "Predictions made, by model and version.", ["model", "version"])
FEATURE_VALUES = Counter("pitstop_feature_values_total", "Feature values served, by status.", ["status"])
MODEL_SWAPS = Counter("pitstop_model_swaps_total", "Hot swaps of a served alias to a new version.", ["model"])

LOG_DROPPED = Counter("pitstop_prediction_log_dropped_total",
                      "Prediction-log rows dropped because a worker's buffer was full (or writes kept failing).")
LOG_WRITTEN = Counter("pitstop_prediction_log_rows_total", "Prediction-log rows written to the log tables.")
LOG_ERRORS = Counter("pitstop_prediction_log_write_errors_total", "Failed prediction-log writes (retried).")
LOG_LAG = Gauge("pitstop_prediction_log_lag_seconds", "Age of the oldest prediction-log row not yet written.",
                multiprocess_mode="max")
LOG_WAITING = Gauge("pitstop_prediction_log_buffered_rows", "Prediction-log rows waiting in the workers' buffers.",
                    multiprocess_mode="livesum")

ENDPOINTS = ("/features", "/predict", "/models", "/health", "/ready", "/metrics")


def endpoint_label(path: str) -> str:
    """A bounded label for a request path (path parameters are not labels)."""
    if path in ENDPOINTS:
        return path
    if path.startswith("/push/"):
        return "/push/{source}"
    from pitstop.serving.route_scopes import template_of

    return template_of(path) or "other"


class TimingMiddleware:
    """Pure ASGI middleware observing every HTTP request's duration (cheaper than BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            REQUEST_SECONDS.labels(endpoint_label(scope["path"]), scope["method"], str(status[0])).observe(
                time.perf_counter() - start)


def render(extra: Collector | None = None) -> tuple[bytes, str]:
    """The metrics in Prometheus text format, summed over workers in multiprocess mode, plus ``extra``'s."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        data = generate_latest(registry)
    else:
        data = generate_latest(REGISTRY)
    if extra is not None:
        own = CollectorRegistry()
        own.register(extra)
        data += generate_latest(own)
    return data, CONTENT_TYPE_LATEST
