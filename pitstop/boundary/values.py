"""Values at the boundary: one JSON/Python value against its dtype, and entity keys.

Rules:
  * ``Int64``/``Int32``: an integer (not a bool, not a float such as ``1.0``) within the dtype's range.
  * ``Float64``/``Float32``: a finite number (integers are accepted) within the dtype's range, so
    ``1e39`` is refused for Float32 instead of becoming infinity. NaN and infinities are refused:
    JSON cannot carry them, and a stored NaN would be served as ``null`` with status ``PRESENT``;
    ``null`` is the missing value.
  * ``String``: text; ``Bool``: true or false; ``Timestamp``: see ``pitstop.boundary.timestamps``;
    ``Array(t)``: a list whose elements follow ``t`` (null elements allowed).
  * Entity keys: integers within Int64 or strings, one kind per key column.

Errors are ``ValueError`` whose text is the reason, or ``InvalidValueError`` naming column and row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pitstop.boundary.timestamps import MAX_US, TimeUnit, shown, timestamp_us
from pitstop.definitions.dtypes import DType
from pitstop.errors import InvalidValueError

__all__ = ["FLOAT32_MAX", "INT_RANGE", "check_keys", "check_value", "kind_of"]

INT_RANGE = {"Int64": (-(2**63), 2**63 - 1), "Int32": (-(2**31), 2**31 - 1)}
FLOAT32_MAX = 3.4028234663852886e38
"""The largest finite float32."""
_FLOAT_MAX = {"Float64": 1.7976931348623157e308, "Float32": FLOAT32_MAX}


def kind_of(value: Any) -> str:
    """The JSON kind of ``value``: int, float, str, bool, null, or its Python type name."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if value is None:
        return "null"
    return type(value).__name__


def check_value(value: Any, dtype: DType, unit: TimeUnit = "s", latest: int = MAX_US) -> Any:
    """``value`` as stored for ``dtype`` (timestamps become epoch µs, numbers of a float dtype floats).

    Args:
        value: a non-null value.
        dtype: the declared dtype.
        unit: the unit of numeric timestamps.
        latest: the latest accepted timestamp (epoch µs).

    Raises:
        ValueError: the value does not fit ``dtype``; the text says why.
    """
    name = dtype.name
    if name in INT_RANGE:
        if type(value) is not int:
            raise ValueError(f"expected an integer ({name}), got {_shown(value)}")
        low, high = INT_RANGE[name]
        if not low <= value <= high:
            raise ValueError(f"{shown(value)} is out of range for {name} ({low}..{high})")
        return value
    if name in _FLOAT_MAX:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number ({name}), got {_shown(value)}")
        try:
            number = float(value)
        except OverflowError:
            raise ValueError(f"{shown(value)} is out of range for {name}") from None
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not accepted for {name}; send null for a missing value")
        if abs(number) > _FLOAT_MAX[name]:
            raise ValueError(f"{shown(value)} is out of range for {name} (largest magnitude {_FLOAT_MAX[name]:.7g})")
        return number
    if name == "String":
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {_shown(value)}")
        return value
    if name == "Bool":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {_shown(value)}")
        return value
    if name == "Timestamp":
        return timestamp_us(value, unit, MAX_US)  # a feature value, not an event time: no future bound
    if name == "Array":
        assert dtype.element is not None
        if not isinstance(value, list):
            raise ValueError(f"expected a list ({dtype}), got {_shown(value)}")
        element = dtype.element
        try:
            return [None if v is None else check_value(v, element, unit) for v in value]
        except ValueError as exc:
            raise ValueError(f"list element: {exc}") from None
    raise ValueError(f"unsupported dtype {dtype}")  # pragma: no cover - every DType is handled above


def _shown(value: Any) -> str:
    """JSON-ish excerpt: ``true``/``null`` for JSON literals, else the repr (short)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, list | dict):
        return f"{type(value).__name__} {shown(value, 40)}"
    return shown(value, 40)


def check_keys(column: str, values: Sequence[Any], declared: str | None) -> str:
    """Check one entity-key column: integers within Int64 or strings, all of one kind.

    Args:
        column: the key column (or request field) name, for the error.
        values: the key values.
        declared: ``"int"`` or ``"str"`` when the views declare the key, else None (either, not mixed).

    Returns:
        The kind of the keys: ``"int"`` or ``"str"``.

    Raises:
        InvalidValueError: a key is null, of another type, out of range, or of the other kind.
    """
    expected = declared
    low, high = INT_RANGE["Int64"]
    for i, value in enumerate(values):
        kind = kind_of(value)
        if kind not in ("int", "str"):
            raise InvalidValueError(column, i, f"join keys must be integers or strings, got {kind} {shown(value, 40)}")
        if expected is None:
            expected = kind
        elif kind != expected:
            whose = f"{column!r} keys are" if declared else "the other values are"
            raise InvalidValueError(column, i, f"wrong key type: {shown(value, 40)} is "
                                    f"{'an integer' if kind == 'int' else 'a string'}, but {whose} "
                                    f"{'integers' if expected == 'int' else 'strings'}")
        if kind == "int" and not low <= value <= high:
            raise InvalidValueError(column, i, f"{shown(value, 40)} does not fit a 64-bit integer key")
    return expected or "int"
