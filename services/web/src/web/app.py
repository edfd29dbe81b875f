"""The web app's composition root: settings, the three API clients, the session, sign-in,
the pages. Read the wiring here."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version as _dist_version
from pathlib import Path

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asf_kit import context, observe, telemetry
from asf_kit.http import RequestContextMiddleware
from asf_kit.logging import get_logger
from web import errors, i18n, oidc
from web.auth import csrf_protect
from web.clients import Api, Apis
from web.routes import ROUTERS
from web.session import SessionMiddleware
from web.settings import WebSettings

SERVICE = "web"
VERSION = _dist_version("asf-web")
STATIC = Path(__file__).parent / "static"

log = get_logger(__name__)


def create_app(settings: WebSettings | None = None,
               transports: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    settings = settings or WebSettings()
    settings.require_safe_for_production()
    telemetry.setup(SERVICE, VERSION)
    transports = transports or {}
    apis = Apis(
        Api("registry", settings.registry_url, settings.api_timeout, transports.get("registry")),
        Api("casework", settings.casework_url, settings.api_timeout, transports.get("casework")),
        Api("notifications", settings.notifications_url, settings.api_timeout,
            transports.get("notifications")),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await apis.aclose()

    app = FastAPI(title="ASF Samverkan — web", version=VERSION, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(csrf_protect)])
    app.state.settings = settings
    app.state.apis = apis
    app.state.oidc = oidc.client(settings) if settings.oidc_configured else None
    errors.install(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def readiness() -> dict[str, bool]:
        return {api.name: await api.reachable() for api in apis.all()}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ok = all(checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks},
                            status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        observe.record_readiness(await readiness())  # readiness_check{check=<api>}
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)

    secret = settings.session_secret.get_secret_value().encode() if settings.session_secret \
        else None
    if secret is None:  # development only: production refused above
        log.warning("SESSION_SECRET is not set; sessions end when the app restarts")
        secret = secrets.token_bytes(32)
    app.add_middleware(LocaleMiddleware)
    app.add_middleware(SessionMiddleware, secret=secret, max_age=settings.session_max_age,
                       secure=settings.production)
    app.add_middleware(CatchAll)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    return app


class LocaleMiddleware:
    """Swedish unless the person chose English (kept in the session)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = scope.get("session") or {}
        token = i18n.current_locale.set(i18n.pick_locale(session.get("locale"), None))
        try:
            await self.app(scope, receive, send)
        finally:
            i18n.current_locale.reset(token)


class CatchAll:
    """The last resort: an unexpected error becomes a page with the correlation id (inside
    the request context, so the id is known), never a stack trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as e:
            log.exception("unhandled error", error_type=type(e).__name__)
            if started:
                raise
            correlation = context.correlation_id.get() or ""
            body = _PLAIN_500.replace("{id}", correlation).encode()
            await send({"type": "http.response.start", "status": 500, "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"cache-control", b"no-store")]})
            await send({"type": "http.response.body", "body": body})


_PLAIN_500 = """<!doctype html><html lang="sv"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Något gick fel – ASF Samverkan</title><link rel="stylesheet" href="/static/app.css">
</head><body><main id="main" class="page"><h1>Något gick fel</h1>
<p>Ett oväntat fel inträffade. Det är loggat; försök igen om en stund.</p>
<p>Ange referensen <code>{id}</code> om du kontaktar support.</p>
<p><a href="/">Till startsidan</a></p></main></body></html>"""


def request_apis(request: Request) -> Apis:
    apis: Apis = request.app.state.apis
    return apis
