"""A request-body guard for the routes FastAPI serves (the fast path guards /features and /predict itself).

Bodies larger than ``max_bytes`` answer 413 without being read further: a declared
``Content-Length`` is refused before reading anything, and a chunked body is counted as it
arrives, so no more than ``max_bytes`` are ever held. A JSON body that is not valid UTF-8 answers
422 naming ``body`` (JSON text is UTF-8; FastAPI would answer 400 with no field). Both answers
use the service's error shape ``{"error", "message", "fields": [{"field": "body", ...}]}``.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import orjson

from pitstop.serving.metrics import ASGIApp, Receive, Scope, Send

_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` (413) and JSON bodies that are not UTF-8 (422)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _answer(send, 413, "body_too_large", f"the body is {int(declared)} bytes; at most {self.max_bytes} "
                          "bytes are accepted (split the rows into several requests)")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _answer(send, 413, "body_too_large", f"the body exceeds {self.max_bytes} bytes; split the "
                              "rows into several requests")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if b"json" in headers.get(b"content-type", b"json"):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                await _answer(send, 422, "invalid_request", f"the body is not valid UTF-8 (byte {exc.start}); JSON "
                              "text must be UTF-8")
                return
        await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive), send)


def _replay(messages: list[MutableMapping[str, Any]], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Any:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _answer(send: Send, status: int, code: str, reason: str) -> None:
    data = orjson.dumps({"error": code, "message": f"body: {reason}", "fields": [{"field": "body", "reason": reason}]})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})
