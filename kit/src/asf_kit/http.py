"""The HTTP shell every service shares: ids, request logs and metrics, body limits,
problem details, CORS, `/healthz`, `/readyz` and `/metrics`."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asf_contracts.schemas import asyncapi
from asf_kit import context, openapi, problems, telemetry
from asf_kit.auth import TokenVerifier
from asf_kit.logging import bound_contextvars, get_logger
from asf_kit.settings import ServiceSettings

log = get_logger("http")

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests", ["method", "route", "status"]
)
# 0.3: the API's service level (300 ms) is a bucket boundary, so it is counted exactly.
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency", ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1, 2.5, 5, 10),
)

Readiness = Callable[[], Awaitable[dict[str, bool]]]


class ReadinessReport(BaseModel):
    """`/readyz`: each check and whether it passed."""

    status: Literal["ready", "not ready"]
    checks: dict[str, bool]


class RequestContextMiddleware:
    """Binds `request_id` and `correlation_id`, refuses oversized bodies, logs and counts."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = str(uuid.uuid4())
        correlation = headers.get("x-correlation-id") or request_id
        correlation = correlation[:128]
        status = 500
        started = time.perf_counter()

        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send, request_id)
            self._observe(scope, 413, started)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise problems.Problem(
                        413, "Content too large",
                        f"the body is larger than {self.max_body_bytes} bytes", slug="too-large",
                    )
            return message

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [(b"x-request-id", request_id.encode()),
                         (b"x-correlation-id", correlation.encode())]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        token = context.correlation_id.set(correlation)
        ctoken = context.causation_id.set(request_id)
        method = scope["method"]
        try:
            with (
                bound_contextvars(request_id=request_id, correlation_id=correlation),
                telemetry.span(f"{method} {scope['path']}", kind=telemetry.SpanKind.SERVER,
                               traceparent=headers.get("traceparent")) as span,
            ):
                await self.app(scope, limited_receive, send_with_ids)
                route_obj = scope.get("route")
                span.update_name(f"{method} {getattr(route_obj, 'path', scope['path'])}")
                span.set_attribute("http.response.status_code", status)
        finally:
            context.correlation_id.reset(token)
            context.causation_id.reset(ctoken)
            route = self._observe(scope, status, started)
            if route not in ("/healthz", "/readyz", "/metrics"):
                log.info("request", method=scope["method"], route=route, status=status,
                         duration_ms=round((time.perf_counter() - started) * 1000, 2),
                         request_id=request_id, correlation_id=correlation)

    def _observe(self, scope: Scope, status: int, started: float) -> str:
        route_obj = scope.get("route")
        route = getattr(route_obj, "path", None) or "unmatched"
        HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()
        HTTP_LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)
        return str(route)

    async def _too_large(self, send: Send, request_id: str) -> None:
        response = problems.problem_response(problems.Problem(
            413, "Content too large", f"the body is larger than {self.max_body_bytes} bytes",
            slug="too-large",
        ))
        response.headers["x-request-id"] = request_id
        await response({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def create_app(
    *,
    title: str,
    version: str,
    description: str,
    settings: ServiceSettings,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[Any]],
    readiness: Readiness,
    observe: Callable[[], Awaitable[None]] | None = None,
    links: Iterable[openapi.Link] = (),
) -> FastAPI:
    """The service's FastAPI app: operations routes, middleware, problem details, and the
    token verifier (`app.state.verifier`, its JWKS refresh run around `lifespan`); `observe`
    refreshes the state gauges (readiness, outbox, queues) before each `/metrics` answer;
    `links` lead from what creates a resource to what reads or changes it in `/openapi.json`
    (`asf_kit.openapi`).

    Raises `UnsafeForProduction` when the settings must not run in production."""
    settings.require_safe_for_production()
    verifier = TokenVerifier(settings)

    @asynccontextmanager
    async def lifespan_with_keys(application: FastAPI) -> AsyncIterator[Any]:
        await verifier.start()
        try:
            async with lifespan(application) as state:
                yield state
        finally:
            await verifier.stop()

    app = FastAPI(
        title=title, version=version, description=description, lifespan=lifespan_with_keys,
        generate_unique_id_function=openapi.operation_id,
        # The request's span, metrics and log line are `RequestContextMiddleware`'s; FastAPI's
        # own OpenTelemetry (on by default once a tracer provider is set) would make a second
        # server span, operation spans and meters for every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    openapi.install(app, links)
    app.state.verifier = verifier
    problems.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_credentials=True,
            allow_methods=["*"], allow_headers=["*"],
            expose_headers=["ETag", "Location", "X-Request-Id", "X-Correlation-Id"],
        )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Database, broker and consumers are up",
             response_model=ReadinessReport,
             responses={503: {"model": ReadinessReport, "description": "Not ready"}})
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status_code=200 if ok else 503,
        )

    @app.get("/asyncapi", tags=["operations"], summary="AsyncAPI document of the events")
    async def asyncapi_document() -> dict[str, Any]:
        return asyncapi()

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics",
             response_class=Response)
    async def metrics() -> Response:
        if observe is not None:
            await observe()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
