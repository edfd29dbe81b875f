"""What the notification service does: route events to deliveries, manage the routing
table, contacts and templates, and gather daily digests.

Routing runs inside the consumer's transaction (with the inbox row), so an event's
deliveries are stored exactly once; sending happens later, in `sender`.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime
from importlib import resources
from typing import Any, TypeVar
from uuid import UUID, uuid4

import asyncpg
from pydantic import BaseModel, ValidationError

from asf_contracts import Envelope
from asf_contracts.registry import CompanyPayload
from asf_kit import telemetry
from asf_kit.db import Conn
from asf_kit.logging import get_logger
from asf_kit.problems import Problem, invalid, not_found, validation_problem
from asf_kit.uow import check_version, expected_version
from notifications import domain, samples, store
from notifications.domain import (
    DEFAULT_ROUTING,
    DIGEST_EVENT_TYPE,
    DIGEST_TEMPLATE,
    ROUTED_EVENTS,
    TEMPLATE_EVENTS,
    Contact,
    ContactIn,
    ContactPatch,
    Delivery,
    DigestLine,
    DigestSummary,
    EventFacts,
    RenderError,
    Subscription,
    SubscriptionIn,
    SubscriptionPatch,
    Template,
)
from notifications.store import NewDelivery

log = get_logger(__name__)

ROUTING_SEED = "default_routing_v1"


def now() -> datetime:
    return datetime.now(UTC)


# --- optimistic concurrency -----------------------------------------------------------------


M = TypeVar("M", bound=BaseModel)


def _patched(current: M, patch: BaseModel, not_null: set[str]) -> M:
    """`current` with the fields the caller sent; a 422 when a required one is sent as null."""
    changes = {k: getattr(patch, k) for k in patch.model_fields_set if k != "version"}
    for k in sorted(changes):
        if changes[k] is None and k in not_null:
            raise invalid(k, "may not be null")
    return current.model_copy(update=changes)


# --- contacts -------------------------------------------------------------------------------


async def create_contact(pool: asyncpg.Pool, body: ContactIn) -> Contact:
    at = now()
    contact = Contact(**body.model_dump(), id=uuid4(), source="manual", active=True, version=1,
                      created_at=at, updated_at=at)
    async with pool.acquire() as conn:
        await store.insert_contact(conn, contact)
    return contact


async def get_contact(pool: asyncpg.Pool, contact_id: UUID) -> Contact:
    async with pool.acquire() as conn:
        contact = await store.get_contact(conn, contact_id)
    if contact is None:
        raise not_found("contact")
    return contact


async def update_contact(
    pool: asyncpg.Pool, contact_id: UUID, patch: ContactPatch, if_match: int | None
) -> Contact:
    expected = expected_version(if_match, patch.version)
    async with pool.acquire() as conn, conn.transaction():
        current = await store.get_contact(conn, contact_id, for_update=True)
        if current is None:
            raise not_found("contact")
        check_version("contact", current.version, expected)
        changed = _patched(current, patch, {"name", "email", "role", "locale", "active"})
        changed = changed.model_copy(update={"version": current.version + 1, "updated_at": now()})
        try:
            await store.update_contact(conn, changed)
        except asyncpg.UniqueViolationError:
            raise Problem(409, "Duplicate contact",
                          "the company already has a contact with this email",
                          slug="duplicate-contact") from None
    return changed


async def delete_contact(pool: asyncpg.Pool, contact_id: UUID) -> None:
    """Its subscriptions go with it; its past deliveries stay, without the link."""
    async with pool.acquire() as conn:
        if not await store.delete_contact(conn, contact_id):
            raise not_found("contact")


# --- subscriptions (the routing table) ------------------------------------------------------


async def _checked(conn: Conn, s: Subscription) -> Subscription:
    """Name each field that makes a subscription unusable; fill in the default template."""
    routed = ROUTED_EVENTS.get(s.event_type)
    if routed is None:
        raise invalid("event_type", "not an event notifications receives; one of: "
                      + ", ".join(sorted(ROUTED_EVENTS)))
    if (s.contact_id is None) == (s.role is None):
        raise invalid("role", "give either contact_id or role, and not both")
    if s.contact_id is not None and await store.get_contact(conn, s.contact_id) is None:
        raise invalid("contact_id", "no contact with this id")
    template = s.template or (routed.templates[0] if routed.templates else None)
    if template is None:
        raise invalid("template", f"no template is written for {s.event_type}")
    if TEMPLATE_EVENTS.get(template) != s.event_type:
        allowed = ", ".join(routed.templates) or "none"
        raise invalid("template", f"not a template for {s.event_type}; one of: {allowed}")
    return s.model_copy(update={"template": template})


async def create_subscription(pool: asyncpg.Pool, body: SubscriptionIn) -> Subscription:
    at = now()
    sub = Subscription(**{**body.model_dump(), "template": body.template or ""}, id=uuid4(),
                       version=1, created_at=at, updated_at=at)
    async with pool.acquire() as conn, conn.transaction():
        sub = await _checked(conn, sub)
        try:
            await store.insert_subscription(conn, sub)
        except asyncpg.ForeignKeyViolationError:  # the contact was deleted just now
            raise invalid("contact_id", "no contact with this id") from None
    return sub


async def get_subscription(pool: asyncpg.Pool, subscription_id: UUID) -> Subscription:
    async with pool.acquire() as conn:
        sub = await store.get_subscription(conn, subscription_id)
    if sub is None:
        raise not_found("subscription")
    return sub


async def update_subscription(
    pool: asyncpg.Pool, subscription_id: UUID, patch: SubscriptionPatch, if_match: int | None
) -> Subscription:
    expected = expected_version(if_match, patch.version)
    async with pool.acquire() as conn, conn.transaction():
        current = await store.get_subscription(conn, subscription_id, for_update=True)
        if current is None:
            raise not_found("subscription")
        check_version("subscription", current.version, expected)
        changed = _patched(current, patch, {"event_type", "mode", "template"})
        if "event_type" in patch.model_fields_set and "template" not in patch.model_fields_set:
            changed = changed.model_copy(update={"template": ""})
        changed = await _checked(conn, changed)
        changed = changed.model_copy(update={"version": current.version + 1, "updated_at": now()})
        try:
            await store.update_subscription(conn, changed)
        except asyncpg.ForeignKeyViolationError:
            raise invalid("contact_id", "no contact with this id") from None
    return changed


async def delete_subscription(pool: asyncpg.Pool, subscription_id: UUID) -> None:
    async with pool.acquire() as conn:
        if not await store.delete_subscription(conn, subscription_id):
            raise not_found("subscription")


async def seed_routing(conn: Conn) -> bool:
    """SPEC 3.3's routing table, once: later edits and deletions are kept across restarts."""
    async with conn.transaction():
        if not await store.claim_seed(conn, ROUTING_SEED):
            return False
        at = now()
        for route in DEFAULT_ROUTING:
            await store.insert_subscription(conn, Subscription(
                id=uuid4(), event_type=route.event_type, contact_id=None, role=route.role,
                municipality_code=None, company_id=None, mode=route.mode,
                template=route.template, version=1, created_at=at, updated_at=at,
            ))
    return True


DEMO_CONTACTS: tuple[ContactIn, ...] = (
    ContactIn(name="Informationsansvarig SKR", email="information@skr.example.se",
              role="information_officer"),
    ContactIn(name="Registerhandläggare", email="registret@asf-samverkan.example.se",
              role="registry_officer", subject="officer-1"),
    ContactIn(name="Handläggare Stockholm", email="handlaggare@stockholm.example.se",
              role="case_worker", municipality_code="0180", subject="cw-stockholm-1"),
)
"""Who `make run` emails: the subjects match the development tokens the runner prints."""


async def seed_demo(pool: asyncpg.Pool) -> int:
    """Add the demo contacts when no contact has been added by hand yet (contacts mirrored
    from the registry's company events do not count)."""
    async with pool.acquire() as conn:
        if await store.has_manual_contacts(conn):
            return 0
    for body in DEMO_CONTACTS:
        await create_contact(pool, body)
    return len(DEMO_CONTACTS)


# --- templates ------------------------------------------------------------------------------


def packaged_templates() -> list[Template]:
    """The templates shipped in `notifications/templates/*.toml`, one table per locale."""
    found = []
    folder = resources.files("notifications") / "templates"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        name = entry.name.removesuffix(".toml")
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
        for locale, parts in sorted(data.items()):
            t = Template(name=name, locale=locale, version=0, subject=parts["subject"].strip(),
                         text=parts["text"].lstrip("\n"), html=parts["html"].strip() + "\n")
            domain.check_template(t)
            found.append(t)
    return found


async def seed_templates(conn: Conn) -> list[str]:
    """Store each packaged template that differs from its newest stored version as a new
    version, so deliveries made before keep pointing at what they used."""
    added = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(727274302)")
        for t in packaged_templates():
            version = await store.add_template_version(conn, t)
            if version is not None:
                added.append(f"{t.name}.{t.locale} v{version}")
    return added


async def seed(dsn: str) -> None:
    """Templates and default routing, before consumers start."""
    conn = await asyncpg.connect(dsn)
    try:
        added = await seed_templates(conn)
        if added:
            log.info("templates stored", templates=added)
        if await seed_routing(conn):
            log.info("default routing seeded", subscriptions=len(DEFAULT_ROUTING))
    finally:
        await conn.close()


def _by_name(templates: list[Template]) -> dict[str, dict[str, Template]]:
    grouped: dict[str, dict[str, Template]] = defaultdict(dict)
    for t in templates:
        grouped[t.name][t.locale] = t
    return grouped


async def list_templates(pool: asyncpg.Pool) -> list[Template]:
    async with pool.acquire() as conn:
        templates = await store.latest_templates(conn)
    return [t.model_copy(update={"event_type": TEMPLATE_EVENTS.get(t.name)}) for t in templates]


async def preview(
    pool: asyncpg.Pool, name: str, locale: str, payload: dict[str, Any] | None, base_url: str
) -> Template:
    """Render the newest version with the given payload, or a sample one."""
    async with pool.acquire() as conn:
        versions = _by_name(await store.latest_templates(conn, [name])).get(name)
    if not versions:
        raise not_found("template")
    template = domain.pick_locale(versions, locale)
    assert template is not None
    try:
        if name == DIGEST_TEMPLATE:
            summary = DigestSummary.model_validate(
                samples.SAMPLE_DIGEST if payload is None else payload)
            context = domain.digest_context(summary, base_url)
        else:
            event_type = TEMPLATE_EVENTS[name]
            routed = ROUTED_EVENTS[event_type]
            event = routed.payload.model_validate(
                samples.SAMPLE_PAYLOADS[event_type] if payload is None else payload)
            context = domain.facts_of(event_type, event, base_url, {}).context_for(None)
    except ValidationError as e:
        raise validation_problem(e.errors(), prefix="payload.") from None
    try:
        rendered = domain.render(template, context)
    except RenderError as e:
        raise invalid("payload", str(e)) from None
    return template.model_copy(update={
        "subject": rendered.subject, "text": rendered.text, "html": rendered.html,
        "event_type": TEMPLATE_EVENTS.get(name),
    })


# --- events in ------------------------------------------------------------------------------


async def apply_company(conn: Conn, event: Envelope, p: CompanyPayload) -> None:
    """Keep the newest company and mirror its contacts, so later casework events reach them."""
    newer = await store.upsert_company(conn, p.id, p.name, p.municipality_code, p.status,
                                       event.aggregate_version)
    if newer:
        contacts = [(c.name, c.email) for c in p.contacts if c.email]
        await store.sync_company_contacts(conn, p.id, p.municipality_code, contacts, uuid4)


def _new_delivery(
    event: Envelope, template: str, contact: Contact | None, **fields: Any
) -> NewDelivery:
    delivery_id = uuid4()
    values: dict[str, Any] = {
        "template_locale": None, "template_version": None, "subject": "", "text_body": "",
        "html_body": "", "last_error": None, **fields,
    }
    return NewDelivery(
        id=delivery_id, event_id=event.event_id, event_type=event.event_type,
        contact_id=contact.id if contact else None, recipient=contact.email if contact else None,
        template=template, message_id=domain.message_id_for(delivery_id),
        traceparent=telemetry.current_traceparent(), **values,
    )


def _rendered_delivery(
    event: Envelope, template_name: str, versions: dict[str, Template], contact: Contact,
    context: dict[str, Any],
) -> NewDelivery:
    """A pending delivery, or a failed one saying why it could not be written."""
    template = domain.pick_locale(versions, contact.locale)
    if template is None:
        return _new_delivery(event, template_name, contact, status="failed",
                             last_error=f"template {template_name} does not exist")
    try:
        r = domain.render(template, context)
    except RenderError as e:
        return _new_delivery(event, template_name, contact, status="failed",
                             template_locale=template.locale, template_version=template.version,
                             last_error=f"template {template_name} failed to render: {e}")
    return _new_delivery(event, template_name, contact, status="pending",
                         template_locale=template.locale, template_version=template.version,
                         subject=r.subject, text_body=r.text, html_body=r.html)


async def _facts(conn: Conn, event: Envelope, payload: BaseModel,
                 base_url: str) -> EventFacts:
    facts = domain.facts_of(event.event_type, payload, base_url, {})
    if facts.company_ids:
        names = await store.company_names(conn, list(facts.company_ids))
        facts = domain.facts_of(event.event_type, payload, base_url, names)
    return facts


class CompanyNotHeardOf(Exception):
    """An event names a company whose registry event has not been applied here yet."""


async def _company_known(conn: Conn, company_ids: tuple[UUID, ...]) -> None:
    """Raise, so the consumer retries the event later, when a company it names is missing.

    Events of two producers, and retried ones, can overtake each other: a placement started
    may arrive before the registry event that carries the company's contacts. Skipping it
    would lose the email for good; after the retries it is parked, where it can be redriven.
    """
    known = await store.company_names(conn, list(company_ids))
    missing = [str(c) for c in company_ids if c not in known]
    if missing:
        raise CompanyNotHeardOf(f"no registry event yet for company {', '.join(missing)}")


async def route_event(
    conn: Conn, event: Envelope, payload: BaseModel, base_url: str
) -> int:
    """Store what this event means for each subscription: deliveries, digest items, or a
    `skipped` delivery that says nobody could be reached. Returns deliveries stored."""
    if isinstance(payload, CompanyPayload):
        await apply_company(conn, event, payload)
    subs = await store.subscriptions_for(conn, event.event_type)
    if not subs:
        return 0
    facts = await _facts(conn, event, payload, base_url)
    if not facts.routable:
        return 0
    templates = _by_name(await store.latest_templates(conn, sorted({s.template for s in subs})))
    stored = 0
    unreached: dict[str, list[str]] = defaultdict(list)
    for sub in subs:
        audience = domain.audience(sub, facts)
        if audience is None:
            continue
        contacts = await store.contacts_for(conn, audience)
        if audience.kind == "company_contacts" and not contacts:
            await _company_known(conn, audience.company_ids)
        if audience.kind == "case_workers":
            found = {c.subject for c in contacts}
            left = tuple(s for s in audience.subjects if s not in found)
            if left or not audience.subjects:
                unreached[sub.template].append(replace(audience, subjects=left).describe())
        elif not contacts:
            unreached[sub.template].append(audience.describe())
        for contact in contacts:
            if sub.mode == "daily_digest":
                await store.add_digest_item(conn, sub.id, contact.id, event.event_id,
                                            event.event_type, event.occurred_at,
                                            facts.municipality_code)
                continue
            delivery = _rendered_delivery(event, sub.template, templates.get(sub.template, {}),
                                          contact, facts.context_for(contact.subject))
            stored += await store.insert_delivery(conn, delivery)
    for template, reasons in unreached.items():
        reason = "; ".join(sorted(set(reasons)))
        log.warning("event reached nobody", template=template, reason=reason)
        await store.insert_delivery(conn, _new_delivery(
            event, template, None, status="skipped", last_error=reason))
    return stored


# --- deliveries -----------------------------------------------------------------------------


async def get_delivery(pool: asyncpg.Pool, delivery_id: UUID) -> Delivery:
    async with pool.acquire() as conn:
        delivery = await store.get_delivery(conn, delivery_id)
    if delivery is None:
        raise not_found("delivery")
    return delivery


async def retry_delivery(pool: asyncpg.Pool, delivery_id: UUID) -> Delivery:
    """A failed delivery back to `pending`; the sweeper sends it again."""
    async with pool.acquire() as conn, conn.transaction():
        current = await store.get_delivery(conn, delivery_id)
        if current is None:
            raise not_found("delivery")
        if not await store.retry_failed(conn, delivery_id):
            raise Problem(409, "Not retryable",
                          f"only a failed delivery can be retried; this one is {current.status}",
                          slug="not-retryable", current_status=current.status,
                          allowed_from=["failed"])
        changed = await store.get_delivery(conn, delivery_id)
    assert changed is not None
    return changed


# --- the daily digest -----------------------------------------------------------------------


async def run_digest(pool: asyncpg.Pool, day: date, timezone: str, base_url: str) -> list[UUID]:
    """One email per contact with what its digest subscriptions collected up to the end of
    `day` (local time). Safe to repeat: a contact gets one digest per day."""
    _, until = domain.digest_window(day, timezone)
    made: list[UUID] = []
    async with pool.acquire() as conn, conn.transaction():
        await store.lock_digest(conn)
        lines: dict[UUID, list[DigestLine]] = defaultdict(list)
        for r in await store.open_digest_counts(conn, until):
            lines[r["contact_id"]].append(DigestLine(
                event_type=r["event_type"], municipality_code=r["municipality_code"],
                count=r["count"]))
        if not lines:
            return made
        versions = _by_name(await store.latest_templates(conn, [DIGEST_TEMPLATE]))
        for contact_id, contact_lines in lines.items():
            contact = await store.get_contact(conn, contact_id)
            if contact is None:
                continue
            context = domain.digest_context(DigestSummary(day=day, lines=contact_lines), base_url)
            event = Envelope(
                event_id=domain.digest_event_id(contact_id, day), event_type=DIGEST_EVENT_TYPE,
                event_version=1, producer="notifications", aggregate_id=contact_id,
                aggregate_version=1, payload={},
            )
            delivery = _rendered_delivery(event, DIGEST_TEMPLATE,
                                          versions.get(DIGEST_TEMPLATE, {}), contact, context)
            if not contact.active:
                delivery = _new_delivery(event, DIGEST_TEMPLATE, contact, status="skipped",
                                         last_error="the contact is inactive")
            if await store.insert_delivery(conn, delivery):
                await store.close_digest_items(conn, contact_id, until, delivery.id)
                made.append(delivery.id)
    return made


async def run_due_digest(
    pool: asyncpg.Pool, at: datetime, timezone: str, hour: int, base_url: str
) -> list[UUID]:
    """The digest of yesterday once the local digest hour has come (the clock is `at`)."""
    day = domain.digest_day(at, timezone, hour)
    if day is None:
        return []
    return await run_digest(pool, day, timezone, base_url)
