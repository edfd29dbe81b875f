"""The web app's settings: the kit's conventions (`APP_ENV`, logging, host and port,
`JWT_SECRET`), plus where the APIs are, the session secret and the identity provider.

In production the app refuses to start, with one line naming each setting, without the
OIDC settings and a session secret (the kit's `Secret()` and `Required()` markers), and with
an identity provider not reached over HTTPS."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr

from asf_kit.settings import Required, Secret, ServiceSettings


class WebSettings(ServiceSettings):
    port: int = 8000

    registry_url: str = "http://127.0.0.1:8001"
    casework_url: str = "http://127.0.0.1:8002"
    notifications_url: str = "http://127.0.0.1:8003"
    api_timeout: float = Field(default=5.0, description="Seconds for one call to an API")

    session_secret: Annotated[SecretStr | None, Secret()] = Field(
        default=None,
        description="Encrypts the session cookie (at least 32 bytes). Development without "
        "it: a random key per process, so sessions end when the app restarts.",
    )
    session_max_age: int = Field(default=8 * 3600, description="Seconds a session lasts")

    oidc_issuer: Annotated[str | None, Required()] = Field(
        default=None, description="The identity provider's issuer URL")
    oidc_client_id: Annotated[str | None, Required()] = None
    oidc_client_secret: Annotated[SecretStr | None, Secret()] = None
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
    def oidc_configured(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    def production_problems(self) -> list[str]:
        """The web app verifies no token itself (the APIs do), so the kit's token rules do
        not apply; its own markers and rules do. `JWT_SECRET` serves only /dev-login,
        which production does not have."""
        problems = [p for name in type(self).model_fields if name != "jwt_secret"
                    for p in self._marked(name)]
        if self.oidc_issuer and not self.oidc_issuer.startswith("https://"):
            problems.append("OIDC_ISSUER must be an https:// address in production")
        return problems
