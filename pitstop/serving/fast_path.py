"""An express lane for the hot endpoints (POST /features and /predict).

FastAPI's routing, dependency solving and exception middleware cost more per request than a
one-entity online read. This ASGI middleware answers the two hot routes itself: it reads the body,
validates it with the same pydantic models (their Rust JSON parser), runs the same handler
functions the FastAPI routes use off the event loop under the request deadline (``Service.run``),
and answers with the same JSON bodies and status codes. Every other request (and the OpenAPI
schema) goes through FastAPI unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from pitstop.errors import PitstopError
from pitstop.log import get_logger
from pitstop.serving.errors import ApiError, from_pitstop_error, validation_fields
from pitstop.serving.metrics import ASGIApp, Receive, Scope, Send

log = get_logger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
_JSON_HEADERS = [(b"content-type", b"application/json")]
_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC

Handler = Callable[[Any, Any], dict[str, Any]]


class FastPath:
    """Serve ``routes`` (path -> (request model, handler(service, body))) for POST without FastAPI's stack."""

    def __init__(self, app: ASGIApp, routes: dict[str, tuple[type[BaseModel], Handler]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            status, payload = 413, _error("body_too_large", f"the body exceeds {MAX_BODY_BYTES} bytes", "body")
        else:
            status, payload = await _answer(scope["app"].state.service, route, body, scope["path"])
        data = orjson.dumps(payload, option=_DUMP_OPTIONS)
        await send({"type": "http.response.start", "status": status,
                    "headers": [*_JSON_HEADERS, (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})


async def _answer(service: Any, route: tuple[type[BaseModel], Handler], body: bytes, path: str) -> tuple[int, Any]:
    model, handler = route
    try:
        request = model.model_validate_json(body)
        return 200, await service.run(handler, request)
    except ValidationError as exc:
        fields = validation_fields(exc.errors(include_url=False))
        return 422, {"error": "invalid_request", "message": f"{fields[0]['field']}: {fields[0]['reason']}",
                     "fields": fields}
    except ApiError as exc:
        return exc.status, exc.body()
    except PitstopError as exc:
        err = from_pitstop_error(exc)
        return err.status, err.body()
    except Exception as exc:  # answered, logged; never a dropped connection
        log.exception("unexpected error serving POST %s", path)
        return 500, _error("internal", f"{type(exc).__name__}: {exc}", None)


def _error(code: str, message: str, field: str | None) -> dict[str, Any]:
    return {"error": code, "message": message, "fields": [{"field": field, "reason": message}] if field else []}


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
