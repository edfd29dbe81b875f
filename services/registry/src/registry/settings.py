"""The registry's settings: the shared ones, with its own defaults and limits."""

from __future__ import annotations

from pydantic import Field

from asf_kit.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    database_url: str = "postgresql://postgres@127.0.0.1:5432/asf_registry"
    port: int = 8001

    import_max_rows: int = Field(default=5000, ge=1, description="Rows in one CSV import")
    import_max_bytes: int = Field(default=1_048_576, ge=1, description="Size of one CSV import")
    verification_sweep_interval: float = Field(
        default=3600, ge=0,
        description="Seconds between expiry sweeps in the app (0: only `registry "
        "sweep-verifications`); the sweep acts once per company and day, however often",
    )
    public_rate_limit: int = Field(
        default=300, ge=0,
        description="Requests to /public/... per client address and window (0: no limit)",
    )
    public_rate_window: int = Field(default=60, ge=1, description="Seconds of one window")
