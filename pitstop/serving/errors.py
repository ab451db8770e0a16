"""HTTP errors of the scoring service: every 4xx body names the field and the reason.

Body shape (all errors)::

    {"error": "invalid_request", "message": "...", "fields": [{"field": "entities.driver_id", "reason": "..."}]}

Error bodies stay small whatever the input: values are quoted as short excerpts where messages are
written (``pitstop.boundary.shown``), and every body is capped here as well (field names at
``MAX_FIELD`` characters, messages at ``MAX_MESSAGE``, at most ``MAX_FIELDS`` fields).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from pitstop.errors import (
    ArtifactIntegrityError,
    FeatureRefError,
    ModelRegistryError,
    NotFoundError,
    OnlineStoreError,
    PitstopError,
    RegistryError,
    RetrievalError,
)
from pitstop.log import get_logger

log = get_logger(__name__)

MAX_FIELD = 200
MAX_MESSAGE = 1000
MAX_FIELDS = 20


def capped(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``...`` when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ApiError(Exception):
    """An error answered as JSON with ``status``; ``field`` names the request field at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        message = capped(self.message, MAX_MESSAGE)
        fields = [{"field": capped(self.field, MAX_FIELD), "reason": message}] if self.field else []
        return {"error": self.code, "message": message, "fields": fields}


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response serialized with orjson (numpy values and UTC datetimes as ``...Z``)."""
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC),
                    status_code=status, media_type="application/json")


def from_pitstop_error(exc: PitstopError, field: str | None = None) -> ApiError:
    """Map a library error to its HTTP status; ``field`` is the request field the caller was checking."""
    message = str(exc)
    if isinstance(exc, NotFoundError):
        return ApiError(404, "not_found", message, field)
    if isinstance(exc, FeatureRefError):
        return ApiError(422, "unknown_feature", message, field or "features")
    if isinstance(exc, RetrievalError):
        return ApiError(422, "invalid_request", message, field)
    if isinstance(exc, ArtifactIntegrityError):
        return ApiError(503, "model_unavailable", message, None)
    if isinstance(exc, ModelRegistryError):
        return ApiError(422, "invalid_model_reference", message, field or "model")
    if isinstance(exc, OnlineStoreError | RegistryError):
        return ApiError(503, "store_unavailable", message, None)
    return ApiError(422, "invalid_request", message, field)


def _loc_to_field(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "path", "query")]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def _field_and_reason(err: dict[str, Any]) -> dict[str, str]:
    if err.get("type") == "json_invalid":  # FastAPI puts the character offset in loc: the field is the body
        detail = (err.get("ctx") or {}).get("error") or err.get("msg", "invalid")
        at = next((p for p in err.get("loc", ()) if isinstance(p, int)), None)
        reason = f"invalid JSON: {detail}" + (f" (at character {at})" if at is not None else "")
        return {"field": "body", "reason": capped(reason, MAX_MESSAGE)}
    return {"field": capped(_loc_to_field(tuple(err.get("loc", ()))), MAX_FIELD),
            "reason": capped(str(err.get("msg", "invalid")), MAX_MESSAGE)}


def validation_fields(errors: Any) -> list[dict[str, str]]:
    """pydantic/FastAPI validation errors as ``[{"field": "entities.driver_id[0]", "reason": ...}]``.

    Invalid JSON (including a truncated body) names the field ``body``; at most ``MAX_FIELDS`` are kept.
    """
    fields = [_field_and_reason(err) for err in list(errors)[:MAX_FIELDS]]
    return fields or [{"field": "body", "reason": "invalid"}]


async def validation_error_handler(_request: Request, exc: RequestValidationError) -> Response:
    fields = validation_fields(exc.errors())
    first = fields[0]
    message = f"{first['field']}: {first['reason']}"
    return json_response({"error": "invalid_request", "message": message, "fields": fields}, 422)


async def api_error_handler(_request: Request, exc: ApiError) -> Response:
    return json_response(exc.body(), exc.status)


async def pitstop_error_handler(_request: Request, exc: PitstopError) -> Response:
    err = from_pitstop_error(exc)
    return json_response(err.body(), err.status)


async def http_error_handler(_request: Request, exc: StarletteHTTPException) -> Response:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return json_response({"error": code, "message": str(exc.detail), "fields": []}, exc.status_code)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error serving %s %s", request.method, request.url.path)
    return json_response({"error": "internal", "message": capped(f"{type(exc).__name__}: {exc}", MAX_MESSAGE),
                          "fields": []}, 500)
