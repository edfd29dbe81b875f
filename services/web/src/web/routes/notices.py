"""Notifications for the analyst: who gets email (contacts), about what (subscriptions),
in which words (templates: edit, preview, activate), and what was sent (deliveries)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from web import forms, reference
from web.auth import Analyst, RegistryReader
from web.deps import ApisDep, see_other
from web.i18n import N_
from web.i18n import gettext as _
from web.labels import LABELS
from web.templating import flash, render

router = APIRouter()

CONTACT_FIELDS = {"name": N_("Namn"), "email": N_("E-post"), "role": N_("Roll"),
                  "municipality_code": N_("Kommun"), "company_id": N_("Företagets id"),
                  "subject": N_("Användar-id"), "locale": N_("Språk")}
SUB_FIELDS = {"event_type": N_("Händelse"), "contact_id": N_("Mottagare"), "role": N_("Roll"),
              "municipality_code": N_("Kommun"), "company_id": N_("Företagets id"),
              "mode": N_("När"), "template": N_("Mall")}
EVENT_TYPES = {
    "registry.company.registered.v1": N_("Företag registrerat"),
    "registry.company.verified.v1": N_("Företag godkänt"),
    "registry.company.rejected.v1": N_("Företag avslaget"),
    "registry.company.deregistered.v1": N_("Företag avregistrerat"),
    "registry.company.verification_expiring.v1": N_("Granskning går snart ut"),
    "registry.company.verification_expired.v1": N_("Granskning har gått ut"),
    "registry.contract.awarded.v1": N_("Avtal tilldelat"),
    "registry.learning_example.submitted.v1": N_("Lärande exempel inskickat"),
    "registry.learning_example.published.v1": N_("Lärande exempel publicerat"),
    "registry.learning_example.declined.v1": N_("Lärande exempel avböjt"),
    "casework.placement.started.v1": N_("Placering startad"),
    "casework.placements.flagged.v1": N_("Placeringar flaggade"),
    "casework.follow_up.due.v1": N_("Uppföljning att göra"),
    "casework.participant.employed.v1": N_("Deltagare anställd"),
    "casework.participant.reassigned.v1": N_("Ny handläggare"),
    "casework.plan.review_due.v1": N_("Planen ska följas upp"),
    "casework.statement.issued.v1": N_("Månadsunderlag utfärdat"),
}


def _labels(names: dict[str, str]) -> dict[str, str]:
    return {k: _(v) for k, v in names.items()}


def event_choices() -> list[tuple[str, str]]:
    return [(k, f"{_(v)} ({k})") for k, v in EVENT_TYPES.items()]


def contact_roles() -> list[tuple[str, str]]:
    return [(r, _(LABELS["role"][r])) for r in ("information_officer", "registry_officer",
                                                 "case_worker", "company_contact", "analyst")]


def _optional(form: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {k: forms.text(form, k) for k in names}


# --- contacts -------------------------------------------------------------------------


@router.get("/contacts")
async def contacts(request: Request, user: Analyst, apis: ApisDep,
                   role: str | None = None, cursor: str | None = None) -> Response:
    page = await apis.notifications.get("/contacts", user.token, role=role, cursor=cursor,
                                        limit=100)
    return render(request, "contacts.html", {"contacts": page["items"],
                                             "next_cursor": page.get("next_cursor"),
                                             "roles": contact_roles(), "role": role or ""},
                  personal=True, title=_("Mottagare"))


async def _contact_form(request: Request, user: Any, apis: Any, ctx: dict[str, Any],
                        status: int = 200) -> Response:
    return render(request, "contact_form.html", {
        "roles": contact_roles(),
        "municipalities": await reference.municipality_choices(apis, user.token), **ctx},
        status=status, personal=True, title=_("Mottagare"))


@router.get("/contacts/new")
async def new_contact(request: Request, user: Analyst, apis: ApisDep) -> Response:
    return await _contact_form(request, user, apis, {"contact": None})


@router.get("/contacts/{contact_id}")
async def edit_contact_form(contact_id: UUID, request: Request, user: Analyst,
                            apis: ApisDep) -> Response:
    contact = await apis.notifications.get(f"/contacts/{contact_id}", user.token)
    values = {k: contact.get(k) or "" for k in CONTACT_FIELDS}
    values["active"] = "on" if contact["active"] else ""
    return await _contact_form(request, user, apis, {"contact": contact, "values": values,
                                                     "version": contact["version"]})


@router.post("/contacts/new")
async def create_contact(request: Request, user: Analyst, apis: ApisDep) -> Response:
    form = await request.form()
    body = {k: v for k, v in _optional(form, tuple(CONTACT_FIELDS)).items() if v is not None}
    r = await apis.notifications.call("POST", "/contacts", user.token, json=body,
                                      accept=(409, 422))
    if r.status_code in (409, 422):
        errors = forms.from_problem(r.json(), _labels(CONTACT_FIELDS))
        return await _contact_form(request, user, apis, {
            "contact": None, **errors.context(), "values": forms.values(form)},
            status=r.status_code)
    flash(request, _("Mottagaren är sparad."))
    return see_other(request, "/contacts")


@router.post("/contacts/{contact_id}")
async def update_contact(contact_id: UUID, request: Request, user: Analyst,
                         apis: ApisDep) -> Response:
    form = await request.form()
    version = forms.text(form, "version") or "0"
    if forms.text(form, "action") == "delete":
        await apis.notifications.call("DELETE", f"/contacts/{contact_id}", user.token)
        flash(request, _("Mottagaren är borttagen."))
        return see_other(request, "/contacts")
    body: dict[str, Any] = _optional(form, tuple(CONTACT_FIELDS))
    body = {k: v for k, v in body.items() if v is not None or k in (
        "municipality_code", "company_id", "subject")}
    body["active"] = forms.checked(form, "active")
    r = await apis.notifications.call("PATCH", f"/contacts/{contact_id}", user.token,
                                      json=body, headers={"If-Match": f'"{version}"'},
                                      accept=(409, 412, 422))
    if r.status_code in (409, 412, 422):
        contact = await apis.notifications.get(f"/contacts/{contact_id}", user.token)
        errors = forms.from_problem(r.json(), _labels(CONTACT_FIELDS)) \
            if r.status_code != 412 else forms.FormErrors()
        return await _contact_form(request, user, apis, {
            "contact": contact, **errors.context(), "values": forms.values(form),
            "version": version, "stale": r.status_code == 412}, status=r.status_code)
    flash(request, _("Mottagaren är sparad."))
    return see_other(request, "/contacts")


# --- subscriptions --------------------------------------------------------------------


@router.get("/subscriptions")
async def subscriptions(request: Request, user: Analyst, apis: ApisDep) -> Response:
    page = await apis.notifications.get("/subscriptions", user.token, limit=500)
    return render(request, "subscriptions.html", {"subs": page["items"],
                                                  "events": dict(event_choices())},
                  title=_("Utskick"))


async def _sub_form(request: Request, user: Any, apis: Any, ctx: dict[str, Any],
                    status: int = 200) -> Response:
    contacts = (await apis.notifications.get("/contacts", user.token, limit=500))["items"]
    return render(request, "subscription_form.html", {
        "events": event_choices(), "roles": contact_roles(),
        "contacts": [(c["id"], f"{c['name']} ({c['email']})") for c in contacts], **ctx},
        status=status, title=_("Utskick"))


@router.get("/subscriptions/new")
async def new_subscription(request: Request, user: Analyst, apis: ApisDep) -> Response:
    return await _sub_form(request, user, apis, {"sub": None})


@router.get("/subscriptions/{subscription_id}")
async def edit_subscription_form(subscription_id: UUID, request: Request, user: Analyst,
                                 apis: ApisDep) -> Response:
    sub = await apis.notifications.get(f"/subscriptions/{subscription_id}", user.token)
    return await _sub_form(request, user, apis, {
        "sub": sub, "values": {k: sub.get(k) or "" for k in SUB_FIELDS},
        "version": sub["version"]})


@router.post("/subscriptions/new")
async def create_subscription(request: Request, user: Analyst, apis: ApisDep) -> Response:
    form = await request.form()
    body = {k: v for k, v in _optional(form, tuple(SUB_FIELDS)).items() if v is not None}
    r = await apis.notifications.call("POST", "/subscriptions", user.token, json=body,
                                      accept=(409, 422))
    if r.status_code in (409, 422):
        errors = forms.from_problem(r.json(), _labels(SUB_FIELDS))
        return await _sub_form(request, user, apis, {
            "sub": None, **errors.context(), "values": forms.values(form)},
            status=r.status_code)
    flash(request, _("Utskicket är sparat."))
    return see_other(request, "/subscriptions")


@router.post("/subscriptions/{subscription_id}")
async def update_subscription(subscription_id: UUID, request: Request, user: Analyst,
                              apis: ApisDep) -> Response:
    form = await request.form()
    if forms.text(form, "action") == "delete":
        await apis.notifications.call("DELETE", f"/subscriptions/{subscription_id}",
                                      user.token)
        flash(request, _("Utskicket är borttaget."))
        return see_other(request, "/subscriptions")
    version = forms.text(form, "version") or "0"
    body = {k: v for k, v in _optional(form, tuple(SUB_FIELDS)).items() if v is not None}
    r = await apis.notifications.call("PATCH", f"/subscriptions/{subscription_id}",
                                      user.token, json=body,
                                      headers={"If-Match": f'"{version}"'},
                                      accept=(409, 412, 422))
    if r.status_code in (409, 412, 422):
        sub = await apis.notifications.get(f"/subscriptions/{subscription_id}", user.token)
        errors = forms.from_problem(r.json(), _labels(SUB_FIELDS)) \
            if r.status_code != 412 else forms.FormErrors()
        return await _sub_form(request, user, apis, {
            "sub": sub, **errors.context(), "values": forms.values(form), "version": version,
            "stale": r.status_code == 412}, status=r.status_code)
    flash(request, _("Utskicket är sparat."))
    return see_other(request, "/subscriptions")


# --- templates ------------------------------------------------------------------------


@router.get("/templates")
async def templates(request: Request, user: Analyst, apis: ApisDep) -> Response:
    items = (await apis.notifications.get("/templates", user.token))["items"]
    names: dict[str, list[dict[str, Any]]] = {}
    for t in items:
        names.setdefault(t["name"], []).append(t)
    return render(request, "templates.html", {"names": sorted(names.items())},
                  title=_("Mallar"))


TEMPLATE_FIELDS = tuple(f"{locale}.{part}" for locale in ("sv", "en")
                        for part in ("subject", "text", "html"))


def _template_labels() -> dict[str, str]:
    out = {}
    for key in TEMPLATE_FIELDS:
        locale, part = key.split(".")
        words = {"subject": _("Ämnesrad"), "text": _("Text"), "html": _("HTML")}[part]
        out[key] = f"{_('Svenska') if locale == 'sv' else _('Engelska')}: {words}"
    out["note"] = _("Vad har ändrats?")
    return out


async def template_context(apis: Any, user: Any, name: str) -> dict[str, Any]:
    """The template's versions (newest first) and the one in use."""
    page = await apis.notifications.get(f"/templates/{name}/versions", user.token, limit=100)
    versions: list[dict[str, Any]] = page["items"]
    if not versions:
        from web.clients import ApiRefused

        raise ApiRefused(404, {"detail": "template not found"})
    active = next((v for v in versions if v["active"]), versions[0])
    return {"name": name, "versions": versions, "active": active}


def _version_values(version: dict[str, Any]) -> dict[str, str]:
    values = {}
    for locale in ("sv", "en"):
        text = version.get(locale) or {}
        for part in ("subject", "text", "html"):
            values[f"{locale}.{part}"] = text.get(part, "")
    return values


@router.get("/templates/{name}")
async def template_page(name: str, request: Request, user: Analyst, apis: ApisDep) -> Response:
    ctx = await template_context(apis, user, name)
    previews = {}
    for locale in ("sv", "en"):
        r = await apis.notifications.call("POST", f"/templates/{name}/preview", user.token,
                                          json={"locale": locale}, accept=(404, 422))
        if r.status_code == 200:
            previews[locale] = r.json()
    return render(request, "template.html", {
        **ctx, "previews": previews, "values": _version_values(ctx["active"])},
        title=_("Mall: %(name)s", name=name))


@router.post("/templates/{name}/versions")
async def new_template_version(name: str, request: Request, user: Analyst,
                               apis: ApisDep) -> Response:
    form = await request.form()
    body: dict[str, Any] = {locale: {part: forms.text(form, f"{locale}.{part}") or ""
                                     for part in ("subject", "text", "html")}
                            for locale in ("sv", "en")}
    body["note"] = forms.text(form, "note")
    r = await apis.notifications.call("POST", f"/templates/{name}/versions", user.token,
                                      json=body, accept=(409, 422))
    if r.status_code in (409, 422):
        ctx = await template_context(apis, user, name)
        errors = forms.from_problem(r.json(), _template_labels())
        return render(request, "template.html", {
            **ctx, **errors.context(), "values": forms.values(form), "previews": {}},
            status=r.status_code, title=_("Mall: %(name)s", name=name))
    created = r.json()
    flash(request, _("Version %(v)s är sparad. Aktivera den när du är nöjd.",
                     v=created.get("version")))
    return see_other(request, f"/templates/{name}#versions")


@router.post("/templates/{name}/versions/{version}/activation")
async def activate_template_version(name: str, version: int, request: Request,
                                    user: Analyst, apis: ApisDep) -> Response:
    r = await apis.notifications.call(
        "POST", f"/templates/{name}/versions/{version}/activation", user.token,
        accept=(404, 409, 422))
    if r.status_code >= 400:
        flash(request, str(r.json().get("detail") or _("Det gick inte.")), "error")
    else:
        flash(request, _("Version %(v)s används nu för nya utskick.", v=version))
    return see_other(request, f"/templates/{name}#versions")


# --- deliveries -----------------------------------------------------------------------


@router.get("/deliveries")
async def deliveries(request: Request, user: RegistryReader, apis: ApisDep,
                     status: str | None = None, cursor: str | None = None) -> Response:
    status = status if status in LABELS["delivery_status"] else None
    page = await apis.notifications.get("/deliveries", user.token, status=status,
                                        cursor=cursor, limit=100)
    return render(request, "deliveries.html", {
        "deliveries": page["items"], "next_cursor": page.get("next_cursor"),
        "status": status or "", "events": dict(event_choices())}, personal=True,
        title=_("Leveranser"))


@router.post("/deliveries/{delivery_id}/retry")
async def retry_delivery(delivery_id: UUID, request: Request, user: Analyst,
                         apis: ApisDep) -> Response:
    r = await apis.notifications.call("POST", f"/deliveries/{delivery_id}/retry", user.token,
                                      accept=(409,))
    if r.status_code == 409:
        flash(request, _("Bara misslyckade leveranser kan skickas igen."), "error")
    else:
        flash(request, _("Leveransen skickas igen."))
    return see_other(request, "/deliveries?status=failed")
