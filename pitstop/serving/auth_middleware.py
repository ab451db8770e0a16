"""Authentication and authorization of every request, before any route (the express lane included) runs.

Each request is matched against ``route_scopes.ROUTE_SCOPES``: open routes pass, routes missing from
the table are refused, and every other route needs a bearer credential holding its scope. The
answers are 401 (no or bad credentials, with ``WWW-Authenticate: Bearer``) and 403 (valid
credentials lacking the scope, naming it), in the usual error body. Credentials are never logged or
echoed; requests are counted per principal.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from prometheus_client import Counter

from pitstop.auth.authenticator import Authenticator
from pitstop.auth.principal import Principal
from pitstop.errors import AuthError
from pitstop.serving.metrics import ASGIApp, Receive, Scope, Send
from pitstop.serving.route_scopes import AUTHENTICATED, OPEN, known_path, match_route

__all__ = ["ANONYMOUS", "AuthMiddleware", "principal_of"]

REQUESTS_BY_PRINCIPAL = Counter("pitstop_requests_by_principal_total",
                                "Authenticated requests, by principal (kind:name) and route.", ["principal", "route"])
AUTH_REFUSALS = Counter("pitstop_auth_refusals_total", "Requests refused by authentication or authorization.",
                        ["status", "route"])

_STARTING = object()

ANONYMOUS = Principal("anonymous", "anonymous", frozenset({"admin"}))
"""The caller when auth is turned off (allowed on a loopback bind only)."""


def principal_of(scope: Scope) -> Principal | None:
    """The principal the middleware attached to a request (None on open routes)."""
    state = scope.get("state") or {}
    return state.get("principal")


class AuthMiddleware:
    """Pure ASGI middleware; reads the worker's ``Authenticator`` (or None: auth off) from ``app.state.auth``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = match_route(scope["method"], scope["path"])
        if rule is None:
            status = 405 if known_path(scope["path"]) else 404
            code = "method_not_allowed" if status == 405 else "not_found"
            await _answer(send, status, code, f"no route {scope['method']} {scope['path'][:100]}")
            return
        if rule.scope == OPEN:
            await self.app(scope, receive, send)
            return
        authenticator: Authenticator | None | object = getattr(scope["app"].state, "auth", _STARTING)
        if authenticator is _STARTING:  # the lifespan has not run: refuse rather than guess
            await _answer(send, 503, "not_ready", "the service is starting; retry shortly")
            return
        if authenticator is None:
            principal = ANONYMOUS
        else:
            try:
                assert isinstance(authenticator, Authenticator)
                principal = await _authenticate(authenticator, _header(scope, b"authorization"))
            except AuthError as exc:
                AUTH_REFUSALS.labels("401", rule.template).inc()
                await _answer(send, 401, "unauthorized", str(exc), challenge=True)
                return
            if rule.scope != AUTHENTICATED and not principal.allows(rule.scope, rule.resource):
                AUTH_REFUSALS.labels("403", rule.template).inc()
                needed = rule.scope if rule.resource is None else f"{rule.scope} (or {rule.scope}:{rule.resource})"
                await _answer(send, 403, "forbidden",
                              f"{principal.label} lacks scope {needed}, needed for {scope['method']} {rule.template}")
                return
        REQUESTS_BY_PRINCIPAL.labels(principal.label, rule.template).inc()
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


async def _authenticate(authenticator: Authenticator, header: str | None) -> Principal:
    oidc = authenticator.oidc
    if oidc is not None and header and not header.split(" ", 1)[-1].startswith("psk_") \
            and not oidc.is_cached(header.split(" ", 1)[-1].strip()):
        # an unseen token may need the issuer's keys fetched over the network: not on the event loop
        return await asyncio.to_thread(authenticator.authenticate, header)
    return authenticator.authenticate(header)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _answer(send: Send, status: int, code: str, message: str, *, challenge: bool = False) -> None:
    body: dict[str, Any] = {"error": code, "message": message, "fields": []}
    data = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if challenge:
        headers.append((b"www-authenticate", b'Bearer realm="pitstop"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
