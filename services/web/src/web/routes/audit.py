"""The auditor: who read or changed a participant's data, and when."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from web import forms
from web.auth import Auditor
from web.deps import ApisDep, see_other
from web.i18n import gettext as _
from web.templating import render

router = APIRouter()


@router.get("/audit")
async def audit_start(request: Request, user: Auditor) -> Response:
    return render(request, "audit.html", title=_("Loggranskning"))


@router.post("/audit")
async def audit_find(request: Request, user: Auditor) -> Response:
    form = await request.form()
    value = forms.text(form, "participant_id") or ""
    try:
        participant = UUID(value)
    except ValueError:
        errors = forms.FormErrors()
        errors.add("participant_id", _("Ange ärendets id, till exempel "
                                       "3f2c1e4a-8b7d-4c1e-9a2b-1c3d4e5f6a7b."),
                   _("Ärendets id"))
        return render(request, "audit.html", {**errors.context(), "values": forms.values(form)},
                      status=422, title=_("Loggranskning"))
    return see_other(request, f"/audit/participants/{participant}")


@router.get("/audit/participants/{participant_id}")
async def access_log(participant_id: UUID, request: Request, user: Auditor, apis: ApisDep,
                     cursor: str | None = None) -> Response:
    page = await apis.casework.get(f"/participants/{participant_id}/access-log", user.token,
                                   cursor=cursor, limit=200)
    return render(request, "access_log.html", {
        "entries": page["items"], "next_cursor": page.get("next_cursor"),
        "participant_id": str(participant_id)}, personal=True,
        title=_("Åtkomstlogg"))
