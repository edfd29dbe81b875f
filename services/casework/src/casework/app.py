"""Casework's composition root: settings, vault, runtime, consumer, stream, sweep, routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib.metadata import version as _dist_version

from fastapi import FastAPI

from asf_contracts.topology import ServiceQueues
from asf_kit import http, telemetry
from asf_kit.consumer import EventConsumer
from asf_kit.logging import get_logger
from asf_kit.runtime import Runtime
from asf_kit.worker import Worker
from casework import api, handlers
from casework.crypto import Vault
from casework.service import Casework
from casework.settings import CaseworkSettings
from casework.stream import Broadcaster, CaseStream

SERVICE = "casework"
VERSION = _dist_version("asf-casework")

log = get_logger(__name__)


def create_app(settings: CaseworkSettings | None = None) -> FastAPI:
    settings = settings or CaseworkSettings()
    telemetry.setup(SERVICE, VERSION)
    vault = Vault.from_settings(settings.casework_data_key, settings.casework_data_key_id,
                                settings.casework_previous_data_keys)
    runtime = Runtime(settings)
    casework = Casework(lambda: runtime.pool, vault, settings.follow_up_offsets_days,
                        stats_min_group=settings.stats_min_group)
    consumer = EventConsumer(runtime, ServiceQueues(service=settings.queue_namespace + SERVICE))
    handlers.register(consumer, casework)
    broadcaster = Broadcaster(settings.database_url, lambda: runtime.pool,
                              retention=timedelta(hours=settings.stream_retention_hours),
                              heartbeat=settings.stream_heartbeat_seconds)
    runtime.extra_checks["stream"] = _listening(broadcaster)
    sweep = FollowUpSweep(casework, settings.follow_up_sweep_interval)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            await broadcaster.start()
            if settings.follow_up_sweep_interval > 0:
                await sweep.start()
            yield
        finally:
            await sweep.stop()
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
    app.state.streams = CaseStream(lambda: runtime.pool, broadcaster,
                                   per_user=settings.stream_max_per_user,
                                   per_process=settings.stream_max_per_process)
    app.include_router(api.router)
    return app


class FollowUpSweep(Worker):
    """Announces due follow-ups every `interval` seconds (the first soon after start);
    exactly once each, whichever replica runs it."""

    def __init__(self, casework: Casework, interval: float) -> None:
        super().__init__("follow-up-sweep", interval=interval,
                         first_round_after=min(interval, 60.0))
        self._casework = casework

    async def round(self) -> bool:
        await self._casework.sweep_follow_ups(self._casework.now().date())
        return False


def _listening(broadcaster: Broadcaster) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return broadcaster.listening

    return check
