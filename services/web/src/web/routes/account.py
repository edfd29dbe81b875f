"""Signing in and out: OpenID Connect (authorization code + PKCE), and in development only
`/dev-login`, which mints a short-lived token from JWT_SECRET for a demo person."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from authlib.integrations.base_client.errors import OAuthError
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from asf_kit.auth import mint_token
from asf_kit.logging import get_logger
from asf_kit.problems import Problem
from web import forms, oidc
from web.auth import end_session, safe_next, start_session
from web.clients import ApiRefused, ApiUnavailable, TokenRefused
from web.deps import ApisDep, SettingsDep, see_other
from web.errors import error_page
from web.i18n import LOCALES
from web.i18n import gettext as _
from web.templating import flash, render

router = APIRouter()
log = get_logger(__name__)


@router.get("/sign-in")
async def sign_in(request: Request, settings: SettingsDep, next: str | None = None) -> Response:
    target = safe_next(next)
    idp = request.app.state.oidc
    if idp is not None:
        request.session["next"] = target
        redirect_uri = str(request.url_for("oidc_callback"))
        response: Response = await idp.authorize_redirect(request, redirect_uri)
        return response
    if not settings.production:
        return RedirectResponse("/dev-login?" + urlencode({"next": target}), status_code=303)
    return error_page(request, 503, _("Inloggningen är inte inställd"), _(
        "Appen saknar inställningar för inloggning (OIDC). Kontakta förvaltningen."))


@router.get("/auth/callback", name="oidc_callback")
async def oidc_callback(request: Request, settings: SettingsDep) -> Response:
    idp = request.app.state.oidc
    if idp is None:
        return error_page(request, 404, _("Sidan finns inte"), "")
    try:
        token: dict[str, Any] = await idp.authorize_access_token(request)
    except OAuthError as e:
        log.warning("sign-in refused by the provider", error=e.error)
        return error_page(request, 400, _("Inloggningen misslyckades"), _(
            "Identitetsleverantören godkände inte inloggningen. Försök igen."))
    claims = dict(token.get("userinfo") or {})
    api_token = oidc.api_token(token, settings.oidc_api_token)
    claims.update({k: v for k, v in oidc.unverified_claims(api_token).items()
                   if k in ("roles", "municipality_code", "company_id", "exp")})
    if "exp" not in claims and token.get("expires_at"):
        claims["exp"] = int(token["expires_at"])
    target = safe_next(request.session.pop("next", None))
    try:
        start_session(request.session, api_token, claims, id_token=token.get("id_token"))
    except Problem:
        return error_page(request, 403, _("Inloggningen misslyckades"), _(
            "Ditt konto saknar de uppgifter appen behöver (roll, kommun eller företag)."))
    return RedirectResponse(target, status_code=303)


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    id_token = request.session.get("id_token")
    end_session(request.session)
    after = str(request.url_for("signed_out"))
    idp = request.app.state.oidc
    if idp is not None:
        url = await oidc.end_session_url(idp, id_token, after)
        if url:
            return see_other(request, url)
    return see_other(request, "/signed-out")


@router.get("/signed-out", name="signed_out")
async def signed_out(request: Request) -> Response:
    return render(request, "signed_out.html", title=_("Du är utloggad"))


@router.post("/language")
async def language(request: Request) -> Response:
    form = await request.form()
    chosen = forms.text(form, "locale")
    if chosen in LOCALES:
        request.session["locale"] = chosen
    return see_other(request, safe_next(forms.text(form, "next")))


# --- development only ---------------------------------------------------------------------

DEMO_PEOPLE: list[dict[str, str]] = [
    {"sub": "demo-case-worker", "name": "Maja Handläggare", "role": "case_worker",
     "municipality_code": "0180", "about": "Handläggare i Stockholm (0180)"},
    {"sub": "cw-goteborg-1", "name": "Göran Handläggare", "role": "case_worker",
     "municipality_code": "1480", "about": "Handläggare i Göteborg (1480)"},
    {"sub": "demo-registry-officer", "name": "Rut Registrator", "role": "registry_officer",
     "about": "Registerhandläggare"},
    {"sub": "analyst-1", "name": "Ali Analytiker", "role": "analyst",
     "about": "Analytiker"},
    {"sub": "auditor-1", "name": "Greta Granskare", "role": "auditor",
     "municipality_code": "0180", "about": "Granskare i Stockholm (0180)"},
]
DEMO_COMPANY = "Returpunkten"
ROLES = ("case_worker", "registry_officer", "company_rep", "analyst", "auditor")


def _development(settings: SettingsDep) -> None:
    if settings.production:
        raise HTTPException(404)


async def _demo_rep(apis: ApisDep, settings: SettingsDep) -> dict[str, str] | None:
    """A representative of a demo company: its id is whatever the registry gave it."""
    if not settings.jwt_secret:
        return None
    token = mint_token(settings.jwt_secret, "dev-login", ["registry_officer"],
                       ttl=timedelta(minutes=1))
    try:
        page = await apis.registry.get("/companies", token, q=DEMO_COMPANY, limit=1)
    except (ApiUnavailable, ApiRefused, TokenRefused):
        return None
    items = page.get("items") if isinstance(page, dict) else None
    if not items:
        return None
    company = items[0]
    return {"sub": "demo-company-rep", "name": "Kim Företagare", "role": "company_rep",
            "company_id": company["id"], "about": f"Företagsrepresentant för {company['name']}"}


@router.get("/dev-login")
async def dev_login_page(request: Request, apis: ApisDep, settings: SettingsDep,
                         next: str | None = None) -> Response:
    _development(settings)
    people = list(DEMO_PEOPLE)
    rep = await _demo_rep(apis, settings)
    if rep:
        people.insert(3, rep)
    return render(request, "dev_login.html", {
        "people": people, "next": safe_next(next), "roles": ROLES,
        "secret_missing": not settings.jwt_secret,
    }, title=_("Utvecklingsinloggning"))


@router.post("/dev-login")
async def dev_login(request: Request, settings: SettingsDep) -> Response:
    _development(settings)
    if not settings.jwt_secret:
        return error_page(request, 503, _("JWT_SECRET saknas"), _(
            "Utvecklingsinloggningen skapar token med JWT_SECRET. Sätt den och starta om."))
    form = await request.form()
    sub = forms.text(form, "sub")
    role = forms.text(form, "role")
    if not sub or role not in ROLES:
        flash(request, _("Ange användar-id och roll."), "error")
        return see_other(request, "/dev-login")
    claims: dict[str, Any] = {"name": forms.text(form, "name"),
                              "municipality_code": forms.text(form, "municipality_code"),
                              "company_id": forms.text(form, "company_id")}
    token = mint_token(settings.jwt_secret, sub, [role],
                       ttl=timedelta(minutes=settings.dev_token_minutes),
                       issuer=settings.jwt_issuer, audience=settings.jwt_audience, **claims)
    try:
        start_session(request.session, token, oidc.unverified_claims(token))
    except Problem as e:
        flash(request, str(e.detail), "error")
        return see_other(request, "/dev-login")
    flash(request, _("Du är inloggad som %(name)s.", name=claims["name"] or sub))
    return see_other(request, safe_next(forms.text(form, "next")))

