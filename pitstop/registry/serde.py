"""Definitions <-> JSON specs. Serialization lives here, never on the definitions themselves.

A spec is a plain dict; comparing two specs is how ``plan`` finds changes. Fields that do not
change meaning (where a definition was written, the pickled udf bytes) are kept out of the diff.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any, cast

import cloudpickle

from pitstop.definitions import (
    DeltaSource,
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    KafkaSource,
    OnDemandFeatureView,
    ParquetSource,
    PushSource,
    RequestSource,
)
from pitstop.definitions.base import Definition
from pitstop.definitions.contents import RepoContents
from pitstop.definitions.dtypes import dtype_from_name
from pitstop.errors import ConfigError

NOT_COMPARED = ("location", "udf_pickle")


def _fields(fields: list[Field]) -> list[dict[str, str]]:
    return [{"name": f.name, "dtype": str(f.dtype), "description": f.description} for f in fields]


def _source_spec(src: Definition) -> dict[str, Any]:
    base = {"name": src.name, "description": src.description, "tags": dict(src.tags)}  # type: ignore[attr-defined]
    if isinstance(src, ParquetSource):
        return {**base, "type": "delta" if isinstance(src, DeltaSource) else "parquet", "path": src.path, "timestamp_field": src.timestamp_field,
                "created_timestamp_column": src.created_timestamp_column}
    if isinstance(src, KafkaSource):
        spec = {**base, "type": "kafka", "topic": src.topic, "timestamp_field": src.timestamp_field,
                "message_format": src.message_format, "batch_source": src.batch_source.name}
        if src.timestamp_unit != "s":  # only when set, so specs applied before units existed do not show a change
            spec["timestamp_unit"] = src.timestamp_unit
        return spec
    if isinstance(src, PushSource):
        return {**base, "type": "push", "batch_source": src.batch_source.name}
    if isinstance(src, RequestSource):
        return {**base, "type": "request", "schema": _fields(src.schema_)}
    raise TypeError(f"not a source: {src!r}")


def _selection(item: Any) -> dict[str, Any]:
    if isinstance(item, FeatureViewProjection):
        return {"view": item.name, "features": list(item.features)}
    if isinstance(item, RequestSource):
        return {"request": item.name}
    return {"view": item.name, "features": None}


def to_spec(obj: Definition) -> dict[str, Any]:
    """The JSON-able spec of one definition."""
    if isinstance(obj, Entity):
        spec: dict[str, Any] = {"name": obj.name, "join_keys": list(obj.join_keys), "description": obj.description,
                                "tags": dict(obj.tags)}
    elif isinstance(obj, ParquetSource | KafkaSource | PushSource | RequestSource):
        spec = _source_spec(obj)
    elif isinstance(obj, FeatureView):
        spec = {"name": obj.name, "entities": obj.entity_names, "schema": _fields(obj.fields),
                "source": obj.source.name, "ttl_seconds": obj.ttl.total_seconds() if obj.ttl else None,
                "online": obj.online, "description": obj.description, "tags": dict(obj.tags)}
    elif isinstance(obj, OnDemandFeatureView):
        spec = {"name": obj.name, "sources": [_selection(s) for s in obj.sources], "schema": _fields(obj.schema_),
                "udf_source": obj.udf_source, "description": obj.description, "tags": dict(obj.tags),
                "udf_pickle": base64.b64encode(cloudpickle.dumps(obj.udf)).decode()}
        if obj.mode != "pandas":  # only when set, so specs applied before modes existed do not show a change
            spec["mode"] = obj.mode
    elif isinstance(obj, FeatureService):
        spec = {"name": obj.name, "features": [_selection(s) for s in obj.features],
                "description": obj.description, "tags": dict(obj.tags)}
    else:
        raise TypeError(f"cannot serialize {obj!r}")
    spec["location"] = obj.location
    return spec


def comparable(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec without the fields that do not change meaning."""
    return {k: v for k, v in spec.items() if k not in NOT_COMPARED}


def _mk_fields(items: list[dict[str, str]]) -> list[Field]:
    return [Field(i["name"], dtype_from_name(i["dtype"]), description=i.get("description", "")) for i in items]


class RefusedUdf:
    """Stands in for a pickled on-demand function that this process may not unpickle."""

    def __init__(self, view: str) -> None:
        self.view = view

    def __call__(self, *_args: Any, **_kwargs: Any) -> Any:
        raise ConfigError(f"on-demand feature view {self.view!r} runs a pickled function from the registry, and "
                          "registry.allow_pickle is false in this process; set it to true where the registry's "
                          "writers are trusted (docs/security.md)")


def from_specs(specs: dict[str, dict[str, dict[str, Any]]], *, allow_pickle: bool = True) -> RepoContents:
    """Rebuild RepoContents from ``{kind: {name: spec}}`` as stored by the registry.

    Args:
        specs: what the registry stores.
        allow_pickle: unpickle on-demand functions; when False each becomes a ``RefusedUdf`` that
            raises ConfigError when called, and no registry bytes are ever unpickled.
    """
    c = RepoContents()

    def loc(spec: dict[str, Any]) -> dict[str, Any]:
        return {"_location": spec.get("location")}

    for name, s in specs.get("entity", {}).items():
        c.entities[name] = Entity(name, join_keys=s["join_keys"], description=s["description"], tags=s["tags"], **loc(s))
    raw_sources = specs.get("source", {})
    for name, s in raw_sources.items():
        common = {"description": s["description"], "tags": s["tags"], **loc(s)}
        if s["type"] in ("parquet", "delta"):
            kind = DeltaSource if s["type"] == "delta" else ParquetSource
            c.sources[name] = kind(name, path=s["path"], timestamp_field=s["timestamp_field"],
                                   created_timestamp_column=s["created_timestamp_column"], **common)
        elif s["type"] == "request":
            c.sources[name] = RequestSource(name, schema=_mk_fields(s["schema"]), **common)
    for name, s in raw_sources.items():
        common = {"description": s["description"], "tags": s["tags"], **loc(s)}
        # apply registers a Parquet batch source for every stream and push source; pydantic checks it again here
        batch = cast(ParquetSource, c.sources.get(s.get("batch_source") or ""))
        if s["type"] in ("kafka", "push") and batch is None:
            # stored by a pitstop that did not register the batch source of a source no view read:
            # leave it out, so the next apply registers it again (with its batch source)
            continue
        if s["type"] == "kafka":
            c.sources[name] = KafkaSource(name, topic=s["topic"], timestamp_field=s["timestamp_field"],
                                          message_format=s["message_format"], batch_source=batch,
                                          timestamp_unit=s.get("timestamp_unit", "s"), **common)
        elif s["type"] == "push":
            c.sources[name] = PushSource(name, batch_source=batch, **common)
    for name, s in specs.get("feature view", {}).items():
        ttl = timedelta(seconds=s["ttl_seconds"]) if s["ttl_seconds"] is not None else None
        c.views[name] = FeatureView(name, entities=[c.entities[e] for e in s["entities"]], schema=_mk_fields(s["schema"]),
                                    source=cast(ParquetSource | KafkaSource | PushSource, c.sources[s["source"]]), ttl=ttl, online=s["online"],
                                    description=s["description"], tags=s["tags"], **loc(s))

    def pick(sel: dict[str, Any]) -> Any:
        if "request" in sel:
            return c.sources[sel["request"]]
        view = c.views.get(sel["view"]) or c.on_demand[sel["view"]]
        return view[sel["features"]] if sel["features"] is not None else view

    for name, s in specs.get("on-demand feature view", {}).items():
        c.on_demand[name] = OnDemandFeatureView(
            name, sources=[pick(x) for x in s["sources"]], schema=_mk_fields(s["schema"]),
            udf=cloudpickle.loads(base64.b64decode(s["udf_pickle"])) if allow_pickle else RefusedUdf(name),
            udf_source=s["udf_source"],
            mode=s.get("mode", "pandas"),
            description=s["description"], tags=s["tags"], **loc(s))
    for name, s in specs.get("feature service", {}).items():
        c.services[name] = FeatureService(name, features=[pick(x) for x in s["features"]],
                                          description=s["description"], tags=s["tags"], **loc(s))
    return c


def contents_to_specs(contents: RepoContents) -> dict[str, dict[str, dict[str, Any]]]:
    """``{kind: {name: spec}}`` for every object of ``contents``."""
    return {kind: {name: to_spec(obj) for name, obj in table.items()} for kind, table in contents.by_kind().items()}
