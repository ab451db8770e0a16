"""The web UI's routes: server-rendered pages under /ui, behind the same credentials and scopes as the API.

A browser signs in once on /ui/login with an API key or an OIDC token; it is kept in an HttpOnly,
SameSite=Strict cookie scoped to /ui (Secure over HTTPS) and checked on every request exactly like a
bearer header (revocation applies at once). Pages need the read scope of what they show; promoting
a model version needs ``admin`` and a confirmation page; forms are refused when the browser says
they come from another origin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Form, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from pitstop.errors import AuthError, NotFoundError, PitstopError
from pitstop.log import get_logger
from pitstop.serving.auth_middleware import principal_of
from pitstop.serving.ui import data, lineage
from pitstop.serving.ui.stream_lag import stream_lag

log = get_logger(__name__)

HERE = Path(__file__).parent
COOKIE = "pitstop_ui"
SESSION_SECONDS = 8 * 3600
STATIC = {p.name: p for p in (HERE / "static").iterdir() if p.is_file()}

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["quote"] = quote
templates.env.globals["edge_path"] = lineage.edge_path
templates.env.globals["NODE_W"] = lineage.NODE_W
templates.env.globals["NODE_H"] = lineage.NODE_H


def _safe_next(target: str | None) -> str:
    """Only paths inside the UI: a login link cannot send the browser elsewhere."""
    if not target or not target.startswith("/ui") or target.startswith("//") or urlsplit(target).netloc:
        return "/ui"
    return target


def add_ui_routes(app: FastAPI, svc: Callable[[Request], Any]) -> None:
    """Register /ui and its pages on ``app``."""

    async def render(request: Request, template: str, build: Callable[[Any], dict[str, Any]],
                     status: int = 200) -> Response:
        service = svc(request)
        try:
            context = await service.run(lambda s, _: build(s.store), None)
        except NotFoundError as exc:
            return page(request, "error.html", {"title": "Not found", "message": str(exc)}, 404)
        return page(request, template, context, status)

    def page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
        principal = principal_of(request.scope)
        return templates.TemplateResponse(request, template, {
            **context, "principal": principal, "auth_on": request.app.state.auth is not None,
            "is_admin": principal is not None and principal.allows("admin"),
            "project": svc(request).store.settings.project}, status_code=status)

    def number(request: Request) -> int:
        try:
            return max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            return 1

    @app.get("/ui/static/{file}", include_in_schema=False)
    async def static(file: str) -> Response:
        path = STATIC.get(file)
        if path is None:
            return HTMLResponse("not found", 404)
        return FileResponse(path, headers={"cache-control": "public, max-age=3600"})

    @app.get("/ui/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        return templates.TemplateResponse(request, "login.html", {
            "next": _safe_next(request.query_params.get("next")), "error": None, "principal": None,
            "auth_on": True, "is_admin": False, "project": svc(request).store.settings.project})

    @app.post("/ui/login", include_in_schema=False)
    async def login(request: Request, credential: str = Form(...), next: str = Form("/ui")) -> Response:  # noqa: A002
        authenticator = request.app.state.auth
        target = _safe_next(next)
        if authenticator is None:
            return RedirectResponse(target, 303)
        try:
            principal = authenticator.authenticate(f"Bearer {credential.strip()}")
        except AuthError:
            log.info("UI sign-in refused")
            return templates.TemplateResponse(request, "login.html", {
                "next": target, "error": "That key or token is not valid (unknown, revoked or expired).",
                "principal": None, "auth_on": True, "is_admin": False,
                "project": svc(request).store.settings.project}, status_code=401)
        log.info("UI sign-in by %s", principal.label)
        response = RedirectResponse(target, 303)
        response.set_cookie(COOKIE, credential.strip(), max_age=SESSION_SECONDS, path="/ui", httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return response

    @app.post("/ui/logout", include_in_schema=False)
    async def logout() -> Response:
        response = RedirectResponse("/ui/login", 303)
        response.delete_cookie(COOKIE, path="/ui")
        return response

    @app.get("/ui", include_in_schema=False)
    async def overview(request: Request) -> Response:
        return await render(request, "overview.html", data.overview)

    @app.get("/ui/lineage", include_in_schema=False)
    async def lineage_page(request: Request) -> Response:
        return await render(request, "lineage.html", lambda store: {"graph": lineage.build(store),
                                                                    "columns": lineage.COLUMNS,
                                                                    "titles": lineage.TITLES,
                                                                    "col_w": lineage.COL_W})

    @app.get("/ui/views", include_in_schema=False)
    async def views(request: Request) -> Response:
        source = request.query_params.get("source")
        return await render(request, "views.html", lambda store: {
            "page": data.views_page(store, number(request), source), "source": source})

    @app.get("/ui/views/{name}", include_in_schema=False)
    async def view(request: Request, name: str) -> Response:
        store = svc(request).store
        topic = data.stream_topic(store, name)
        lag = None
        if topic is not None:  # asked of the brokers off the request deadline, bounded by its own timeout
            lag = await asyncio.to_thread(stream_lag, store.settings.kafka, topic)
        return await render(request, "view.html", lambda store: {
            "view": data.view_detail(store, name, number(request)), "lag": lag})

    @app.get("/ui/services", include_in_schema=False)
    async def services(request: Request) -> Response:
        return await render(request, "services.html", lambda store: {"page": data.services_page(store, number(request))})

    @app.get("/ui/services/{name}", include_in_schema=False)
    async def service(request: Request, name: str) -> Response:
        return await render(request, "service.html", lambda store: {"service": data.service_detail(store, name)})

    @app.get("/ui/models", include_in_schema=False)
    async def models(request: Request) -> Response:
        return await render(request, "models.html", lambda store: {"page": data.models_page(store, number(request))})

    @app.get("/ui/models/{name}", include_in_schema=False)
    async def model(request: Request, name: str) -> Response:
        return await render(request, "model.html", lambda store: {"model": data.model_detail(store, name, number(request))})

    @app.get("/ui/datasets/{dataset_id}", include_in_schema=False)
    async def dataset(request: Request, dataset_id: str) -> Response:
        return await render(request, "dataset.html", lambda store: {"d": data.dataset(store, dataset_id)})

    @app.get("/ui/models/{name}/monitoring", include_in_schema=False)
    async def monitoring(request: Request, name: str) -> Response:
        return await render(request, "monitoring.html", lambda store: {"m": data.monitoring(store, name)})

    @app.get("/ui/models/{name}/promote", include_in_schema=False)
    async def promote_confirm(request: Request, name: str) -> Response:
        def build(store: Any) -> dict[str, Any]:
            version = int(request.query_params.get("version", "0"))
            alias = request.query_params.get("alias", "production")
            mv = store.models.get(name, version)
            current = next((a.version for a in store.models.aliases(name) if a.alias == alias), None)
            return {"mv": mv, "alias": alias, "current": current}

        try:
            return await render(request, "promote.html", build)
        except (ValueError, PitstopError) as exc:
            return page(request, "error.html", {"title": "Cannot promote", "message": str(exc)}, 422)

    @app.post("/ui/models/{name}/promote", include_in_schema=False)
    async def promote(request: Request, name: str, version: int = Form(...), alias: str = Form(...)) -> Response:
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            return page(request, "error.html", {"title": "Refused", "message": "This form came from another site."}, 403)
        try:
            await svc(request).run(lambda s, _: s.store.models.set_alias(name, alias, version), None)
        except PitstopError as exc:
            return page(request, "error.html", {"title": "Cannot promote", "message": str(exc)}, 422)
        principal = principal_of(request.scope)
        log.info("UI: %s moved %s@%s to version %d", principal.label if principal else "unknown", name, alias, version)
        return RedirectResponse(f"/ui/models/{quote(name)}?promoted={version}", 303)
