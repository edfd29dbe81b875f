"""The notification service's composition root: settings, runtime, consumer, sweeper,
mail catcher and HTTP routes. Read the wiring here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version as _dist_version
from pathlib import Path

import asyncpg
from fastapi import FastAPI

from asf_contracts.topology import ServiceQueues
from asf_kit import http, telemetry
from asf_kit.consumer import EventConsumer
from asf_kit.logging import get_logger
from asf_kit.openapi import Link
from asf_kit.runtime import Runtime
from notifications import api, handlers, mailcatcher
from notifications.sender import Sweeper, observe_due
from notifications.service import Notifications
from notifications.settings import NotificationsSettings

SERVICE = "notifications"
VERSION = _dist_version("asf-notifications")

log = get_logger(__name__)


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    settings = settings or NotificationsSettings()
    telemetry.setup(SERVICE, VERSION)
    runtime = Runtime(settings, relay=False)  # notifications publishes no events
    notifications = Notifications(
        lambda: runtime.pool, base_url=settings.frontend_base_url, timezone=settings.timezone,
        digest_hour=settings.digest_hour,
    )
    consumer = EventConsumer(runtime, ServiceQueues(service=settings.queue_namespace + SERVICE))
    handlers.register(consumer, notifications)
    sweeper = Sweeper(runtime, settings, notifications)

    async def sweeper_running() -> bool:
        return sweeper.running

    runtime.extra_checks["sweeper"] = sweeper_running
    runtime.observers.append(lambda: observe_due(runtime.pool))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await notifications.seed(conn)  # templates and routing before any event
        finally:
            await conn.close()
        catcher = None
        if not settings.smtp_host:
            try:
                catcher = await asyncio.to_thread(
                    mailcatcher.start, Path(settings.mailcatcher_dir),
                    settings.mailcatcher_host, settings.mailcatcher_port,
                )
            except (OSError, RuntimeError) as e:  # the port is taken, e.g. by another replica
                log.warning("mail catcher not started", error=str(e))
        await runtime.start()
        await sweeper.start()
        try:
            yield
        finally:
            await sweeper.stop()
            await runtime.stop()
            if catcher is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(catcher.stop)

    app = http.create_app(
        title="ASF Samverkan — notifications",
        version=VERSION,
        description="Emails the people who need to know about registry and casework events: "
        "contacts, subscriptions (the routing table), versioned templates and deliveries.",
        settings=settings,
        lifespan=lifespan,
        readiness=runtime.readiness,
        observe=runtime.observe,
        links=[Link("POST /contacts", "contact_id"),
               Link("POST /subscriptions", "subscription_id"),
               Link("POST /templates/{name}/versions", "version", field="version")],
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.state.sweeper = sweeper
    app.state.notifications = notifications
    app.include_router(api.router)
    return app
