"""Feature value types and how they map to Arrow and DuckDB types.

pyarrow is imported on first use of an Arrow mapping, not with the definitions: a definition file
and ``import pitstop`` stay light.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Array", "Bool", "DType", "Float32", "Float64", "Int32", "Int64", "String", "Timestamp", "dtype_from_name"]


class DType(BaseModel):
    """A feature value type. Use the module constants (``Int64``, ``Float64``, ...) or ``Array(...)``."""

    model_config = ConfigDict(frozen=True)

    name: str
    element: DType | None = None

    def __str__(self) -> str:
        return f"Array({self.element})" if self.element is not None else self.name

    def __repr__(self) -> str:
        return str(self)

    def to_arrow(self) -> pa.DataType:
        """The Arrow type pitstop produces for values of this dtype."""
        import pyarrow as pa

        if self.element is not None:
            return pa.list_(self.element.to_arrow())
        return _arrow_types()[self.name]

    def accepts(self, arrow_type: pa.DataType) -> bool:
        """Whether a source column of ``arrow_type`` can be read as this dtype without loss."""
        import pyarrow as pa

        if pa.types.is_dictionary(arrow_type):
            arrow_type = arrow_type.value_type
        if self.element is not None:
            return (
                pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)
            ) and self.element.accepts(arrow_type.value_type)
        return _accepts()[self.name](arrow_type)


_NAMES = ("Int64", "Int32", "Float64", "Float32", "String", "Bool", "Timestamp")


def _is_int_upto(bits: int) -> Callable[[Any], bool]:
    import pyarrow as pa

    def check(t: pa.DataType) -> bool:
        return bool(pa.types.is_integer(t) and t.bit_width <= bits and not (
            pa.types.is_unsigned_integer(t) and t.bit_width == bits
        ))

    return check


@cache
def _arrow_types() -> dict[str, pa.DataType]:
    import pyarrow as pa

    return {"Int64": pa.int64(), "Int32": pa.int32(), "Float64": pa.float64(), "Float32": pa.float32(),
            "String": pa.string(), "Bool": pa.bool_(), "Timestamp": pa.timestamp("us", tz="UTC")}


@cache
def _accepts() -> dict[str, Callable[[Any], bool]]:
    import pyarrow as pa

    return {
        "Int64": _is_int_upto(64),
        "Int32": _is_int_upto(32),
        "Float64": lambda t: pa.types.is_floating(t),
        "Float32": lambda t: pa.types.is_float32(t) or pa.types.is_float16(t),
        "String": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
        "Bool": pa.types.is_boolean,
        "Timestamp": lambda t: pa.types.is_timestamp(t) or pa.types.is_date(t),
    }

Int64 = DType(name="Int64")
Int32 = DType(name="Int32")
Float64 = DType(name="Float64")
Float32 = DType(name="Float32")
String = DType(name="String")
Bool = DType(name="Bool")
Timestamp = DType(name="Timestamp")


def Array(element: DType) -> DType:  # noqa: N802 - reads like a type constructor in definitions
    """A list-of-``element`` dtype, e.g. ``Array(Float32)`` for an embedding."""
    if element.element is not None:
        raise ValueError("nested arrays are not supported")
    return DType(name="Array", element=element)


def dtype_from_name(text: str) -> DType:
    """Parse ``str(dtype)`` back, e.g. ``"Array(Float32)"``."""
    if text.startswith("Array(") and text.endswith(")"):
        return Array(dtype_from_name(text[6:-1]))
    if text not in _NAMES:
        raise ValueError(f"unknown dtype {text!r}; expected one of {', '.join(_NAMES)} or Array(...)")
    return DType(name=text)
