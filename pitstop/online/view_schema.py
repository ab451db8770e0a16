"""ViewSchema from a FeatureView definition: what the online store needs to know."""

from __future__ import annotations

from pitstop.definitions import FeatureView
from pitstop.online.base import ViewSchema


def view_schema(view: FeatureView) -> ViewSchema:
    """The online-store description of ``view``: keys, typed features, ttl in µs."""
    ttl = int(view.ttl.total_seconds() * 1_000_000) if view.ttl else None
    return ViewSchema(view.name, tuple(view.join_keys), tuple((f.name, f.dtype) for f in view.features), ttl)
