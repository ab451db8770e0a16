"""The HTTP scoring service: /features, /predict, /push/{source}, /models, /health, /ready, /metrics."""

from pitstop.serving.app import create_app

__all__ = ["create_app"]
