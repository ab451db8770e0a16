"""A pure diff between the registered definitions and the repo's: what ``apply`` would change."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pitstop.registry.serde import comparable

Action = Literal["add", "change", "remove"]


@dataclass(frozen=True)
class FieldChange:
    """One changed attribute, e.g. path ``schema.conv_rate.dtype`` from ``Float32`` to ``Float64``."""

    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Change:
    """One object that would be added, changed (with its field changes) or removed."""

    kind: str
    name: str
    action: Action
    fields: list[FieldChange] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """Every change ``apply`` would make, in kind order; empty when the registry is up to date."""

    changes: list[Change]

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def counts(self) -> dict[str, int]:
        out = {"add": 0, "change": 0, "remove": 0}
        for c in self.changes:
            out[c.action] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"changes": [asdict(c) for c in self.changes], "counts": self.counts()}


def _keyed(value: Any) -> Any:
    if isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        return {v["name"]: v for v in value}
    return value


def _diff(old: Any, new: Any, path: str, out: list[FieldChange]) -> None:
    old, new = _keyed(old), _keyed(new)
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append(FieldChange(sub, old[key], None))
            elif key not in old:
                out.append(FieldChange(sub, None, new[key]))
            else:
                _diff(old[key], new[key], sub, out)
    elif old != new:
        out.append(FieldChange(path, old, new))


def diff_specs(
    current: dict[str, dict[str, dict[str, Any]]], desired: dict[str, dict[str, dict[str, Any]]], kinds: tuple[str, ...]
) -> Plan:
    """Compare ``{kind: {name: spec}}`` maps; changes come out in ``kinds`` order, then by name."""
    changes: list[Change] = []
    for kind in kinds:
        cur, new = current.get(kind, {}), desired.get(kind, {})
        for name in sorted(set(cur) | set(new)):
            if name not in cur:
                changes.append(Change(kind, name, "add"))
            elif name not in new:
                changes.append(Change(kind, name, "remove"))
            else:
                fields: list[FieldChange] = []
                _diff(comparable(cur[name]), comparable(new[name]), "", fields)
                if fields:
                    changes.append(Change(kind, name, "change", fields))
    return Plan(changes)


# Attributes whose change leaves what a view stores online, and from which rows, as it was.
_COSMETIC = ("description", "tags", "owner", "location")


def _material(change: Change) -> bool:
    return any(f.path.split(".")[0] not in _COSMETIC and f.path.rsplit(".", 1)[-1] not in _COSMETIC
               for f in change.fields)


def views_to_refill(plan: Plan, desired: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Feature views of ``desired`` whose online values ``plan`` invalidates, so their watermarks must reset.

    A view qualifies when its own definition changed beyond description and tags (schema, entities,
    source, ttl, online), when its source (or that source's batch source) changed, or when one of
    its entities changed its join keys.
    """
    changed = {(c.kind, c.name) for c in plan.changes if c.action == "change" and _material(c)}
    sources = desired.get("source", {})
    out = []
    for name, spec in desired.get("feature view", {}).items():
        source = spec.get("source")
        batch = sources.get(source, {}).get("batch_source") if isinstance(source, str) else None
        if (("feature view", name) in changed or ("source", source) in changed or ("source", batch) in changed
                or any(("entity", e) in changed for e in spec.get("entities", []))):
            out.append(name)
    return sorted(out)
