"""Production without what the web app needs does not start: one line naming each setting
(the kit's production rules, declared on `WebSettings`). No stack needed."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from asf_kit.settings import UnsafeForProduction
from web.settings import WebSettings


def test_production_needs_oidc_and_a_session_secret() -> None:
    with pytest.raises(UnsafeForProduction) as e:
        WebSettings(app_env="production").require_safe_for_production()
    message = str(e.value)
    for name in ("SESSION_SECRET", "OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"):
        assert name in message
    assert "\\n" not in message


def test_production_refuses_a_short_secret_and_plain_http_issuer() -> None:
    settings = WebSettings(app_env="production", session_secret="too-short",
                           oidc_issuer="http://idp.example", oidc_client_id="asf-web",
                           oidc_client_secret=secrets.token_urlsafe(32))
    problems = settings.production_problems()
    assert any(p.startswith("SESSION_SECRET is shorter than 32 bytes") for p in problems)
    assert "OIDC_ISSUER must be an https:// address in production" in problems


def test_production_with_proper_settings_needs_no_jwt_secret() -> None:
    WebSettings(app_env="production", session_secret=secrets.token_urlsafe(32),
                oidc_issuer="https://idp.example", oidc_client_id="asf-web",
                oidc_client_secret=secrets.token_urlsafe(32)).require_safe_for_production()


def test_web_serve_refuses_unsafe_production_naming_the_settings() -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OIDC_", "SESSION_", "APP_ENV", "JWT_"))}
    r = subprocess.run([sys.executable, "-m", "web.cli", "serve"], env={**env, "PORT": "9"},
                       capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 2
    assert "SESSION_SECRET" in r.stderr and "OIDC_ISSUER" in r.stderr
