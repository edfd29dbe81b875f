"""Errors as pages that help: never a stack trace, always the correlation id to quote."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from asf_kit.logging import get_logger
from web.auth import CsrfRefused, Forbidden, SignInRequired, end_session, here
from web.clients import ApiRefused, ApiUnavailable, TokenRefused
from web.deps import see_other
from web.i18n import gettext as _
from web.templating import render

log = get_logger(__name__)

API_NAMES = {"registry": "registret", "casework": "ärendehanteringen",
             "notifications": "utskicken"}


def sign_in_url(next_url: str) -> str:
    return "/sign-in?" + urlencode({"next": next_url})


def error_page(request: Request, status: int, heading: str, text: str,
               **extra: object) -> Response:
    return render(request, "error.html", {"heading": heading, "text": text, **extra},
                  status=status, title=heading)


def install(app: FastAPI) -> None:
    async def on_sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return see_other(request, sign_in_url(exc.next_url))

    async def on_token_refused(request: Request, exc: Exception) -> Response:
        # The API no longer accepts the token: sign out cleanly and come back here after.
        end_session(request.session)
        request.session["flash"] = [{"kind": "info", "text": _(
            "Din inloggning har gått ut. Logga in igen för att fortsätta.")}]
        return see_other(request, sign_in_url(here(request) if request.method == "GET"
                                              else "/"))

    async def on_forbidden(request: Request, exc: Exception) -> Response:
        return error_page(request, 403, _("Du har inte behörighet"), _(
            "Sidan hör till en annan roll än din. Välj en sida i menyn."))

    async def on_csrf(request: Request, exc: Exception) -> Response:
        return error_page(request, 403, _("Formuläret kunde inte skickas"), _(
            "Formuläret kom inte från den här sidan eller var för gammalt. Gå tillbaka, "
            "ladda om sidan och försök igen."))

    async def on_unavailable(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiUnavailable)
        slow = exc.reason == "timeout"
        what = API_NAMES.get(exc.api, exc.api)
        text = (_("Tjänsten för %(what)s svarar för långsamt just nu.", what=what) if slow
                else _("Tjänsten för %(what)s går inte att nå just nu.", what=what))
        return error_page(request, 503, _("Tjänsten är inte tillgänglig"), text,
                          retry=True, headers_retry=True)

    async def on_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiRefused)
        if exc.status == 404:
            return error_page(request, 404, _("Sidan finns inte"), _(
                "Det du letar efter finns inte, eller så har du inte tillgång till det."))
        if exc.status == 403:
            return await on_forbidden(request, exc)
        log.warning("api refused", status=exc.status, detail=exc.problem.get("detail"))
        return error_page(request, exc.status if exc.status < 500 else 502,
                          _("Det gick inte"), str(exc.problem.get("detail") or ""))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            return error_page(request, 404, _("Sidan finns inte"), _(
                "Kontrollera adressen, eller börja om från startsidan."))
        if exc.status_code == 405:
            return error_page(request, 405, _("Det går inte att göra så här"), _(
                "Börja om från startsidan."))
        return error_page(request, exc.status_code, _("Det gick inte"), str(exc.detail))

    app.add_exception_handler(SignInRequired, on_sign_in)
    app.add_exception_handler(TokenRefused, on_token_refused)
    app.add_exception_handler(Forbidden, on_forbidden)
    app.add_exception_handler(CsrfRefused, on_csrf)
    app.add_exception_handler(ApiUnavailable, on_unavailable)
    app.add_exception_handler(ApiRefused, on_refused)
    async def on_bad_address(request: Request, exc: Exception) -> Response:
        return error_page(request, 404, _("Sidan finns inte"), _(
            "Kontrollera adressen, eller börja om från startsidan."))

    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_bad_address)
