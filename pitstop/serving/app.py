"""The scoring service: a FastAPI app over one feature store and its model registry.

``create_app()`` is the factory gunicorn's workers call; each worker opens its own store
connections and model cache in the app's lifespan.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from pitstop.auth.factory import build_authenticator
from pitstop.definitions.resolve import ResolvedFeatures
from pitstop.errors import FeatureRefError, PitstopError
from pitstop.log import get_logger
from pitstop.monitoring.gauges import DriftCollector, cached
from pitstop.monitoring.prediction_log import Layout, LogEntry, PredictionLog, column_types, new_request_id
from pitstop.online.reader import read_online_features
from pitstop.redaction import redact_url
from pitstop.serving import errors as err
from pitstop.serving import push_route
from pitstop.serving.auth_middleware import AuthMiddleware, principal_of
from pitstop.serving.body_limit import BodyLimit
from pitstop.serving.errors import ApiError, from_pitstop_error, json_response
from pitstop.serving.fast_path import MAX_BODY_BYTES, FastPath
from pitstop.serving.inputs import RequestShape, check_columns, request_shape
from pitstop.serving.metrics import (
    LOG_DROPPED,
    LOG_ERRORS,
    LOG_LAG,
    LOG_WAITING,
    LOG_WRITTEN,
    MODEL_SWAPS,
    PREDICTIONS,
    TimingMiddleware,
    render,
)
from pitstop.serving.model_cache import DEFAULT_ALIAS, ModelCache, ServedModel
from pitstop.serving.offload import Offloader, waiting_on
from pitstop.serving.protocol_routes import add_protocol_routes, served_model
from pitstop.serving.route_scopes import OPEN, match_route
from pitstop.serving.schemas import (
    ErrorBody,
    FeaturesRequest,
    FeaturesResponse,
    ModelInfo,
    ModelsResponse,
    PredictRequest,
    PredictResponse,
    PushRequest,
    PushResponse,
)
from pitstop.serving.scoring import count_statuses, features_body, model_inputs, run_model
from pitstop.serving.ui.routes import add_ui_routes
from pitstop.settings import Settings, load_settings
from pitstop.store import FeatureStore

log = get_logger(__name__)

T = TypeVar("T")

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown model, alias, version, feature service or source."},
    422: {"model": ErrorBody, "description": "Invalid request; `fields` names each offending field."},
    503: {"model": ErrorBody, "description": "The online store or registry is unreachable."},
    401: {"model": ErrorBody, "description": "No, invalid, expired or revoked credentials (`Authorization: Bearer`)."},
    403: {"model": ErrorBody, "description": "The credentials lack the scope this route needs."},
}


class Service:
    """Per-worker state: the feature store, the model cache and cached request shapes."""

    def __init__(self, store: FeatureStore, owns_store: bool) -> None:
        self.store = store
        self.owns_store = owns_store
        self.settings = store.settings.serving
        self.cache = ModelCache(store.models, self.settings.model_refresh_seconds, on_swap=self._swapped,
                                on_ready=_freeze_gc)
        self.offload = Offloader(self.settings.threads, self.settings.request_timeout_ms)
        self.online_label = f"the online store {redact_url(store.settings.online_store.url)}"
        self._shapes: dict[int, tuple[Any, RequestShape]] = {}
        self._types: dict[int, tuple[Any, dict[str, Any]]] = {}
        self._layouts: dict[int, tuple[Any, Layout]] = {}
        self.drift_gauges = DriftCollector(cached(lambda: store.monitor.latest_results(), 15.0))
        monitoring = store.settings.monitoring
        enabled = monitoring.log_enabled
        if enabled and importlib.util.find_spec("deltalake") is None:
            log.warning("the prediction log is off: deltalake is not installed (pip install 'pitstop[serve]')")
            enabled = False
        self.prediction_log = PredictionLog(
            monitoring, store.settings.offline_root, on_drop=LOG_DROPPED.inc, on_written=LOG_WRITTEN.inc,
            on_error=LOG_ERRORS.inc, on_tick=_export_log_gauges) if enabled else None

    async def run(self, handler: Callable[[Service, Any], T], body: Any) -> T:
        """``handler(self, body)`` off the event loop, under the request deadline (503 past it)."""
        return await self.offload.run(handler, self, body, dependency="the registry")

    @staticmethod
    def _swapped(old: ServedModel, new: ServedModel) -> None:
        MODEL_SWAPS.labels(new.version.name).inc()

    def shape(self, resolved: ResolvedFeatures) -> RequestShape:
        return _memo(self._shapes, resolved, lambda: request_shape(resolved, self.store.settings.offline_root))

    def column_types(self, resolved: ResolvedFeatures) -> dict[str, Any]:
        """Arrow types of ``resolved``'s columns, for the prediction log (cached like ``shape``)."""
        return _memo(self._types, resolved, lambda: column_types(resolved))

    def log_layout(self, served: ServedModel, keys: list[str]) -> Layout:
        """The prediction-log column layout of ``served`` (cached per loaded version)."""
        return _memo(self._layouts, served, lambda: Layout(tuple(keys), tuple(served.columns)))

    def resolve(self, features: list[str] | None, service: str | None, full_names: bool,
                field: str) -> ResolvedFeatures:
        try:
            return self.store.resolve_features(features, feature_service=service, full_feature_names=full_names)
        except PitstopError as exc:
            raise from_pitstop_error(exc, field) from exc


def create_app(repo_path: str | Path | None = None, *, settings: Settings | None = None,
               store: FeatureStore | None = None) -> FastAPI:
    """Build the scoring app for the feature repo at ``repo_path`` (default: ``$PITSTOP_REPO`` or ``.``).

    Args:
        repo_path: the feature repo folder (holding ``pitstop.yaml``).
        settings: settings to use instead of reading ``pitstop.yaml``.
        store: an open FeatureStore to serve (tests); the app does not close it.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = store is None
        fs = store or FeatureStore(repo_path or os.environ.get("PITSTOP_REPO", "."),
                                   settings=settings or (load_settings(repo_path) if repo_path else None))
        service = Service(fs, owned)
        auth = build_authenticator(fs.settings.auth, fs.registry)
        if auth is None:
            log.warning("AUTH IS OFF (auth.enabled=false): every route answers anonymous callers with admin rights; "
                        "never expose this service beyond the loopback interface")
        else:
            auth.start()
        service.cache.start()
        if service.prediction_log is not None:
            service.prediction_log.start()
        app.state.service = service
        app.state.auth = auth
        log.info("serving feature repo %s (project %s)", fs.repo_path, fs.settings.project)
        try:
            yield
        finally:
            if auth is not None:
                auth.stop()
            service.cache.stop()
            service.offload.close()
            if service.prediction_log is not None:  # shutdown (SIGTERM): write what the buffer holds
                service.prediction_log.close()
                _export_log_gauges(service.prediction_log)
            if owned:
                fs.close()

    app = FastAPI(
        title="pitstop scoring service",
        summary="Online features and model predictions from a pitstop feature store.",
        version=_version(),
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)  # routes FastAPI serves
    app.add_middleware(FastPath, routes={
        "/features": (FeaturesRequest, features), "/predict": (PredictRequest, predict)})
    app.add_middleware(AuthMiddleware)  # before either lane runs
    app.add_middleware(TimingMiddleware)  # outermost: times both lanes and refusals
    app.add_exception_handler(RequestValidationError, err.validation_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, err.api_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(PitstopError, err.pitstop_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, err.http_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, err.unexpected_error_handler)

    def svc(request: Request) -> Service:
        return request.app.state.service

    # The FastPath middleware answers these two routes; they stay here for the OpenAPI schema and
    # share their handler functions with it.
    @app.post("/features", response_model=FeaturesResponse, responses=_ERRORS, tags=["features"])
    async def get_features(body: FeaturesRequest, request: Request) -> Response:
        """Latest feature values for a batch of entities, in one online-store round trip."""
        return json_response(await svc(request).run(features, body))

    @app.post("/predict", response_model=PredictResponse, responses={**_ERRORS, 409: {
        "model": ErrorBody, "description": "The model's input features are no longer registered."}},
        tags=["models"])
    async def get_predictions(body: PredictRequest, request: Request) -> Response:
        """Fetch the model's features for every entity, call the model once, return one prediction per entity."""
        return json_response(await svc(request).run(predict, body))

    @app.post("/push/{source}", response_model=PushResponse, responses=_ERRORS, tags=["features"])
    def push(source: str, body: PushRequest, request: Request) -> Response:
        """Write rows for every feature view fed by push source ``source`` (online, offline or both).

        Push sources only; times and values follow the boundary rules (docs/serving.md)."""
        result = push_route.push(svc(request).store, source, body)
        principal = principal_of(request.scope)
        log.info("push to %s by %s: %d rows written, %d stale", source,
                 principal.label if principal else "unknown", result["written"], result["stale"])
        return json_response(result)

    @app.get("/models", response_model=ModelsResponse, responses={k: _ERRORS[k] for k in (401, 403, 503)},
             tags=["models"])
    async def list_models(request: Request) -> Response:
        """Every registered model version with its aliases, and whether this worker serves it."""
        return json_response(await svc(request).run(_models, None))

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"], responses={503: {"model": ErrorBody, "description": "Not ready yet."}})
    async def ready(request: Request) -> Response:
        """Readiness: 200 once every aliased model is loaded and the registry and online store answer
        within the request deadline; else 503 naming what is not ready."""
        service = svc(request)
        if not service.cache.ready.is_set():
            return json_response({"error": "not_ready", "message": "loading models", "fields": []}, 503)
        unloadable = service.cache.unloadable()
        if unloadable:
            problems = "; ".join(f"{alias}: {reason}" for alias, reason in sorted(unloadable.items()))
            return json_response({"error": "not_ready", "message": f"models cannot be loaded: {problems}",
                                  "fields": [], "models": unloadable}, 503)
        try:
            version = await service.run(_check_dependencies, None)
        except ApiError as exc:
            return json_response({"error": "not_ready", "message": exc.message, "fields": []}, 503)
        except PitstopError as exc:
            return json_response({"error": "not_ready", "message": str(exc), "fields": []}, 503)
        return json_response({"status": "ready", "registry_version": version, "models": service.cache.served()})

    add_protocol_routes(app, svc, features)
    add_ui_routes(app, svc)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def metrics(request: Request) -> Response:
        """Prometheus metrics: request latency per endpoint, predictions per model version, feature statuses,
        the prediction log, and the latest drift results of `pitstop monitor run`."""
        data, content_type = render(svc(request).drift_gauges)
        return Response(data, media_type=content_type)

    _declare_bearer_auth(app)
    return app


def _declare_bearer_auth(app: FastAPI) -> None:
    """Mark every route that needs credentials in the OpenAPI schema (the "Authorize" button of /docs)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "A pitstop API key (`pitstop auth create-key`) or an OIDC access token."}}
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                rule = match_route(method.upper(), path)
                if rule is not None and rule.scope != OPEN:
                    operation["security"] = [{"bearer": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _models(service: Service, _body: None) -> dict[str, Any]:
    served_keys = {(k.split("@")[0], v) for k, v in service.cache.served().items()}
    models = [
        ModelInfo(name=v.name, version=v.version, flavor=v.flavor, aliases=v.aliases,
                  feature_service=v.feature_service, signature=v.signature, metrics=v.metrics,
                  created_at=v.created_at, served=(v.name, v.version) in served_keys)
        for v in service.store.models.list()
    ]
    return ModelsResponse(models=models).model_dump(mode="json")


def _check_dependencies(service: Service, _body: None) -> int:
    """The registry version, once the registry and the online store both answered."""
    version = service.store.registry.version()
    waiting_on(service.online_label)
    service.store.online.ping()
    return version


def features(service: Service, body: FeaturesRequest) -> dict[str, Any]:
    """POST /features: resolve (cached), check the request, one online read, Feast's response shape."""
    field = "feature_service" if body.feature_service is not None else "features"
    resolved = service.resolve(body.features, body.feature_service, body.full_feature_names, field)
    cols, _ = check_columns(body.entities, body.request_data, service.shape(resolved), service.settings.max_entities)
    return features_body(_read(service, resolved, cols))


def predict(service: Service, body: PredictRequest) -> dict[str, Any]:
    """POST /predict: the served version's features for every entity, one model call, predictions in order."""
    served = _served(service, body)
    waiting_on("the registry")
    mv = served.version
    if not served.features:
        raise ApiError(422, "model_without_signature",
                       f"model {body.model!r} version {mv.version} was registered without a feature service, "
                       "so /predict cannot fetch its inputs", "model")
    try:
        resolved = service.store.resolve_features(served.features)
    except FeatureRefError as exc:
        raise ApiError(409, "model_incompatible", f"model {body.model!r} version {mv.version} needs features that "
                       f"are no longer registered: {exc}", "model") from exc
    cols, n = check_columns(body.entities, body.request_data, service.shape(resolved), service.settings.max_entities)
    response = _read(service, resolved, cols)
    keys = list(resolved.join_keys)
    waiting_on(f"model {mv.name!r} version {mv.version}")
    predictions = run_model(served, model_inputs(served, response, keys))
    PREDICTIONS.labels(mv.name, str(mv.version)).inc(n)
    count_statuses(response, served.columns)
    request_id = body.request_id or new_request_id()
    prediction_log = service.prediction_log
    if prediction_log is not None and prediction_log.sampled():
        prediction_log.record(LogEntry.of(
            request_id, time.time_ns() // 1000, mv.name, mv.version,
            None if body.version is not None else (body.alias or DEFAULT_ALIAS), n,
            response.values, response.values, response.statuses, body.request_data, predictions,
            service.column_types(resolved), service.log_layout(served, keys)))
    out: dict[str, Any] = {"model": mv.name, "version": mv.version, "request_id": request_id,
                           "predictions": predictions}
    if body.return_features:
        names = keys + served.columns
        out["features"] = {"values": {c: response.values[c] for c in names},
                           "statuses": {c: response.statuses[c] for c in names}}
    return out


def _read(service: Service, resolved: ResolvedFeatures, cols: dict[str, list[Any]]) -> Any:
    waiting_on(service.online_label)
    try:
        return read_online_features(service.store.online, resolved, cols)
    except PitstopError as exc:
        raise from_pitstop_error(exc, "entities") from exc


def _served(service: Service, body: PredictRequest) -> ServedModel:
    return served_model(service, body.model, body.alias, body.version)


def _memo(cache: dict[int, tuple[Any, T]], owner: object, build: Callable[[], T]) -> T:
    """``build()`` cached per ``owner`` object; holding ``owner`` keeps its id from being reused."""
    hit = cache.get(id(owner))
    if hit is None or hit[0] is not owner:
        if len(cache) > 1024:
            cache.clear()
        hit = (owner, build())
        cache[id(owner)] = hit
    return hit[1]


def _export_log_gauges(prediction_log: PredictionLog) -> None:
    LOG_LAG.set(prediction_log.lag_seconds())
    LOG_WAITING.set(prediction_log.waiting_rows)


def _freeze_gc() -> None:
    """Move every object alive after start-up (modules, app, store, models) out of the collector's reach.

    A worker holds a few hundred thousand long-lived objects; each full collection walked all of
    them (about 40-100 ms on the benchmark machine), a pause that landed in the latency tail.
    Frozen objects are never collected (they live as long as the worker anyway).
    """
    gc.collect()
    gc.freeze()


def _version() -> str:
    from pitstop import __version__

    return __version__
