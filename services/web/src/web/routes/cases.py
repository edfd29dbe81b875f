"""The case: registering a participant, the case page with its next steps, placements,
employment, follow-ups, notes and timeline, correcting details and reassigning, erasure."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from web import forms, reference
from web.auth import CaseWorker, User
from web.clients import Apis
from web.deps import ApisDep, see_other
from web.i18n import N_
from web.i18n import gettext as _
from web.labels import NEXT_STAGES, STAGE_ACTIONS, label
from web.templating import flash, render

router = APIRouter()

PERSON_FIELDS = {
    "given_name": N_("Förnamn"), "family_name": N_("Efternamn"),
    "personal_identity_number": N_("Personnummer"), "phone": N_("Telefon"),
    "email": N_("E-post"), "referral_source": N_("Anvisad av"), "assigned_to": N_("Handläggare"),
}


def _labels(names: dict[str, str]) -> dict[str, str]:
    return {k: _(v) for k, v in names.items()}


# --- register -------------------------------------------------------------------------


@router.get("/participants/new")
async def new_participant(request: Request, user: CaseWorker) -> Response:
    return render(request, "participant_new.html", title=_("Registrera ny deltagare"))


@router.post("/participants/new")
async def create_participant(request: Request, user: CaseWorker, apis: ApisDep) -> Response:
    form = await request.form()
    body = {k: forms.text(form, k) for k in (
        "given_name", "family_name", "personal_identity_number", "phone", "email",
        "referral_source")}
    body = {k: v for k, v in body.items() if v is not None or k in (
        "given_name", "family_name", "personal_identity_number", "referral_source")}
    r = await apis.casework.call("POST", "/participants", user.token, json=body,
                                 accept=(409, 422))
    if r.status_code == 409:
        existing = r.json().get("existing_id")
        flash(request, _("Personen har redan ett öppet ärende i kommunen. Här är det."), "info")
        return see_other(request, f"/participants/{existing}")
    if r.status_code == 422:
        errors = forms.from_problem(r.json(), _labels(PERSON_FIELDS))
        return render(request, "participant_new.html", {
            **errors.context(), "values": forms.values(form)}, status=422, personal=True,
            title=_("Registrera ny deltagare"))
    created = r.json()
    flash(request, _("Deltagaren är registrerad."))
    return see_other(request, f"/participants/{created['id']}")


# --- the case page ---------------------------------------------------------------------


async def case_context(apis: Apis, user: User, participant_id: UUID) -> dict[str, Any]:
    participant = await apis.casework.get(f"/participants/{participant_id}", user.token)
    timeline = (await apis.casework.get(f"/participants/{participant_id}/timeline",
                                        user.token))["items"]
    placements: dict[str, dict[str, Any]] = {}
    follow_ups: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for item in timeline:
        d = item["details"]
        if item["kind"] == "placement_started":
            placements[d["placement_id"]] = {**d, "start": item["at"], "ended": None,
                                             "flagged": None}
        elif item["kind"] == "placement_ended" and d["placement_id"] in placements:
            placements[d["placement_id"]]["ended"] = {"at": item["at"], "reason": d["reason"]}
        elif item["kind"] == "placement_flagged" and d["placement_id"] in placements:
            placements[d["placement_id"]]["flagged"] = d["reason"] or "flagged"
        elif item["kind"] in ("follow_up_due", "follow_up_recorded"):
            follow_ups.append({**d, "kind": item["kind"], "at": item["at"]})
        elif item["kind"] == "note":
            notes.append({**d, "at": item["at"], "by": item["by"]})
    active_ids = {str(i) for i in participant.get("active_placement_ids", [])}
    stage = participant["stage"]
    next_stages = NEXT_STAGES.get(stage, ())
    if participant.get("erased_at"):
        next_stages = ()
    from web.routes.plan import case_extras  # the plan and attendance (issue 19)

    extras = await case_extras(apis, user, participant_id, list(placements.values()))
    return {
        **extras,
        "p": participant, "timeline": list(reversed(timeline)),
        "placements": list(placements.values()), "active_ids": active_ids,
        "follow_ups": follow_ups, "notes": list(reversed(notes)),
        "next_stages": next_stages, "stage_actions": STAGE_ACTIONS,
        "can_record_follow_up": participant.get("employment") is not None,
    }


async def show_case(request: Request, user: User, apis: Apis, participant_id: UUID,
                    status: int = 200, **extra: Any) -> Response:
    ctx = await case_context(apis, user, participant_id)
    ctx.update(extra)
    return render(request, "case.html", ctx, status=status, personal=True,
                  title=_("Ärende %(ref)s", ref=str(participant_id)[:8].upper()))


@router.get("/participants/{participant_id}")
async def case_page(participant_id: UUID, request: Request, user: CaseWorker,
                    apis: ApisDep) -> Response:
    return await show_case(request, user, apis, participant_id)


def _conflict(problem: dict[str, Any]) -> str:
    """A 409 in words: what the API said, and the steps that are allowed now."""
    allowed = problem.get("allowed")
    if isinstance(allowed, list):
        if not allowed:
            return _("Ärendet är avslutat och kan inte flyttas vidare.")
        return _("Det steget går inte just nu. Tillåtna steg: %(steps)s.",
                 steps=", ".join(label("stage", s) for s in allowed))
    return str(problem.get("detail") or _("Det gick inte."))


@router.post("/participants/{participant_id}/transitions")
async def transition(participant_id: UUID, request: Request, user: CaseWorker,
                     apis: ApisDep) -> Response:
    form = await request.form()
    to = forms.text(form, "to")
    if to == "in_training":
        return see_other(request, f"/participants/{participant_id}/placements/new")
    if to == "employed" and forms.text(form, "employment.form") is None:
        return see_other(request, f"/participants/{participant_id}/employment")
    if to == "closed" and forms.text(form, "exit_reason") is None and \
            forms.text(form, "confirm") is None:
        return see_other(request, f"/participants/{participant_id}/close")
    body: dict[str, Any] = {"to": to}
    if to == "closed" and forms.text(form, "exit_reason"):
        body["exit_reason"] = forms.text(form, "exit_reason")
    if to == "employed":
        employment = {"form": forms.text(form, "employment.form"),
                      "start": forms.text(form, "employment.start")}
        company = forms.text(form, "employment.employer_company_id")
        name = forms.text(form, "employment.employer_name")
        if company:
            employment["employer_company_id"] = company
        if name:
            employment["employer_name"] = name
        body["employment"] = employment
    r = await apis.casework.call("POST", f"/participants/{participant_id}/transitions",
                                 user.token, json=body, accept=(409, 422))
    if r.status_code == 409:
        return await show_case(request, user, apis, participant_id, status=409,
                               conflict=_conflict(r.json()))
    if r.status_code == 422:
        known = {"exit_reason": _("Orsak"), "employment.form": _("Anställningsform"),
                 "employment.start": _("Startdatum"),
                 "employment.employer_name": _("Arbetsgivare"),
                 "employment": _("Anställning")}
        errors = forms.from_problem(r.json(), known, aliases={"body": "employment"}
                                    if to == "employed" else {"body": "exit_reason"})
        template = "employment.html" if to == "employed" else "close.html"
        ctx = await _step_context(apis, user, participant_id)
        return render(request, template, {**ctx, **errors.context(),
                                          "values": forms.values(form)},
                      status=422, personal=True, title=_("Nästa steg"))
    flash(request, _("Ärendet är nu i steget %(stage)s.", stage=label("stage", to)))
    return see_other(request, f"/participants/{participant_id}")


async def _step_context(apis: Apis, user: User, participant_id: UUID) -> dict[str, Any]:
    p = await apis.casework.get(f"/participants/{participant_id}", user.token)
    return {"p": p}


@router.get("/participants/{participant_id}/close")
async def close_form(participant_id: UUID, request: Request, user: CaseWorker,
                     apis: ApisDep) -> Response:
    ctx = await _step_context(apis, user, participant_id)
    return render(request, "close.html", ctx, personal=True, title=_("Avsluta ärendet"))


@router.get("/participants/{participant_id}/employment")
async def employment_form(participant_id: UUID, request: Request, user: CaseWorker,
                          apis: ApisDep) -> Response:
    ctx = await _step_context(apis, user, participant_id)
    companies = await reference.active_companies(apis, user)
    return render(request, "employment.html", {**ctx, "companies": companies,
                                               "today": date.today().isoformat()},
                  personal=True, title=_("Registrera anställning"))


# --- placements ------------------------------------------------------------------------

PLACEMENT_FIELDS = {"company_id": N_("Företag"), "kind": N_("Typ av placering"),
                    "start": N_("Startdatum"), "planned_end": N_("Planerat slutdatum"),
                    "hours_per_week": N_("Timmar per vecka")}


@router.get("/participants/{participant_id}/placements/new")
async def placement_form(participant_id: UUID, request: Request, user: CaseWorker,
                         apis: ApisDep, county: str | None = None) -> Response:
    ctx = await _step_context(apis, user, participant_id)
    ctx.update(await reference.placement_choices(apis, user, county))
    return render(request, "placement_new.html", {**ctx, "today": date.today().isoformat()},
                  personal=True, title=_("Starta placering"))


@router.post("/participants/{participant_id}/placements")
async def start_placement(participant_id: UUID, request: Request, user: CaseWorker,
                          apis: ApisDep) -> Response:
    form = await request.form()
    body: dict[str, Any] = {
        "company_id": forms.text(form, "company_id"), "kind": forms.text(form, "kind"),
        "start": forms.text(form, "start"), "planned_end": forms.text(form, "planned_end"),
        "hours_per_week": forms.number(form, "hours_per_week"),
    }
    body = {k: v for k, v in body.items() if v is not None or k in ("company_id", "kind",
                                                                      "start")}
    r = await apis.casework.call("POST", f"/participants/{participant_id}/placements",
                                 user.token, json=body, accept=(409, 422))
    if r.status_code in (409, 422):
        problem = r.json()
        if r.status_code == 422:
            errors = forms.from_problem(problem, _labels(PLACEMENT_FIELDS))
        else:
            errors = forms.FormErrors()
            errors.add(None, _conflict(problem) if "allowed" in problem
                       else str(problem.get("detail")))
        ctx = await _step_context(apis, user, participant_id)
        ctx.update(await reference.placement_choices(apis, user, forms.text(form, "county")))
        return render(request, "placement_new.html", {
            **ctx, **errors.context(), "values": forms.values(form),
            "today": date.today().isoformat()},
            status=r.status_code, personal=True, title=_("Starta placering"))
    flash(request, _("Placeringen är startad och ärendet är i arbetsträning."))
    return see_other(request, f"/participants/{participant_id}")


@router.post("/placements/{placement_id}/end")
async def end_placement(placement_id: UUID, request: Request, user: CaseWorker,
                        apis: ApisDep) -> Response:
    form = await request.form()
    participant_id = forms.text(form, "participant_id") or ""
    body = {"reason": forms.text(form, "reason"), "end": forms.text(form, "end")}
    r = await apis.casework.call("POST", f"/placements/{placement_id}/end", user.token,
                                 json={k: v for k, v in body.items() if v is not None},
                                 accept=(409, 422))
    if r.status_code in (409, 422):
        flash(request, _("Placeringen kunde inte avslutas: %(why)s",
                         why=r.json().get("detail")), "error")
    else:
        flash(request, _("Placeringen är avslutad."))
    return see_other(request, f"/participants/{UUID(participant_id)}"
                     if participant_id else "/caseload")


# --- follow-ups and notes -------------------------------------------------------------


@router.post("/participants/{participant_id}/follow-ups")
async def record_follow_up(participant_id: UUID, request: Request, user: CaseWorker,
                           apis: ApisDep) -> Response:
    form = await request.form()
    still = forms.text(form, "still_employed")
    body: dict[str, Any] = {"still_employed": {"yes": True, "no": False}.get(still or "")}
    if forms.text(form, "offset_days"):
        body["offset_days"] = forms.number(form, "offset_days")
    r = await apis.casework.call("POST", f"/participants/{participant_id}/follow-ups",
                                 user.token, json=body, accept=(409, 422))
    if r.status_code in (409, 422):
        errors = forms.from_problem(r.json(), {"still_employed": _("Har personen kvar arbetet?"),
                                               "offset_days": _("Uppföljning")})
        return await show_case(request, user, apis, participant_id, status=r.status_code,
                               **errors.context(), values=forms.values(form))
    flash(request, _("Uppföljningen är registrerad."))
    return see_other(request, f"/participants/{participant_id}#follow-ups")


@router.post("/participants/{participant_id}/notes")
async def add_note(participant_id: UUID, request: Request, user: CaseWorker,
                   apis: ApisDep) -> Response:
    form = await request.form()
    body = {"text": forms.text(form, "text") or "",
            "confidential": forms.checked(form, "confidential")}
    r = await apis.casework.call("POST", f"/participants/{participant_id}/notes", user.token,
                                 json=body, accept=(422,))
    if r.status_code == 422:
        errors = forms.from_problem(r.json(), {"text": _("Anteckning")})
        return await show_case(request, user, apis, participant_id, status=422,
                               **errors.context(), values=forms.values(form))
    flash(request, _("Anteckningen är sparad."))
    return see_other(request, f"/participants/{participant_id}#notes")


# --- correcting details, reassigning, erasing ---------------------------------------------

EDIT_FIELDS = ("given_name", "family_name", "phone", "email", "referral_source", "assigned_to")


@router.get("/participants/{participant_id}/edit")
async def edit_form(participant_id: UUID, request: Request, user: CaseWorker,
                    apis: ApisDep) -> Response:
    ctx = await _step_context(apis, user, participant_id)
    p = ctx["p"]
    return render(request, "participant_edit.html", {
        **ctx, "values": {k: p.get(k) or "" for k in EDIT_FIELDS},
        "version": p["version"]}, personal=True, title=_("Ändra uppgifter"))


@router.post("/participants/{participant_id}/edit")
async def edit(participant_id: UUID, request: Request, user: CaseWorker,
               apis: ApisDep) -> Response:
    form = await request.form()
    version = forms.text(form, "version") or "0"
    body: dict[str, Any] = {}
    for k in EDIT_FIELDS:
        value = forms.text(form, k)
        if value is not None or k in ("phone", "email"):
            body[k] = value
    r = await apis.casework.call("PATCH", f"/participants/{participant_id}", user.token,
                                 json=body, headers={"If-Match": f'"{version}"'},
                                 accept=(409, 412, 422))
    if r.status_code in (409, 412, 422):
        ctx = await _step_context(apis, user, participant_id)
        errors = forms.from_problem(r.json(), _labels(PERSON_FIELDS)) \
            if r.status_code == 422 else forms.FormErrors()
        if r.status_code == 409:
            errors.add(None, str(r.json().get("detail")))
        return render(request, "participant_edit.html", {
            **ctx, **errors.context(), "values": forms.values(form), "version": version,
            "stale": r.status_code == 412}, status=r.status_code, personal=True,
            title=_("Ändra uppgifter"))
    flash(request, _("Uppgifterna är sparade."))
    return see_other(request, f"/participants/{participant_id}")


@router.get("/participants/{participant_id}/erase")
async def erase_form(participant_id: UUID, request: Request, user: CaseWorker,
                     apis: ApisDep) -> Response:
    ctx = await _step_context(apis, user, participant_id)
    return render(request, "erase.html", ctx, personal=True, title=_("Radera personuppgifter"))


@router.post("/participants/{participant_id}/erase")
async def erase(participant_id: UUID, request: Request, user: CaseWorker,
                apis: ApisDep) -> Response:
    r = await apis.casework.call("DELETE", f"/participants/{participant_id}", user.token,
                                 accept=(409,))
    if r.status_code == 409:
        flash(request, str(r.json().get("detail")), "error")
    else:
        flash(request, _("Personuppgifterna är raderade för gott. Statistiken finns kvar."))
    return see_other(request, f"/participants/{participant_id}")
