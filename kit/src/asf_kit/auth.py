"""Bearer JWTs with roles (SPEC 2).

Development signs HS256 with `JWT_SECRET`; production verifies RS256/ES256 against a JWKS
(`JWT_JWKS_URL` or `JWT_JWKS_FILE`) and checks issuer and audience. Every token must carry
`iat` and `exp` and live no longer than `JWT_MAX_LIFETIME`. A JWKS fetched over HTTP is
kept in memory and refreshed in the background (`JwksKeys`, a kit worker), so a request
never waits on the identity provider unless it names a key id the cache has not seen, and
then at most `JWT_JWKS_TIMEOUT` seconds, at most once per `MISS_REFRESH_INTERVAL`.

Every refused token gets the same 401, `invalid or expired token`: what was wrong is logged
(without the token), not told to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import httpx
import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from asf_kit.logging import get_logger
from asf_kit.problems import Problem
from asf_kit.roles import Role as Role
from asf_kit.settings import ServiceSettings
from asf_kit.worker import Worker

log = get_logger(__name__)

INVALID_TOKEN = "invalid or expired token"  # noqa: S105 (the 401 detail, not a secret)
ASYMMETRIC = ["RS256", "ES256"]
MISS_REFRESH_INTERVAL = 30.0
"""Seconds between two fetches caused by unknown key ids (a flood of forged kids must not
become a flood of requests to the identity provider)."""


_MUNICIPALITY = re.compile(r"^\d{4}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling, from a verified token."""

    sub: str
    name: str | None
    roles: frozenset[str]
    municipality_code: str | None = None
    company_id: UUID | None = None

    def has(self, *roles: Role) -> bool:
        return any(r.value in self.roles for r in roles)


class InvalidToken(Exception):
    """Why a token was refused; logged, never shown to the caller."""


def _unauthorized(reason: str) -> Problem:
    log.info("token refused", reason=reason)
    return Problem(
        401, "Unauthorized", INVALID_TOKEN, slug="unauthorized",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def _parse_jwks(document: Any) -> dict[str | None, jwt.PyJWK]:
    """The usable signing keys of a JWKS document by key id (keys we cannot use are skipped)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document (no 'keys' list)")
    keys: dict[str | None, jwt.PyJWK] = {}
    for entry in document["keys"]:
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, TypeError, ValueError):
            continue
        if key.algorithm_name in ASYMMETRIC and entry.get("use", "sig") == "sig":
            keys[key.key_id] = key
    if not keys:
        raise ValueError("the JWKS holds no RS256 or ES256 signing key")
    return keys


def _pick(keys: dict[str | None, jwt.PyJWK], kid: str | None) -> jwt.PyJWK | None:
    if kid is None:
        return next(iter(keys.values())) if len(keys) == 1 else None
    return keys.get(kid)


class JwksKeys(Worker):
    """The keys of a JWKS served over HTTP: fetched at start and every `refresh` seconds in
    the background, with a `timeout`; an unknown key id fetches once more, rate-limited."""

    def __init__(self, url: str, *, timeout: float, refresh: float) -> None:
        super().__init__("jwks-refresh", interval=refresh)
        self.url = url
        self.timeout = timeout
        self.keys: dict[str | None, jwt.PyJWK] = {}
        self._fetching: asyncio.Task[None] | None = None
        self._last_miss_fetch = float("-inf")

    async def round(self) -> bool:
        await self.fetch()
        return False

    async def stop(self, grace: float = 10.0) -> None:
        await super().stop(grace)
        fetching, self._fetching = self._fetching, None
        if fetching is not None and not fetching.done():
            fetching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await fetching

    async def fetch(self) -> None:
        """One fetch at a time; callers arriving meanwhile share it."""
        if self._fetching is None or self._fetching.done():
            self._fetching = asyncio.create_task(self._fetch(), name="jwks-fetch")
        await asyncio.shield(self._fetching)

    async def _fetch(self) -> None:
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            response = await client.get(self.url, headers={"Accept": "application/json"})
            response.raise_for_status()
        self.keys = _parse_jwks(response.json())

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key for `kid`; an unknown one waits for the fetch in flight, or starts one
        (at most once per `MISS_REFRESH_INTERVAL`), never longer than `timeout`."""
        found = _pick(self.keys, kid)
        if found is not None:
            return found
        in_flight = self._fetching is not None and not self._fetching.done()
        now = time.monotonic()
        if not in_flight:
            if now - self._last_miss_fetch < MISS_REFRESH_INTERVAL:
                return None
            self._last_miss_fetch = now
        try:
            await asyncio.wait_for(self.fetch(), self.timeout)
        except Exception as e:  # the caller gets a 401; the background refresh keeps trying
            log.warning("JWKS fetch for an unknown key id failed", error=str(e),
                        error_type=type(e).__name__)
            return None
        return _pick(self.keys, kid)


class TokenVerifier:
    """Verifies a bearer token the way the settings say and turns it into a Principal.

    `start()` and `stop()` run the JWKS refresh when the keys come over HTTP; the service's
    lifespan calls them (`Runtime` does, when given the verifier).
    """

    def __init__(self, settings: ServiceSettings) -> None:
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._max_lifetime = settings.jwt_max_lifetime.total_seconds()
        self._remote: JwksKeys | None = None
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._secret: str | None = None
        self._algorithms = ASYMMETRIC
        if settings.jwt_jwks_url:
            self._remote = JwksKeys(settings.jwt_jwks_url, timeout=settings.jwt_jwks_timeout,
                                    refresh=settings.jwt_jwks_refresh)
        elif settings.jwt_jwks_file:
            self._keys = _parse_jwks(
                json.loads(Path(settings.jwt_jwks_file).read_text(encoding="utf-8")))
        elif settings.jwt_secret:
            if settings.production and not settings.jwt_allow_hs256:
                raise ValueError("JWT_ALLOW_HS256 is not true: HS256 is refused in production")
            self._secret = settings.jwt_secret
            self._algorithms = ["HS256"]
        else:
            raise ValueError("set JWT_SECRET (development) or JWT_JWKS_URL / JWT_JWKS_FILE")

    async def start(self) -> None:
        if self._remote is not None:
            await self._remote.start()

    async def stop(self) -> None:
        if self._remote is not None:
            await self._remote.stop(grace=1.0)

    async def _key(self, token: str) -> Any:
        if self._secret is not None:
            return self._secret
        kid = jwt.get_unverified_header(token).get("kid")
        kid = None if kid is None else str(kid)
        found = (await self._remote.key(kid) if self._remote is not None
                 else _pick(self._keys, kid))
        if found is None:
            raise InvalidToken(f"no signing key with kid {kid!r}")
        return found.key

    async def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                await self._key(token),
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                options={
                    "require": ["exp", "iat", "sub"],
                    "verify_aud": self._audience is not None,
                },
            )
            lifetime = claims["exp"] - claims["iat"]
            if not isinstance(lifetime, int | float) or lifetime > self._max_lifetime:
                raise InvalidToken(f"lifetime {lifetime}s is over JWT_MAX_LIFETIME")
        except (jwt.PyJWTError, InvalidToken, ValueError, TypeError, KeyError) as e:
            raise _unauthorized(f"{type(e).__name__}: {e}") from e
        return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise _unauthorized("claim 'roles' must be a list of strings")
    municipality = claims.get("municipality_code")
    if municipality is not None and not (
        isinstance(municipality, str) and _MUNICIPALITY.match(municipality)
    ):
        raise _unauthorized("claim 'municipality_code' must be 4 digits")
    company_id = claims.get("company_id")
    try:
        company = UUID(company_id) if company_id is not None else None
    except (ValueError, TypeError, AttributeError) as e:
        raise _unauthorized("claim 'company_id' must be a UUID") from e
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise _unauthorized("claim 'sub' must be a non-empty string")
    name = claims.get("name")
    return Principal(
        sub=sub,
        name=name if isinstance(name, str) else None,
        roles=frozenset(roles),
        municipality_code=municipality,
        company_id=company,
    )


def mint_token(
    secret: str,
    sub: str,
    roles: list[str],
    *,
    name: str | None = None,
    municipality_code: str | None = None,
    company_id: str | None = None,
    ttl: timedelta = timedelta(hours=12),
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """A development token signed with HS256."""
    claims: dict[str, Any] = {
        "sub": sub,
        "roles": roles,
        "exp": datetime.now(UTC) + ttl,
        "iat": datetime.now(UTC),
    }
    for key, value in (
        ("name", name), ("municipality_code", municipality_code), ("company_id", company_id),
        ("iss", issuer), ("aud", audience),
    ):
        if value is not None:
            claims[key] = value
    return jwt.encode(claims, secret, algorithm="HS256")


_bearer = HTTPBearer(auto_error=False, description="A JWT: `Authorization: Bearer <token>`")


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(
            401, "Unauthorized", INVALID_TOKEN, slug="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    verifier: TokenVerifier = request.app.state.verifier
    principal = await verifier.verify(credentials.credentials)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def require(*roles: Role) -> Callable[[Principal], Coroutine[Any, Any, Principal]]:
    """A dependency that lets through only callers holding one of `roles` (403 otherwise)."""
    names = ", ".join(r.value for r in roles)

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.has(*roles):
            raise Problem(
                403, "Forbidden", f"this needs one of the roles: {names}", slug="forbidden"
            )
        return principal

    return dependency
