"""Companies: the registry officer's review queue, verification, deregistration and CSV
import; a company representative registering and keeping their company up to date;
contracts; everybody signed in reading the register."""

from __future__ import annotations

import re
from datetime import date
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from web import forms, reference
from web.auth import CompanyRep, Officer, Registrant, SignedIn, User
from web.clients import Apis
from web.deps import ApisDep, see_other
from web.i18n import N_
from web.i18n import gettext as _
from web.labels import LABELS, label
from web.templating import flash, render

router = APIRouter()

CRITERIA = ("runs_business", "integration_purpose", "participation", "reinvests_profits",
            "independent_of_public_sector")
CRITERIA_EXPLAINED = {
    "runs_business": N_("Företaget producerar och säljer varor eller tjänster."),
    "integration_purpose": N_("Företagets övergripande syfte är att ge arbete åt personer som "
                              "har svårt att få eller behålla ett jobb."),
    "participation": N_("Medarbetarna är med och bestämmer, genom ägande, avtal eller på annat "
                        "dokumenterat sätt."),
    "reinvests_profits": N_("Vinsten går i huvudsak tillbaka till den egna eller liknande "
                            "verksamhet."),
    "independent_of_public_sector": N_("Företaget är fristående från offentlig verksamhet "
                                       "(inte en del av kommun, region eller stat)."),
}
MAX_CONTACTS = 20
"""As many contact people as the registry keeps for one company."""
_CONTACT_FIELDS = ("name", "role", "email", "phone")
_CONTACT_SLOT = re.compile(r"^contacts\[(\d+)\]\.")

COMPANY_FIELDS = {
    "org_number": N_("Organisationsnummer"), "name": N_("Namn"),
    "legal_form": N_("Juridisk form"), "municipality_code": N_("Kommun"),
    "industries": N_("Bransch"), "description": N_("Beskrivning"), "website": N_("Webbplats"),
    "training_places": N_("Platser för arbetsträning"), "origin": N_("Hur företaget kom till"),
    "contacts": N_("Kontaktperson"),
    **{f"contacts[{i}].{k}": text for i in range(MAX_CONTACTS) for k, text in (
        ("name", N_("Kontaktpersonens namn")), ("email", N_("Kontaktpersonens e-post")),
        ("phone", N_("Kontaktpersonens telefon")), ("role", N_("Kontaktpersonens roll")))},
    "workforce": N_("Personal"), "workforce.as_of": N_("Uppgifterna gäller"),
    "workforce.employees_total": N_("Anställda"),
    "workforce.engaged_total": N_("Alla som arbetar där"),
    "workforce.target_group_engaged": N_("Av dem i målgruppen"),
    "criteria": N_("Kriterierna"), "criteria.participation": N_("Medarbetarnas delaktighet"),
    "criteria.participation.description": N_("Beskriv hur medarbetarna är delaktiga"),
    **{f"criteria.{c}": N_("Kriteriet") for c in CRITERIA if c != "participation"},
}


def _labels(names: dict[str, str]) -> dict[str, str]:
    return {k: _(v) for k, v in names.items()}


# --- lists ----------------------------------------------------------------------------


@router.get("/review")
async def review_queue(request: Request, user: Officer, apis: ApisDep) -> Response:
    pending = await apis.registry.get("/companies", user.token, status="pending", limit=200)
    needs_review: list[dict[str, Any]] = []
    r = await apis.registry.call("GET", "/companies", user.token,
                                 params={"needs_review": "true", "limit": 200}, accept=(422,))
    if r.status_code == 200:
        needs_review = [c for c in r.json()["items"] if c["status"] == "active"]
    return render(request, "review.html", {"pending": pending["items"],
                                           "needs_review": needs_review},
                  title=_("Granskning"))


@router.get("/companies")
async def companies(request: Request, user: SignedIn, apis: ApisDep, q: str | None = None,
                    status: str | None = None, county_code: str | None = None,
                    industry: str | None = None, cursor: str | None = None) -> Response:
    if not user.has("registry_officer", "case_worker", "analyst"):
        return RedirectResponse("/my-company", 303)
    status = status if status in LABELS["company_status"] else None
    page = await apis.registry.get("/companies", user.token, q=q, status=status,
                                   county_code=county_code, industry=industry, cursor=cursor,
                                   limit=50)
    return render(request, "companies.html", {
        "companies": page["items"], "next_cursor": page.get("next_cursor"),
        "counties": await reference.counties(apis, user.token),
        "filters": {"q": q or "", "status": status or "", "county_code": county_code or "",
                    "industry": industry or ""},
    }, title=_("Företag"))


# --- import ---------------------------------------------------------------------------


@router.get("/companies/import")
async def import_form(request: Request, user: Officer) -> Response:
    return render(request, "import.html", title=_("Importera företag"))


@router.post("/companies/import")
async def import_csv(request: Request, user: Officer, apis: ApisDep) -> Response:
    form = await request.form()
    upload = form.get("file")
    content = await upload.read() if upload is not None and hasattr(upload, "read") else b""
    if not content:
        errors = forms.FormErrors()
        errors.add("file", _("Välj en CSV-fil."), _("CSV-fil"))
        return render(request, "import.html", errors.context(), status=422,
                      title=_("Importera företag"))
    r = await apis.registry.call("POST", "/companies/import", user.token, content=content,
                                 headers={"Content-Type": "text/csv"}, accept=(413, 422))
    if r.status_code in (413, 422):
        problem = r.json()
        rows = problem.get("rows") or problem.get("errors") or []
        return render(request, "import.html", {
            "row_errors": rows, "problem": problem,
            "error_list": [{"href": "#row-errors", "text": _(
                "Inget importerades: %(n)s fel i filen. Rätta raderna nedan och försök igen.",
                n=problem.get("error_count") or len(rows))}]},
            status=r.status_code, title=_("Importera företag"))
    result = r.json()
    flash(request, _("%(n)s företag importerades. De väntar nu på granskning.",
                     n=result["imported"]))
    return see_other(request, "/review")


# --- one company ----------------------------------------------------------------------


async def company_context(apis: Apis, user: User, company_id: UUID) -> dict[str, Any]:
    company = await apis.registry.get(f"/companies/{company_id}", user.token)
    contracts = (await apis.registry.get("/contracts", user.token,
                                         company_id=str(company_id), limit=100))["items"]
    own = user.has("company_rep") and (user.company_id == str(company_id)
                                        or company.get("registered_by") == user.sub)
    placements = None
    if own:
        r = await apis.casework.call("GET", f"/companies/{company_id}/placements", user.token,
                                     accept=(403, 404))
        if r.status_code == 200:
            placements = r.json()["items"]
    return {"c": company, "contracts": contracts, "own": own, "placements": placements,
            "criteria": CRITERIA, "explained": CRITERIA_EXPLAINED,
            "may_edit": own or user.has("registry_officer"),
            "today": date.today().isoformat()}


@router.get("/companies/new")
async def new_company(request: Request, user: Registrant,
                      apis: ApisDep) -> Response:
    return await _company_form(request, user, apis, {})


async def _company_form(request: Request, user: User, apis: Apis, extra: dict[str, Any],
                        status: int = 200, company: dict[str, Any] | None = None) -> Response:
    return render(request, "company_form.html", {
        "contact_slots": contact_slots(extra.get("values") or {}),
        "municipalities": await reference.municipality_choices(apis, user.token),
        "criteria": CRITERIA, "explained": CRITERIA_EXPLAINED, "company": company,
        "today": date.today().isoformat(), **extra,
    }, status=status, title=_("Ändra företaget") if company else _("Registrera företag"))


def contact_slots(values: dict[str, Any]) -> list[int]:
    """The form's contact people to show: each one the values hold (in the form's order),
    then an empty one to add another, while there is room."""
    filled = sorted({int(m.group(1)) for name, value in values.items()
                     if (m := _CONTACT_SLOT.match(name)) and int(m.group(1)) < MAX_CONTACTS
                     and name.rsplit(".", 1)[1] in _CONTACT_FIELDS and value})
    if len(filled) < MAX_CONTACTS:
        filled.append(filled[-1] + 1 if filled else 0)
    return filled


def contacts_of(form: Any) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The contact people the form holds, in its order; one whose fields were all emptied is
    left out (removed). With them, the registry's field of each (`contacts[1].email`) → the
    form's (`contacts[2].email`), to put the registry's errors beside the field typed in."""
    people: list[dict[str, Any]] = []
    aliases: dict[str, str] = {}
    slots = sorted({int(m.group(1)) for name in form
                    if (m := _CONTACT_SLOT.match(name)) and int(m.group(1)) < MAX_CONTACTS})
    for i in slots:
        person = {k: forms.text(form, f"contacts[{i}].{k}") for k in _CONTACT_FIELDS}
        if not any(person.values()):
            continue
        j = len(people)
        aliases[f"contacts[{j}]"] = f"contacts[{i}].name"
        aliases.update({f"contacts[{j}].{k}": f"contacts[{i}].{k}" for k in _CONTACT_FIELDS})
        people.append({**{k: v for k, v in person.items() if v is not None},
                       "public": forms.checked(form, f"contacts[{i}].public")})
    return people, aliases


def company_body(form: Any) -> dict[str, Any]:
    """The form as the registry's company document."""
    participation_form = forms.text(form, "criteria.participation.form")
    body: dict[str, Any] = {
        "name": forms.text(form, "name"),
        "legal_form": forms.text(form, "legal_form"),
        "municipality_code": forms.text(form, "municipality_code"),
        "industries": [i for i in form.getlist("industries") if isinstance(i, str)],
        "description": forms.text(form, "description"),
        "website": forms.text(form, "website"),
        "contacts": contacts_of(form)[0],
        "workforce": {
            "as_of": forms.text(form, "workforce.as_of"),
            "employees_total": forms.number(form, "workforce.employees_total"),
            "engaged_total": forms.number(form, "workforce.engaged_total"),
            "target_group_engaged": forms.number(form, "workforce.target_group_engaged"),
        },
        "training_places": forms.number(form, "training_places"),
        "origin": forms.text(form, "origin"),
        "criteria": {
            "runs_business": forms.checked(form, "criteria.runs_business"),
            "integration_purpose": forms.checked(form, "criteria.integration_purpose"),
            "participation": None if not participation_form else {
                "form": participation_form,
                "description": forms.text(form, "criteria.participation.description")},
            "reinvests_profits": forms.checked(form, "criteria.reinvests_profits"),
            "independent_of_public_sector": forms.checked(
                form, "criteria.independent_of_public_sector"),
        },
    }
    return body


def company_values(c: dict[str, Any]) -> dict[str, Any]:
    """A company document as form values (to edit it)."""
    crit = c["criteria"]
    values: dict[str, Any] = {
        "name": c["name"], "legal_form": c["legal_form"],
        "municipality_code": c["municipality_code"], "industries": c["industries"],
        "description": c.get("description") or "", "website": c.get("website") or "",
        "training_places": c["training_places"], "origin": c["origin"],
        "workforce.as_of": c["workforce"]["as_of"],
        "workforce.employees_total": c["workforce"]["employees_total"],
        "workforce.engaged_total": c["workforce"]["engaged_total"],
        "workforce.target_group_engaged": c["workforce"]["target_group_engaged"],
        "criteria.participation.form": (crit.get("participation") or {}).get("form", ""),
        "criteria.participation.description":
            (crit.get("participation") or {}).get("description") or "",
    }
    for i, contact in enumerate((c.get("contacts") or [])[:MAX_CONTACTS]):
        for k in _CONTACT_FIELDS:
            values[f"contacts[{i}].{k}"] = contact.get(k) or ""
        if contact.get("public"):
            values[f"contacts[{i}].public"] = "on"
    for k in CRITERIA:
        if k != "participation" and crit.get(k):
            values[f"criteria.{k}"] = "on"
    return values


@router.post("/companies/new")
async def create_company(request: Request, user: Registrant,
                         apis: ApisDep) -> Response:
    form = await request.form()
    body = company_body(form)
    body["org_number"] = forms.text(form, "org_number")
    r = await apis.registry.call("POST", "/companies", user.token, json=body,
                                 accept=(409, 422))
    if r.status_code in (409, 422):
        problem = r.json()
        if r.status_code == 409:
            errors = forms.FormErrors()
            errors.add("org_number", _("Ett företag med det organisationsnumret finns redan "
                                       "i registret."), _("Organisationsnummer"))
        else:
            errors = forms.from_problem(problem, _labels(COMPANY_FIELDS), contacts_of(form)[1])
        return await _company_form(request, user, apis, {
            **errors.context(), "values": forms.values(form)}, status=r.status_code)
    company = r.json()
    if user.has("company_rep") and not user.company_id:
        # Their company from now on (the registry lets its registrant update it); an id,
        # no personal data.
        request.session["registered_company_id"] = company["id"]
    flash(request, _("Företaget är registrerat och väntar på granskning av en "
                     "registerhandläggare."))
    return see_other(request, f"/companies/{company['id']}")


@router.get("/my-company")
async def my_company(request: Request, user: CompanyRep) -> Response:
    company_id = user.company_id or request.session.get("registered_company_id")
    if company_id:
        return RedirectResponse(f"/companies/{company_id}", 303)
    return render(request, "my_company.html", title=_("Mitt företag"))


@router.get("/companies/{company_id}")
async def company_page(company_id: UUID, request: Request, user: SignedIn,
                       apis: ApisDep) -> Response:
    ctx = await company_context(apis, user, company_id)
    return render(request, "company.html", ctx, title=ctx["c"]["name"])


@router.get("/companies/{company_id}/edit")
async def edit_company_form(company_id: UUID, request: Request,
                            user: Registrant,
                            apis: ApisDep) -> Response:
    company = await apis.registry.get(f"/companies/{company_id}", user.token)
    return await _company_form(request, user, apis, {"values": company_values(company),
                                                     "version": company["version"]},
                               company=company)


@router.post("/companies/{company_id}/edit")
async def edit_company(company_id: UUID, request: Request,
                       user: Registrant,
                       apis: ApisDep) -> Response:
    form = await request.form()
    version = forms.text(form, "version") or "0"
    body = company_body(form)
    r = await apis.registry.call("PATCH", f"/companies/{company_id}", user.token, json=body,
                                 headers={"If-Match": f'"{version}"'},
                                 accept=(409, 412, 422))
    if r.status_code in (409, 412, 422):
        company = await apis.registry.get(f"/companies/{company_id}", user.token)
        errors = forms.from_problem(r.json(), _labels(COMPANY_FIELDS), contacts_of(form)[1]) \
            if r.status_code == 422 else forms.FormErrors()
        if r.status_code == 409:
            errors.add(None, str(r.json().get("detail")))
        return await _company_form(request, user, apis, {
            **errors.context(), "values": forms.values(form), "version": version,
            "stale": r.status_code == 412}, status=r.status_code, company=company)
    flash(request, _("Ändringarna är sparade."))
    return see_other(request, f"/companies/{company_id}")


# --- the officer's decisions ----------------------------------------------------------


def _decision_problem(problem: dict[str, Any]) -> str:
    unmet = problem.get("unmet_criteria")
    if isinstance(unmet, list) and unmet:
        return _("Företaget kan inte godkännas: dessa kriterier är inte uppfyllda: %(list)s.",
                 list=", ".join(label("criterion", c) for c in unmet))
    allowed = problem.get("allowed")
    if isinstance(allowed, list):
        words = ", ".join(label("company_status", s) for s in allowed) or _("inga")
        return _("Det går inte i företagets nuvarande status. Möjliga nästa steg: %(list)s.",
                 list=words)
    return str(problem.get("detail") or "")


@router.post("/companies/{company_id}/verification")
async def verify(company_id: UUID, request: Request, user: Officer,
                 apis: ApisDep) -> Response:
    form = await request.form()
    body = {"decision": forms.text(form, "decision"), "note": forms.text(form, "note")}
    if body["decision"] == "verified":
        body["level"] = forms.text(form, "level") or "verified"
        if forms.text(form, "valid_until"):
            body["valid_until"] = forms.text(form, "valid_until")
    r = await apis.registry.call("POST", f"/companies/{company_id}/verification", user.token,
                                 json={k: v for k, v in body.items() if v is not None},
                                 accept=(409, 422))
    return await _after_decision(request, user, apis, company_id, r.status_code, r.json(),
                                 _("Företaget är godkänt och aktivt.")
                                 if body["decision"] == "verified"
                                 else _("Ansökan är avslagen."), form)


@router.post("/companies/{company_id}/deregistration")
async def deregister(company_id: UUID, request: Request, user: Officer,
                     apis: ApisDep) -> Response:
    form = await request.form()
    body = {"reason": forms.text(form, "reason"), "note": forms.text(form, "note")}
    r = await apis.registry.call("POST", f"/companies/{company_id}/deregistration", user.token,
                                 json={k: v for k, v in body.items() if v is not None},
                                 accept=(409, 422))
    return await _after_decision(request, user, apis, company_id, r.status_code, r.json(),
                                 _("Företaget är avregistrerat."), form)


async def _after_decision(request: Request, user: User, apis: Apis, company_id: UUID,
                          status: int, problem: dict[str, Any], done: str,
                          form: Any) -> Response:
    if status in (409, 422):
        ctx = await company_context(apis, user, company_id)
        if status == 422:
            errors = forms.from_problem(problem, {"reason": _("Skäl"), "note": _("Anteckning"),
                                                  "valid_until": _("Giltigt till"),
                                                  "decision": _("Beslut")})
        else:
            errors = forms.FormErrors()
            errors.add(None, _decision_problem(problem))
        return render(request, "company.html", {**ctx, **errors.context(),
                                                "values": forms.values(form)}, status=status,
                      title=ctx["c"]["name"])
    flash(request, done)
    return see_other(request, f"/companies/{company_id}")


# --- contracts ------------------------------------------------------------------------

CONTRACT_FIELDS = {"municipality_code": N_("Upphandlande kommun"), "title": N_("Avtalet"),
                   "procurement_reference": N_("Upphandlingens diarienummer"),
                   "value_sek": N_("Värde i kronor"), "start": N_("Startdatum"),
                   "end": N_("Slutdatum"), "reserved": N_("Reserverad upphandling")}


@router.post("/companies/{company_id}/contracts")
async def award_contract(company_id: UUID, request: Request,
                         user: Registrant,
                         apis: ApisDep) -> Response:
    form = await request.form()
    body: dict[str, Any] = {k: forms.text(form, k) for k in (
        "municipality_code", "title", "procurement_reference", "start", "end")}
    body = {k: v for k, v in body.items() if v is not None or k in ("municipality_code",
                                                                     "title", "start")}
    body["value_sek"] = forms.number(form, "value_sek")
    body["reserved"] = forms.text(form, "reserved") == "yes" if forms.text(form, "reserved") \
        else None
    r = await apis.registry.call("POST", f"/companies/{company_id}/contracts", user.token,
                                 json=body, accept=(409, 422))
    if r.status_code in (409, 422):
        ctx = await company_context(apis, user, company_id)
        errors = forms.from_problem(r.json(), _labels(CONTRACT_FIELDS))
        return render(request, "company.html", {
            **ctx, **errors.context(), "values": forms.values(form), "contract_open": True},
            status=r.status_code, title=ctx["c"]["name"])
    flash(request, _("Avtalet är registrerat."))
    return see_other(request, f"/companies/{company_id}#contracts")
