"""Tokens: missing, forged, expired, malformed claims; production JWKS verification."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from asf_kit.auth import TokenVerifier, mint_token
from asf_kit.problems import Problem
from asf_kit.settings import ServiceSettings
from asf_testing import JWT_TEST_SECRET


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    r = await client.get("/companies")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("token", [
    mint_token("another-secret-that-is-long-enough-0123456789", "u", ["registry_officer"]),
    mint_token(JWT_TEST_SECRET, "u", ["registry_officer"], ttl=timedelta(seconds=-5)),
    "not.a.token",
    mint_token(JWT_TEST_SECRET, "u", ["registry_officer"], municipality_code="18"),
    mint_token(JWT_TEST_SECRET, "u", ["registry_officer"], company_id="not-a-uuid"),
    jwt.encode({"sub": "u", "roles": ["registry_officer"]}, JWT_TEST_SECRET, algorithm="HS256"),
    jwt.encode({"sub": "u", "roles": "registry_officer", "exp": 4102444800}, JWT_TEST_SECRET,
               algorithm="HS256"),
], ids=["forged", "expired", "garbage", "bad-municipality", "bad-company", "no-exp",
        "roles-not-list"])
async def test_bad_tokens_are_401(client: httpx.AsyncClient, token: str) -> None:
    r = await client.get("/companies", headers=bearer(token))
    assert r.status_code == 401, r.text
    assert r.json()["title"] == "Unauthorized"


async def test_expired_token_says_so(client: httpx.AsyncClient) -> None:
    token = mint_token(JWT_TEST_SECRET, "u", ["analyst"], ttl=timedelta(seconds=-5))
    r = await client.get("/companies", headers=bearer(token))
    assert "expired" in r.json()["detail"]


async def test_alg_none_is_refused(client: httpx.AsyncClient) -> None:
    token = jwt.encode({"sub": "u", "roles": ["registry_officer"], "exp": 4102444800}, None,
                       algorithm="none")
    r = await client.get("/companies", headers=bearer(token))
    assert r.status_code == 401


async def test_jwks_file_with_issuer_and_audience(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="k1", use="sig", alg="ES256")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    verifier = TokenVerifier(ServiceSettings(
        jwt_jwks_file=str(jwks), jwt_issuer="https://idp.example", jwt_audience="asf"))
    claims = {"sub": "u1", "roles": ["analyst"], "iat": int(time.time()),
              "exp": int(time.time()) + 3600, "iss": "https://idp.example", "aud": "asf"}
    good = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"})
    assert (await verifier.verify(good)).roles == frozenset({"analyst"})
    for bad_claims in ({**claims, "iss": "https://evil"}, {**claims, "aud": "other"}):
        bad = jwt.encode(bad_claims, key, algorithm="ES256", headers={"kid": "k1"})
        with pytest.raises(Problem) as refused:
            await verifier.verify(bad)
        assert refused.value.status == 401
    hs = mint_token(JWT_TEST_SECRET, "u1", ["analyst"], issuer="https://idp.example",
                    audience="asf")
    with pytest.raises(Problem):
        await verifier.verify(hs)  # an HS256 token must not pass where a JWKS is configured


def test_settings_without_any_key_refuse_to_start() -> None:
    with pytest.raises(ValueError, match="JWT_SECRET"):
        TokenVerifier(ServiceSettings(jwt_secret=None))
