"""The one table that says which scope each route needs. A route missing from it is refused.

``tests/serving/test_auth.py`` walks the app's own routes and fails when one has no entry here, so
a new route cannot ship unprotected by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["OPEN", "ROUTE_SCOPES", "AUTHENTICATED", "RouteRule", "match_route"]

OPEN = "open"
"""No credentials needed (liveness and readiness probes)."""
AUTHENTICATED = "authenticated"
"""Any valid credential, whatever its scopes (the API description)."""

ROUTE_SCOPES: dict[tuple[str, str], str] = {
    ("POST", "/features"): "features:read",
    ("POST", "/predict"): "predict",
    ("POST", "/push/{source}"): "push",
    ("GET", "/models"): "models:read",
    # other tools' protocols (protocol_routes.py): the scope of their native counterpart
    ("POST", "/invocations"): "predict",
    ("GET", "/ping"): OPEN,
    ("POST", "/get-online-features"): "features:read",
    ("POST", "/push"): "push",
    ("GET", "/v2"): AUTHENTICATED,
    ("GET", "/v2/health/live"): OPEN,
    ("GET", "/v2/health/ready"): OPEN,
    ("GET", "/v2/models/{name}"): "models:read",
    ("GET", "/v2/models/{name}/ready"): "models:read",
    ("POST", "/v2/models/{name}/infer"): "predict",
    ("GET", "/v2/models/{name}/versions/{version}"): "models:read",
    ("GET", "/v2/models/{name}/versions/{version}/ready"): "models:read",
    ("POST", "/v2/models/{name}/versions/{version}/infer"): "predict",
    ("GET", "/metrics"): "metrics",
    # the web UI (pitstop/serving/ui): pages need the read scope of what they show, writes need admin
    ("GET", "/ui"): AUTHENTICATED,
    ("GET", "/ui/login"): OPEN,
    ("POST", "/ui/login"): OPEN,
    ("POST", "/ui/logout"): OPEN,
    ("GET", "/ui/static/{file}"): OPEN,
    ("GET", "/ui/lineage"): AUTHENTICATED,
    ("GET", "/ui/views"): "features:read",
    ("GET", "/ui/views/{name}"): "features:read",
    ("GET", "/ui/services"): "features:read",
    ("GET", "/ui/services/{name}"): "features:read",
    ("GET", "/ui/models"): "models:read",
    ("GET", "/ui/models/{name}"): "models:read",
    ("GET", "/ui/models/{name}/monitoring"): "models:read",
    ("GET", "/ui/datasets/{dataset_id}"): "models:read",
    ("GET", "/ui/models/{name}/promote"): "admin",
    ("POST", "/ui/models/{name}/promote"): "admin",
    ("GET", "/health"): OPEN,
    ("GET", "/ready"): OPEN,
    ("GET", "/docs"): AUTHENTICATED,
    ("GET", "/docs/oauth2-redirect"): AUTHENTICATED,
    ("GET", "/redoc"): AUTHENTICATED,
    ("GET", "/openapi.json"): AUTHENTICATED,
}


@dataclass(frozen=True)
class RouteRule:
    """What one request needs: ``scope`` (or OPEN / AUTHENTICATED) and the path's resource, if any."""

    template: str
    scope: str
    resource: str | None = None


def _compile(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


_EXACT = {(m, t): s for (m, t), s in ROUTE_SCOPES.items() if "{" not in t}
_PATTERNS = [(m, t, _compile(t), s) for (m, t), s in ROUTE_SCOPES.items() if "{" in t]
_PATHS = {t for _, t in ROUTE_SCOPES}


def match_route(method: str, path: str) -> RouteRule | None:
    """The rule for ``method path``, or None when the table has none (the request is refused)."""
    method = "GET" if method == "HEAD" else method
    scope = _EXACT.get((method, path))
    if scope is not None:
        return RouteRule(path, scope)
    for m, template, pattern, scope in _PATTERNS:
        if m == method:
            found = pattern.match(path)
            if found:
                values = list(found.groupdict().values())
                return RouteRule(template, scope, values[0] if values else None)
    return None


def template_of(path: str) -> str | None:
    """The route template ``path`` matches (a bounded metrics label), or None."""
    if path in _PATHS:
        return path
    return next((template for _, template, pattern, _ in _PATTERNS if pattern.match(path)), None)


def known_path(path: str) -> bool:
    """Whether some method of ``path`` is in the table (so a wrong method answers 405, not 404)."""
    return path in _PATHS or any(pattern.match(path) for _, _, pattern, _ in _PATTERNS)
