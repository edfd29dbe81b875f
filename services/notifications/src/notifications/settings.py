"""The notification service's settings: the shared ones, plus SMTP, retries and the digest."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator

from asf_kit.settings import Secret, ServiceSettings

SmtpTls = Literal["starttls", "tls", "none"]


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
    smtp_tls: SmtpTls = Field(
        default="starttls",
        description="`starttls` (upgrade the connection, required), `tls` (TLS from the first "
        "byte, usually port 465) or `none` (plain text: development only)",
    )
    smtp_starttls: bool | None = Field(
        default=None,
        description="Deprecated, use SMTP_TLS: true means `starttls`, false `none`. Read only "
        "when SMTP_TLS is not set.",
    )
    smtp_ca_file: str | None = Field(
        default=None,
        description="A CA bundle to verify the SMTP server's certificate with, instead of the "
        "system's (a relay with a private CA)",
    )
    smtp_timeout: float = Field(default=15.0, description="Seconds for one SMTP conversation")
    mail_from: str = "ASF Samverkan <noreply@asf-samverkan.se>"
    frontend_base_url: str = Field(
        default="http://localhost:8000",
        description="The web app; every link in an email points into it",
    )

    retry_base_seconds: float = Field(default=30.0, description="First retry delay after a 4xx")
    retry_cap_seconds: float = Field(default=3600.0, description="Longest retry delay")
    max_attempts: int = Field(default=12, ge=1, description="Tries before a delivery fails")
    sweeper_interval: float = Field(
        default=5.0, description="Seconds between sweeps when no new delivery wakes the sweeper"
    )
    sweeper_batch: int = Field(
        default=50, ge=1, description="Emails claimed by one sweep and sent over one connection"
    )
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

    @model_validator(mode="after")
    def _deprecated_starttls(self) -> NotificationsSettings:
        """SMTP_STARTTLS, the setting before SMTP_TLS, still works when SMTP_TLS is unset."""
        if "smtp_tls" not in self.model_fields_set and self.smtp_starttls is not None:
            self.smtp_tls = "starttls" if self.smtp_starttls else "none"
        return self

    def production_problems(self) -> list[str]:
        """Mail must leave for real in production: a relay, and never in clear text."""
        problems = super().production_problems()
        if not self.smtp_host:
            problems.append("SMTP_HOST is missing: without it mail goes to the built-in "
                            "mail catcher and never leaves")
        if self.smtp_tls == "none":
            problems.append("SMTP_TLS is none: mail would cross the network in clear text")
        return problems
