"""JSON log lines stay valid JSON whatever the message holds."""

from __future__ import annotations

import json
import logging
import sys

from pitstop.log import JsonFormatter


def test_quotes_backslashes_newlines_and_tracebacks_stay_valid_json() -> None:
    message = 'view "stats" at C:\\data\nline two'
    record = logging.LogRecord("pitstop.x", logging.WARNING, __file__, 1, "%s", (message,), None)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == message and entry["level"] == "WARNING" and entry["logger"] == "pitstop.x"
    assert entry["time"].endswith("+00:00")
    try:
        raise ValueError('bad "value"')
    except ValueError:
        record = logging.LogRecord("pitstop.x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert 'ValueError: bad "value"' in entry["exception"]
