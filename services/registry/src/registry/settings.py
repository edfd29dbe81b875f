"""The registry's settings: the shared ones, with its own defaults."""

from __future__ import annotations

from asf_kit.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    database_url: str = "postgresql://postgres@127.0.0.1:5432/asf_registry"
    port: int = 8001
