"""Loggers under the ``pitstop.`` namespace. The library never configures logging itself."""

from __future__ import annotations

import json as json_module
import logging
from datetime import UTC, datetime

__all__ = ["JsonFormatter", "configure_logging", "get_logger"]


def get_logger(name: str) -> logging.Logger:
    """Return the logger for module ``name``, always under the ``pitstop`` namespace."""
    return logging.getLogger(name if name.startswith("pitstop") else f"pitstop.{name}")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the traceback if any.

    Values are encoded by ``json``, so quotes, backslashes and newlines in a message stay valid JSON.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json_module.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    """Configure the root ``pitstop`` logger; called only by entry points (CLI, services)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if json else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("pitstop")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
