"""Who is signed in: the person the session names, their token, and what they may see.

The web app decides only what to show; every API checks the token again.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request

from asf_kit.auth import principal_from_claims
from asf_kit.problems import Problem


@dataclass(frozen=True)
class User:
    sub: str
    name: str | None
    roles: frozenset[str]
    municipality_code: str | None
    company_id: str | None
    token: str

    def has(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)

    @property
    def display_name(self) -> str:
        return self.name or self.sub


class SignInRequired(Exception):
    """No session (or it ran out): the person signs in and comes back to `next`."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class Forbidden(Exception):
    """Signed in, but this page is for another role."""


def start_session(session: dict[str, Any], token: str, claims: dict[str, Any],
                  id_token: str | None = None) -> None:
    """Sign in: the session now names the person and holds their token (server-side use
    only: the cookie is sealed and HttpOnly)."""
    principal = principal_from_claims(claims)  # the same claim rules the APIs apply
    locale = session.get("locale")
    session.clear()
    session.update({
        "user": {"sub": principal.sub, "name": principal.name,
                 "roles": sorted(principal.roles),
                 "municipality_code": principal.municipality_code,
                 "company_id": str(principal.company_id) if principal.company_id else None},
        "token": token,
        "token_exp": int(claims.get("exp") or time.time() + 3600),
        "csrf": secrets.token_urlsafe(32),  # a new one at sign-in
    })
    if id_token:
        session["id_token"] = id_token
    if locale:
        session["locale"] = locale


def end_session(session: dict[str, Any]) -> None:
    locale = session.get("locale")
    session.clear()
    if locale:
        session["locale"] = locale


def user_of(request: Request) -> User | None:
    session = request.session
    data = session.get("user")
    token = session.get("token")
    if not data or not token:
        return None
    if session.get("token_exp", 0) <= time.time():
        return None
    return User(sub=data["sub"], name=data.get("name"), roles=frozenset(data.get("roles", [])),
                municipality_code=data.get("municipality_code"),
                company_id=data.get("company_id"), token=token)


def here(request: Request) -> str:
    """The path and query of this request: where to come back to after signing in."""
    url = request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return url


def safe_next(value: str | None, default: str = "/") -> str:
    """Only a path on this site: never another host (an open redirect)."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//") \
            or "\\" in value:
        return default
    return value


async def signed_in(request: Request) -> User:
    user = user_of(request)
    if user is None:
        if request.method in ("GET", "HEAD"):
            raise SignInRequired(here(request))
        referer = urlsplit(request.headers.get("referer", ""))
        raise SignInRequired(safe_next(referer.path if referer.netloc == request.url.netloc
                                       else None))
    request.state.user = user
    return user


SignedIn = Annotated[User, Depends(signed_in)]


def role(*roles: str) -> Any:
    """A dependency: the signed-in person, who must hold one of `roles`."""

    async def dependency(user: SignedIn) -> User:
        if not user.has(*roles):
            raise Forbidden()
        return user

    return Depends(dependency)


CaseWorker = Annotated[User, role("case_worker")]
Officer = Annotated[User, role("registry_officer")]
CompanyRep = Annotated[User, role("company_rep")]
Analyst = Annotated[User, role("analyst")]
Registrant = Annotated[User, role("company_rep", "registry_officer")]
StatsReader = Annotated[User, role("analyst", "case_worker")]
RegistryReader = Annotated[User, role("analyst", "registry_officer")]
Auditor = Annotated[User, role("auditor")]


# --- CSRF -------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made when first needed."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


async def csrf_protect(request: Request) -> None:
    """Every request that changes something must carry the session's CSRF token (form
    field `csrf_token` or header `X-CSRF-Token`) and, when the browser says where it comes
    from, come from this site."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    origin = request.headers.get("origin")
    if origin and origin != "null":
        expected = f"{request.url.scheme}://{request.url.netloc}"
        forwarded = request.headers.get("x-forwarded-host")
        allowed = {expected}
        if forwarded:
            allowed.add(f"{request.headers.get('x-forwarded-proto', 'https')}://{forwarded}")
        if origin not in allowed:
            raise CsrfRefused()
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
    expected_token = request.session.get("csrf")
    if not sent or not expected_token or not hmac.compare_digest(str(sent), str(expected_token)):
        raise CsrfRefused()


class CsrfRefused(Problem):
    def __init__(self) -> None:
        super().__init__(403, "CSRF", "the form's CSRF token is missing or wrong")
