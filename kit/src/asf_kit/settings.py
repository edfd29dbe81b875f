"""Settings shared by every service, read from the environment (SPEC 5)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service reads from its environment; each service extends it."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:5432/asf"
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    host: str = "127.0.0.1"
    port: int = 8000

    jwt_secret: str | None = Field(
        default=None, description="HS256 secret; development only. Ignored when a JWKS is set."
    )
    jwt_jwks_url: str | None = None
    jwt_jwks_file: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None

    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    cors_origins: list[str] = Field(default_factory=list)

    db_pool_min: int = 2
    db_pool_max: int = 10
    relay_batch_size: int = 200
    relay_poll_interval: float = Field(
        default=1.0, description="Seconds between outbox polls when no NOTIFY arrives"
    )
    outbox_retention_days: int = 7
    max_body_bytes: int = 1_048_576
    queue_namespace: str = Field(
        default="", description="Prefix for this service's queue names (tests, shared brokers)"
    )
