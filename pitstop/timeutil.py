"""UTC datetimes and exact epoch microseconds: the one time representation engines exchange."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_utc(value: datetime) -> datetime:
    """Aware UTC datetime; naive values are taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def epoch_us(value: datetime) -> int:
    """Exact microseconds since the epoch (no float rounding); naive values are UTC."""
    delta = to_utc(value) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_us(value: int) -> datetime:
    """The aware UTC datetime of ``value`` microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=value)


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``1h``, ``2d``, ``1w`` (or plain seconds) as a timedelta.

    Raises:
        ValueError: not a non-negative duration in those units.
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    value = text.strip().lower()
    try:
        amount = float(value[:-1]) if value and value[-1] in units else float(value)
    except ValueError:
        amount = -1.0
    if not amount >= 0 or amount == float("inf"):
        raise ValueError(f"{text!r} is not a duration like 30m, 1h, 2d or 1w")
    return timedelta(seconds=amount * units.get(value[-1], 1))
