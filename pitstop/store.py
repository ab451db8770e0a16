"""FeatureStore: the public API over one feature repo (definitions, registry, engines)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pitstop.definitions import FeatureService
from pitstop.definitions.contents import KINDS, RepoContents
from pitstop.definitions.resolve import ResolvedFeatures, resolve
from pitstop.errors import NotFoundError, OfflineStoreError, PitstopError, RetrievalError
from pitstop.log import get_logger
from pitstop.offline.source_check import validate_contents
from pitstop.online.base import OnlineStore, WriteResult
from pitstop.registry.base import ApplyRecord, Registry, Specs, new_dataset_record
from pitstop.registry.factory import open_registry
from pitstop.registry.plan import Plan, diff_specs, views_to_refill
from pitstop.registry.serde import contents_to_specs, from_specs
from pitstop.repo.loader import load_repo
from pitstop.settings import Settings, load_settings
from pitstop.storage import set_cache_dir

if TYPE_CHECKING:
    from pitstop.materialize import RowsProgress, ViewOutcome
    from pitstop.model_registry import ModelRegistry
    from pitstop.monitoring.monitor import Monitor
    from pitstop.offline.base import OfflineEngine, Progress
    from pitstop.offline.compaction import CompactionOutcome
    from pitstop.offline.job import RetrievalJob
    from pitstop.online.reader import EntityRows, OnlineResponse
    from pitstop.push import PushMode

log = get_logger(__name__)

REFRESH_SECONDS = 1.0
"""How often a FeatureStore checks whether the registry changed (another process applied)."""
VANISHED_FILE_ATTEMPTS = 3
"""Training-set attempts when source files disappear mid-read (compaction swapped them)."""


def _is_vanished_file(exc: Exception) -> bool:
    text = str(exc)
    return isinstance(exc, FileNotFoundError) or "No such file" in text or "No files found" in text


VIEW_CHANGED = "view changed"
"""Why ``apply`` resets a view's watermark (its next incremental run reports ``refill: view changed``)."""


def _stale_views(plan: Plan) -> list[str]:
    """Feature views whose stored online values can no longer be read: removed, re-keyed or re-typed."""
    return [
        c.name for c in plan.changes
        if c.kind == "feature view" and (c.action == "remove" or any(
            f.path.split(".")[0] in ("schema", "entities") for f in c.fields))
    ]


class FeatureStore:
    """Entry point for one feature repo.

    Args:
        repo_path: the folder holding ``pitstop.yaml`` and the definition files.
        settings: settings to use instead of reading ``pitstop.yaml`` (tests, services).

    Raises:
        ConfigError: ``pitstop.yaml`` is missing or invalid.
    """

    def __init__(self, repo_path: str | Path = ".", *, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings(repo_path)
        self.repo_path = self.settings.repo_path
        if self.settings.storage.cache_dir:  # the host's cache of remote files is one per process
            set_cache_dir(self.settings.resolve(self.settings.storage.cache_dir))
        self._registry: Registry | None = None
        self._offline: OfflineEngine | None = None
        self._online: OnlineStore | None = None
        self._models: ModelRegistry | None = None
        self._monitor: Monitor | None = None
        self._cache: tuple[int, RepoContents] | None = None
        self._checked_at = 0.0
        self._resolved: dict[tuple[object, ...], ResolvedFeatures] = {}
        self._lock = threading.Lock()
        self._open_lock = threading.Lock()

    # engines are built on first use so `pitstop plan` and imports stay fast
    @property
    def registry(self) -> Registry:
        """The definitions registry named by ``registry.path``: a SQLite file or a PostgreSQL URL."""
        if self._registry is None:
            with self._open_lock:  # two threads must not both open one (a PostgreSQL connection would leak)
                if self._registry is None:
                    self._registry = open_registry(self.settings)
        return self._registry

    @property
    def offline(self) -> OfflineEngine:
        """The offline engine (DuckDB)."""
        if self._offline is None:
            from pitstop.offline.factory import open_offline_engine

            self._offline = open_offline_engine(self.settings.offline_store)
        return self._offline

    @property
    def online(self) -> OnlineStore:
        """The online store named by ``online_store.url`` (SQLite file or Redis)."""
        if self._online is None:
            from pitstop.online.factory import open_online_store

            conf = self.settings.online_store
            self._online = open_online_store(conf.url, self.settings.project, self.repo_path,
                                             key_ttl_seconds=conf.key_ttl_seconds,
                                             connect_timeout=conf.connect_timeout_seconds,
                                             read_timeout=conf.read_timeout_seconds)
        return self._online

    @property
    def models(self) -> ModelRegistry:
        """The model registry: versions and aliases in the registry, artifacts under ``artifacts.path``."""
        if self._models is None:
            from pitstop.artifacts.factory import open_artifact_store
            from pitstop.model_registry import ModelRegistry
            from pitstop.storage.remote import is_remote

            path = self.settings.artifacts.path  # an s3:// URL is passed through, a local path resolved
            root = path if is_remote(path) else self.settings.resolve(path)
            self._models = ModelRegistry(self.registry, open_artifact_store(root),
                                         self.definitions, allow_pickle=self.settings.registry.allow_pickle,
                                         training_rows=self._training_rows_dir(),
                                         on_register=lambda version, table: self.monitor.save_profile(version, table))
        return self._models

    @property
    def monitor(self) -> Monitor:
        """Monitoring of the served models: drift, delayed-label performance, skew (docs/monitoring.md)."""
        if self._monitor is None:
            from pitstop.monitoring.monitor import Monitor

            self._monitor = Monitor(self)
        return self._monitor

    def _training_rows_dir(self) -> Path:
        """Where models' training entity rows are kept: under a local offline root, else beside the repo."""
        root = self.settings.offline_root
        return (root if isinstance(root, Path) else self.repo_path) / ".pitstop" / "training_sets"

    def close(self) -> None:
        """Release the registry and online-store connections."""
        if self._registry is not None:
            self._registry.close()
            self._registry = None
        if self._online is not None:
            self._online.close()
            self._online = None

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- definitions ---------------------------------------------------------------------------

    def load_definitions(self) -> RepoContents:
        """Run the repo's definition files and validate them against their data (no registry writes)."""
        contents = load_repo(self.repo_path)
        validate_contents(contents, self.settings.offline_root)
        return contents

    def _desired(self) -> tuple[Specs, RepoContents]:
        current = self.registry.load_specs()
        contents = load_repo(self.repo_path, previous=from_specs(current, allow_pickle=False) if current else None)
        validate_contents(contents, self.settings.offline_root)
        return current, contents

    def plan(self) -> Plan:
        """What ``apply`` would change in the registry; changes nothing.

        Raises:
            DefinitionError: a definition is invalid (the message names its file and line).
            ApplyRefusedError: applying would remove a view that a feature service still uses.
        """
        current, contents = self._desired()
        return diff_specs(current, contents_to_specs(contents), KINDS)

    def apply(self) -> Plan:
        """Validate the repo's definitions and make the registry match them, in one transaction.

        Returns the plan that was applied (empty when nothing changed; nothing is written then).
        """
        current, contents = self._desired()
        specs = contents_to_specs(contents)
        plan = diff_specs(current, specs, KINDS)
        if plan.is_empty:
            return plan
        refill = sorted(set(views_to_refill(plan, specs)) | {n for n in _stale_views(plan) if n in specs.get("feature view", {})})
        if refill:  # also before the apply: a crash between the apply and the reset below must not keep them valid
            self.registry.reset_watermarks(refill, VIEW_CHANGED)
        version = self.registry.apply_specs(specs, plan.counts())
        with self._lock:
            self._cache = None
        log.info("applied registry version %d: %s", version, plan.counts())
        self._drop_stale_online_values(plan)
        # After the apply and the deletion: a materialization that read the watermarks before this
        # point (old definitions, or values about to be deleted) then cannot move them.
        if refill:
            self.registry.reset_watermarks(refill, VIEW_CHANGED)
        gone = [c.name for c in plan.changes if c.kind == "feature view" and c.action in ("add", "remove")]
        if gone:
            self.registry.delete_watermarks(gone)
        return plan

    def _drop_stale_online_values(self, plan: Plan) -> None:
        """Delete online values of views that were removed or re-keyed/re-typed (they could never be read)."""
        stale = _stale_views(plan)
        if not stale:
            return
        try:
            self.online.delete_views(stale)
        except PitstopError as exc:  # the registry is already right; old values only waste space
            log.warning("could not delete online values of %s: %s", ", ".join(stale), exc)

    def history(self, limit: int = 50) -> list[ApplyRecord]:
        """Past applies, newest first."""
        return self.registry.history(limit)

    def definitions(self) -> RepoContents:
        """The registered definitions, re-read only when the registry version changed.

        The version is checked at most every ``REFRESH_SECONDS``, so hot paths (online reads)
        do not query the registry on every call; this store's own ``apply`` refreshes at once.
        """
        now = time.monotonic()
        with self._lock:
            if self._cache is not None and now - self._checked_at < REFRESH_SECONDS:
                return self._cache[1]
        version = self.registry.version()
        with self._lock:
            self._checked_at = now
            if self._cache is None or self._cache[0] != version:
                self._cache = (version, from_specs(self.registry.load_specs(), allow_pickle=self.settings.registry.allow_pickle))
                self._resolved.clear()
            return self._cache[1]

    def resolve_features(self, features: list[str] | None = None, *,
                         feature_service: str | FeatureService | None = None,
                         full_feature_names: bool = False) -> ResolvedFeatures:
        """Resolve a feature list or service against the registered definitions (cached per registry version).

        Raises:
            FeatureRefError: an unknown view or feature.
            NotRegisteredError: an unknown feature service.
            RetrievalError: both or neither of features/feature_service, or output names clash.
        """
        return self._resolve(features, feature_service, full_feature_names)

    def _resolve(self, features: list[str] | None, feature_service: str | FeatureService | None,
                 full_feature_names: bool) -> ResolvedFeatures:
        contents = self.definitions()
        service = feature_service if not isinstance(feature_service, FeatureService) else feature_service.name
        key = (tuple(features) if isinstance(features, list | tuple) else features, service, full_feature_names)
        try:
            cached = self._resolved.get(key)
        except TypeError:  # unhashable input: resolve() will explain what is wrong with it
            cached = None
        if cached is None:
            cached = resolve(contents, features=features, feature_service=feature_service,
                             full_feature_names=full_feature_names)
            if len(self._resolved) < 1024:
                self._resolved[key] = cached
        return cached

    # --- offline -------------------------------------------------------------------------------

    def get_historical_features(
        self,
        entity_df: Any,
        features: list[str] | None = None,
        *,
        feature_service: str | FeatureService | None = None,
        full_feature_names: bool = False,
        created_cutoff: bool = True,
        timestamp_column: str = "event_timestamp",
        progress: Progress | None = None,
        as_of: str | None = None,
    ) -> RetrievalJob:
        """A point-in-time-correct training set (lazy: runs on ``to_arrow``/``to_pandas``/``to_parquet``).

        Args:
            entity_df: entity rows with the join keys and ``timestamp_column``: a pandas DataFrame,
                a pyarrow Table, a Parquet path, or a SQL query over the sources (by source name).
            features: ``"view:feature"`` references; or pass ``feature_service``.
            feature_service: a registered feature service (name or object).
            full_feature_names: name columns ``view__feature`` instead of ``feature``.
            created_cutoff: ignore feature rows created after the entity row's timestamp
                (no leakage through late corrections). ``False`` reproduces tools that ignore it.
            timestamp_column: the entity rows' timestamp column.
            progress: optional ``progress(description, done, total)`` callback.
            as_of: a ``dataset_id`` from an earlier job: read exactly the definitions and source files
                that job read (pass the same entity rows to get the same training set, bit for bit).

        Raises:
            FeatureRefError: an unknown view or feature is requested.
            RetrievalError: entity rows lack a column, or output names clash.
            NotFoundError: ``as_of`` names no recorded dataset, or a file it read is gone or changed.
        """
        from pitstop.offline.retrieval import SourceFiles, build_training_set
        from pitstop.offline.source_check import FileVersion

        if as_of is None:
            version = self.registry.version()
            specs = self.registry.load_specs()
            contents = self.definitions()
            pinned = None
        else:
            record = self.registry.dataset(as_of)
            if record is None:
                raise NotFoundError(f"no dataset {as_of!r} is recorded in this registry")
            version, specs = record.definitions_version, record.definitions
            contents = from_specs(specs, allow_pickle=self.settings.registry.allow_pickle)
            pinned = {name: [FileVersion(f["ref"], int(f["size"]), str(f["version"]), f.get("table_version"))
                             for f in files] for name, files in record.sources.items()}
            if features is None and feature_service is None:
                features = record.features
            created_cutoff = record.options.get("created_cutoff", created_cutoff)
            full_feature_names = record.options.get("full_feature_names", full_feature_names)
            timestamp_column = record.options.get("timestamp_column", timestamp_column)
        resolved = resolve(contents, features=features, feature_service=feature_service,
                           full_feature_names=full_feature_names)
        requested = [str(r) for r in resolved.refs]
        job_state: dict[str, str] = {}

        def record_dataset(files: SourceFiles) -> None:
            sources = {name: [{"ref": v.ref, "size": v.size, "version": v.version}
                              | ({"table_version": v.table_version} if v.table_version is not None else {})
                              for v in versions] for name, versions in sorted(files.read.items())}
            options = {"created_cutoff": created_cutoff, "full_feature_names": full_feature_names,
                       "timestamp_column": timestamp_column}
            record = new_dataset_record(version, requested, sources, specs, options)
            self.registry.add_dataset(record)
            job_state["dataset_id"] = record.dataset_id

        def run() -> Any:
            for attempt in range(1, VANISHED_FILE_ATTEMPTS + 1):
                try:
                    files = SourceFiles(self.settings.offline_root, pinned, as_of)
                    table = build_training_set(self.offline, contents, resolved, entity_df,
                                               root=self.settings.offline_root, created_cutoff=created_cutoff,
                                               timestamp_column=timestamp_column, progress=progress, files=files)
                    record_dataset(files)
                    return table
                except (FileNotFoundError, OfflineStoreError) as exc:
                    # `pitstop compact` may replace a folder's files while they are read: list them again.
                    if attempt == VANISHED_FILE_ATTEMPTS or not _is_vanished_file(exc) or as_of is not None:
                        raise
                    log.warning("a source file vanished while the training set was read (compaction?); "
                                "listing the files again (attempt %d): %s", attempt + 1, exc)
            raise AssertionError("unreachable")

        from pitstop.offline.job import RetrievalJob

        return RetrievalJob(run, resolved.output_names, lambda: job_state.get("dataset_id"))

    # --- online --------------------------------------------------------------------------------

    def training_set_of(self, model: str, *, progress: Progress | None = None) -> RetrievalJob:
        """The training set a model version was registered with, rebuilt bit for bit from its dataset record.

        Args:
            model: ``name:version``, ``name@alias`` or ``name`` (latest).
            progress: optional ``progress(description, done, total)`` callback.

        Raises:
            NotFoundError: the version has no recorded training set, or a file it read is gone
                (compacted, vacuumed or overwritten): the message names it.
        """
        rows, dataset_id = self.models.training_entity_rows(model)
        return self.get_historical_features(str(rows), as_of=dataset_id, progress=progress)

    def materialize(self, start: datetime, end: datetime, views: list[str] | None = None,
                    *, progress: RowsProgress | None = None) -> list[ViewOutcome]:
        """Write the latest row per entity with ``start <= event < end`` of each online view (or ``views``).

        Watermarks are not moved; use ``materialize_incremental`` for scheduled runs.

        Raises:
            MaterializationError: some views failed (the others were written); re-running is safe.
        """
        from pitstop import materialize as mat

        chosen = mat.select_views(self.definitions().views, views)
        return mat.run(engine=self.offline, online=self.online, registry=self.registry, views=chosen,
                       root=self.settings.offline_root, start=start, end=end, progress=progress,
                       max_future_seconds=self.settings.online_store.max_future_seconds)

    def materialize_incremental(self, end: datetime | None = None, views: list[str] | None = None,
                                *, progress: RowsProgress | None = None) -> list[ViewOutcome]:
        """Materialize each view from its watermark (first run: ``end - ttl``, or its earliest data) to ``end``.

        Each window starts ``materialize.lookback_seconds`` before the watermark (late-landing rows).
        A view's watermark moves to ``end`` only after all its rows were written; re-running is
        harmless. A watermark of another online-store generation (the store was emptied or
        replaced) or one that ``apply`` reset (the view changed) is void: that view is refilled as
        on a first run, and its outcome's ``reason`` says so.
        """
        from pitstop import materialize as mat

        with self._lock:
            self._checked_at = 0.0  # definitions as of now, not of the last second (see run's version check)
        contents = self.definitions()
        cached = self._cache
        version = cached[0] if cached is not None and cached[1] is contents else -1  # -1: refreshed meanwhile, re-run
        chosen = mat.select_views(contents.views, views)
        return mat.run(engine=self.offline, online=self.online, registry=self.registry, views=chosen,
                       root=self.settings.offline_root, end=end or datetime.now(UTC), progress=progress,
                       lookback=timedelta(seconds=self.settings.materialize.lookback_seconds),
                       definitions_version=version,
                       max_future_seconds=self.settings.online_store.max_future_seconds)

    def compact_offline(self, sources: list[str] | None = None, *, min_age: timedelta = timedelta(hours=1),
                        dry_run: bool = False, progress: Callable[[str, int, int], None] | None = None,
                        ) -> list[CompactionOutcome]:
        """Merge the small files streaming and push appended to each Kafka/Push source's batch source.

        A Delta batch table is optimized (its small files rewritten into large ones, in one commit) and
        vacuumed (files unused for ``offline_store.delta_retention_hours`` deleted). A Parquet folder:
        per directory, every ``part-*``/``compacted-*`` file older than ``min_age`` becomes one
        ``compacted-*`` file; see ``pitstop.offline.compaction`` for the safety rules.

        Args:
            sources: Kafka or Push source names (default: all of them).
            min_age: files modified more recently are left alone.
            dry_run: only count what would be merged.

        Raises:
            OfflineStoreError: an unknown or non-appendable source, or an unreadable/unwritable file.
        """
        from pitstop.definitions import DeltaSource, KafkaSource, PushSource
        from pitstop.offline.compaction import compact_folder, compaction_targets
        from pitstop.offline.delta_append import compact_delta

        all_sources = self.definitions().sources
        targets = compaction_targets(all_sources, self.settings.offline_root, sources)
        outcomes = [compact_folder(name, folder, min_age=min_age, dry_run=dry_run, progress=progress)
                    for name, folder in targets.items()]
        for name in sorted(sources or all_sources):
            source = all_sources[name]
            if isinstance(source, KafkaSource | PushSource) and isinstance(source.batch_source, DeltaSource):
                outcomes.append(compact_delta(name, source.batch_source, self.settings.offline_root,
                                              retention_hours=self.settings.offline_store.delta_retention_hours,
                                              dry_run=dry_run))
        return outcomes

    def migrate_to_delta(self, source: str, path: str) -> tuple[int, int, str]:
        """Copy a Kafka or Push source's Parquet append folder into a new Delta table at ``path``.

        Then make the source's ``batch_source`` a ``DeltaSource`` with that path and ``apply``; the
        folder is left untouched (delete it once the new definitions are applied).

        Returns:
            (rows copied, files read, the table's location).

        Raises:
            NotFoundError: no such Kafka or Push source.
            OfflineStoreError: its batch source is not a local folder, or the target exists.
        """
        from pitstop.definitions import DeltaSource, KafkaSource, PushSource
        from pitstop.offline.append_folder import append_folder
        from pitstop.offline.delta_append import delta_location, migrate_folder
        from pitstop.offline.source_check import source_files

        found = self.definitions().sources.get(source)
        if not isinstance(found, KafkaSource | PushSource):
            raise NotFoundError(f"no Kafka or Push source named {source!r} (their batch sources are what streams "
                                "and pushes append to)")
        batch = found.batch_source
        if isinstance(batch, DeltaSource) or append_folder(batch, self.settings.offline_root) is None:
            raise OfflineStoreError(f"source {source!r}: its batch source {batch.name!r} is not a Parquet folder")
        files = source_files(batch, self.settings.offline_root)
        target = delta_location(DeltaSource(batch.name, path=path), self.settings.offline_root)
        rows = migrate_folder(source, files, target)
        return rows, len(files), target

    def get_online_features(
        self,
        features: list[str] | None = None,
        entity_rows: EntityRows | None = None,
        *,
        feature_service: str | FeatureService | None = None,
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """Latest feature values for ``entity_rows`` in one online-store round trip.

        Args:
            features: ``"view:feature"`` references; or pass ``feature_service``.
            entity_rows: a list of dicts (``[{"driver_id": 1001}]``) or a dict of columns
                (``{"driver_id": [1001, 1002]}``); extra fields are request data for on-demand views.
            feature_service: a registered feature service.
            full_feature_names: name columns ``view__feature``.

        Values older than their view's ttl come back as None with status OUTSIDE_MAX_AGE.
        """
        if entity_rows is None:
            raise RetrievalError("entity_rows is required")
        resolved = self._resolve(features, feature_service, full_feature_names)
        from pitstop.online.reader import read_online_features

        return read_online_features(self.online, resolved, entity_rows)

    def push(self, source_name: str, df: Any, to: PushMode = "online", *,
             timestamp_unit: Literal["s", "ms", "us", "ns"] = "s") -> WriteResult:
        """Write rows for every view fed by push source ``source_name``: ``to`` online, offline, or both.

        Online writes keep the latest row per entity and go through the event-time guard. Times are
        timestamps, ISO-8601 text or epoch numbers in ``timestamp_unit``, between 1900 and now plus
        ``online_store.max_future_seconds``; values must fit their dtypes (see docs/serving.md).

        Raises:
            InvalidValueError: a time or value is refused (names column, row and reason); nothing is written.
            RetrievalError: unknown source, no view reads it, or a column is missing.
        """
        from pitstop.boundary import latest_us
        from pitstop.push import push_rows, to_table

        contents = self.definitions()
        if source_name not in contents.sources:
            raise NotFoundError(f"unknown source {source_name!r}; known: {', '.join(sorted(contents.sources))}")
        views = [v for v in contents.views.values() if v.source.name == source_name]
        if not views:
            raise RetrievalError(f"no feature view reads from source {source_name!r}")
        return push_rows(self.online, views, to_table(df), to, self.settings.offline_root, timestamp_unit,
                         latest_us(self.settings.online_store.max_future_seconds))
