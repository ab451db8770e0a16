"""Entity: the thing features describe, identified by one or more join keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field as PydanticField
from pydantic import field_validator, model_validator

from pitstop.definitions.base import Definition, check_name


class Entity(Definition):
    """A business object features are keyed by, e.g. a driver or a (customer, merchant) pair.

    Args:
        name: unique entity name.
        join_keys: the columns that identify one instance; several keys form a composite key.
            Defaults to ``[name]``.
        description: free text shown by ``pitstop describe``.
        tags: free-form labels.
    """

    if TYPE_CHECKING:  # the signature type checkers see (pydantic validates at run time)
        def __init__(self, name: str, *, join_keys: list[str] = ..., description: str = ...,
                     tags: dict[str, str] = ..., _location: str | None = ...) -> None: ...

    kind: ClassVar[str] = "entity"

    join_keys: list[str] = PydanticField(default_factory=list)
    description: str = ""
    tags: dict[str, str] = PydanticField(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _default_join_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("join_keys") and "name" in data:
            data = {**data, "join_keys": [data["name"]]}
        return data

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_name(value, "entity")

    @field_validator("join_keys")
    @classmethod
    def _unique_keys(cls, keys: list[str]) -> list[str]:
        if len(set(keys)) != len(keys):
            raise ValueError(f"join keys {keys} repeat a name")
        for key in keys:
            check_name(key, "join key")
        return keys
