"""Token verification (SPEC 2) with keys the test makes and a JWKS served over real HTTP:
`iat` required, the lifetime capped, another audience or issuer refused, `alg=none`
refused, the JWKS fetched without blocking the event loop (slow, down, rotated keys, a
key-id miss refreshing once and rate-limited), and every refusal the same 401."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from typing import Any

import jwt
import pytest

from asf_kit import auth
from asf_kit.auth import INVALID_TOKEN, Principal, TokenVerifier
from asf_kit.problems import Problem
from asf_kit.settings import ServiceSettings
from asf_testing import JWT_TEST_SECRET, JwksServer, SigningKey

ISSUER = "https://idp.test.example"
AUDIENCE = "asf-samverkan"


def settings(**overrides: Any) -> ServiceSettings:
    base: dict[str, Any] = {"app_env": "development", "jwt_issuer": ISSUER,
                            "jwt_audience": AUDIENCE, "jwt_jwks_timeout": 0.5}
    return ServiceSettings(**{**base, **overrides})


def good(key: SigningKey, **claims: Any) -> str:
    return key.token(iss=ISSUER, aud=AUDIENCE, **claims)


async def refused(verifier: TokenVerifier, token: str) -> Problem:
    with pytest.raises(Problem) as caught:
        await verifier.verify(token)
    assert caught.value.status == 401
    assert caught.value.detail == INVALID_TOKEN  # nothing more is told
    return caught.value


@pytest.fixture
async def idp() -> AsyncIterator[tuple[SigningKey, JwksServer, TokenVerifier]]:
    key = SigningKey()
    with JwksServer(key) as server:
        verifier = TokenVerifier(settings(jwt_jwks_url=server.url))
        await verifier.start()
        try:
            yield key, server, verifier
        finally:
            await verifier.stop()


async def loop_stalls_during(work: Awaitable[Any]) -> float:
    """The longest the event loop went without running a 10 ms ticker while `work` ran."""
    worst = 0.0
    done = False

    async def tick() -> None:
        nonlocal worst
        last = time.monotonic()
        while not done:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            worst = max(worst, now - last)
            last = now

    ticker = asyncio.create_task(tick())
    try:
        await work
    finally:
        done = True
        await ticker
    return worst


async def test_a_token_from_the_jwks_is_accepted(
    idp: tuple[SigningKey, JwksServer, TokenVerifier],
) -> None:
    key, _, verifier = idp
    who = await verifier.verify(good(key, roles=["case_worker"], municipality_code="0180"))
    assert who == Principal(sub="user-1", name=None, roles=frozenset({"case_worker"}),
                            municipality_code="0180")


@pytest.mark.parametrize("claims", [
    {"aud": "another-service"}, {"iss": "https://evil.example"}, {"iat": None},
    {"lifetime": 12 * 3600 + 60}, {"lifetime": 100 * 365 * 24 * 3600}, {"exp": None},
    {"lifetime": -10}, {"sub": None},
], ids=["other-audience", "other-issuer", "no-iat", "over-12h", "100-years", "no-exp",
        "expired", "no-sub"])
async def test_bad_claims_are_refused_alike(
    idp: tuple[SigningKey, JwksServer, TokenVerifier], claims: dict[str, Any],
) -> None:
    key, _, verifier = idp
    await refused(verifier, key.token(**{"iss": ISSUER, "aud": AUDIENCE, **claims}))


async def test_a_lifetime_of_exactly_the_maximum_is_accepted(
    idp: tuple[SigningKey, JwksServer, TokenVerifier],
) -> None:
    key, _, verifier = idp
    assert (await verifier.verify(good(key, lifetime=12 * 3600))).sub == "user-1"


async def test_the_maximum_lifetime_is_a_setting(tmp_path: Any) -> None:
    key = SigningKey()
    verifier = TokenVerifier(settings(jwt_jwks_file=str(key.jwks_file(tmp_path)),
                                      jwt_max_lifetime="PT1H"))
    await verifier.verify(good(key, lifetime=3600))
    await refused(verifier, good(key, lifetime=3601))
    assert settings(jwt_max_lifetime="900").jwt_max_lifetime == timedelta(minutes=15)


async def test_alg_none_and_hs256_are_refused_where_a_jwks_is_set(
    idp: tuple[SigningKey, JwksServer, TokenVerifier],
) -> None:
    _, _, verifier = idp
    now = int(time.time())
    claims = {"sub": "u", "roles": ["analyst"], "iat": now, "exp": now + 60, "iss": ISSUER,
              "aud": AUDIENCE}
    await refused(verifier, jwt.encode(claims, None, algorithm="none"))
    await refused(verifier, jwt.encode(claims, JWT_TEST_SECRET, algorithm="HS256"))


async def test_a_token_signed_by_an_unknown_key_is_refused(
    idp: tuple[SigningKey, JwksServer, TokenVerifier],
) -> None:
    _, _, verifier = idp
    impostor = SigningKey()
    await refused(verifier, good(impostor))
    await refused(verifier, good(impostor, kid=idp[0].kid))  # a known kid, the wrong key


async def test_a_rotated_key_is_fetched_once_on_its_first_token(
    idp: tuple[SigningKey, JwksServer, TokenVerifier], monkeypatch: pytest.MonkeyPatch,
) -> None:
    key, server, verifier = idp
    await verifier.verify(good(key))
    fetched = server.requests
    rotated = SigningKey()
    server.keys.append(rotated)
    assert (await verifier.verify(good(rotated, sub="after-rotation"))).sub == "after-rotation"
    assert server.requests == fetched + 1
    await verifier.verify(good(rotated))  # cached now
    assert server.requests == fetched + 1


async def test_unknown_key_ids_refresh_at_most_once_per_interval(
    idp: tuple[SigningKey, JwksServer, TokenVerifier],
) -> None:
    key, server, verifier = idp
    await verifier.verify(good(key))
    before = server.requests
    forged = [good(key, kid=f"forged-{i}") for i in range(50)]
    await asyncio.gather(*(refused(verifier, t) for t in forged))
    assert server.requests - before == 1  # fifty misses, one fetch
    assert auth.MISS_REFRESH_INTERVAL >= 10


async def test_keys_are_refreshed_in_the_background() -> None:
    key = SigningKey()
    with JwksServer(key) as server:
        verifier = TokenVerifier(settings(jwt_jwks_url=server.url, jwt_jwks_refresh=0.2))
        await verifier.start()
        try:
            deadline = time.monotonic() + 10
            while server.requests < 3:  # at start and then every 0.2 s, with no request
                assert time.monotonic() < deadline, server.requests
                await asyncio.sleep(0.05)
            await verifier.verify(good(key))
        finally:
            await verifier.stop()


async def test_a_slow_jwks_never_blocks_the_event_loop() -> None:
    key = SigningKey()
    with JwksServer(key) as server:
        server.delay = 3.0  # longer than the 0.5 s timeout
        verifier = TokenVerifier(settings(jwt_jwks_url=server.url))
        await verifier.start()  # the first fetch hangs in the background
        try:
            started = time.monotonic()
            stall = await loop_stalls_during(asyncio.gather(
                *(refused(verifier, good(key)) for _ in range(20))))
            assert time.monotonic() - started < 2.5  # each waited at most the timeout
            assert stall < 0.25, f"the event loop stalled for {stall:.2f} s"
            server.delay = 0
            # The background refresh keeps trying and picks the keys up once they come.
            deadline = time.monotonic() + 15
            while not verifier._remote or not verifier._remote.keys:
                assert time.monotonic() < deadline, "the keys never came"
                await asyncio.sleep(0.05)
            assert (await verifier.verify(good(key))).sub == "user-1"
        finally:
            await verifier.stop()


async def test_a_jwks_that_is_down_gives_401_fast() -> None:
    key = SigningKey()
    server = JwksServer(key)
    server.down()
    verifier = TokenVerifier(settings(jwt_jwks_url=server.url))
    await verifier.start()
    try:
        started = time.monotonic()
        await refused(verifier, good(key))
        assert time.monotonic() - started < 2
    finally:
        await verifier.stop()


async def test_development_hs256_tokens_need_iat_and_a_bounded_lifetime() -> None:
    verifier = TokenVerifier(ServiceSettings(app_env="development",
                                             jwt_secret=JWT_TEST_SECRET))
    now = int(time.time())
    base = {"sub": "u", "roles": ["analyst"]}
    assert (await verifier.verify(auth.mint_token(JWT_TEST_SECRET, "u", ["analyst"]))).sub == "u"
    await refused(verifier, jwt.encode({**base, "exp": now + 60}, JWT_TEST_SECRET,
                                       algorithm="HS256"))
    await refused(verifier, jwt.encode({**base, "iat": now, "exp": now + 100 * 365 * 86400},
                                       JWT_TEST_SECRET, algorithm="HS256"))


def test_hs256_is_refused_in_production_without_the_opt_in() -> None:
    with pytest.raises(ValueError, match="JWT_ALLOW_HS256"):
        TokenVerifier(ServiceSettings(app_env="production", jwt_secret="s" * 40))
    TokenVerifier(ServiceSettings(app_env="production", jwt_secret="s" * 40,
                                  jwt_allow_hs256=True))
