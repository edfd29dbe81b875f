"""Casework's composition root: settings, vault, runtime, consumer, stream, sweep, routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib.metadata import version as _dist_version
from typing import Any

from fastapi import FastAPI

from asf_contracts.topology import ServiceQueues
from asf_kit import http, telemetry
from asf_kit.consumer import EventConsumer
from asf_kit.logging import get_logger
from asf_kit.runtime import Runtime
from asf_kit.worker import Periodic
from casework import api, attendance_api, handlers, plan_api
from casework.attendance_service import AttendanceCases
from casework.crypto import Vault
from casework.plan_service import PlanCases
from casework.settings import CaseworkSettings
from casework.stream import Broadcaster, CaseStream
from casework.workdays import swedish_date

SERVICE = "casework"
VERSION = _dist_version("asf-casework")

log = get_logger(__name__)


class CaseworkService(PlanCases, AttendanceCases):
    """Casework's one service: the case's use cases (`service.Casework`) with those of the
    individual plan (`plan_service`) and of attendance and statements
    (`attendance_service`)."""


def build_service(settings: CaseworkSettings, pool: Callable[[], Any]) -> CaseworkService:
    vault = Vault.from_settings(settings.casework_data_key, settings.casework_data_key_id,
                                settings.casework_previous_data_keys)
    return CaseworkService(pool, vault, settings.follow_up_offsets_days,
                           stats_min_group=settings.stats_min_group)


def create_app(settings: CaseworkSettings | None = None) -> FastAPI:
    settings = settings or CaseworkSettings()
    telemetry.setup(SERVICE, VERSION)
    runtime = Runtime(settings)
    casework = build_service(settings, lambda: runtime.pool)
    consumer = EventConsumer(runtime, ServiceQueues(service=settings.queue_namespace + SERVICE))
    handlers.register(consumer, casework)
    broadcaster = Broadcaster(settings.database_url, lambda: runtime.pool,
                              retention=timedelta(hours=settings.stream_retention_hours),
                              heartbeat=settings.stream_heartbeat_seconds)
    runtime.extra_checks["stream"] = _listening(broadcaster)
    sweeps = [sweep for sweep in (
        # Each does its work exactly once, whichever replica runs it.
        Periodic("follow-up-sweep", settings.follow_up_sweep_interval,
                 lambda: casework.sweep_follow_ups(swedish_date(casework.now()))),
        Periodic("plan-review-sweep", settings.plan_review_sweep_interval,
                 lambda: casework.sweep_plan_reviews(swedish_date(casework.now()))),
        Periodic("statement-sweep", settings.statement_sweep_interval,
                 lambda: casework.close_due_months(swedish_date(casework.now()))),
    ) if sweep.interval > 0]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            await broadcaster.start()
            for sweep in sweeps:
                await sweep.start()
            yield
        finally:
            for sweep in sweeps:
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
    app.include_router(plan_api.router)
    app.include_router(attendance_api.router)
    return app


def _listening(broadcaster: Broadcaster) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return broadcaster.listening

    return check
