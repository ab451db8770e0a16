"""Authentication and authorization of every request, before any route (the express lane included) runs.

Each request is matched against ``route_scopes.ROUTE_SCOPES``: open routes pass, routes missing from
the table are refused, and every other route needs a bearer credential holding its scope. The
answers are 401 (no or bad credentials, with ``WWW-Authenticate: Bearer``) and 403 (valid
credentials lacking the scope, naming it), in the usual error body. Credentials are never logged or
echoed; requests are counted per principal.
"""

from __future__ import annotations

import asyncio
import html
from typing import Any
from urllib.parse import quote

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
            ui = scope["path"].startswith("/ui")
            header = _header(scope, b"authorization") or (_ui_cookie(scope) if ui else None)
            try:
                assert isinstance(authenticator, Authenticator)
                principal = await _authenticate(authenticator, header)
            except AuthError as exc:
                AUTH_REFUSALS.labels("401", rule.template).inc()
                if ui:  # a browser: to the sign-in page, coming back here afterwards
                    await _redirect(send, "/ui/login?next=" + quote(scope["path"]))
                    return
                await _answer(send, 401, "unauthorized", str(exc), challenge=True)
                return
            if rule.scope != AUTHENTICATED and not principal.allows(rule.scope, rule.resource):
                AUTH_REFUSALS.labels("403", rule.template).inc()
                needed = rule.scope if rule.resource is None else f"{rule.scope} (or {rule.scope}:{rule.resource})"
                message = f"{principal.label} lacks scope {needed}, needed for {scope['method']} {rule.template}"
                if ui:
                    await _html(send, 403, "Forbidden", message)
                    return
                await _answer(send, 403, "forbidden", message)
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


def _ui_cookie(scope: Scope) -> str | None:
    """The UI's session cookie as a bearer header value (the cookie holds the key or token itself)."""
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "pitstop_ui" and value:
            return f"Bearer {value}"
    return None


async def _redirect(send: Send, location: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode()), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def _html(send: Send, status: int, title: str, message: str) -> None:
    body = (f"<!doctype html><html lang=en><meta charset=utf-8><title>{title} - pitstop</title>"
            f"<link rel=stylesheet href=/ui/static/ui.css><main class=narrow><h1>{title}</h1>"
            f"<p role=alert>{html.escape(message)}</p><p><a href=/ui/login>Sign in with another key</a> · "
            f"<a href=/ui>Overview</a></p></main></html>").encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


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
