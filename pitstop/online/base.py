"""The online store interface: guarded batch writes and single-round-trip reads of latest values.

Invariant every implementation keeps (the write guard): a view's value for an entity is replaced
only when the incoming (event_us, created_us) is not older than the stored pair, compared
lexicographically, and the check and the write are one atomic step. So batch materialization,
pushes and stream ingestion can write concurrently and replays are harmless.

Implementations: ``RedisOnlineStore`` and ``RedisClusterOnlineStore`` (production), ``SQLiteOnlineStore``
(embedded default).
They pass one shared contract suite (``tests/contracts``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from pitstop.definitions.dtypes import DType
from pitstop.errors import FeatureRefError, OnlineStoreError

NO_CREATED = 0
"""``created_us`` used when a source has no created timestamp."""


@dataclass(frozen=True)
class ViewSchema:
    """What a store needs to know about one feature view."""

    name: str
    join_keys: tuple[str, ...]
    features: tuple[tuple[str, DType], ...]
    """(feature name, dtype) for every feature of the view, in schema order."""
    ttl_us: int | None = None


@dataclass
class WriteBatch:
    """Rows of one view to write: one row per entity (callers pass the latest row per entity).

    Attributes:
        view: the view's schema.
        keys: join-key columns, named as ``view.join_keys``.
        event_us: event timestamps, microseconds since the epoch (UTC), int64.
        created_us: created timestamps in microseconds, or ``NO_CREATED`` (0), int64.
        values: one column per feature of the view (all of them, in schema order; nulls allowed).
    """

    view: ViewSchema
    keys: pa.Table
    event_us: np.ndarray
    created_us: np.ndarray
    values: pa.Table

    def __len__(self) -> int:
        return self.keys.num_rows

    def check(self) -> None:
        """Raise OnlineStoreError unless keys, times and values all have one row per entity."""
        n = self.keys.num_rows
        sizes = {"values": self.values.num_rows, "event_us": len(self.event_us), "created_us": len(self.created_us)}
        wrong = {name: size for name, size in sizes.items() if size != n}
        if wrong:
            detail = ", ".join(f"{name} has {size}" for name, size in wrong.items())
            raise OnlineStoreError(f"write batch for view {self.view.name!r}: keys have {n} rows but {detail}")


@dataclass
class WriteResult:
    """How many rows were stored and how many the guard rejected as older than the stored value."""

    written: int = 0
    stale: int = 0

    def __iadd__(self, other: WriteResult) -> WriteResult:
        self.written += other.written
        self.stale += other.stale
        return self


@dataclass
class ViewRead:
    """One view to read, and which of its features to return."""

    view: ViewSchema
    features: list[str]


@dataclass
class ViewResult:
    """Per requested entity row (same order as the request): whether a value exists, its time, the values.

    ``event_us[i]`` is meaningful only where ``found[i]``. ``values[feature][i]`` is a Python value
    (None when not found or null). TTL is applied by the caller, not the store.
    """

    found: list[bool]
    event_us: list[int]
    values: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def empty(cls, n: int, features: list[str]) -> ViewResult:
        """A result of ``n`` rows, none found."""
        return cls(found=[False] * n, event_us=[0] * n, values={f: [None] * n for f in features})


def merge_reads(reads: list[ViewRead]) -> dict[str, tuple[ViewSchema, list[str]]]:
    """View name -> (schema, requested features) with repeated views merged, for store implementations.

    Raises:
        FeatureRefError: a requested feature is not in its view's schema.
    """
    views: dict[str, tuple[ViewSchema, list[str]]] = {}
    for read in reads:
        known = dict(read.view.features)
        unknown = [f for f in read.features if f not in known]
        if unknown:
            raise FeatureRefError(f"view {read.view.name!r} has no feature(s) {', '.join(map(repr, unknown))}")
        _, features = views.setdefault(read.view.name, (read.view, []))
        features.extend(read.features)
    return {name: (schema, list(dict.fromkeys(features))) for name, (schema, features) in views.items()}


class OnlineStore(Protocol):
    """Low-latency latest-value store keyed by (view, entity key)."""

    def write(self, batches: list[WriteBatch]) -> WriteResult:
        """Write rows through the atomic event-time guard, in as few round trips as possible."""
        ...

    def read(self, entity_keys: pa.Table, reads: list[ViewRead]) -> dict[str, ViewResult]:
        """Latest values for each row of ``entity_keys`` (columns: every join key any read needs) and each view.

        One network round trip in total, whatever the number of views and entity rows.
        """
        ...

    def delete_views(self, views: list[str]) -> None:
        """Remove every stored value of the named views (used when a view is removed or re-keyed)."""
        ...

    def generation(self, create: bool = False) -> str | None:
        """This project's generation marker: a random id stored next to the values, never expiring.

        A store that was emptied, replaced or failed over to an empty replica has lost it, so
        materialization compares it with the one its watermarks were written against. Returns
        None when there is none, unless ``create``: then one is stored first (atomically; two
        callers get the same id).
        """
        ...

    def ping(self) -> None:
        """Raise OnlineStoreError naming the store URL when it cannot be reached (bounded time)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
