"""The notification service's HTTP API: parse, call the service, respond."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from asf_kit.api import (
    Cursor,
    IfMatch,
    Limit,
    Pool,
    if_match_version,
    problems,
    set_etag,
    time_cursor,
)
from asf_kit.auth import Principal, Role, require
from asf_kit.pagination import DEFAULT_LIMIT, Page, encode_cursor
from asf_kit.problems import not_found
from notifications import mailcatcher, service, store
from notifications.domain import (
    Contact,
    ContactIn,
    ContactPatch,
    Delivery,
    DeliveryStatus,
    Locale,
    RoleName,
    Subscription,
    SubscriptionIn,
    SubscriptionPatch,
    Template,
)
from notifications.settings import NotificationsSettings

router = APIRouter()


def _settings(request: Request) -> NotificationsSettings:
    settings: NotificationsSettings = request.app.state.settings
    return settings


Settings = Annotated[NotificationsSettings, Depends(_settings)]
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]
DeliveryReader = Annotated[Principal, Depends(require(Role.ANALYST, Role.REGISTRY_OFFICER))]
_errors = problems(403, 404, 409, 412, 428)


def _next(items: list[Any], limit: int) -> str | None:
    if len(items) <= limit:
        return None
    last = items[limit - 1]
    return encode_cursor([last.created_at.isoformat(), str(last.id)])


# --- contacts -------------------------------------------------------------------------------


@router.post("/contacts", status_code=201, tags=["contacts"], responses=_errors)
async def create_contact(body: ContactIn, pool: Pool, _: Analyst, response: Response) -> Contact:
    """Someone to email: an information officer, a registry officer, a case worker (give
    `subject`, their JWT `sub`, so events naming them reach them)."""
    contact = await service.create_contact(pool, body)
    set_etag(response, contact.version)
    response.headers["Location"] = f"/contacts/{contact.id}"
    return contact


@router.get("/contacts", tags=["contacts"], responses=_errors)
async def list_contacts(
    pool: Pool,
    _: Analyst,
    role: RoleName | None = None,
    company_id: UUID | None = None,
    municipality_code: Annotated[str | None, Query(pattern=r"^\d{4}$")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Contact]:
    async with pool.acquire() as conn:
        items = await store.list_contacts(
            conn, role=role, company_id=company_id, municipality_code=municipality_code,
            after=time_cursor(cursor), limit=limit + 1,
        )
    return Page[Contact](items=items[:limit], next_cursor=_next(items, limit))


@router.get("/contacts/{contact_id}", tags=["contacts"], responses=_errors)
async def get_contact(contact_id: UUID, pool: Pool, _: Analyst, response: Response) -> Contact:
    contact = await service.get_contact(pool, contact_id)
    set_etag(response, contact.version)
    return contact


@router.patch("/contacts/{contact_id}", tags=["contacts"], responses=_errors)
async def update_contact(
    contact_id: UUID, body: ContactPatch, pool: Pool, _: Analyst, response: Response,
    if_match: IfMatch = None,
) -> Contact:
    """Change a contact. Needs the version read (If-Match or `version`); 412 when stale."""
    contact = await service.update_contact(pool, contact_id, body, if_match_version(if_match))
    set_etag(response, contact.version)
    return contact


@router.delete("/contacts/{contact_id}", status_code=204, tags=["contacts"], responses=_errors)
async def delete_contact(contact_id: UUID, pool: Pool, _: Analyst) -> Response:
    await service.delete_contact(pool, contact_id)
    return Response(status_code=204)


# --- subscriptions --------------------------------------------------------------------------


@router.post("/subscriptions", status_code=201, tags=["subscriptions"], responses=_errors)
async def create_subscription(
    body: SubscriptionIn, pool: Pool, _: Analyst, response: Response
) -> Subscription:
    """Route an event type to a contact or a role, now or in the daily digest."""
    sub = await service.create_subscription(pool, body)
    set_etag(response, sub.version)
    response.headers["Location"] = f"/subscriptions/{sub.id}"
    return sub


@router.get("/subscriptions", tags=["subscriptions"], responses=_errors)
async def list_subscriptions(
    pool: Pool,
    _: Analyst,
    event_type: Annotated[str | None, Query(pattern=r"^[a-z0-9_.]{1,100}$")] = None,
    contact_id: UUID | None = None,
    role: RoleName | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Subscription]:
    async with pool.acquire() as conn:
        items = await store.list_subscriptions(
            conn, event_type=event_type, contact_id=contact_id, role=role,
            after=time_cursor(cursor), limit=limit + 1,
        )
    return Page[Subscription](items=items[:limit], next_cursor=_next(items, limit))


@router.get("/subscriptions/{subscription_id}", tags=["subscriptions"], responses=_errors)
async def get_subscription(
    subscription_id: UUID, pool: Pool, _: Analyst, response: Response
) -> Subscription:
    sub = await service.get_subscription(pool, subscription_id)
    set_etag(response, sub.version)
    return sub


@router.patch("/subscriptions/{subscription_id}", tags=["subscriptions"], responses=_errors)
async def update_subscription(
    subscription_id: UUID, body: SubscriptionPatch, pool: Pool, _: Analyst, response: Response,
    if_match: IfMatch = None,
) -> Subscription:
    sub = await service.update_subscription(pool, subscription_id, body, if_match_version(if_match))
    set_etag(response, sub.version)
    return sub


@router.delete("/subscriptions/{subscription_id}", status_code=204, tags=["subscriptions"],
               responses=_errors)
async def delete_subscription(subscription_id: UUID, pool: Pool, _: Analyst) -> Response:
    await service.delete_subscription(pool, subscription_id)
    return Response(status_code=204)


# --- deliveries -----------------------------------------------------------------------------


@router.get("/deliveries", tags=["deliveries"], responses=_errors)
async def list_deliveries(
    pool: Pool,
    _: DeliveryReader,
    status: DeliveryStatus | None = None,
    event_id: UUID | None = None,
    contact_id: UUID | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Delivery]:
    """Newest first. `failed` ones carry `last_error`; `skipped` ones say who was missing."""
    async with pool.acquire() as conn:
        items = await store.list_deliveries(
            conn, status=status, event_id=event_id, contact_id=contact_id,
            before=time_cursor(cursor), limit=limit + 1,
        )
    return Page[Delivery](items=items[:limit], next_cursor=_next(items, limit))


@router.get("/deliveries/{delivery_id}", tags=["deliveries"], responses=_errors)
async def get_delivery(delivery_id: UUID, pool: Pool, _: DeliveryReader) -> Delivery:
    return await service.get_delivery(pool, delivery_id)


@router.post("/deliveries/{delivery_id}/retry", tags=["deliveries"], responses=_errors)
async def retry_delivery(delivery_id: UUID, pool: Pool, _: Analyst, request: Request) -> Delivery:
    """Send a failed delivery again (same Message-ID); 409 for any other status."""
    delivery = await service.retry_delivery(pool, delivery_id)
    request.app.state.sweeper.wake()
    return delivery


# --- templates ------------------------------------------------------------------------------


@router.get("/templates", tags=["templates"], responses=_errors)
async def list_templates(pool: Pool, _: Analyst) -> Page[Template]:
    """The newest version of every template in every locale (one page)."""
    return Page[Template](items=await service.list_templates(pool), next_cursor=None)


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locale: Locale = "sv"
    payload: dict[str, Any] | None = None
    """An event payload of the template's event type; a sample one when left out."""


@router.post("/templates/{name}/preview", tags=["templates"], responses=_errors)
async def preview_template(
    name: Annotated[str, Path(pattern=r"^[a-z0-9_]{1,100}$")],
    pool: Pool,
    settings: Settings,
    _: Analyst,
    body: Annotated[PreviewRequest | None, Body()] = None,
) -> Template:
    """Render the newest version with a sample payload, or the one given."""
    req = body or PreviewRequest()
    return await service.preview(pool, name, req.locale, req.payload, settings.frontend_base_url)


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
