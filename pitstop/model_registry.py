"""ModelRegistry: immutable, numbered model versions with movable aliases (``store.models``).

Each version records its artifact (copied into the artifact store with its sha256), flavor, the
feature service it was trained on (its ordered feature list is the model's input signature), a
fingerprint of its training set, metrics and creation time. Aliases such as ``production`` move.
"""

from __future__ import annotations

import builtins
import hashlib
import re
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, ValidationError

from pitstop.artifacts.base import ArtifactStorage
from pitstop.artifacts.flavors import PICKLE_FLAVORS, LoadedModel, check_flavor, load_model, save_model
from pitstop.errors import ModelRegistryError, NotFoundError, NotRegisteredError
from pitstop.log import get_logger
from pitstop.offline.job import RetrievalJob
from pitstop.registry.base import ModelAliasRecord, ModelVersionRecord

if TYPE_CHECKING:
    from pitstop.definitions.contents import RepoContents
    from pitstop.registry.base import Registry

log = get_logger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
TrainingSet: TypeAlias = "pd.DataFrame | pa.Table | RetrievalJob"


class ServingPolicy(BaseModel):
    """How ``/predict`` feeds and calls a model version; fixed at registration like the artifact.

    Attributes:
        defaults: a value per input feature (by its column name) to use when the feature is
            missing (``NOT_FOUND``), expired (``OUTSIDE_MAX_AGE``) or null. A missing feature
            without a declared default makes ``/predict`` answer 422 naming the entity and feature.
        predict_method: ``predict`` returns the model's ``predict``; ``predict_proba`` returns
            class probabilities (the positive class's for a binary classifier).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: dict[str, float | int | str | bool] = {}
    predict_method: Literal["predict", "predict_proba"] = "predict"


class ModelVersion(BaseModel):
    """One registered, immutable model version (and the aliases pointing at it)."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    flavor: str
    artifact_path: str
    sha256: str
    feature_service: str | None
    signature: list[str]
    training_fingerprint: str | None
    metrics: dict[str, float]
    created_at: datetime
    description: str = ""
    aliases: list[str] = []
    serving: ServingPolicy = ServingPolicy()
    dataset_id: str | None = None
    """The training set's dataset record (``store.registry.dataset(id)``): what data trained it."""
    origin: dict[str, Any] = {}
    """Where an imported model came from (``{"kind": "mlflow", "model_uri": ..., "run_id": ..., ...}``)."""

    @property
    def ref(self) -> str:
        """``name:version``, accepted wherever a model reference is."""
        return f"{self.name}:{self.version}"

    @property
    def feature_columns(self) -> list[str]:
        """Input column names in signature order (the feature part of each ``view:feature``)."""
        return [ref.split(":")[-1] for ref in self.signature]


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ModelRegistryError(
            f"invalid {what} {value!r}: use letters, digits, '_', '.' and '-' (':' and '@' separate versions and aliases)"
        )
    return value


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """Split ``name``, ``name:version`` or ``name@alias`` into (name, version, alias).

    Raises:
        ModelRegistryError: the reference is malformed.
    """
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return _check_name(name, "model name"), None, _check_name(alias, "alias")
    if ":" in ref:
        name, version = ref.split(":", 1)
        if not version.isdigit():
            raise ModelRegistryError(f"invalid model reference {ref!r}: the part after ':' must be a version number")
        return _check_name(name, "model name"), int(version), None
    return _check_name(ref, "model name"), None, None


def training_fingerprint(training_set: TrainingSet, definitions_version: int, feature_columns: list[str]) -> str:
    """sha256 over the training set's entity-row columns (not feature values) and the definitions version.

    Feature columns (those of a ``RetrievalJob``, or ``feature_columns``) are left out, so the
    fingerprint names which rows were trained on, against which registered definitions.
    """
    if isinstance(training_set, RetrievalJob):
        skip = set(training_set.feature_names)
        frame = training_set.to_pandas()
    elif isinstance(training_set, pa.Table):
        skip, frame = set(feature_columns), training_set.to_pandas()
    elif isinstance(training_set, pd.DataFrame):
        skip, frame = set(feature_columns), training_set
    else:
        raise ModelRegistryError(
            f"training_set must be a pandas DataFrame, pyarrow Table or RetrievalJob, got {type(training_set).__name__}"
        )
    digest = hashlib.sha256(f"definitions:{definitions_version};rows:{len(frame)}".encode())
    for column in sorted(c for c in frame.columns if c not in skip):
        series = frame[column]
        digest.update(f";{column}:{series.dtype}".encode())
        digest.update(pd.util.hash_pandas_object(series, index=False).to_numpy().tobytes())
    return digest.hexdigest()


class ModelRegistry:
    """Registers, lists, aliases and loads models of one feature store (``FeatureStore.models``).

    Args:
        registry: where versions and aliases are recorded.
        artifacts: where artifact files are copied and read back (sha256-checked).
        definitions: returns the registered definitions (a model's feature service is checked there).
        allow_pickle: whether pickle-based flavors (sklearn, pyfunc) may be loaded in this process.
        training_rows: where the entity rows of training sets given as a ``RetrievalJob`` are kept
            (by fingerprint), so ``training_set_of`` can rebuild them.
        on_register: called with each new version and its training set (the store profiles it for
            monitoring); a failure there is logged, never fails the registration.
    """

    def __init__(self, registry: Registry, artifacts: ArtifactStorage, definitions: Callable[[], RepoContents], *,
                 allow_pickle: bool = True, training_rows: Path | None = None,
                 on_register: Callable[[ModelVersion, pa.Table], object] | None = None) -> None:
        self._registry = registry
        self._on_register = on_register
        self._training_rows = training_rows
        self._definitions = definitions
        self._allow_pickle = allow_pickle
        self.artifacts = artifacts

    def register(
        self,
        name: str,
        model: Any,
        flavor: str,
        feature_service: str | None = None,
        metrics: Mapping[str, float] | None = None,
        training_set: TrainingSet | None = None,
        *,
        description: str = "",
        alias: str | None = None,
        serving: ServingPolicy | Mapping[str, Any] | None = None,
        origin: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Copy a model into the artifact store and record it as the next version of ``name``.

        Args:
            name: the model name.
            model: a model object of the flavor, or the path of a saved artifact (file or directory).
            flavor: ``sklearn``, ``lightgbm``, ``xgboost``, ``onnx`` or ``pyfunc``.
            feature_service: the registered feature service the model was trained on.
            metrics: numeric evaluation metrics, e.g. ``{"auc": 0.91}``.
            training_set: the training set (DataFrame, Arrow table or RetrievalJob) to fingerprint.
            description: free text.
            alias: point this alias (e.g. ``staging``) at the new version.
            serving: how ``/predict`` treats missing features and which predict method it calls
                (a ``ServingPolicy`` or its fields as a dict); default: reject missing features, ``predict``.
            origin: where an imported model came from (JSON-able; kept in the version's record).

        Raises:
            ModelRegistryError: invalid name, flavor, metrics or model, or the artifact cannot be stored.
            NotRegisteredError: ``feature_service`` is not registered (run ``pitstop apply``).
        """
        _check_name(name, "model name")
        check_flavor(flavor)
        signature: list[str] = []
        if feature_service is not None:
            signature = list(self._definitions().service(feature_service).feature_refs)
        clean_metrics = _check_metrics(metrics or {})
        policy = _check_policy(serving, [ref.split(":")[-1] for ref in signature], flavor)
        fingerprint = dataset_id = None
        if training_set is not None:
            columns = [ref.split(":")[-1] for ref in signature]
            fingerprint = training_fingerprint(training_set, self._registry.version(), columns)
            if isinstance(training_set, RetrievalJob):
                dataset_id = training_set.dataset_id
                self._keep_entity_rows(training_set, fingerprint)

        staging, digest, filename = self._stage(name, model, flavor)
        record = ModelVersionRecord(name, 0, flavor, f"{name}/{{version}}/{filename}", digest, feature_service,
                                    signature, fingerprint, clean_metrics, datetime.now(UTC), description,
                                    policy.model_dump(), dataset_id, dict(origin or {}))
        try:
            version = self._registry.add_model_version(record)
        except Exception:
            self.artifacts.discard(staging)
            raise
        self.artifacts.publish(staging, name, version)
        if alias is not None:
            self.set_alias(name, alias, version)
        registered = self.get(name, version)
        if training_set is not None and self._on_register is not None:
            try:
                self._on_register(registered, _as_arrow(training_set))
            except Exception as exc:  # the version is registered; monitoring can profile it later
                log.warning("model %s: its training set could not be profiled for monitoring: %s", registered.ref, exc)
        return registered

    def _keep_entity_rows(self, job: RetrievalJob, fingerprint: str) -> None:
        if self._training_rows is None:
            return
        table = job.to_arrow()
        entity = table.select([c for c in table.column_names if c not in set(job.feature_names)])
        target = self._training_rows / f"{fingerprint}.parquet"
        if not target.exists():
            import pyarrow.parquet as pq

            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            pq.write_table(entity, tmp)
            tmp.replace(target)

    def training_entity_rows(self, ref: str | ModelVersion) -> tuple[Path, str]:
        """The entity rows and dataset id a version was trained on (see ``FeatureStore.training_set_of``).

        Raises:
            NotFoundError: the version was registered without a RetrievalJob as its training set, or
                its kept entity rows were deleted.
        """
        mv = ref if isinstance(ref, ModelVersion) else self.resolve(ref)
        if mv.dataset_id is None or mv.training_fingerprint is None or self._training_rows is None:
            raise NotFoundError(f"model {mv.ref} was registered without a training set from get_historical_features "
                                "(training_set=job), so pitstop does not know which data trained it")
        path = self._training_rows / f"{mv.training_fingerprint}.parquet"
        if not path.exists():
            raise NotFoundError(f"model {mv.ref}: its training entity rows {path} were deleted")
        return path, mv.dataset_id

    def _stage(self, name: str, model: Any, flavor: str) -> tuple[Path, str, str]:
        if isinstance(model, str | Path):
            source = Path(model).expanduser()
            staging, digest = self.artifacts.stage(name, source)
            return staging, digest, source.name
        with tempfile.TemporaryDirectory(prefix="pitstop-model-") as tmp:
            written = save_model(flavor, model, Path(tmp))
            staging, digest = self.artifacts.stage(name, written)
        return staging, digest, written.name

    def list(self, name: str | None = None) -> list[ModelVersion]:
        """Every version of ``name`` (of every model when ``None``), oldest first, with their aliases."""
        if name is not None:
            _check_name(name, "model name")
        aliases: dict[tuple[str, int], list[str]] = {}
        for a in self._registry.model_aliases(name):
            aliases.setdefault((a.name, a.version), []).append(a.alias)
        return [_to_version(r, aliases.get((r.name, r.version), [])) for r in self._registry.model_versions(name)]

    def page(self, name: str, offset: int = 0, limit: int = 50) -> tuple[builtins.list[ModelVersion], int]:
        """Versions of ``name``, newest first, ``limit`` of them from ``offset``, and the total: one page."""
        _check_name(name, "model name")
        records, total = self._registry.model_version_page(name, offset, limit)
        aliases: dict[int, builtins.list[str]] = {}
        for a in self._registry.model_aliases(name):
            aliases.setdefault(a.version, []).append(a.alias)
        return [_to_version(r, aliases.get(r.version, [])) for r in records], total

    def summaries(self, offset: int = 0, limit: int = 50) -> tuple[builtins.list[tuple[str, int, int]], int]:
        """(name, versions, latest version) per model, by name, one page of them; and how many models there are."""
        return self._registry.model_summaries(offset, limit)

    def aliases(self, name: str | None = None) -> builtins.list[ModelAliasRecord]:
        """Every alias (of ``name``, or of every model) with the version it points at: one registry query."""
        return self._registry.model_aliases(name)

    def get(self, name: str, version: int | None = None, *, alias: str | None = None) -> ModelVersion:
        """One version: by number, by alias, or the latest when neither is given.

        Raises:
            NotRegisteredError: the model, version or alias does not exist.
        """
        _check_name(name, "model name")
        if alias is not None:
            version = self.get_alias(name, alias)
        if version is None:
            versions = self._registry.model_versions(name)
            if not versions:
                raise NotRegisteredError(f"no model named {name!r} is registered; register it with store.models.register")
            version = versions[-1].version
        # versions are positive 64-bit integers; anything else cannot be registered (and would overflow the store)
        record = self._registry.model_version(name, version) if 0 < version < 2**63 else None
        if record is None:
            known = [v.version for v in self._registry.model_versions(name)]
            raise NotRegisteredError(f"model {name!r} has no version {version} (registered versions: {known or 'none'})")
        aliases = [a.alias for a in self._registry.model_aliases(name) if a.version == version]
        return _to_version(record, aliases)

    def resolve(self, ref: str) -> ModelVersion:
        """The version named by ``name``, ``name:version`` or ``name@alias``."""
        name, version, alias = parse_ref(ref)
        return self.get(name, version, alias=alias)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``name@alias`` at ``version``; returns that version.

        Raises:
            ModelRegistryError: the alias name is invalid.
            NotRegisteredError: the version does not exist.
        """
        _check_name(alias, "alias")
        target = self.get(name, version)
        self._registry.set_model_alias(name, alias, target.version)
        return self.get(name, version)

    def get_alias(self, name: str, alias: str) -> int:
        """The version ``name@alias`` points at.

        Raises:
            NotRegisteredError: the alias is not set.
        """
        for a in self._registry.model_aliases(name):
            if a.alias == alias:
                return a.version
        raise NotRegisteredError(f"model {name!r} has no alias {alias!r}; set it with `pitstop models promote`")

    def load(self, ref: str | ModelVersion) -> LoadedModel:
        """Verify a version's artifact against its sha256 and load it.

        Args:
            ref: a ``ModelVersion`` or ``name``, ``name:version``, ``name@alias``.

        Raises:
            ArtifactIntegrityError: the artifact is missing or was modified.
            ModelRegistryError: the flavor's library is missing or the artifact cannot be read.
        """
        mv = ref if isinstance(ref, ModelVersion) else self.resolve(ref)
        if mv.flavor in PICKLE_FLAVORS and not self._allow_pickle:
            raise ModelRegistryError(
                f"model {mv.name!r} version {mv.version} is a {mv.flavor} artifact (a pickle, which runs code when "
                "loaded) and registry.allow_pickle is false in this process; register it as onnx, lightgbm or "
                "xgboost, or allow pickles where the registry's writers are trusted (docs/security.md)")
        content = self.artifacts.read_verified(mv.artifact_path, mv.sha256)
        return load_model(mv.flavor, content, mv.feature_columns)


def _as_arrow(training_set: TrainingSet) -> pa.Table:
    if isinstance(training_set, RetrievalJob):
        return training_set.to_arrow()
    if isinstance(training_set, pd.DataFrame):
        return pa.Table.from_pandas(training_set, preserve_index=False)
    return training_set


def _check_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    clean: dict[str, float] = {}
    for key, value in metrics.items():
        try:
            clean[str(key)] = float(value)
        except (TypeError, ValueError) as exc:
            raise ModelRegistryError(f"metric {key!r} must be a number, got {value!r}") from exc
    return clean


def _check_policy(serving: ServingPolicy | Mapping[str, Any] | None, columns: list[str], flavor: str) -> ServingPolicy:
    if serving is None:
        return ServingPolicy()
    try:
        policy = serving if isinstance(serving, ServingPolicy) else ServingPolicy.model_validate(dict(serving))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ModelRegistryError(f"serving policy: {where}: {first['msg']}") from exc
    unknown = sorted(set(policy.defaults) - set(columns))
    if unknown:
        raise ModelRegistryError(
            f"serving policy: default for {unknown[0]!r}, which is not an input of the model "
            f"(its inputs: {', '.join(columns) or 'none; pass feature_service'})"
        )
    if policy.predict_method == "predict_proba" and flavor not in ("sklearn", "pyfunc"):
        raise ModelRegistryError(
            f"serving policy: predict_method 'predict_proba' needs the sklearn or pyfunc flavor, not {flavor!r} "
            "(lightgbm and xgboost boosters already predict probabilities for binary objectives)"
        )
    return policy


def _to_version(record: ModelVersionRecord, aliases: list[str]) -> ModelVersion:
    return ModelVersion(
        name=record.name, version=record.version, flavor=record.flavor, artifact_path=record.artifact_path,
        sha256=record.sha256, feature_service=record.feature_service, signature=record.signature,
        training_fingerprint=record.training_fingerprint, metrics=record.metrics, created_at=record.created_at,
        description=record.description, aliases=sorted(aliases),
        serving=ServingPolicy.model_validate(record.serving or {}), dataset_id=record.dataset_id,
        origin=record.origin,
    )
