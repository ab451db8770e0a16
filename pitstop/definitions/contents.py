"""RepoContents: the definitions of one repo, indexed by kind and name, with cross-object checks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pitstop.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    KafkaSource,
    OnDemandFeatureView,
    ParquetSource,
    PushSource,
    RequestSource,
)
from pitstop.definitions.base import Definition
from pitstop.errors import ApplyRefusedError, NotRegisteredError, RepoLoadError

Source = ParquetSource | KafkaSource | PushSource | RequestSource

KINDS: tuple[str, ...] = ("entity", "source", "feature view", "on-demand feature view", "feature service")


@dataclass
class RepoContents:
    """Every definition of a repo. Names are unique per kind; views and ODFVs share one namespace."""

    entities: dict[str, Entity] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    views: dict[str, FeatureView] = field(default_factory=dict)
    on_demand: dict[str, OnDemandFeatureView] = field(default_factory=dict)
    services: dict[str, FeatureService] = field(default_factory=dict)

    def by_kind(self) -> dict[str, dict[str, Any]]:
        return {
            "entity": self.entities,
            "source": self.sources,
            "feature view": self.views,
            "on-demand feature view": self.on_demand,
            "feature service": self.services,
        }

    def __iter__(self) -> Iterator[Definition]:
        for table in self.by_kind().values():
            yield from table.values()

    def view(self, name: str) -> FeatureView | OnDemandFeatureView:
        """A feature view or on-demand view by name; raises NotRegisteredError naming what exists."""
        found = self.views.get(name) or self.on_demand.get(name)
        if found is None:
            known = sorted([*self.views, *self.on_demand])
            raise NotRegisteredError(
                f"feature view {name!r} is not registered (known: {', '.join(known) or 'none'}); "
                "define it and run `pitstop apply`"
            )
        return found

    def service(self, name: str) -> FeatureService:
        if name not in self.services:
            raise NotRegisteredError(
                f"feature service {name!r} is not registered (known: {', '.join(sorted(self.services)) or 'none'}); "
                "define it and run `pitstop apply`"
            )
        return self.services[name]

    def find(self, name: str) -> Definition:
        """Any object by name, searching every kind."""
        for table in self.by_kind().values():
            if name in table:
                return table[name]
        raise NotRegisteredError(f"nothing named {name!r} is registered")

    @classmethod
    def collect(cls, objects: Iterable[Definition], previous: RepoContents | None = None) -> RepoContents:
        """Index ``objects`` (and the entities and sources they reference), check names and references.

        Raises:
            RepoLoadError: two different objects of one kind share a name (both places named).
            DefinitionError: a view names an unknown entity, or a service/ODFV uses an unknown view.
        """
        contents = cls()
        pending = list(objects)
        i = 0
        while i < len(pending):  # the list grows as referenced objects are discovered
            pending += _referenced(pending[i])
            i += 1
        for obj in pending:
            contents._add(obj)
        contents._check_shared_namespace()
        contents._resolve_entity_names()
        contents._resolve_service_names(previous)
        contents._check_references()
        return contents

    def _add(self, obj: Definition) -> None:
        table = self.by_kind()[obj.kind]
        existing = table.get(obj.name)
        if existing is None:
            table[obj.name] = obj
            return
        if existing is obj or (existing.location is not None and existing.location == obj.location):
            return
        raise RepoLoadError(
            f"two {obj.kind} definitions are named {obj.name!r}: one at {existing.location or 'unknown place'}, "
            f"one at {obj.location or 'unknown place'}; rename one of them",
            location=obj.location,
        )

    def _check_shared_namespace(self) -> None:
        for name, odfv in self.on_demand.items():
            if name in self.views:
                raise RepoLoadError(
                    f"the on-demand feature view {name!r} has the name of the feature view defined at "
                    f"{self.views[name].location}; feature references need unique view names",
                    location=odfv.location,
                )

    def _resolve_entity_names(self) -> None:
        for name, view in list(self.views.items()):
            if all(isinstance(e, Entity) for e in view.entities):
                continue
            resolved: list[Entity] = []
            for e in view.entities:
                if isinstance(e, Entity):
                    resolved.append(e)
                elif e in self.entities:
                    resolved.append(self.entities[e])
                else:
                    raise view.error(
                        f"unknown entity {e!r}; defined entities: {', '.join(sorted(self.entities)) or 'none'}"
                    )
            fixed = view.model_copy(update={"entities": resolved})
            fixed._location = view.location
            self.views[name] = fixed

    def _resolve_service_names(self, previous: RepoContents | None) -> None:
        for name, svc in list(self.services.items()):
            if not any(isinstance(item, str) for item in svc.features):
                continue
            resolved: list[Any] = []
            for item in svc.features:
                if not isinstance(item, str):
                    resolved.append(item)
                    continue
                view_name, _, feat = item.partition(":")
                if view_name not in self.views and view_name not in self.on_demand:
                    if previous is not None and (view_name in previous.views or view_name in previous.on_demand):
                        raise ApplyRefusedError(
                            f"refusing to remove feature view {view_name!r}: feature service {name!r} "
                            f"({svc.location or 'unknown place'}) still uses it; remove that reference first"
                        )
                    raise svc.error(f"uses unknown feature view {view_name!r}")
                view = self.view(view_name)
                resolved.append(view[[feat]] if feat else view)
            fixed = svc.model_copy(update={"features": resolved})
            fixed._location = svc.location
            self.services[name] = fixed

    def _check_references(self) -> None:
        for view in self.views.values():
            for e in view.entities:
                assert isinstance(e, Entity)
                if self.entities.get(e.name) is not e and self.entities.get(e.name) != e:
                    raise view.error(f"uses entity {e.name!r}, which differs from the registered entity of that name")
        for odfv in self.on_demand.values():
            for view_name, feats in odfv.view_inputs():
                self._check_features(odfv, view_name, feats)
        for svc in self.services.values():
            for ref in svc.feature_refs:
                view_name, feat = ref.split(":")
                self._check_features(svc, view_name, [feat])

    def _check_features(self, user: Definition, view_name: str, feats: list[str]) -> None:
        if view_name not in self.views and view_name not in self.on_demand:
            raise user.error(f"uses unknown feature view {view_name!r}")
        known = set(self.view(view_name).feature_names)
        for feat in feats:
            if feat not in known:
                raise user.error(f"uses unknown feature {view_name}:{feat}")


def _referenced(obj: Definition) -> list[Definition]:
    """Objects that ``obj`` refers to directly, so inline definitions are registered too."""
    if isinstance(obj, FeatureView):
        refs: list[Definition] = [e for e in obj.entities if isinstance(e, Entity)]
        refs.append(obj.source)
        if not isinstance(obj.source, ParquetSource):
            refs.append(obj.source.batch_source)
        return refs
    if isinstance(obj, OnDemandFeatureView):
        return [s.view if isinstance(s, FeatureViewProjection) else s for s in obj.sources]
    if isinstance(obj, FeatureService):
        return [s.view if isinstance(s, FeatureViewProjection) else s for s in obj.features if not isinstance(s, str)]
    if isinstance(obj, KafkaSource | PushSource):  # a stream or push source no view reads yet
        return [obj.batch_source]
    return []


__all__ = ["KINDS", "RepoContents"]
