"""Outcome statistics (drawn, with the numbers beside), and learning examples to publish."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from web import forms, reference
from web.auth import Analyst, RegistryReader, SignedIn, StatsReader, User
from web.charts import Bar, bar_chart
from web.clients import Apis
from web.deps import ApisDep, see_other
from web.errors import error_page
from web.i18n import gettext as _
from web.labels import LABELS, STAGE_ORDER, label
from web.templating import flash, render

router = APIRouter()


def _month_start(value: str | None) -> str | None:
    """The form gives a month (YYYY-MM); the API wants whole months as dates."""
    if not value:
        return None
    try:
        y, m = (int(x) for x in value.split("-")[:2])
        return date(y, m, 1).isoformat()
    except ValueError:
        return value


def _month_end(value: str | None) -> str | None:
    start = _month_start(value)
    if start is None:
        return None
    try:
        d = date.fromisoformat(start)
    except ValueError:
        return start
    nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1).isoformat()


def _bars(kind: str, counts: dict[str, int | None], order: tuple[str, ...] | None = None
          ) -> list[Bar]:
    keys = list(order or LABELS[kind].keys())
    keys += [k for k in counts if k not in keys]
    return [Bar(label(kind, k), counts.get(k, 0)) for k in keys]


@router.get("/stats")
async def stats(request: Request, user: StatsReader, apis: ApisDep,
                municipality_code: str | None = None) -> Response:
    params = request.query_params
    from_month, to_month = params.get("from") or None, params.get("to") or None
    municipality = municipality_code if user.has("analyst") else user.municipality_code
    r = await apis.casework.call("GET", "/stats/outcomes", user.token, params={
        "municipality_code": municipality or None, "from": _month_start(from_month),
        "to": _month_end(to_month)}, accept=(422,))
    errors = forms.FormErrors()
    outcomes: dict[str, Any] | None = None
    if r.status_code == 422:
        errors = forms.from_problem(r.json(), {"from": _("Från och med"), "to": _("Till och med"),
                                               "municipality_code": _("Kommun")})
    else:
        outcomes = r.json()
    charts: list[dict[str, Any]] = []
    if outcomes:
        for key, kind, title, order in (
            ("by_stage", "stage", _("Deltagare per steg"), STAGE_ORDER),
            ("employed_by_form", "employment_form", _("Anställda per anställningsform"), None),
            ("exits_by_reason", "exit_reason", _("Avslutade per orsak"), None),
        ):
            bars = _bars(kind, outcomes.get(key) or {}, order)
            charts.append({"id": key, "title": title, "bars": bars,
                           "svg": bar_chart(title, bars, chart_id=f"chart-{key}")})
    registry_stats = await apis.registry.get("/stats", user.token)
    county_bars = [Bar(c["county_name"], c["companies_active"])
                   for c in registry_stats["counties"]]
    return render(request, "stats.html", {
        "o": outcomes, "charts": charts, **errors.context(),
        "values": {"municipality_code": municipality_code or "", "from": from_month or "",
                   "to": to_month or ""},
        "municipalities": await reference.municipality_choices(apis, user.token)
        if user.has("analyst") else [],
        "registry": registry_stats,
        "county_chart": bar_chart(_("Aktiva företag per län"), county_bars,
                                  chart_id="chart-counties"),
    }, status=422 if errors else 200, title=_("Statistik"))


# --- learning examples ----------------------------------------------------------------

async def _examples(apis: Apis, user: User) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await apis.registry.get("/learning-examples", user.token, limit=500,
                                       cursor=cursor)
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor or len(items) >= 2000:
            return items


@router.get("/learning-examples")
async def learning_examples(request: Request, user: RegistryReader,
                            apis: ApisDep) -> Response:
    items = await _examples(apis, user)
    return render(request, "learning_examples.html", {"examples": items},
                  title=_("Lärande exempel"))


@router.get("/learning-examples/new")
async def new_example(request: Request, user: SignedIn, apis: ApisDep) -> Response:
    return render(request, "learning_example_new.html", {
        "municipalities": await reference.municipality_choices(apis, user.token),
        "values": {"municipality_code": user.municipality_code or "",
                   "contact.name": user.name or ""}}, title=_("Skicka in ett lärande exempel"))


@router.post("/learning-examples/new")
async def submit_example(request: Request, user: SignedIn, apis: ApisDep) -> Response:
    form = await request.form()
    body = {
        "municipality_code": forms.text(form, "municipality_code"),
        "title": forms.text(form, "title"), "summary": forms.text(form, "summary"),
        "collaboration_types": [v for v in form.getlist("collaboration_types")
                                if isinstance(v, str)],
        "contact": {"name": forms.text(form, "contact.name"),
                    "email": forms.text(form, "contact.email")},
    }
    r = await apis.registry.call("POST", "/learning-examples", user.token, json=body,
                                 accept=(422,))
    if r.status_code == 422:
        errors = forms.from_problem(r.json(), {
            "municipality_code": _("Kommun"), "title": _("Rubrik"), "summary": _("Sammanfattning"),
            "collaboration_types": _("Typ av samarbete"), "contact": _("Kontakt"),
            "contact.name": _("Ditt namn"), "contact.email": _("Din e-post")})
        return render(request, "learning_example_new.html", {
            **errors.context(), "values": forms.values(form),
            "municipalities": await reference.municipality_choices(apis, user.token)},
            status=422, title=_("Skicka in ett lärande exempel"))
    flash(request, _("Tack! Exemplet är inskickat och SKR:s informationsansvariga har fått "
                     "besked."))
    return see_other(request, "/")


@router.get("/learning-examples/{example_id}")
async def learning_example(example_id: UUID, request: Request, user: RegistryReader,
                           apis: ApisDep) -> Response:
    r = await apis.registry.call("GET", f"/learning-examples/{example_id}", user.token,
                                 accept=(404, 405))
    example = r.json() if r.status_code == 200 else None
    if example is None:  # an older registry without GET /learning-examples/{id}
        example = next((e for e in await _examples(apis, user)
                        if e["id"] == str(example_id)), None)
    if example is None:
        return error_page(request, 404, _("Exemplet finns inte"), "")
    return render(request, "learning_example.html", {"e": example},
                  title=example["title"])


@router.post("/learning-examples/{example_id}/publication")
async def decide_example(example_id: UUID, request: Request, user: Analyst,
                         apis: ApisDep) -> Response:
    form = await request.form()
    decision = forms.text(form, "decision")
    r = await apis.registry.call("POST", f"/learning-examples/{example_id}/publication",
                                 user.token, json={"decision": decision,
                                                   "note": forms.text(form, "note")},
                                 accept=(404, 405, 409, 422))
    if r.status_code in (404, 405):
        flash(request, _("Registret kan inte publicera exempel än."), "error")
    elif r.status_code in (409, 422):
        flash(request, str(r.json().get("detail")), "error")
    else:
        flash(request, _("Exemplet är publicerat.") if decision == "published"
              else _("Exemplet är avböjt."))
    return see_other(request, f"/learning-examples/{example_id}")
