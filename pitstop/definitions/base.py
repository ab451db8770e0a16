"""Shared base of every definition: frozen pydantic models that remember where they were defined."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from pitstop.errors import DefinitionError

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def caller_location() -> str | None:
    """``file:line`` of the innermost frame outside the pitstop package (the user's definition)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR) and "pydantic" not in filename and not filename.startswith("<"):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return None


def format_validation_error(exc: ValidationError) -> str:
    """One line naming every invalid argument and why."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "arguments"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def check_name(name: str, what: str) -> str:
    """Names become SQL identifiers and Redis key parts: letters, digits and underscores only."""
    if not _NAME.match(name):
        raise ValueError(f"{what} name {name!r} must start with a letter or '_' and hold only letters, digits and '_'")
    if "__" in name:
        raise ValueError(f"{what} name {name!r} must not contain '__' (it separates view and feature in full names)")
    return name


class Definition(BaseModel):
    """Base of Entity, sources, views and services: immutable, keyword-validated, located."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)
    kind: ClassVar[str] = "definition"

    name: str
    _location: str | None = PrivateAttr(default=None)

    def __init__(self, name: str | None = None, /, **data: Any) -> None:
        location = data.pop("_location", None) or caller_location()
        if name is not None:
            data["name"] = name
        try:
            super().__init__(**data)
        except ValidationError as exc:
            label = data.get("name", "?")
            raise DefinitionError(
                f"invalid {self.kind} {label!r}: {format_validation_error(exc)}", location=location
            ) from None
        self._location = location

    @property
    def location(self) -> str | None:
        """``file:line`` where this object was defined, when known."""
        return self._location

    def error(self, message: str) -> DefinitionError:
        """A DefinitionError about this object that names where it was defined."""
        return DefinitionError(f"{self.kind} {self.name!r}: {message}", location=self._location)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
