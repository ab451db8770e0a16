"""Field: one named, typed column of a feature view's schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from pitstop.definitions.base import check_name
from pitstop.definitions.dtypes import DType


class Field(BaseModel):
    """A feature (or join key) column: ``Field("conv_rate", Float32)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    dtype: DType
    description: str = ""

    def __init__(self, name: str | None = None, dtype: DType | None = None, /, **data: Any) -> None:
        if name is not None:
            data["name"] = name
        if dtype is not None:
            data["dtype"] = dtype
        super().__init__(**data)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_name(value, "field")
