"""Loggers under the ``pitstop.`` namespace. The library never configures logging itself."""

from __future__ import annotations

import logging


def get_logger(name: str) -> logging.Logger:
    """Return the logger for module ``name``, always under the ``pitstop`` namespace."""
    return logging.getLogger(name if name.startswith("pitstop") else f"pitstop.{name}")


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    """Configure the root ``pitstop`` logger; called only by entry points (CLI, services)."""
    handler = logging.StreamHandler()
    if json:
        fmt = '{"time": "%(asctime)s", "level": "%(levelname)s", "logger": "%(name)s", "message": "%(message)s"}'
    else:
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger("pitstop")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
