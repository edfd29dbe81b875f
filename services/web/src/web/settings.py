"""The web app's settings: the kit's conventions (logging, host and port, `JWT_SECRET`), plus
where the APIs are, the session secret and the identity provider."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from asf_kit.settings import ServiceSettings


class WebSettings(ServiceSettings):
    port: int = 8000

    app_env: Literal["development", "production"] = Field(
        default="production",
        description="`development` enables /dev-login (tokens minted from JWT_SECRET)",
    )
    registry_url: str = "http://127.0.0.1:8001"
    casework_url: str = "http://127.0.0.1:8002"
    notifications_url: str = "http://127.0.0.1:8003"
    api_timeout: float = Field(default=5.0, description="Seconds for one call to an API")

    session_secret: SecretStr | None = Field(
        default=None,
        description="Encrypts the session cookie (at least 32 bytes). Development without "
        "it: a random key per process, so sessions end when the app restarts.",
    )
    session_max_age: int = Field(default=8 * 3600, description="Seconds a session lasts")

    oidc_issuer: str | None = Field(default=None, description="The identity provider's issuer URL")
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scope: str = "openid profile email"
    oidc_api_token: Literal["access_token", "id_token"] = Field(
        default="access_token",
        description="Which of the provider's tokens the APIs receive: its access token (a JWT "
        "with the SPEC 2 claims), or the ID token for providers whose access tokens are opaque",
    )

    dev_token_minutes: int = Field(
        default=60, ge=1, le=720, description="Lifetime of a /dev-login token (development)"
    )
    stream_enabled: bool = Field(
        default=True, description="Relay casework's /stream to the caseload page"
    )

    @property
    def production(self) -> bool:
        return self.app_env == "production"

    @property
    def oidc_configured(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)
