"""Timestamps at the boundary: ISO-8601 text or numbers in a declared unit, inside a sane window.

Rules (the same for every writer and reader of user input):
  * Text is ISO-8601 (``2026-01-31T12:00:00Z``, ``2026-01-31 12:00:00+02:00``, ``2026-01-31``); a
    time without a zone is UTC. Words (``now``, ``today``, ``NaT``, ``""`` ...) are refused: pitstop
    never invents a time.
  * Numbers are epoch times in the declared unit (``timestamp_unit``: ``s`` by default, ``ms``,
    ``us`` or ``ns``); finer than a microsecond is truncated. NaN, infinities and booleans are refused.
  * Every time falls between 1900-01-01 and 2262-04-11T23:47:16.854775Z (the end of the
    nanosecond range that numpy and pandas can hold). A number outside it is reported with the
    year it would mean and, when another unit gives a plausible year, a hint to declare that unit:
    the unit is never guessed.
  * Writers (push, ingest, materialization) also refuse event and created times later than
    ``latest``: the writer's clock plus ``online_store.max_future_seconds``.

Pure stdlib; errors are ``ValueError`` whose text is the reason (callers add the field and row).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

__all__ = ["MAX_US", "MIN_US", "TimeUnit", "UNIT_US", "latest_us", "shown", "timestamp_us", "window_reason"]

TimeUnit = Literal["s", "ms", "us", "ns"]
"""The unit of numeric timestamps."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_US = -2_208_988_800 * 1_000_000
"""1900-01-01T00:00:00Z in epoch microseconds: the earliest accepted time."""
MAX_US = (2**63 - 1) // 1000
"""2262-04-11T23:47:16.854775Z in epoch microseconds: the latest accepted time (numpy's ns limit)."""
UNIT_US: dict[str, float] = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
_US_PER_YEAR = 365.2425 * 86_400 * 1_000_000
_PLAUSIBLE_YEARS = (1990, 2100)
"""A unit whose reading falls in these years is suggested when the declared unit gives a wild year."""
WORDS = frozenset({"", "nat", "nan", "none", "null", "now", "today", "tomorrow", "yesterday"})
"""Texts refused as times (compared stripped and lower-cased); pandas would turn some into the clock."""
MAX_TEXT = 64
"""Longest time text parsed; anything longer is refused without parsing."""


def shown(value: Any, limit: int = 100) -> str:
    """A short excerpt of ``value`` for an error message: its repr, at most ``limit`` characters."""
    if isinstance(value, str | bytes) and len(value) > limit:
        return repr(value[:limit])[: limit - 3] + "..."
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def latest_us(max_future_seconds: float | None, now_us: int | None = None) -> int:
    """The latest event or created time a writer accepts: now plus the bound (no bound: ``MAX_US``)."""
    if max_future_seconds is None:
        return MAX_US
    now = time.time_ns() // 1000 if now_us is None else now_us
    return min(now + int(max_future_seconds * 1_000_000), MAX_US)


def _iso(us: float) -> str:
    try:
        return (EPOCH + timedelta(microseconds=int(us))).isoformat().replace("+00:00", "Z")
    except OverflowError:
        return f"year {_year_text(us)}"


def _year(us: float) -> int:
    try:
        return (EPOCH + timedelta(microseconds=int(us))).year
    except (OverflowError, ValueError):
        pass
    try:
        return max(min(math.floor(1970 + us / _US_PER_YEAR), 10**12), -(10**12))
    except OverflowError:  # an integer beyond any float
        return 10**12 if us > 0 else -(10**12)


def _year_text(us: float) -> str:
    year = _year(us)
    return f"{year:,}" if abs(year) < 10**12 else ("beyond " if year > 0 else "before ") + f"{year:,}"


def window_reason(us: float, value: Any, unit: str | None, latest: int = MAX_US) -> str | None:
    """Why the time ``us`` (read from ``value`` in ``unit``; None for text) is refused, or None when accepted."""
    if MIN_US <= us <= latest:
        return None
    if MIN_US <= us <= MAX_US:
        ahead = (us - latest) / 1_000_000
        return (f"{_iso(us)} is later than the latest accepted time {_iso(latest)} (now plus "
                f"online_store.max_future_seconds; {ahead:,.0f} s too far ahead): a future event time would "
                "win every later write")
    where = f"{shown(value)} is year {_year_text(us)}"
    if unit is not None and isinstance(value, int | float) and not isinstance(value, bool):
        where = f"{shown(value)} read as epoch {_UNIT_NAMES[unit]} is year {_year_text(us)}"
        for other in ("s", "ms", "us", "ns"):
            year = _year(float(min(max(value, -1e300), 1e300)) * UNIT_US[other])
            if other != unit and _PLAUSIBLE_YEARS[0] <= year <= _PLAUSIBLE_YEARS[1]:
                return f"{where}; is it epoch {_UNIT_NAMES[other]}? set timestamp_unit={other!r}"
    return f"{where}; times must fall between 1900-01-01 and 2262-04-11"


def _text_us(text: str) -> int:
    if text.strip().lower() in WORDS:
        raise ValueError(f"{shown(text)} is not an ISO-8601 time (words such as now, today or NaT are never "
                         "read as a time); give e.g. '2026-01-31T12:00:00Z' or an epoch number")
    if len(text) > MAX_TEXT:
        raise ValueError(f"{shown(text, 40)} is not an ISO-8601 time (longer than {MAX_TEXT} characters)")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{shown(text)} is not an ISO-8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    delta = parsed - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _number_us(value: int | float, unit: str) -> int | float:
    if isinstance(value, int):
        if unit == "ns":  # truncated toward zero, as Arrow divides
            return value // 1000 if value >= 0 else -(-value // 1000)
        return value * int(UNIT_US[unit])
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a time")
    us = value * UNIT_US[unit]
    return math.trunc(us) if unit == "ns" else (round(us) if math.isfinite(us) else us)


def timestamp_us(value: Any, unit: TimeUnit = "s", latest: int = MAX_US) -> int:
    """Epoch microseconds of one timestamp value (ISO-8601 text, or a number of ``unit``).

    Args:
        value: the value as given (a JSON value, a Python scalar or a ``datetime``).
        unit: the unit of numbers.
        latest: the latest accepted time (see ``latest_us``); default: the end of the window.

    Raises:
        ValueError: the value is not a time, or is outside the window; the text says why.
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected an ISO-8601 time or epoch {_UNIT_NAMES[unit]}, got {shown(value)}")
    if isinstance(value, datetime):
        delta = (value if value.tzinfo else value.replace(tzinfo=UTC)) - EPOCH
        us: int | float = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        number_unit: str | None = None
    elif isinstance(value, int | float):
        us, number_unit = _number_us(value, unit), unit
    elif isinstance(value, str):
        us, number_unit = _text_us(value), None
    else:
        raise ValueError(f"expected an ISO-8601 time or epoch {_UNIT_NAMES[unit]}, got {type(value).__name__}")
    reason = window_reason(us, value, number_unit, latest)
    if reason is not None:
        raise ValueError(reason)
    return int(us)
