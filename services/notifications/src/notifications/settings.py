"""The notification service's settings: the shared ones, plus SMTP, retries and the digest."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr

from asf_kit.settings import Secret, ServiceSettings


class NotificationsSettings(ServiceSettings):
    database_url: str = "postgresql://postgres@127.0.0.1:5432/asf_notifications"
    port: int = 8003

    smtp_host: str | None = Field(
        default=None,
        description="The SMTP relay. Unset: a built-in mail catcher receives every email.",
    )
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: Annotated[SecretStr | None, Secret(required=False)] = None
    smtp_starttls: bool = False
    smtp_timeout: float = Field(default=15.0, description="Seconds for one SMTP conversation")
    mail_from: str = "ASF Samverkan <noreply@asf-samverkan.se>"
    frontend_base_url: str = "http://localhost:5173"

    retry_base_seconds: float = Field(default=30.0, description="First retry delay after a 4xx")
    retry_cap_seconds: float = Field(default=3600.0, description="Longest retry delay")
    max_attempts: int = Field(default=12, ge=1, description="Tries before a delivery fails")
    sweeper_interval: float = Field(
        default=5.0, description="Seconds between sweeps when no new delivery wakes the sweeper"
    )
    sweeper_batch: int = 50
    send_concurrency: int = 8
    sending_timeout_seconds: float = Field(
        default=300.0,
        description="A delivery `sending` for longer than this is taken to be lost and resent",
    )

    digest_enabled: bool = True
    digest_hour: int = Field(default=7, ge=0, le=23, description="Local hour of the daily digest")
    timezone: str = "Europe/Stockholm"

    mailcatcher_dir: str = "var/mail"
    mailcatcher_host: str = "127.0.0.1"
    mailcatcher_port: int = 1025

    def production_problems(self) -> list[str]:
        """Mail must leave for real in production: a relay, and never in clear text."""
        problems = super().production_problems()
        if not self.smtp_host:
            problems.append("SMTP_HOST is missing: without it mail goes to the built-in "
                            "mail catcher and never leaves")
        if getattr(self, "smtp_tls", "starttls") == "none":
            problems.append("SMTP_TLS is none: mail would cross the network in clear text")
        return problems
