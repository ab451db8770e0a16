"""FeatureService: a named, ordered list of features, e.g. one model's input signature."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import Field as PydanticField
from pydantic import field_validator

from pitstop.definitions.base import Definition, check_name
from pitstop.definitions.feature_view import FeatureView, FeatureViewProjection
from pitstop.definitions.on_demand import OnDemandFeatureView


class FeatureService(Definition):
    """Features from several views, in a fixed order.

    Args:
        name: unique service name.
        features: views (all their features), projections ``view[["a"]]``, on-demand views, or
            references by name: ``"view"`` (all features) or ``"view:feature"``; names are
            resolved when the repo is loaded.
    """

    if TYPE_CHECKING:  # the signature type checkers see (pydantic validates at run time)
        def __init__(self, name: str, *,
                     features: list[FeatureView | OnDemandFeatureView | FeatureViewProjection | str],
                     description: str = ..., tags: dict[str, str] = ..., _location: str | None = ...) -> None: ...

    kind: ClassVar[str] = "feature service"

    features: list[FeatureView | OnDemandFeatureView | FeatureViewProjection | str]
    description: str = ""
    tags: dict[str, str] = PydanticField(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_name(value, "feature service")

    @field_validator("features")
    @classmethod
    def _not_empty(cls, value: list[object]) -> list[object]:
        if not value:
            raise ValueError("a feature service needs at least one view or projection")
        return value

    @property
    def feature_refs(self) -> list[str]:
        """``"view:feature"`` references in service order."""
        refs: list[str] = []
        for item in self.features:
            if isinstance(item, str):
                raise self.error(f"reference {item!r} has not been resolved; load the repo first")
            if isinstance(item, FeatureViewProjection):
                refs += [f"{item.name}:{f}" for f in item.features]
            else:
                refs += [f"{item.name}:{f}" for f in item.feature_names]
        return refs
