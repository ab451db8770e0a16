"""The HTTP scoring service: /features, /predict, /push/{source}, /models, /health, /ready, /metrics."""

from __future__ import annotations

from typing import Any

from pitstop.extras import require_extra

require_extra("serve", "the scoring service", "fastapi", "uvicorn", "orjson", "prometheus_client", "jwt")

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # lazy: `pitstop serve`'s master process must not import the metrics before it sets
    # PROMETHEUS_MULTIPROC_DIR, or their unlabelled values would stay per-process
    if name == "create_app":
        from pitstop.serving.app import create_app

        return create_app
    raise AttributeError(f"module 'pitstop.serving' has no attribute {name!r}")
