"""The registry interface: persisted definitions and the history of applies.

Implementations: ``SQLiteRegistry`` (one file, the default). A PostgreSQL registry implements
the same Protocol so serving replicas, ingesters and schedulers can share one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

Specs = dict[str, dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class ApplyRecord:
    """One past apply: its number (the definitions version), time and counts of changes."""

    version: int
    applied_at: datetime
    summary: dict[str, Any]


@dataclass(frozen=True)
class MaterializationRun:
    """One view's materialization of [start, end): outcome, rows written and stale rows skipped."""

    view: str
    start: datetime
    end: datetime
    rows: int
    stale: int
    status: str
    """``success`` or ``failed``."""
    error: str | None
    started_at: datetime
    finished_at: datetime
    reason: str | None = None
    """Why this window was chosen: ``incremental``, ``first run``, ``refill: <why>`` (the online store
    was emptied or replaced, or the view changed) or ``range`` (an explicit ``materialize START END``).
    ``None`` for runs recorded by an older pitstop."""


@dataclass(frozen=True)
class Watermark:
    """A view's incremental-materialization state.

    ``value`` is the end of the last successful incremental run; it only counts for an online store
    whose generation marker equals ``generation``. ``apply`` voids it when the view changes
    (``reset_reason`` set, ``value`` None) and bumps ``resets``, so a run that started before the
    change cannot move it (``set_watermark(..., resets=...)`` compares the counter).
    """

    value: datetime | None
    generation: str | None
    """The online store generation the watermark was written against (None: written by an older pitstop)."""
    resets: int = 0
    reset_reason: str | None = None


@dataclass(frozen=True)
class ApiKeyRecord:
    """One API key as the registry stores it: an id, a name, scopes and the secret's digest, never the secret."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    digest: str
    """sha256 (hex) of the key's secret part."""
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Whether the key still works (not revoked)."""
        return self.revoked_at is None


@dataclass(frozen=True)
class DatasetRecord:
    """What one training set read, so that it can be read again exactly (``as_of=dataset_id``).

    Attributes:
        dataset_id: ``ds_`` + a digest of everything below but the time: the same reads, the same id.
        definitions_version: the registry version whose definitions were used.
        features: the feature references requested, in order.
        definitions: the serialized definitions used (``serde.contents_to_specs``), so a later
            ``apply`` does not change what ``as_of`` reads.
        sources: source name -> the files read, each ``{"ref": path or URL, "size": bytes,
            "version": mtime in ns (local) or ETag (object storage)}``.
        created_at: when the dataset was first recorded.
    """

    dataset_id: str
    definitions_version: int
    features: list[str]
    sources: dict[str, list[dict[str, Any]]]
    created_at: datetime
    definitions: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    """How the join ran: ``created_cutoff``, ``full_feature_names``, ``timestamp_column``."""


@dataclass(frozen=True)
class ModelVersionRecord:
    """One immutable registered model version, as stored in the registry."""

    name: str
    version: int
    flavor: str
    artifact_path: str
    """Relative to the artifact store root."""
    sha256: str
    feature_service: str | None
    signature: list[str]
    """The feature service's ordered feature references (the model's input columns)."""
    training_fingerprint: str | None
    metrics: dict[str, float]
    created_at: datetime
    description: str
    serving: dict[str, Any] = field(default_factory=dict)
    dataset_id: str | None = None
    """The training set's dataset record, when the model was registered with one (lineage)."""
    origin: dict[str, Any] = field(default_factory=dict)
    """Where the model came from when it was imported (e.g. MLflow: model URI, version, run id, signature)."""


@dataclass(frozen=True)
class ModelAliasRecord:
    """A movable name (``production``, ``staging``) pointing at one version of a model."""

    name: str
    alias: str
    version: int
    updated_at: datetime


class ApiKeyStore(Protocol):
    """Where API keys live (both registries implement it); secrets are never stored, only digests."""

    def add_api_key(self, record: ApiKeyRecord) -> None:
        """Store a new key.

        Raises:
            RegistryError: an active key already has ``record.name`` (names are unique among active keys).
        """
        ...

    def api_keys(self) -> list[ApiKeyRecord]:
        """Every key, revoked ones included."""
        ...

    def revoke_api_key(self, name_or_id: str, when: datetime) -> int:
        """Revoke the active keys with this name or id; returns how many were revoked."""
        ...

    def touch_api_keys(self, used: Mapping[str, datetime]) -> None:
        """Record last-used times (key id -> time); an older time never replaces a newer one."""
        ...


class DatasetStore(Protocol):
    """Records of what training sets read (reproducibility and lineage)."""

    def add_dataset(self, record: DatasetRecord) -> None:
        """Store ``record``; storing the same ``dataset_id`` again is a no-op."""
        ...

    def dataset(self, dataset_id: str) -> DatasetRecord | None:
        """The record with this id, or None."""
        ...


class Registry(ApiKeyStore, DatasetStore, Protocol):
    """Stores definition specs as ``{kind: {name: spec}}``; writes are all-or-nothing."""

    def version(self) -> int:
        """The number of the last apply (0 before the first). Cheap: used to refresh caches."""
        ...

    def load_specs(self) -> Specs:
        """Every registered spec."""
        ...

    def apply_specs(self, specs: Specs, summary: dict[str, Any]) -> int:
        """Replace the registered specs with ``specs`` in one transaction; returns the new version."""
        ...

    def history(self, limit: int = 50) -> list[ApplyRecord]:
        """The most recent applies, newest first."""
        ...

    def watermarks(self) -> dict[str, datetime]:
        """Per view, the end of the last successful incremental materialization (UTC); reset views left out."""
        ...

    def watermark_states(self) -> dict[str, Watermark]:
        """Per view with a stored state: its watermark, generation, reset counter and reset reason."""
        ...

    def set_watermark(self, view: str, value: datetime, *, generation: str | None = None,
                      resets: int | None = None) -> bool:
        """Move a view's watermark to ``value`` for online store ``generation`` and clear any reset.

        With ``resets``, only while the view's reset counter still equals it (0 matches a view
        without a state); returns whether the watermark moved.
        """
        ...

    def reset_watermarks(self, views: list[str], reason: str) -> None:
        """Void the views' watermarks (the next incremental run refills them) and bump their reset counters."""
        ...

    def delete_watermarks(self, views: list[str]) -> None:
        """Forget the views' watermark states (used when views are removed)."""
        ...

    def record_run(self, run: MaterializationRun) -> None:
        """Append one run to the materialization history."""
        ...

    def runs(self, limit: int = 50) -> list[MaterializationRun]:
        """Recent materialization runs, newest first."""
        ...

    def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take the named lock unless another owner holds an unexpired one; re-entrant for ``owner``."""
        ...

    def release_lock(self, name: str, owner: str) -> None:
        """Release the lock if ``owner`` holds it."""
        ...

    def add_model_version(self, record: ModelVersionRecord) -> int:
        """Insert ``record`` as the next version of its model (its ``version`` is ignored).

        The version number is allocated inside the inserting transaction, so concurrent
        registrations never share a number; a ``{version}`` placeholder in ``artifact_path`` is
        replaced by it. Returns the allocated version.
        """
        ...

    def model_versions(self, name: str | None = None) -> list[ModelVersionRecord]:
        """Registered versions of ``name`` (every model when ``None``), by name then version."""
        ...

    def model_version_page(self, name: str, offset: int, limit: int) -> tuple[list[ModelVersionRecord], int]:
        """Versions of ``name``, newest first, ``limit`` from ``offset``; and how many there are in all."""
        ...

    def model_summaries(self, offset: int, limit: int) -> tuple[list[tuple[str, int, int]], int]:
        """(name, number of versions, latest version) per model, by name, ``limit`` from ``offset``; and the count."""
        ...

    def model_version(self, name: str, version: int) -> ModelVersionRecord | None:
        """One version, or ``None`` when it is not registered."""
        ...

    def set_model_alias(self, name: str, alias: str, version: int) -> None:
        """Point ``name@alias`` at ``version`` (creating or moving the alias)."""
        ...

    def model_aliases(self, name: str | None = None) -> list[ModelAliasRecord]:
        """Aliases of ``name`` (of every model when ``None``)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def dataset_body(record: DatasetRecord) -> str:
    """The JSON a registry stores for a dataset record (everything but its id and time)."""
    import json

    return json.dumps({"definitions_version": record.definitions_version, "features": record.features,
                       "sources": record.sources, "definitions": record.definitions, "options": record.options},
                      sort_keys=True)


def dataset_from_body(dataset_id: str, created_at: datetime, body: str) -> DatasetRecord:
    """A dataset record from what ``dataset_body`` stored."""
    import json

    data = json.loads(body)
    return DatasetRecord(dataset_id, int(data["definitions_version"]), list(data["features"]),
                         dict(data["sources"]), created_at, dict(data.get("definitions", {})),
                         dict(data.get("options", {})))


def new_dataset_record(definitions_version: int, features: list[str], sources: dict[str, list[dict[str, Any]]],
                       definitions: dict[str, Any], options: dict[str, Any] | None = None) -> DatasetRecord:
    """A record whose id is a digest of what was read: the same reads always get the same id."""
    import hashlib
    from datetime import UTC

    record = DatasetRecord("", definitions_version, features, sources, datetime.now(UTC), definitions, options or {})
    digest = hashlib.sha256(dataset_body(record).encode()).hexdigest()[:24]
    return DatasetRecord(f"ds_{digest}", definitions_version, features, sources, record.created_at, definitions,
                         record.options)

