"""What production refuses to start with (SPEC 2), checked once by the kit for whatever a
settings class declares."""

from __future__ import annotations

import base64
import os
from typing import Annotated, Any

import pytest
from pydantic import Field, SecretStr

from asf_kit.settings import (
    Required,
    Secret,
    ServiceSettings,
    UnsafeForProduction,
    is_known,
)
from asf_testing import JWT_TEST_SECRET

STRONG = base64.b64encode(os.urandom(32)).decode()


class WebLike(ServiceSettings):
    """A settings class as the web app declares its own secrets."""

    oidc_issuer: Annotated[str | None, Required()] = None
    oidc_client_secret: Annotated[SecretStr | None, Secret()] = None
    data_key: Annotated[str | None, Secret(encoding="base64")] = None
    old_keys: Annotated[dict[str, str], Secret(required=False, encoding="base64")] = Field(
        default_factory=dict)


def web(**overrides: Any) -> WebLike:
    good: dict[str, Any] = {
        "app_env": "production", "jwt_jwks_file": "/etc/jwks.json",
        "jwt_issuer": "https://idp.example", "jwt_audience": "asf",
        "oidc_issuer": "https://idp.example", "oidc_client_secret": STRONG, "data_key": STRONG,
    }
    return WebLike(**{**good, **overrides})


def test_production_is_the_default() -> None:
    assert ServiceSettings.model_fields["app_env"].default == "production"


def test_good_production_settings_pass() -> None:
    assert web().production_problems() == []
    web().require_safe_for_production()


@pytest.mark.parametrize(("overrides", "named"), [
    ({"oidc_client_secret": None}, "OIDC_CLIENT_SECRET is missing"),
    ({"oidc_client_secret": "x" * 31}, "OIDC_CLIENT_SECRET is shorter than 32 bytes"),
    ({"oidc_client_secret": JWT_TEST_SECRET}, "OIDC_CLIENT_SECRET is a value written"),
    ({"oidc_issuer": None}, "OIDC_ISSUER is missing"),
    ({"data_key": base64.b64encode(b"k" * 31).decode()}, "DATA_KEY is shorter than 32"),
    ({"data_key": "not base64 at all!"}, "DATA_KEY is not base64"),
    ({"data_key": "ZGV2LWtleS1kZXYta2V5LWRldi1rZXktZGV2LWtleSE="}, "DATA_KEY is a value"),
    ({"old_keys": {"k0": "c2hvcnQ="}}, "OLD_KEYS[k0] is shorter than 32"),
    ({"jwt_issuer": None}, "JWT_ISSUER is missing"),
    ({"jwt_audience": None}, "JWT_AUDIENCE is missing"),
    ({"jwt_jwks_file": None}, "JWT_JWKS_URL is missing"),
    ({"jwt_jwks_file": None, "jwt_secret": "s" * 40}, "JWT_ALLOW_HS256 is not true"),
    ({"jwt_jwks_file": None, "jwt_secret": "short", "jwt_allow_hs256": True},
     "JWT_SECRET is shorter than 32 bytes"),
    ({"jwt_secret": JWT_TEST_SECRET}, "JWT_SECRET is a value written in the repository"),
], ids=lambda v: str(v)[:40])
def test_each_unsafe_setting_is_named(overrides: dict[str, Any], named: str) -> None:
    settings = web(**overrides)
    problems = settings.production_problems()
    assert any(p.startswith(named) for p in problems), problems
    with pytest.raises(UnsafeForProduction) as refused:
        settings.require_safe_for_production()
    assert "\n" not in str(refused.value) and named in str(refused.value)


def test_every_problem_is_on_the_one_line() -> None:
    with pytest.raises(UnsafeForProduction) as refused:
        web(oidc_client_secret=None, jwt_issuer=None).require_safe_for_production()
    message = str(refused.value)
    assert "OIDC_CLIENT_SECRET" in message and "JWT_ISSUER" in message
    assert "\n" not in message


def test_hs256_with_the_opt_in_and_a_strong_secret_passes() -> None:
    settings = web(jwt_jwks_file=None, jwt_secret=STRONG, jwt_allow_hs256=True)
    assert settings.production_problems() == []


def test_development_starts_with_anything() -> None:
    web(app_env="development", oidc_client_secret=None,
        jwt_secret=JWT_TEST_SECRET).require_safe_for_production()


RAW_KEY = b"a-key-written-here-as-raw-bytes!"  # 32 bytes, so only the list refuses it


def test_a_key_written_in_the_repository_as_raw_bytes_is_known() -> None:
    """A test that base64-encodes a literal writes the key's bytes into the repository."""
    assert is_known(RAW_KEY)
    problems = web(data_key=base64.b64encode(RAW_KEY).decode()).production_problems()
    assert problems and problems[0].startswith("DATA_KEY is a value written")


def test_the_max_lifetime_reads_seconds_or_iso_8601() -> None:
    assert ServiceSettings(jwt_max_lifetime="3600").jwt_max_lifetime.total_seconds() == 3600
    assert ServiceSettings(jwt_max_lifetime="PT2H").jwt_max_lifetime.total_seconds() == 7200
    assert ServiceSettings().jwt_max_lifetime.total_seconds() == 12 * 3600
