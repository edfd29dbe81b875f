"""The three APIs, over HTTP only: one pooled client each, with timeouts, the correlation
id and trace context passed on, and the signed-in person's token.

What can go wrong is turned into exceptions the app answers with a page
(`errors.py`): an API that is down or slow, a token the API no longer accepts, a
refusal; the answers a page handles itself (409, 412, 422) come back as responses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from asf_kit import context, telemetry
from asf_kit.logging import get_logger

log = get_logger(__name__)


class ApiUnavailable(Exception):
    """An API did not answer in time, could not be reached, or failed (5xx)."""

    def __init__(self, api: str, reason: str) -> None:
        super().__init__(f"{api}: {reason}")
        self.api = api
        self.reason = reason


class TokenRefused(Exception):
    """An API answered 401: the token expired or was revoked; the person signs in again."""


class ApiRefused(Exception):
    """A 403 or 404 (or another answer the page does not handle) from an API."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status}: {problem.get('detail')}")
        self.status = status
        self.problem = problem


def problem_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"status": response.status_code, "detail": response.text[:200]}
    return body if isinstance(body, dict) else {"status": response.status_code}


class Api:
    """One API: a pooled AsyncClient with timeouts."""

    def __init__(self, name: str, base_url: str, timeout: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.name = name
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
            transport=transport,
        )

    def headers(self, token: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if token:
            h["Authorization"] = f"Bearer {token}"
        correlation = context.correlation_id.get()
        if correlation:
            h["X-Correlation-Id"] = correlation
        traceparent = telemetry.current_traceparent()
        if traceparent:
            h["traceparent"] = traceparent
        if extra:
            h.update(extra)
        return h

    async def call(self, method: str, path: str, token: str | None, *,
                   json: Any = None, params: dict[str, Any] | None = None,
                   content: bytes | None = None, headers: dict[str, str] | None = None,
                   accept: tuple[int, ...] = ()) -> httpx.Response:
        """Make the call; 2xx and the statuses in `accept` come back, the rest raise."""
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            r = await self.client.request(method, path, json=json, params=clean,
                                          content=content, headers=self.headers(token, headers))
        except httpx.TimeoutException as e:
            log.warning("api timeout", api=self.name, path=path)
            raise ApiUnavailable(self.name, "timeout") from e
        except httpx.TransportError as e:
            log.warning("api unreachable", api=self.name, path=path, error=type(e).__name__)
            raise ApiUnavailable(self.name, "unreachable") from e
        if r.is_success or r.status_code in accept:
            return r
        if r.status_code == 401:
            raise TokenRefused()
        if r.status_code >= 500:
            log.warning("api failed", api=self.name, path=path, status=r.status_code)
            raise ApiUnavailable(self.name, f"status {r.status_code}")
        raise ApiRefused(r.status_code, problem_of(r))

    async def get(self, path: str, token: str | None, **params: Any) -> Any:
        return (await self.call("GET", path, token, params=params)).json()

    @asynccontextmanager
    async def stream(self, path: str, token: str, headers: dict[str, str]
                     ) -> AsyncIterator[httpx.Response]:
        """A long-lived streamed GET (server-sent events): no read timeout."""
        request = self.client.build_request(
            "GET", path, headers=self.headers(token, headers),
            timeout=httpx.Timeout(None, connect=2.0))
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TransportError as e:
            raise ApiUnavailable(self.name, "unreachable") from e
        try:
            yield response
        finally:
            await response.aclose()

    async def reachable(self) -> bool:
        """The API answers (its `/healthz`): the web app's readiness. An API that is up but
        not ready itself (its broker down) still serves most pages."""
        try:
            r = await self.client.get("/healthz", timeout=2.0)
        except httpx.HTTPError:
            return False
        return r.status_code == 200

    async def aclose(self) -> None:
        await self.client.aclose()


class Apis:
    def __init__(self, registry: Api, casework: Api, notifications: Api) -> None:
        self.registry = registry
        self.casework = casework
        self.notifications = notifications

    def all(self) -> tuple[Api, Api, Api]:
        return self.registry, self.casework, self.notifications

    async def aclose(self) -> None:
        for api in self.all():
            await api.aclose()
