"""FeatureView: a group of features of one or more entities, read from one source."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic import Field as PydanticField

from pitstop.definitions.base import Definition, check_name
from pitstop.definitions.entity import Entity
from pitstop.definitions.field import Field
from pitstop.definitions.sources import KafkaSource, ParquetSource, PushSource


class FeatureView(Definition):
    """Features of ``entities`` read from ``source``, valid for ``ttl`` after their event time.

    Args:
        name: unique view name; feature references are ``"name:feature"``.
        entities: the entities whose join keys identify a row (their keys together form the key).
        schema: the feature fields; a field named like a join key declares that key's dtype.
        source: a ParquetSource, KafkaSource or PushSource.
        ttl: how long a value stays valid after its event time; ``None`` means forever.
        online: whether materialization writes this view to the online store.
        tags: free-form labels.

    ``view[["a", "b"]]`` selects a subset of the features for a FeatureService.
    """

    if TYPE_CHECKING:  # the signature type checkers see (pydantic validates at run time)
        def __init__(self, name: str, *, entities: list[Entity | str], schema: list[Field],
                     source: ParquetSource | KafkaSource | PushSource, ttl: timedelta | None = ..., online: bool = ...,
                     description: str = ..., tags: dict[str, str] = ..., _location: str | None = ...) -> None: ...

    kind: ClassVar[str] = "feature view"

    entities: list[Entity | str]
    schema_: list[Field] = PydanticField(alias="schema")
    source: ParquetSource | KafkaSource | PushSource
    ttl: timedelta | None = None
    online: bool = True
    description: str = ""
    tags: dict[str, str] = PydanticField(default_factory=dict)

    model_config = ConfigDict(populate_by_name=True)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_name(value, "feature view")

    @field_validator("ttl")
    @classmethod
    def _positive_ttl(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("ttl must be positive, or None for no expiry")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FeatureView:
        if not self.entities:
            raise ValueError("entities: a feature view needs at least one entity")
        names = [f.name for f in self.schema_]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"schema: field {dupes[0]!r} appears more than once")
        keys = [k for e in self.entities if isinstance(e, Entity) for k in e.join_keys]
        if len(set(keys)) != len(keys):
            raise ValueError(f"entities: join keys {keys} repeat a name across entities")
        if not self.features:
            raise ValueError("schema: a feature view needs at least one feature besides its join keys")
        return self

    @property
    def entity_names(self) -> list[str]:
        """Names of the view's entities (given as objects or as names)."""
        return [e if isinstance(e, str) else e.name for e in self.entities]

    @property
    def join_keys(self) -> list[str]:
        """All join keys of the view's entities, in order (entities given by name must be resolved first)."""
        keys: list[str] = []
        for entity in self.entities:
            if isinstance(entity, str):
                raise self.error(f"entity {entity!r} is given by name and has not been resolved; apply the repo first")
            keys += entity.join_keys
        return keys

    @property
    def features(self) -> list[Field]:
        """The schema fields that are features (not join keys)."""
        keys = {k for e in self.entities if isinstance(e, Entity) for k in e.join_keys}
        return [f for f in self.schema_ if f.name not in keys]

    @property
    def fields(self) -> list[Field]:
        """The whole declared schema, join-key fields included."""
        return list(self.schema_)

    @property
    def feature_names(self) -> list[str]:
        """Names of the features, in schema order."""
        return [f.name for f in self.features]

    def __getitem__(self, names: list[str]) -> FeatureViewProjection:
        if isinstance(names, str):
            names = [names]
        known = set(self.feature_names)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise self.error(f"has no feature {unknown[0]!r}; its features are {', '.join(self.feature_names)}")
        return FeatureViewProjection(view=self, features=list(names))

    def __hash__(self) -> int:
        return hash((self.kind, self.name))


class FeatureViewProjection(BaseModel):
    """A subset of one view's features, made by ``view[["a", "b"]]``."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    view: Any
    features: list[str]

    @property
    def name(self) -> str:
        return str(self.view.name)
