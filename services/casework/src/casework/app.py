"""Casework's composition root: settings, vault, runtime, consumer, stream, sweep, routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version as _dist_version

from fastapi import FastAPI

from asf_contracts.topology import ServiceQueues
from asf_kit import http, telemetry
from asf_kit.consumer import EventConsumer
from asf_kit.logging import get_logger
from asf_kit.runtime import Runtime
from casework import api, handlers
from casework.crypto import Vault
from casework.service import Casework, today
from casework.settings import CaseworkSettings
from casework.stream import Broadcaster

SERVICE = "casework"
VERSION = _dist_version("asf-casework")

log = get_logger(__name__)


def create_app(settings: CaseworkSettings | None = None) -> FastAPI:
    settings = settings or CaseworkSettings()
    telemetry.setup(SERVICE, VERSION)
    vault = Vault.from_settings(settings.casework_data_key, settings.casework_data_key_id,
                                settings.casework_previous_data_keys)
    runtime = Runtime(settings)
    casework = Casework(lambda: runtime.pool, vault, settings.follow_up_offsets_days)
    consumer = EventConsumer(runtime, ServiceQueues(service=settings.queue_namespace + SERVICE))
    handlers.register(consumer, casework)
    broadcaster = Broadcaster(settings.database_url)
    runtime.extra_checks["stream"] = _listening(broadcaster)

    async def sweep_forever(interval: float) -> None:
        """Announce due follow-ups now and then; exactly once each, whichever replica runs it."""
        while True:
            await asyncio.sleep(interval)
            try:
                await casework.sweep_follow_ups(today())
            except Exception as e:  # the next round tries again
                log.warning("follow-up sweep failed", error=str(e), error_type=type(e).__name__)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            await broadcaster.start()
            if settings.follow_up_sweep_interval > 0:
                runtime.background.append(asyncio.create_task(
                    sweep_forever(settings.follow_up_sweep_interval), name="follow-up-sweep"))
            yield
        finally:
            await broadcaster.stop()
            await runtime.stop()

    app = http.create_app(
        title="ASF Samverkan — casework",
        version=VERSION,
        description="Case management for participants a municipality places in work training "
        "(arbetsträning) at an ASF: referral, assessment, placements, employment, follow-ups. "
        "Personal data is encrypted at rest and never leaves this service.",
        settings=settings,
        lifespan=lifespan,
        readiness=runtime.readiness,
        observe=runtime.observe,
    )
    app.state.runtime = runtime
    app.state.casework = casework
    app.state.broadcaster = broadcaster
    app.include_router(api.router)
    return app


def _listening(broadcaster: Broadcaster) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return broadcaster.listening

    return check
