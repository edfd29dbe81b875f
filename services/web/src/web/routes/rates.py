"""The municipality's rates (ersättningsnivåer): what it pays per day or hour present for
each kind of placement, from a date. Case workers set and read their municipality's;
analysts read every municipality's. The monthly statements are priced with them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from web import forms
from web.auth import CaseWorker, User, role
from web.deps import ApisDep, see_other
from web.i18n import N_
from web.i18n import gettext as _
from web.labels import options
from web.templating import flash, render

router = APIRouter()

RateReader = Annotated[User, role("case_worker", "analyst")]
UNITS = {"day": N_("per dag närvarande"), "hour": N_("per timme närvarande")}
FIELDS = {"kind": N_("Typ av placering"), "unit": N_("Betalas"),
          "amount_sek": N_("Belopp i kronor"), "valid_from": N_("Gäller från")}


async def _show(request: Request, user: User, apis: Any, status: int = 200,
                **extra: Any) -> Response:
    page = await apis.casework.get("/rates", user.token, limit=500)
    return render(request, "rates.html", {
        "rates": page["items"], "units": UNITS, "kinds": options("placement_kind"),
        "unit_choices": [(k, _(v)) for k, v in UNITS.items()],
        "may_set": user.has("case_worker"), **extra},
        status=status, title=_("Ersättningsnivåer"))


@router.get("/rates")
async def rates(request: Request, user: RateReader, apis: ApisDep) -> Response:
    return await _show(request, user, apis)


@router.post("/rates")
async def set_rate(request: Request, user: CaseWorker, apis: ApisDep) -> Response:
    form = await request.form()
    body = {"kind": forms.text(form, "kind"), "unit": forms.text(form, "unit"),
            "amount_sek": forms.number(form, "amount_sek"),
            "valid_from": forms.text(form, "valid_from")}
    r = await apis.casework.call("POST", "/rates", user.token, json=body, accept=(409, 422))
    if r.status_code in (409, 422):
        if r.status_code == 422:
            errors = forms.from_problem(r.json(), {k: _(v) for k, v in FIELDS.items()})
        else:
            errors = forms.FormErrors()
            errors.add("valid_from", _("Det finns redan en nivå för den typen från det datumet"),
                       _(FIELDS["valid_from"]))
        return await _show(request, user, apis, status=r.status_code, **errors.context(),
                           values=forms.values(form))
    flash(request, _("Ersättningsnivån är sparad. Den gäller för månader som stängs "
                     "från och med nu."))
    return see_other(request, "/rates")
