"""MLflow models in pitstop: import a registered MLflow model version, follow an MLflow alias, log lineage.

* ``register_from_mlflow`` copies an MLflow model version (``models:/NAME@ALIAS``, ``models:/NAME/3``
  or ``runs:/RUN/PATH``) into pitstop's artifact store as an ``mlflow``-flavored version, after
  checking that the pitstop feature service's columns are the MLflow signature's inputs. The MLflow
  URI, registered model, version, run id, signature and the artifact digest are kept in the
  version's ``origin``; importing the same MLflow version again returns the existing pitstop version.
* ``follow_alias`` polls an MLflow alias and, when it moves, imports the new version and moves the
  pitstop alias, so ``pitstop serve`` hot-swaps it like any alias move.
* ``log_lineage`` records a training set's dataset id, feature service and registry version on the
  active MLflow run (params and tags), so an MLflow model can be traced back to its pitstop data.

The tracking server is MLflow's own setting (``MLFLOW_TRACKING_URI`` or ``tracking_uri=``); its
credentials come from MLflow's usual environment variables and are never stored by pitstop.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pitstop.errors import ModelRegistryError, NotRegisteredError
from pitstop.extras import require_extra
from pitstop.log import get_logger
from pitstop.redaction import redact_url

if TYPE_CHECKING:
    from pitstop.model_registry import ModelVersion
    from pitstop.offline.job import RetrievalJob
    from pitstop.store import FeatureStore

__all__ = ["MlflowSource", "follow_alias", "log_lineage", "register_from_mlflow", "resolve_mlflow"]

log = get_logger(__name__)


@dataclass(frozen=True)
class MlflowSource:
    """One MLflow model version, as resolved on the tracking server."""

    model_uri: str
    """What the caller asked for (``models:/NAME@ALIAS`` ...)."""
    version_uri: str
    """The fixed version it resolved to (``models:/NAME/VERSION``, or the runs: URI)."""
    registered_model: str | None
    version: str | None
    run_id: str | None
    inputs: list[str] | None
    """The MLflow signature's input names (None: the model has no column signature)."""
    flavors: list[str]


def _mlflow() -> Any:
    require_extra("mlflow", "importing MLflow models", "mlflow")
    import mlflow

    return mlflow


def _client(tracking_uri: str | None) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def resolve_mlflow(model_uri: str, tracking_uri: str | None = None) -> MlflowSource:
    """Resolve ``model_uri`` to one fixed MLflow model version and read its signature.

    Raises:
        ModelRegistryError: the URI is malformed, or the model, version or alias does not exist.
    """
    mlflow = _mlflow()
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
    try:
        if model_uri.startswith("models:/"):
            rest = model_uri[len("models:/"):]
            client = _client(tracking_uri)
            if "@" in rest:
                name, alias = rest.split("@", 1)
                mv = client.get_model_version_by_alias(name, alias)
            elif "/" in rest:
                name, version = rest.split("/", 1)
                mv = client.get_model_version(name, version)
            else:
                raise ModelRegistryError(f"{model_uri!r}: give models:/NAME@ALIAS or models:/NAME/VERSION")
            registered, version, run_id = mv.name, str(mv.version), mv.run_id
            version_uri = f"models:/{registered}/{version}"
        elif model_uri.startswith("runs:/"):
            registered = version = None
            run_id = model_uri[len("runs:/"):].split("/", 1)[0]
            version_uri = model_uri
        else:
            raise ModelRegistryError(f"{model_uri!r} is not an MLflow model URI: use models:/NAME@ALIAS, "
                                     "models:/NAME/VERSION or runs:/RUN_ID/PATH")
        info = mlflow.models.get_model_info(version_uri)
    except ModelRegistryError:
        raise
    except Exception as exc:  # MlflowException and transport errors
        where = redact_url(tracking_uri or mlflow.get_tracking_uri())
        raise ModelRegistryError(f"cannot resolve MLflow model {model_uri!r} on {where}: {exc}") from exc
    schema = info.signature.inputs if info.signature is not None else None
    inputs = list(schema.input_names()) if schema is not None and schema.has_input_names() else None
    return MlflowSource(model_uri, version_uri, registered, version, run_id or info.run_id, inputs,
                        sorted(info.flavors))


def _check_signature(source: MlflowSource, columns: list[str], service: str) -> None:
    if source.inputs is None:
        log.warning("MLflow model %s has no column signature: its inputs cannot be checked against feature "
                    "service %s", source.version_uri, service)
        return
    missing = [c for c in source.inputs if c not in columns]
    extra = [c for c in columns if c not in source.inputs]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"the MLflow model needs {', '.join(missing)}, which feature service {service!r} does not give")
        if extra:
            parts.append(f"feature service {service!r} gives {', '.join(extra)}, which the MLflow model does not take")
        raise ModelRegistryError(f"{source.version_uri} does not fit feature service {service!r}: " + "; ".join(parts)
                                 + f" (MLflow signature: {', '.join(source.inputs)})")


def _imported(store: FeatureStore, name: str, source: MlflowSource) -> ModelVersion | None:
    """The pitstop version of ``name`` already imported from the same MLflow version, if any."""
    for mv in store.models.list(name):
        origin = mv.origin
        if origin.get("kind") == "mlflow" and origin.get("version_uri") == source.version_uri \
                and origin.get("run_id") == source.run_id:
            return mv
    return None


def register_from_mlflow(store: FeatureStore, name: str, model_uri: str, feature_service: str, *,
                         alias: str | None = None, tracking_uri: str | None = None, description: str = "",
                         serving: dict[str, Any] | None = None) -> ModelVersion:
    """Import an MLflow model version as the next version of pitstop model ``name`` (or return the one
    already imported from it), and point ``alias`` at it.

    Raises:
        ModelRegistryError: the MLflow model cannot be resolved or downloaded, or its signature does
            not match ``feature_service``'s columns.
        NotRegisteredError: ``feature_service`` is not registered.
    """
    source = resolve_mlflow(model_uri, tracking_uri)
    service = store.definitions().service(feature_service)
    columns = [ref.split(":")[-1] for ref in service.feature_refs]
    _check_signature(source, columns, feature_service)
    existing = _imported(store, name, source)
    if existing is not None:
        if alias is not None and alias not in existing.aliases:
            existing = store.models.set_alias(name, alias, existing.version)
        return existing
    mlflow = _mlflow()
    metrics: dict[str, float] = {}
    if source.run_id:
        try:
            run = _client(tracking_uri).get_run(source.run_id)
            metrics = {k: float(v) for k, v in run.data.metrics.items()}
        except Exception as exc:  # metrics are a convenience: the import does not depend on them
            log.warning("could not read the metrics of MLflow run %s: %s", source.run_id, exc)
    origin = {"kind": "mlflow", "model_uri": model_uri, "version_uri": source.version_uri,
              "registered_model": source.registered_model, "version": source.version, "run_id": source.run_id,
              "signature": source.inputs, "flavors": source.flavors,
              "tracking_uri": redact_url(tracking_uri or mlflow.get_tracking_uri())}
    with tempfile.TemporaryDirectory(prefix="pitstop-mlflow-import-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=source.version_uri, dst_path=tmp)
        except Exception as exc:
            raise ModelRegistryError(f"cannot download MLflow model {source.version_uri}: {exc}") from exc
        return store.models.register(
            name, local, "mlflow", feature_service, metrics, alias=alias, serving=serving, origin=origin,
            description=description or f"imported from MLflow {source.version_uri}")


@dataclass(frozen=True)
class FollowStep:
    """What one poll of ``follow_alias`` did."""

    mlflow_version: str | None
    pitstop_version: int
    moved: bool
    imported: bool


def follow_alias(store: FeatureStore, name: str, mlflow_alias: str, alias: str, feature_service: str | None = None,
                 *, mlflow_model: str | None = None, tracking_uri: str | None = None, interval: float = 10.0,
                 once: bool = False, stop: Callable[[], bool] | None = None,
                 on_step: Callable[[FollowStep], None] | None = None) -> FollowStep | None:
    """Keep pitstop's ``name@alias`` on the version MLflow's ``mlflow_model@mlflow_alias`` points at.

    Each poll resolves the MLflow alias; a version not imported yet is imported (with the feature
    service of the latest pitstop version of ``name`` unless ``feature_service`` is given), then the
    pitstop alias moves. A failed poll is logged and retried at the next interval (the served
    version stays as it is). Returns the last step when ``once`` or when ``stop()`` turns true.
    """
    model = mlflow_model or name
    last: FollowStep | None = None
    while True:
        try:
            last = _follow_once(store, name, f"models:/{model}@{mlflow_alias}", alias, feature_service, tracking_uri)
            if on_step is not None:
                on_step(last)
        except (ModelRegistryError, NotRegisteredError) as exc:
            if once:
                raise
            log.error("following MLflow %s@%s failed (retrying in %g s): %s", model, mlflow_alias, interval, exc)
        if once or (stop is not None and stop()):
            return last
        time.sleep(interval)


def _follow_once(store: FeatureStore, name: str, uri: str, alias: str, feature_service: str | None,
                 tracking_uri: str | None) -> FollowStep:
    source = resolve_mlflow(uri, tracking_uri)
    existing = _imported(store, name, source)
    imported = existing is None
    if existing is None:
        service = feature_service
        if service is None:
            known = store.models.list(name)
            service = known[-1].feature_service if known else None
        if service is None:
            raise ModelRegistryError(f"pitstop model {name!r} has no version yet: give the feature service "
                                     "(--service) for the first import")
        existing = register_from_mlflow(store, name, uri, service, tracking_uri=tracking_uri)
        log.info("imported MLflow %s as %s version %d", source.version_uri, name, existing.version)
    moved = alias not in existing.aliases
    if moved:
        store.models.set_alias(name, alias, existing.version)
        log.info("%s@%s -> version %d (MLflow %s)", name, alias, existing.version, source.version_uri)
    return FollowStep(source.version, existing.version, moved, imported)


def log_lineage(store: FeatureStore, job: RetrievalJob, feature_service: str | None = None) -> dict[str, str]:
    """Record a pitstop training set's lineage on the active MLflow run (params and tags); returns them.

    Logs ``pitstop.dataset_id`` (read the same data again with ``as_of=``), ``pitstop.feature_service``
    and ``pitstop.definitions_version`` (the registry version whose definitions it was built on).
    """
    mlflow = _mlflow()
    dataset_id = job.dataset_id
    values = {"pitstop.dataset_id": dataset_id or "", "pitstop.project": store.settings.project}
    if feature_service:
        values["pitstop.feature_service"] = feature_service
    record = store.registry.dataset(dataset_id) if dataset_id else None
    if record is not None:
        values["pitstop.definitions_version"] = str(record.definitions_version)
    mlflow.log_params(values)
    mlflow.set_tags(values)
    return values
