"""Bearer JWTs with roles (SPEC 2).

Development signs HS256 with `JWT_SECRET`; production verifies RS256/ES256
against a JWKS (`JWT_JWKS_URL` or `JWT_JWKS_FILE`) and checks issuer and audience.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from asf_kit.problems import Problem
from asf_kit.settings import ServiceSettings


class Role(StrEnum):
    CASE_WORKER = "case_worker"
    REGISTRY_OFFICER = "registry_officer"
    COMPANY_REP = "company_rep"
    ANALYST = "analyst"
    AUDITOR = "auditor"


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


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401, "Unauthorized", detail, slug="unauthorized",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


class TokenVerifier:
    """Verifies a bearer token the way the settings say and turns it into a Principal."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._jwks_client: jwt.PyJWKClient | None = None
        self._jwks: jwt.PyJWKSet | None = None
        self._secret: str | None = None
        if settings.jwt_jwks_url:
            self._jwks_client = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True)
            self._algorithms = ["RS256", "ES256"]
        elif settings.jwt_jwks_file:
            self._jwks = jwt.PyJWKSet.from_dict(
                json.loads(Path(settings.jwt_jwks_file).read_text(encoding="utf-8"))
            )
            self._algorithms = ["RS256", "ES256"]
        elif settings.jwt_secret:
            self._secret = settings.jwt_secret
            self._algorithms = ["HS256"]
        else:
            raise ValueError("set JWT_SECRET (development) or JWT_JWKS_URL / JWT_JWKS_FILE")

    def _key(self, token: str) -> Any:
        if self._secret is not None:
            return self._secret
        kid = jwt.get_unverified_header(token).get("kid")
        if self._jwks_client is not None:
            if kid is None:
                return self._jwks_client.get_signing_key_from_jwt(token).key
            return self._jwks_client.get_signing_key(str(kid)).key
        assert self._jwks is not None
        for key in self._jwks.keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise jwt.InvalidKeyError(f"no key with kid {kid!r}")

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self._audience is not None,
                },
            )
        except jwt.ExpiredSignatureError as e:
            raise _unauthorized("the token has expired") from e
        except (jwt.PyJWTError, ValueError) as e:
            raise _unauthorized(f"the token is not valid: {e}") from e
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
            401, "Unauthorized", "an Authorization: Bearer token is required",
            slug="unauthorized", headers={"WWW-Authenticate": "Bearer"},
        )
    verifier: TokenVerifier = request.app.state.verifier
    principal = verifier.verify(credentials.credentials)
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
