"""The start: a signed-in person starts at `/` and finds their work; others see what the
service is and how to sign in."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from web.auth import user_of
from web.i18n import gettext as _
from web.templating import render

router = APIRouter()

START_PAGES = (
    ("case_worker", "/caseload"),
    ("registry_officer", "/review"),
    ("company_rep", "/my-company"),
    ("analyst", "/stats"),
    ("auditor", "/audit"),
)


@router.get("/")
async def start(request: Request) -> Response:
    user = user_of(request)
    if user is not None:
        for role, page in START_PAGES:
            if user.has(role):
                return RedirectResponse(page, status_code=303)
    return render(request, "start.html", title=_("Startsida"))
