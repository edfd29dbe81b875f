"""The notification service's HTTP API: parse, call the service, respond."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from asf_kit.api import (
    Cursor,
    IfMatch,
    Limit,
    if_match_version,
    problems,
    set_etag,
)
from asf_kit.auth import Principal, Role, require
from asf_kit.pagination import DEFAULT_LIMIT, Page, decode_cursor, time_cursor
from asf_kit.problems import invalid, not_found
from notifications import mailcatcher
from notifications.domain import (
    Contact,
    ContactIn,
    ContactPatch,
    Delivery,
    DeliveryStatus,
    RoleName,
    Subscription,
    SubscriptionIn,
    SubscriptionPatch,
)
from notifications.mail_templates import Locale, Template, TemplateVersion, TemplateVersionIn
from notifications.service import Notifications
from notifications.settings import NotificationsSettings

router = APIRouter()


async def _settings(request: Request) -> NotificationsSettings:
    settings: NotificationsSettings = request.app.state.settings
    return settings


async def _notifications(request: Request) -> Notifications:
    notifications: Notifications = request.app.state.notifications
    return notifications


def _created(item: Contact | Subscription | Delivery) -> list[str]:
    """The cursor key of a list in the order things were created."""
    return [item.created_at.isoformat(), str(item.id)]


Settings = Annotated[NotificationsSettings, Depends(_settings)]
Service = Annotated[Notifications, Depends(_notifications)]
TemplateName = Annotated[str, Path(pattern=r"^[a-z0-9_]{1,100}$")]
MAX_VERSION = 2**31 - 1  # a PostgreSQL integer
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]
DeliveryReader = Annotated[Principal, Depends(require(Role.ANALYST, Role.REGISTRY_OFFICER))]
_errors = problems(403, 404, 409, 412, 428)


# --- contacts -------------------------------------------------------------------------------


@router.post("/contacts", status_code=201, tags=["contacts"], responses=_errors)
async def create_contact(body: ContactIn, svc: Service, _: Analyst, response: Response) -> Contact:
    """Someone to email: an information officer, a registry officer, a case worker (give
    `subject`, their JWT `sub`, so events naming them reach them)."""
    contact = await svc.create_contact(body)
    set_etag(response, contact.version)
    response.headers["Location"] = f"/contacts/{contact.id}"
    return contact


@router.get("/contacts", tags=["contacts"], responses=_errors)
async def list_contacts(
    svc: Service,
    _: Analyst,
    role: RoleName | None = None,
    company_id: UUID | None = None,
    municipality_code: Annotated[str | None, Query(pattern=r"^\d{4}$")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Contact]:
    items = await svc.list_contacts(
        role=role, company_id=company_id, municipality_code=municipality_code,
        after=time_cursor(cursor), limit=limit + 1,
    )
    return Page[Contact].of(items, limit, _created)


@router.get("/contacts/{contact_id}", tags=["contacts"], responses=_errors)
async def get_contact(contact_id: UUID, svc: Service, _: Analyst, response: Response) -> Contact:
    contact = await svc.get_contact(contact_id)
    set_etag(response, contact.version)
    return contact


@router.patch("/contacts/{contact_id}", tags=["contacts"], responses=_errors)
async def update_contact(
    contact_id: UUID, body: ContactPatch, svc: Service, _: Analyst, response: Response,
    if_match: IfMatch = None,
) -> Contact:
    """Change a contact. Needs the version read (If-Match or `version`); 412 when stale."""
    contact = await svc.update_contact(contact_id, body, if_match_version(if_match))
    set_etag(response, contact.version)
    return contact


@router.delete("/contacts/{contact_id}", status_code=204, tags=["contacts"], responses=_errors)
async def delete_contact(contact_id: UUID, svc: Service, _: Analyst) -> Response:
    await svc.delete_contact(contact_id)
    return Response(status_code=204)


# --- subscriptions --------------------------------------------------------------------------


@router.post("/subscriptions", status_code=201, tags=["subscriptions"], responses=_errors)
async def create_subscription(
    body: SubscriptionIn, svc: Service, _: Analyst, response: Response
) -> Subscription:
    """Route an event type to a contact or a role, now or in the daily digest."""
    sub = await svc.create_subscription(body)
    set_etag(response, sub.version)
    response.headers["Location"] = f"/subscriptions/{sub.id}"
    return sub


@router.get("/subscriptions", tags=["subscriptions"], responses=_errors)
async def list_subscriptions(
    svc: Service,
    _: Analyst,
    event_type: Annotated[str | None, Query(pattern=r"^[a-z0-9_.]{1,100}$")] = None,
    contact_id: UUID | None = None,
    role: RoleName | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Subscription]:
    items = await svc.list_subscriptions(
        event_type=event_type, contact_id=contact_id, role=role,
        after=time_cursor(cursor), limit=limit + 1,
    )
    return Page[Subscription].of(items, limit, _created)


@router.get("/subscriptions/{subscription_id}", tags=["subscriptions"], responses=_errors)
async def get_subscription(
    subscription_id: UUID, svc: Service, _: Analyst, response: Response
) -> Subscription:
    sub = await svc.get_subscription(subscription_id)
    set_etag(response, sub.version)
    return sub


@router.patch("/subscriptions/{subscription_id}", tags=["subscriptions"], responses=_errors)
async def update_subscription(
    subscription_id: UUID, body: SubscriptionPatch, svc: Service, _: Analyst, response: Response,
    if_match: IfMatch = None,
) -> Subscription:
    sub = await svc.update_subscription(subscription_id, body, if_match_version(if_match))
    set_etag(response, sub.version)
    return sub


@router.delete("/subscriptions/{subscription_id}", status_code=204, tags=["subscriptions"],
               responses=_errors)
async def delete_subscription(subscription_id: UUID, svc: Service, _: Analyst) -> Response:
    await svc.delete_subscription(subscription_id)
    return Response(status_code=204)


# --- deliveries -----------------------------------------------------------------------------


@router.get("/deliveries", tags=["deliveries"], responses=_errors)
async def list_deliveries(
    svc: Service,
    _: DeliveryReader,
    status: DeliveryStatus | None = None,
    event_id: UUID | None = None,
    contact_id: UUID | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Delivery]:
    """Newest first. `failed` ones carry `last_error`; `skipped` ones say who was missing."""
    items = await svc.list_deliveries(
        status=status, event_id=event_id, contact_id=contact_id,
        before=time_cursor(cursor), limit=limit + 1,
    )
    return Page[Delivery].of(items, limit, _created)


@router.get("/deliveries/{delivery_id}", tags=["deliveries"], responses=_errors)
async def get_delivery(delivery_id: UUID, svc: Service, _: DeliveryReader) -> Delivery:
    return await svc.get_delivery(delivery_id)


@router.post("/deliveries/{delivery_id}/retry", tags=["deliveries"], responses=_errors)
async def retry_delivery(delivery_id: UUID, svc: Service, _: Analyst) -> Delivery:
    """Send a failed delivery again (same Message-ID); 409 for any other status."""
    return await svc.retry_delivery(delivery_id)


# --- templates ------------------------------------------------------------------------------


@router.get("/templates", tags=["templates"], responses=_errors)
async def list_templates(svc: Service, _: Analyst) -> Page[Template]:
    """The version in use of every template, in every locale (one page)."""
    return Page[Template](items=await svc.list_templates(), next_cursor=None)


@router.get("/templates/{name}/versions", tags=["templates"], responses=_errors)
async def list_template_versions(
    name: TemplateName, svc: Service, _: Analyst, limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[TemplateVersion]:
    """Every version of a template, newest first, each in every locale; `active` marks the
    one in use."""
    before = _version_cursor(cursor)
    items = await svc.template_versions(name, before=before, limit=limit + 1)
    return Page[TemplateVersion].of(items, limit, lambda v: [v.version])


def _version_cursor(cursor: str | None) -> int | None:
    key = decode_cursor(cursor, 1)
    if key is None:
        return None
    if not isinstance(key[0], int) or not 1 <= key[0] <= MAX_VERSION:
        raise invalid("cursor", "not a cursor this API returned")
    return key[0]


@router.post("/templates/{name}/versions", status_code=201, tags=["templates"],
             responses=_errors)
async def add_template_version(
    name: TemplateName, body: TemplateVersionIn, svc: Service, who: Analyst,
    response: Response,
) -> TemplateVersion:
    """A new version, Swedish and English. It must render in the sandbox with the event's
    sample data: a 422 names each failing part (`sv.html`) with its line. It is not used
    until it is activated."""
    version = await svc.add_template_version(name, body, who.sub)
    response.headers["Location"] = f"/templates/{name}/versions/{version.version}"
    return version


@router.post("/templates/{name}/versions/{version}/activation", tags=["templates"],
             responses=_errors)
async def activate_template_version(
    name: TemplateName, version: Annotated[int, Path(ge=1, le=MAX_VERSION)], svc: Service,
    who: Analyst,
) -> TemplateVersion:
    """Use this version for every email from now on; activating an earlier version rolls
    back. Deliveries already written keep the version they used."""
    return await svc.activate_template(name, version, who.sub)


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locale: Locale = "sv"
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION,
                                description="A version to try out; the one in use when left out")
    payload: dict[str, Any] | None = None
    """An event payload of the template's event type; a sample one when left out."""


@router.post("/templates/{name}/preview", tags=["templates"], responses=_errors)
async def preview_template(
    name: TemplateName,
    svc: Service,
    _: Analyst,
    body: Annotated[PreviewRequest | None, Body()] = None,
) -> Template:
    """Render the version in use (or `version`) with a sample payload, or the one given."""
    req = body or PreviewRequest()
    return await svc.preview(name, req.locale, req.payload, req.version)


# --- the development mail catcher ---------------------------------------------------------


@router.get("/mailcatcher", tags=["development"], responses=_errors)
async def list_caught_mail(
    settings: Settings, _: Analyst, limit: Limit = DEFAULT_LIMIT
) -> Page[mailcatcher.CaughtMail]:
    """What the built-in mail catcher received (only when no SMTP_HOST is set)."""
    if settings.smtp_host:
        raise not_found("mail catcher (SMTP_HOST is set)")
    items = mailcatcher.caught(FilePath(settings.mailcatcher_dir), limit)
    return Page[mailcatcher.CaughtMail](items=items, next_cursor=None)
