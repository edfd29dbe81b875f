"""The registry's composition root: settings, runtime, the `Registry` service, the expiry
sweep and the HTTP routes. Read the wiring here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version as _dist_version

from fastapi import FastAPI

from asf_kit import http, telemetry
from asf_kit.openapi import Link
from asf_kit.runtime import Runtime
from asf_kit.worker import Periodic
from registry import api, public_api
from registry.service import Clock, Registry, utc_now
from registry.settings import RegistrySettings

SERVICE = "registry"
VERSION = _dist_version("asf-registry")


def build_registry(settings: RegistrySettings, runtime: Runtime,
                   clock: Clock = utc_now) -> Registry:
    return Registry(
        lambda: runtime.pool, clock=clock, import_max_rows=settings.import_max_rows,
        import_max_bytes=settings.import_max_bytes,
        public_rate_limit=settings.public_rate_limit,
        public_rate_window=settings.public_rate_window,
    )


def create_app(settings: RegistrySettings | None = None, clock: Clock = utc_now) -> FastAPI:
    settings = settings or RegistrySettings()
    telemetry.setup(SERVICE, VERSION)
    runtime = Runtime(settings)
    registry = build_registry(settings, runtime, clock)
    # Each warning and expiry happens once, whichever replica's sweep gets there first.
    sweep = Periodic("verification-sweep", settings.verification_sweep_interval,
                     registry.sweep_verifications)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            if settings.verification_sweep_interval > 0:
                await sweep.start()
            yield
        finally:
            await sweep.stop()
            await runtime.stop()

    app = http.create_app(
        title="ASF Samverkan — registry",
        version=VERSION,
        description="The register of work-integration social enterprises (ASF): the five "
        "criteria, verification, reserved-contract eligibility (LOU 4 kap. 18 §), contracts "
        "and learning examples; and, without a token, the public register and the handbook.",
        settings=settings,
        lifespan=lifespan,
        readiness=runtime.readiness,
        observe=runtime.observe,
        links=[Link("POST /companies", "company_id"),
               Link("POST /learning-examples", "example_id")],
    )
    app.state.runtime = runtime
    app.state.registry = registry
    app.include_router(api.router)
    app.include_router(public_api.router)
    return app
