"""The HTTP scoring service: /features, /predict, /push/{source}, /models, /health, /ready, /metrics."""

from pitstop.extras import require_extra

require_extra("serve", "the scoring service", "fastapi", "uvicorn", "orjson", "prometheus_client", "jwt")

from pitstop.serving.app import create_app  # noqa: E402  (after the check, which names the extra to install)

__all__ = ["create_app"]
