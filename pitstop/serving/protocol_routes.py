"""Routes that speak other tools' protocols, so their clients can point at pitstop unchanged.

* MLflow's scoring server: ``POST /invocations``.
* The Open Inference Protocol (KServe V2): ``/v2``, ``/v2/health/{live,ready}``,
  ``/v2/models/{name}[/versions/{version}]`` (metadata), ``.../ready`` and ``.../infer``.
* Feast's feature server: ``POST /get-online-features`` (the body and answer of ``/features``) and
  ``POST /push`` (``push_source_name``, column-oriented ``df``, ``to``).

Each needs the same scope as its native counterpart (``route_scopes.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

import numpy as np
import pyarrow as pa
from fastapi import FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from starlette.responses import Response

from pitstop.errors import NotRegisteredError, PitstopError
from pitstop.log import get_logger
from pitstop.monitoring.prediction_log import Layout, LogEntry, column_types, new_request_id
from pitstop.serving import push_route
from pitstop.serving.auth_middleware import principal_of
from pitstop.serving.errors import ApiError, from_pitstop_error, json_response
from pitstop.serving.inference_protocols import (
    InferRequest,
    InvocationsRequest,
    columns_from_invocation,
    columns_from_tensors,
    infer_response,
    model_frame,
    model_metadata,
    score,
)
from pitstop.serving.metrics import LOG_DROPPED, PREDICTIONS
from pitstop.serving.model_cache import DEFAULT_ALIAS, ServedModel
from pitstop.serving.offload import waiting_on
from pitstop.serving.schemas import FeaturesRequest, FeaturesResponse, PushRequest, PushResponse, Scalar


class Service(Protocol):
    """What these routes use of the app's per-worker ``Service`` (pitstop.serving.app)."""

    store: Any
    settings: Any
    cache: Any
    prediction_log: Any

    async def run(self, handler: Callable[[Any, Any], Any], body: Any) -> Any: ...

log = get_logger(__name__)

__all__ = ["add_protocol_routes", "served_model"]


def served_model(service: Service, model: str, alias: str | None, version: int | None) -> ServedModel:
    """The loaded model a request asks for (404 naming the field when it does not exist)."""
    waiting_on(f"the model registry (loading model {model!r})")
    try:
        return service.cache.get(model, alias, version)
    except NotRegisteredError as exc:
        if not service.store.models.list(model):
            field = "model"
        else:
            field = "version" if version is not None else "alias"
        raise ApiError(404, "not_found", str(exc), field) from exc
    except PitstopError as exc:
        raise from_pitstop_error(exc, "model") from exc


def _invocations_target(service: Service, model: str | None) -> tuple[str, str | None]:
    """(name, alias) /invocations scores: ``?model=``, else ``serving.invocations_model``, else the only model."""
    chosen = model or service.settings.invocations_model
    if chosen:
        name, _, alias = chosen.partition("@")
        return name, alias or None
    names = sorted({v.name for v in service.store.models.list()})
    if len(names) == 1:
        return names[0], None
    raise ApiError(422, "model_required", "several models are registered "
                   f"({', '.join(names[:10])}{', ...' if len(names) > 10 else ''}) and serving.invocations_model is "
                   "not set: pass ?model=NAME (or NAME@ALIAS), or set it" if names else "no model is registered",
                   "model")


def _input_types(service: Service, served: ServedModel) -> dict[str, pa.DataType]:
    """Declared types of the model's inputs (its feature service's), by column; empty when unknown."""
    try:
        return column_types(service.store.resolve_features(served.features)) if served.features else {}
    except PitstopError:
        return {}


def _log(service: Service, served: ServedModel, alias: str | None, request_id: str, frame: Any, rows: int,
         predictions: list[Any], types: dict[str, pa.DataType]) -> None:
    """Record a request that carried its own inputs (no entity keys; every input PRESENT)."""
    prediction_log = service.prediction_log
    if prediction_log is None or not prediction_log.sampled():
        return
    columns = served.columns
    data = frame.T.tolist() if isinstance(frame, np.ndarray) else [frame[c].tolist() for c in columns]
    values = dict(zip(columns, data, strict=True))
    try:  # a value that does not fit its declared type would fail the whole batch's write later
        for c in columns:
            pa.array(values[c], type=types.get(c))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        LOG_DROPPED.inc(rows)
        return
    statuses = {c: ["PRESENT"] * rows for c in columns}
    mv = served.version
    prediction_log.record(LogEntry.of(request_id, time.time_ns() // 1000, mv.name, mv.version, alias, rows,
                                      {}, values, statuses, None, predictions, types, Layout((), tuple(columns))))


def _score_given(service: Service, served: ServedModel, given: dict[str, list[Any]], field: str,
                 alias: str | None, request_id: str) -> list[Any]:
    """Score caller-given inputs: model frame, one model call, the metrics and the prediction log."""
    types = _input_types(service, served)
    frame, rows = model_frame(served, given, field, types)
    mv = served.version
    waiting_on(f"model {mv.name!r} version {mv.version}")
    predictions = score(served, frame)
    PREDICTIONS.labels(mv.name, str(mv.version)).inc(rows)
    _log(service, served, alias, request_id, frame, rows, predictions, types)
    return predictions


def invocations(service: Service, call: tuple[InvocationsRequest, str | None]) -> dict[str, Any]:
    """POST /invocations: MLflow's scoring protocol on a pitstop-served model."""
    body, model = call
    name, alias = _invocations_target(service, model)
    served = served_model(service, name, alias, None)
    given, field = columns_from_invocation(body, served.columns)
    return {"predictions": _score_given(service, served, given, field, alias or DEFAULT_ALIAS, new_request_id())}


def infer(service: Service, call: tuple[str, int | None, InferRequest]) -> dict[str, Any]:
    """POST /v2/models/{name}[/versions/{version}]/infer."""
    name, version, body = call
    served = served_model(service, name, None, version)
    given, field = columns_from_tensors(body, served.columns)
    request_id = body.id or new_request_id()
    alias = None if version is not None else DEFAULT_ALIAS
    return infer_response(served, _score_given(service, served, given, field, alias, request_id), request_id)


def metadata(service: Service, call: tuple[str, int | None]) -> dict[str, Any]:
    name, version = call
    served = served_model(service, name, None, version)
    return model_metadata(served, [v.version for v in service.store.models.list(name)])


class FeastPushRequest(BaseModel):
    """POST /push in Feast's shape: a push source's rows as columns."""

    model_config = ConfigDict(extra="forbid")
    push_source_name: StrictStr = Field(..., min_length=1)
    df: dict[str, list[Scalar]] = Field(..., min_length=1, description="Columns of equal length, Feast's `df`.")
    to: Literal["online", "offline", "online_and_offline"] = "online"
    allow_registry_cache: StrictBool = True
    transform_on_write: StrictBool = True
    timestamp_unit: Literal["s", "ms", "us", "ns"] = Field(
        "s", description="pitstop's addition: the unit of numeric times (Feast clients send ISO text).")


class FeastFeaturesRequest(FeaturesRequest):
    """POST /get-online-features: Feast's body (its extra flags are accepted and ignored)."""

    include_feature_view_version_metadata: StrictBool = False


def add_protocol_routes(app: FastAPI, svc: Callable[[Request], Service],
                        features: Callable[[Any, Any], dict[str, Any]]) -> None:
    """Register the protocol routes on ``app`` (``features`` is the /features handler to share)."""

    async def run(request: Request, handler: Callable[[Service, Any], dict[str, Any]], call: Any) -> Response:
        return json_response(await svc(request).run(handler, call))

    @app.post("/invocations", tags=["protocols"])
    async def mlflow_invocations(body: InvocationsRequest, request: Request,
                                 model: str | None = Query(None, description="NAME or NAME@ALIAS; default "
                                                           "serving.invocations_model, else the only model")
                                 ) -> Response:
        """MLflow's scoring protocol: the caller sends the model's inputs; answers ``{"predictions": [...]}``."""
        return await run(request, invocations, (body, model))

    @app.get("/ping", tags=["protocols"])
    async def mlflow_ping() -> Response:
        """MLflow's scoring-server liveness probe (its client waits on it)."""
        return Response(b"\n", media_type="application/json")

    @app.get("/v2", tags=["protocols"])
    async def v2_server() -> dict[str, Any]:
        """Open Inference Protocol server metadata."""
        from pitstop import __version__

        return {"name": "pitstop", "version": __version__, "extensions": []}

    @app.get("/v2/health/live", tags=["protocols"])
    async def v2_live() -> dict[str, bool]:
        """Open Inference Protocol liveness."""
        return {"live": True}

    @app.get("/v2/health/ready", tags=["protocols"])
    async def v2_ready(request: Request) -> Response:
        """Open Inference Protocol readiness: aliased models loaded (like /ready, without the store checks)."""
        service = svc(request)
        ok = service.cache.ready.is_set() and not service.cache.unloadable()
        return json_response({"ready": ok}, 200 if ok else 503)

    def _model_routes(prefix: str, versioned: bool) -> None:
        def key(name: str, version: int | None) -> tuple[str, int | None]:
            return name, version if versioned else None

        async def meta(request: Request, name: str, version: int | None = None) -> Response:
            return await run(request, metadata, key(name, version))

        async def ready(request: Request, name: str, version: int | None = None) -> Response:
            await svc(request).run(metadata, key(name, version))  # loads it, or answers 404
            return json_response({"name": name, "ready": True})

        async def do_infer(body: InferRequest, request: Request, name: str, version: int | None = None) -> Response:
            return await run(request, infer, (*key(name, version), body))

        app.get(prefix, tags=["protocols"], summary="Open Inference Protocol model metadata")(meta)
        app.get(f"{prefix}/ready", tags=["protocols"], summary="Open Inference Protocol model readiness")(ready)
        app.post(f"{prefix}/infer", tags=["protocols"], summary="Open Inference Protocol inference")(do_infer)

    _model_routes("/v2/models/{name}", versioned=False)
    _model_routes("/v2/models/{name}/versions/{version}", versioned=True)

    @app.post("/get-online-features", response_model=FeaturesResponse, tags=["protocols"])
    async def feast_online_features(body: FeastFeaturesRequest, request: Request) -> Response:
        """Feast's feature-server route: the same body and answer as /features."""
        return await run(request, features, FeaturesRequest.model_validate(
            body.model_dump(exclude={"include_feature_view_version_metadata"})))

    @app.post("/push", response_model=PushResponse, tags=["protocols"])
    def feast_push(body: FeastPushRequest, request: Request) -> Response:
        """Feast's push route: ``df`` holds the push source's rows as columns."""
        lengths = {len(v) for v in body.df.values()}
        if len(lengths) != 1:
            raise ApiError(422, "invalid_request", f"every df column must hold the same number of values "
                           f"(got {sorted(lengths)})", "df")
        n = lengths.pop()
        if n == 0:
            raise ApiError(422, "invalid_request", "df holds no rows", "df")
        rows = [{c: v[i] for c, v in body.df.items()} for i in range(n)]
        native = PushRequest(rows=rows, to=body.to, timestamp_unit=body.timestamp_unit)
        try:
            result = push_route.push(svc(request).store, body.push_source_name, native)
        except ApiError as exc:  # name Feast's fields: df.<column>[<row>] and push_source_name
            if exc.field is not None:
                exc.field = {"source": "push_source_name"}.get(exc.field, exc.field.replace("rows", "df", 1))
            raise
        principal = principal_of(request.scope)
        log.info("push to %s by %s (Feast route): %d rows written, %d stale", body.push_source_name,
                 principal.label if principal else "unknown", result["written"], result["stale"])
        return json_response(result)

