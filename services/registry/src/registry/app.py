"""The registry's composition root: settings, runtime, the `Registry` service, the expiry
sweep and the HTTP routes. Read the wiring here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version as _dist_version

from fastapi import FastAPI

from asf_kit import http, telemetry
from asf_kit.auth import TokenVerifier
from asf_kit.logging import get_logger
from asf_kit.runtime import Runtime
from registry import api, public_api
from registry.service import Clock, Registry, utc_now
from registry.settings import RegistrySettings

SERVICE = "registry"
VERSION = _dist_version("asf-registry")

log = get_logger(__name__)


def build_registry(settings: RegistrySettings, runtime: Runtime,
                   clock: Clock = utc_now) -> Registry:
    return Registry(
        lambda: runtime.pool, clock=clock, import_max_rows=settings.import_max_rows,
        import_max_bytes=settings.import_max_bytes,
        public_rate_limit=settings.public_rate_limit,
        public_rate_window=settings.public_rate_window,
    )


async def sweep_forever(registry: Registry, interval: float) -> None:
    """The verification expiry sweep, every `interval` seconds, first right after start. Each
    warning and expiry happens once, whichever replica's sweep gets there first."""
    while True:
        try:
            swept = await registry.sweep_verifications()
            if swept.warned or swept.expired:
                log.info("verification sweep", warned=swept.warned, expired=swept.expired)
        except Exception as e:  # the next round tries again
            log.warning("verification sweep failed", error=str(e), error_type=type(e).__name__)
        await asyncio.sleep(interval)


def create_app(settings: RegistrySettings | None = None, clock: Clock = utc_now) -> FastAPI:
    settings = settings or RegistrySettings()
    telemetry.setup(SERVICE, VERSION)
    runtime = Runtime(settings)
    registry = build_registry(settings, runtime, clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            if settings.verification_sweep_interval > 0:
                runtime.background.append(asyncio.create_task(
                    sweep_forever(registry, settings.verification_sweep_interval),
                    name="verification-sweep"))
            yield
        finally:
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
    )
    app.state.runtime = runtime
    app.state.registry = registry
    app.state.verifier = TokenVerifier(settings)
    app.include_router(api.router)
    app.include_router(public_api.router)
    return app
