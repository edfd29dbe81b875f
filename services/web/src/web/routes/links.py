"""Links that arrive by email (notifications' templates): each opens the right page, after
signing in when needed (the pages themselves send the person to sign in and back)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from web.auth import SignedIn
from web.clients import ApiRefused
from web.deps import ApisDep
from web.errors import error_page
from web.i18n import gettext as _

router = APIRouter()


@router.get("/placements/{placement_id}")
async def placement(placement_id: UUID, request: Request, user: SignedIn,
                    apis: ApisDep) -> Response:
    """A placement: for a case worker, the case it belongs to; for the company's
    representative, the week of attendance it is in (this week, or its first)."""
    if user.has("case_worker"):
        for active in ("true", "false"):
            try:
                page = await apis.casework.get("/placements", user.token, active=active,
                                               limit=500)
            except ApiRefused:
                break
            for p in page["items"]:
                if p["id"] == str(placement_id):
                    return RedirectResponse(
                        f"/participants/{p['participant_id']}#placement-{placement_id}", 303)
    if user.has("company_rep") and user.company_id:
        # the week of attendance where the placement is (issue 19)
        from web.routes.attendance import rep_week_of

        week = await rep_week_of(apis, user, placement_id)
        if week is not None:
            return RedirectResponse(f"/attendance?week={week}#placement-{placement_id}", 303)
    return error_page(request, 404, _("Placeringen hittades inte"), _(
        "Placeringen finns inte, eller så hör den till en annan kommun."))
