"""OpenID Connect: authorization code with PKCE against the municipality's identity
provider (Authlib). The provider's token stays in the sealed session and goes to the APIs,
which verify it through the provider's JWKS."""

from __future__ import annotations

import warnings
from typing import Any

import authlib.deprecate  # noqa: F401 - installs its warning filter before ours below
import jwt

with warnings.catch_warnings():  # Authlib warns about its own httpx integration at import
    warnings.simplefilter("ignore")
    from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App

from web.settings import WebSettings


def client(settings: WebSettings) -> StarletteOAuth2App:
    oauth = OAuth()
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret \
        else None
    issuer = (settings.oidc_issuer or "").rstrip("/")
    app: StarletteOAuth2App = oauth.register(
        "idp",
        client_id=settings.oidc_client_id,
        client_secret=secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": settings.oidc_scope, "code_challenge_method": "S256"},
    )
    return app


def api_token(token: dict[str, Any], which: str) -> str:
    value = token.get(which)
    if not isinstance(value, str) or not value:
        raise ValueError(f"the provider returned no {which}")
    return value


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT the provider just gave us over TLS (the APIs verify it); an
    opaque token has none."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims


async def end_session_url(app: StarletteOAuth2App, id_token: str | None,
                          after: str) -> str | None:
    """Where to send the browser so the provider ends its session too (RP-initiated
    logout), or None when the provider has no such endpoint."""
    metadata = await app.load_server_metadata()
    endpoint = metadata.get("end_session_endpoint")
    if not endpoint:
        return None
    from urllib.parse import urlencode

    params = {"post_logout_redirect_uri": after, "client_id": app.client_id}
    if id_token:
        params["id_token_hint"] = id_token
    return f"{endpoint}?{urlencode(params)}"
