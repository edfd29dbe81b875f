"""A service's app run inside the test process: its lifespan (startup, shutdown) and an
HTTP client on it, with the queues it declared removed afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from asf_testing.infra import delete_queues


@contextlib.asynccontextmanager
async def serving(
    app: FastAPI, base_url: str = "http://test", *, lifespan_seconds: float = 30
) -> AsyncIterator[httpx.AsyncClient]:
    """Run `app` (startup and shutdown, up to `lifespan_seconds` each) with a client on it.

    Afterwards the queues of its consumers are deleted when they live in a namespace of
    their own (`QUEUE_NAMESPACE`), so test runs leave nothing on the broker:

        async with fresh_database(postgres_url, "x", MIGRATIONS) as dsn, \\
                serving(create_app(settings), "http://casework") as client:
            r = await client.get("/participants", headers=auth("case_worker", ...))
    """
    runtime = getattr(app.state, "runtime", None)
    try:
        async with LifespanManager(app, startup_timeout=lifespan_seconds,
                                     shutdown_timeout=lifespan_seconds), \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url=base_url) as client:
            yield client
    finally:
        if runtime is not None and runtime.settings.queue_namespace:
            for consumer in runtime.consumers:
                await delete_queues(runtime.settings.broker_url, consumer.queues)
