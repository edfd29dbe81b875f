"""The registry's composition root: settings, runtime, HTTP routes. Read the wiring here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version as _dist_version

from fastapi import FastAPI

from asf_kit import http, telemetry
from asf_kit.runtime import Runtime
from registry import api
from registry.settings import RegistrySettings

SERVICE = "registry"
VERSION = _dist_version("asf-registry")


def create_app(settings: RegistrySettings | None = None) -> FastAPI:
    settings = settings or RegistrySettings()
    telemetry.setup(SERVICE, VERSION)
    runtime = Runtime(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = http.create_app(
        title="ASF Samverkan — registry",
        version=VERSION,
        description="The register of work-integration social enterprises (ASF): the five "
        "criteria, verification, reserved-contract eligibility (LOU 4 kap. 18 §), contracts "
        "and learning examples.",
        settings=settings,
        lifespan=lifespan,
        readiness=runtime.readiness,
        observe=runtime.observe,
    )
    app.state.runtime = runtime
    app.include_router(api.router)
    return app
