"""What the notification service does: route events to deliveries, keep the routing table,
contacts and template versions, and gather daily digests.

One class, `Notifications`, built once in `app`. Each use case is one unit of work (load,
let the domain decide, save). Routing runs inside the consumer's transaction (with the
inbox row), so an event's deliveries are stored exactly once; sending happens later, in
`sender`.
"""

from __future__ import annotations

import asyncio
import tomllib
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime
from importlib import resources
from typing import Any, TypeVar
from uuid import UUID, uuid4

import asyncpg
from pydantic import BaseModel, ValidationError

from asf_contracts import Envelope
from asf_contracts.registry import COMPANY_EVENTS, CompanyPayload
from asf_kit import telemetry
from asf_kit.db import Conn
from asf_kit.fields import ascii_email
from asf_kit.logging import get_logger
from asf_kit.problems import FieldError, Problem, invalid, not_found
from asf_kit.problems import validation_problem as _validation_problem
from asf_kit.uow import check_version, expected_version, unit_of_work
from notifications import domain, mail_templates, routing, samples, store
from notifications.domain import (
    DIGEST_EVENT_TYPE,
    DIGEST_TEMPLATE,
    Contact,
    ContactIn,
    ContactPatch,
    Delivery,
    DigestLine,
    DigestSummary,
    Subscription,
    SubscriptionIn,
    SubscriptionPatch,
)
from notifications.mail_templates import (
    RenderError,
    Template,
    TemplateDoesNotRender,
    TemplateFault,
    TemplateHistory,
    TemplateText,
    TemplateVersion,
    TemplateVersionIn,
)
from notifications.routing import (
    DEFAULT_ROUTING,
    ROUTED_EVENTS,
    TEMPLATE_EVENTS,
    EventFacts,
    facts_of,
)
from notifications.store import NewDelivery

log = get_logger(__name__)

M = TypeVar("M", bound=BaseModel)


def now() -> datetime:
    return datetime.now(UTC)


class TemplateFieldError(FieldError):
    """A template part that does not render: `field` is `<locale>.<part>`."""

    locale: str
    part: str
    line: int | None


def template_problem(name: str, faults: list[TemplateFault]) -> Problem:
    detail = (f"template {name} does not render: "
              + "; ".join(f"{f.field}: {f.describe()}" for f in faults))
    return Problem(
        422, "Validation failed", detail, slug="validation",
        errors=[TemplateFieldError(field=f.field, message=f.describe(), locale=f.locale,
                                   part=f.part, line=f.line) for f in faults],
    )


def _patched(current: M, patch: BaseModel, not_null: set[str]) -> M:
    """`current` with the fields the caller sent; a 422 when a required one is sent as null."""
    changes = {k: getattr(patch, k) for k in patch.model_fields_set if k != "version"}
    for k in sorted(changes):
        if changes[k] is None and k in not_null:
            raise invalid(k, "may not be null")
    return current.model_copy(update=changes)


def _checked_contact(c: Contact) -> Contact:
    domain.check_contact(c)
    return c


async def _checked_subscription(conn: Conn, s: Subscription) -> Subscription:
    """Name each field that makes a subscription unusable; fill in the default template."""
    routed = ROUTED_EVENTS.get(s.event_type)
    if routed is None:
        raise invalid("event_type", "not an event notifications receives; one of: "
                      + ", ".join(sorted(ROUTED_EVENTS)))
    if (s.contact_id is None) == (s.role is None):
        raise invalid("role", "give either contact_id or role, and not both")
    if s.contact_id is not None and await store.get_contact(conn, s.contact_id) is None:
        raise invalid("contact_id", "no contact with this id")
    names = [t.name for t in routed.templates]
    template = s.template or (names[0] if names else None)
    if template is None:
        raise invalid("template", f"no template is written for {s.event_type}")
    if TEMPLATE_EVENTS.get(template) != s.event_type:
        raise invalid("template", f"not a template for {s.event_type}; one of: "
                      + (", ".join(names) or "none"))
    return s.model_copy(update={"template": template})


def _by_name(templates: list[Template]) -> dict[str, dict[str, Template]]:
    grouped: dict[str, dict[str, Template]] = defaultdict(dict)
    for t in templates:
        grouped[t.name][t.locale] = t
    return grouped


def packaged_templates() -> dict[str, dict[str, TemplateText]]:
    """The templates shipped in `notifications/templates/*.toml`, one table per locale."""
    found: dict[str, dict[str, TemplateText]] = {}
    folder = resources.files("notifications") / "templates"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        name = entry.name.removesuffix(".toml")
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
        found[name] = {
            locale: TemplateText(subject=parts["subject"].strip(),
                                 text=parts["text"].lstrip("\n"),
                                 html=parts["html"].strip() + "\n")
            for locale, parts in sorted(data.items())
        }
    return found


DEMO_CONTACTS: tuple[ContactIn, ...] = (
    ContactIn(name="Informationsansvarig SKR", email="information@skr.example.se",
              role="information_officer"),
    ContactIn(name="Registerhandläggare", email="registret@asf-samverkan.example.se",
              role="registry_officer", subject="officer-1"),
    ContactIn(name="Handläggare Stockholm", email="handlaggare@stockholm.example.se",
              role="case_worker", municipality_code="0180", subject="cw-stockholm-1"),
)
"""Who `make run` emails: the subjects match the development tokens the runner prints."""

_TEMPLATE_SEED_LOCK = 727274302


class CompanyNotHeardOf(Exception):
    """An event names a company whose registry event has not been applied here yet."""


class Notifications:
    """The use cases, with what they need: the pool, where links point, the digest clock.

    `pool` is a function because the pool exists only once the runtime has started, while
    the consumer's handlers are wired before that.
    """

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        *,
        base_url: str,
        timezone: str = "Europe/Stockholm",
        digest_hour: int = 7,
    ) -> None:
        self._pool = pool
        self.base_url = base_url
        self.timezone = timezone
        self.digest_hour = digest_hour

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool()

    # --- contacts ---------------------------------------------------------------------------

    async def create_contact(self, body: ContactIn) -> Contact:
        at = now()
        contact = _checked_contact(Contact(**body.model_dump(), id=uuid4(), source="manual",
                                           active=True, version=1, created_at=at,
                                           updated_at=at))
        async with unit_of_work(self.pool) as uow:
            await store.insert_contact(uow.conn, contact)
        return contact

    async def list_contacts(
        self, *, role: str | None, company_id: UUID | None, municipality_code: str | None,
        after: tuple[datetime, UUID] | None, limit: int,
    ) -> list[Contact]:
        async with self.pool.acquire() as conn:
            return await store.list_contacts(conn, role=role, company_id=company_id,
                                             municipality_code=municipality_code, after=after,
                                             limit=limit)

    async def get_contact(self, contact_id: UUID) -> Contact:
        async with self.pool.acquire() as conn:
            contact = await store.get_contact(conn, contact_id)
        if contact is None:
            raise not_found("contact")
        return contact

    async def update_contact(
        self, contact_id: UUID, patch: ContactPatch, if_match: int | None
    ) -> Contact:
        expected = expected_version(if_match, patch.version)
        async with unit_of_work(self.pool) as uow:
            current = await store.get_contact(uow.conn, contact_id, for_update=True)
            if current is None:
                raise not_found("contact")
            check_version("contact", current.version, expected)
            changed = _patched(current, patch, {"name", "email", "role", "locale", "active"})
            changed = _checked_contact(changed.model_copy(
                update={"version": current.version + 1, "updated_at": now()}))
            try:
                await store.update_contact(uow.conn, changed)
            except asyncpg.UniqueViolationError:
                raise Problem(409, "Duplicate contact",
                              "the company already has a contact with this email",
                              slug="duplicate-contact") from None
        return changed

    async def delete_contact(self, contact_id: UUID) -> None:
        """Its subscriptions go with it; its past deliveries stay, without the link."""
        async with unit_of_work(self.pool) as uow:
            if not await store.delete_contact(uow.conn, contact_id):
                raise not_found("contact")

    async def seed_demo(self) -> int:
        """Add the demo contacts when no contact has been added by hand yet (contacts
        mirrored from events do not count)."""
        async with self.pool.acquire() as conn:
            if await store.has_manual_contacts(conn):
                return 0
        for body in DEMO_CONTACTS:
            await self.create_contact(body)
        return len(DEMO_CONTACTS)

    # --- subscriptions (the routing table) --------------------------------------------------

    async def create_subscription(self, body: SubscriptionIn) -> Subscription:
        at = now()
        sub = Subscription(**{**body.model_dump(), "template": body.template or ""},
                           id=uuid4(), version=1, created_at=at, updated_at=at)
        async with unit_of_work(self.pool) as uow:
            sub = await _checked_subscription(uow.conn, sub)
            try:
                await store.insert_subscription(uow.conn, sub)
            except asyncpg.ForeignKeyViolationError:  # the contact was deleted just now
                raise invalid("contact_id", "no contact with this id") from None
        return sub

    async def list_subscriptions(
        self, *, event_type: str | None, contact_id: UUID | None, role: str | None,
        after: tuple[datetime, UUID] | None, limit: int,
    ) -> list[Subscription]:
        async with self.pool.acquire() as conn:
            return await store.list_subscriptions(conn, event_type=event_type,
                                                  contact_id=contact_id, role=role,
                                                  after=after, limit=limit)

    async def get_subscription(self, subscription_id: UUID) -> Subscription:
        async with self.pool.acquire() as conn:
            sub = await store.get_subscription(conn, subscription_id)
        if sub is None:
            raise not_found("subscription")
        return sub

    async def update_subscription(
        self, subscription_id: UUID, patch: SubscriptionPatch, if_match: int | None
    ) -> Subscription:
        expected = expected_version(if_match, patch.version)
        async with unit_of_work(self.pool) as uow:
            current = await store.get_subscription(uow.conn, subscription_id, for_update=True)
            if current is None:
                raise not_found("subscription")
            check_version("subscription", current.version, expected)
            changed = _patched(current, patch, {"event_type", "mode", "template"})
            if "event_type" in patch.model_fields_set and "template" not in patch.model_fields_set:
                changed = changed.model_copy(update={"template": ""})
            changed = await _checked_subscription(uow.conn, changed)
            changed = changed.model_copy(update={"version": current.version + 1,
                                                 "updated_at": now()})
            try:
                await store.update_subscription(uow.conn, changed)
            except asyncpg.ForeignKeyViolationError:
                raise invalid("contact_id", "no contact with this id") from None
        return changed

    async def delete_subscription(self, subscription_id: UUID) -> None:
        async with unit_of_work(self.pool) as uow:
            if not await store.delete_subscription(uow.conn, subscription_id):
                raise not_found("subscription")

    # --- templates --------------------------------------------------------------------------

    async def list_templates(self) -> list[Template]:
        """The version in use of every template, in every locale."""
        async with self.pool.acquire() as conn:
            templates = await store.active_templates(conn)
        return [t.model_copy(update={"event_type": TEMPLATE_EVENTS.get(t.name)})
                for t in templates]

    async def template_versions(
        self, name: str, *, before: int | None, limit: int
    ) -> list[TemplateVersion]:
        async with self.pool.acquire() as conn:
            if await store.template_history(conn, name) is None:
                raise not_found("template")
            versions = await store.template_versions(conn, name, before=before, limit=limit)
        return [v.model_copy(update={"event_type": TEMPLATE_EVENTS.get(name)}) for v in versions]

    async def add_template_version(
        self, name: str, body: TemplateVersionIn, by: str
    ) -> TemplateVersion:
        """Store a new version once every part renders in the sandbox with the event's sample
        data (a 422 naming the locale, part and line otherwise). It is not used until it is
        activated."""
        sample = samples.sample_context(name, self.base_url) if self._known(name) else {}
        async with unit_of_work(self.pool) as uow:
            await store.lock_template(uow.conn, name)
            history = await store.template_history(uow.conn, name)
            if history is None or not self._known(name):
                raise not_found("template")
            try:
                # Off the event loop (each part stops itself after its time limit): a
                # template is code an analyst wrote.
                version = await asyncio.to_thread(history.add, body.texts(), sample)
            except TemplateDoesNotRender as e:
                raise template_problem(name, e.faults) from None
            await store.insert_template_version(uow.conn, name, version, "analyst", by,
                                                body.note, body.texts())
            stored = await store.template_version(uow.conn, name, version)
        assert stored is not None
        log.info("template version added", template=name, version=version)
        return stored.model_copy(update={"event_type": TEMPLATE_EVENTS.get(name)})

    async def activate_template(self, name: str, version: int, by: str) -> TemplateVersion:
        """Use `version` for every email from now on; activating an earlier one rolls back.
        Deliveries already stored keep the version they were written with."""
        async with unit_of_work(self.pool) as uow:
            await store.lock_template(uow.conn, name)
            history = await store.template_history(uow.conn, name)
            if history is None:
                raise not_found("template")
            history.activate(version)
            if history.active != version:
                await store.activate_template(uow.conn, name, version, by)
            stored = await store.template_version(uow.conn, name, version)
        assert stored is not None
        log.info("template version activated", template=name, version=version,
                 previous=history.active)
        return stored.model_copy(update={"event_type": TEMPLATE_EVENTS.get(name)})

    @staticmethod
    def _known(name: str) -> bool:
        return name == DIGEST_TEMPLATE or name in TEMPLATE_EVENTS

    async def preview(
        self, name: str, locale: str, payload: dict[str, Any] | None, version: int | None
    ) -> Template:
        """Render the version in use (or `version`) with the given payload, or a sample."""
        async with self.pool.acquire() as conn:
            if version is None:
                found = await store.active_templates(conn, [name])
            else:
                found = await store.template_locales(conn, name, version)
        versions = _by_name(found).get(name)
        if not versions or not self._known(name):
            raise not_found("template" if version is None else f"version {version} of template")
        template = mail_templates.pick_locale(versions, locale)
        assert template is not None
        context = self._preview_context(name, payload)
        try:
            rendered = mail_templates.render(template, context)
        except RenderError as e:
            raise template_problem(name, [e.fault]) from None
        return template.model_copy(update={
            "subject": rendered.subject, "text": rendered.text, "html": rendered.html,
            "event_type": TEMPLATE_EVENTS.get(name),
        })

    def _preview_context(self, name: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        if payload is None:
            return samples.sample_context(name, self.base_url)
        try:
            if name == DIGEST_TEMPLATE:
                return domain.digest_context(DigestSummary.model_validate(payload), self.base_url)
            event_type = TEMPLATE_EVENTS[name]
            event = ROUTED_EVENTS[event_type].payload.model_validate(payload)
        except ValidationError as e:
            raise _validation_problem(e.errors(), prefix="payload.") from None
        return self._facts(event_type, event, {}).context

    def _facts(self, event_type: str, payload: BaseModel, names: dict[UUID, str]) -> EventFacts:
        return facts_of(event_type, payload, self.base_url, names)

    # --- seeding (at start, before consumers) -----------------------------------------------

    async def seed(self, conn: Conn) -> None:
        """Templates and default routing, before any event is handled."""
        changed = await self.seed_templates(conn)
        if changed:
            log.info("templates stored", templates=changed)
        seeded = await self.seed_routing(conn)
        if seeded:
            log.info("default routing seeded", subscriptions=seeded)

    async def seed_templates(self, conn: Conn) -> list[str]:
        """Store each packaged template that changed since the last release as a new version,
        and activate it unless an analyst's version is in use."""
        changed = []
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _TEMPLATE_SEED_LOCK)
            for name, texts in packaged_templates().items():
                history = (await store.template_history(conn, name)
                           or TemplateHistory(name=name, sources={}, active=None))
                last = await store.last_release_texts(conn, name)
                decision = history.release(same_as_last_release=last == texts)
                version = history.next_version if decision.store else max(
                    (v for v, s in history.sources.items() if s == "release"), default=0)
                if decision.store:
                    await store.insert_template_version(conn, name, version, "release", None,
                                                        None, texts)
                if decision.activate and version and history.active != version:
                    await store.activate_template(conn, name, version, None)
                if decision.store:
                    changed.append(f"{name} v{version}"
                                   + ("" if decision.activate else " (not activated: an "
                                      f"analyst's v{history.active} is in use)"))
        return changed

    async def seed_routing(self, conn: Conn) -> int:
        """SPEC 3.3's routing table, each group once: later edits and deletions are kept
        across restarts, and routes added by a later release still reach a running system."""
        seeded = 0
        async with conn.transaction():
            for seed in sorted({r.seed for r in DEFAULT_ROUTING}):
                if not await store.claim_seed(conn, seed):
                    continue
                at = now()
                for route in (r for r in DEFAULT_ROUTING if r.seed == seed):
                    await store.insert_subscription(conn, Subscription(
                        id=uuid4(), event_type=route.event_type, contact_id=None,
                        role=route.role, municipality_code=None, company_id=None,
                        mode=route.mode, template=route.template, version=1, created_at=at,
                        updated_at=at,
                    ))
                    seeded += 1
        return seeded

    # --- events in --------------------------------------------------------------------------

    async def route_event(self, conn: Conn, event: Envelope, payload: BaseModel) -> int:
        """Store what this event means for each subscription: deliveries, digest items, or a
        `skipped` delivery that says nobody could be reached. Returns deliveries stored.

        Runs in the consumer's transaction, with the inbox row."""
        if event.event_type in COMPANY_EVENTS:
            assert isinstance(payload, CompanyPayload)
            await _apply_company(conn, event, payload)
        subs = await store.subscriptions_for(conn, event.event_type)
        if not subs:
            return 0
        facts = self._facts(event.event_type, payload, {})
        names: dict[UUID, str] = {}
        if facts.company_ids:
            # Read before any contact: a company seen here was committed with its contacts
            # (one registry event, one transaction), so the reads below see them too.
            names = await store.company_names(conn, list(facts.company_ids))
            facts = self._facts(event.event_type, payload, names)
        templates = _by_name(await store.active_templates(conn, sorted({s.template
                                                                          for s in subs})))
        stored = 0
        unreached: dict[str, list[str]] = defaultdict(list)
        for sub in subs:
            audience = routing.audience(sub, facts)
            if audience is None:
                continue
            if audience.kind == "submitter" and facts.submitter:
                await _mirror_submitter(conn, facts)
            contacts = await store.contacts_for(conn, audience)
            if audience.kind == "company_contacts" and not contacts:
                _company_known(audience.company_ids, names)
            reason = audience.unreached(contacts)
            if reason is not None:
                unreached[sub.template].append(reason)
            for contact in contacts:
                if sub.mode == "daily_digest":  # counts per municipality, no references
                    await store.add_digest_item(conn, sub.id, contact.id, event.event_id,
                                                event.event_type, event.occurred_at,
                                                facts.municipality_code)
                    continue
                context = facts.context_for(contact)
                if context is None:
                    await store.insert_delivery(conn, _new_delivery(
                        event, sub.template, contact, status="skipped",
                        last_error=facts.why_not_for(contact)))
                    continue
                delivery = _rendered_delivery(event, sub.template,
                                              templates.get(sub.template, {}), contact, context)
                stored += await store.insert_delivery(conn, delivery)
        for template, reasons in unreached.items():
            reason = "; ".join(sorted(set(reasons)))
            log.warning("event reached nobody", template=template, reason=reason)
            await store.insert_delivery(conn, _new_delivery(
                event, template, None, status="skipped", last_error=reason))
        return stored

    # --- deliveries -------------------------------------------------------------------------

    async def list_deliveries(
        self, *, status: str | None, event_id: UUID | None, contact_id: UUID | None,
        before: tuple[datetime, UUID] | None, limit: int,
    ) -> list[Delivery]:
        async with self.pool.acquire() as conn:
            return await store.list_deliveries(conn, status=status, event_id=event_id,
                                               contact_id=contact_id, before=before,
                                               limit=limit)

    async def get_delivery(self, delivery_id: UUID) -> Delivery:
        async with self.pool.acquire() as conn:
            delivery = await store.get_delivery(conn, delivery_id)
        if delivery is None:
            raise not_found("delivery")
        return delivery

    async def retry_delivery(self, delivery_id: UUID) -> Delivery:
        """A failed delivery back to `pending`; its NOTIFY wakes the sender."""
        async with unit_of_work(self.pool) as uow:
            current = await store.get_delivery(uow.conn, delivery_id)
            if current is None:
                raise not_found("delivery")
            if not await store.retry_failed(uow.conn, delivery_id):
                raise Problem(409, "Not retryable",
                              f"only a failed delivery can be retried; this one is "
                              f"{current.status}", slug="not-retryable",
                              current_status=current.status, allowed_from=["failed"])
            changed = await store.get_delivery(uow.conn, delivery_id)
        assert changed is not None
        return changed

    # --- the daily digest -------------------------------------------------------------------

    async def run_digest(self, day: date) -> list[UUID]:
        """One email per contact with what its digest subscriptions collected up to the end
        of `day` (local time). Safe to repeat: a contact gets one digest per day."""
        _, until = domain.digest_window(day, self.timezone)
        made: list[UUID] = []
        async with unit_of_work(self.pool) as uow:
            conn = uow.conn
            await store.lock_digest(conn)
            lines: dict[UUID, list[DigestLine]] = defaultdict(list)
            for r in await store.open_digest_counts(conn, until):
                lines[r["contact_id"]].append(DigestLine(
                    event_type=r["event_type"], municipality_code=r["municipality_code"],
                    count=r["count"]))
            if not lines:
                return made
            versions = _by_name(await store.active_templates(conn, [DIGEST_TEMPLATE]))
            for contact_id, contact_lines in lines.items():
                contact = await store.get_contact(conn, contact_id)
                if contact is None:
                    continue
                context = domain.digest_context(DigestSummary(day=day, lines=contact_lines),
                                                self.base_url)
                event = Envelope(
                    event_id=domain.digest_event_id(contact_id, day),
                    event_type=DIGEST_EVENT_TYPE, event_version=1, producer="notifications",
                    aggregate_id=contact_id, aggregate_version=1, payload={},
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

    async def run_due_digest(self, at: datetime) -> list[UUID]:
        """The digest of yesterday once the local digest hour has come (the clock is `at`)."""
        day = domain.digest_day(at, self.timezone, self.digest_hour)
        if day is None:
            return []
        return await self.run_digest(day)


# --- what routing stores --------------------------------------------------------------------


async def _apply_company(conn: Conn, event: Envelope, p: CompanyPayload) -> None:
    """Keep the newest company and mirror its contacts, so later casework events reach them."""
    newer = await store.upsert_company(conn, p.id, p.name, p.municipality_code, p.status,
                                       event.aggregate_version)
    if newer:
        contacts = [(c.name, c.email) for c in p.contacts if c.email]
        await store.sync_company_contacts(conn, p.id, p.municipality_code, contacts, uuid4)


async def _mirror_submitter(conn: Conn, facts: EventFacts) -> None:
    """The learning example's submitter as a contact; an address that is not one is left
    out (the delivery is then `skipped`, saying so)."""
    assert facts.submitter is not None
    name, email = facts.submitter
    try:
        address = ascii_email(email)
    except ValueError:
        return
    await store.mirror_submitter(conn, name[:200] or "-", address,
                                 facts.municipality_code or "", uuid4())


def _company_known(company_ids: tuple[UUID, ...], names: dict[UUID, str]) -> None:
    """Raise, so the consumer retries the event later, when a company it names is missing.

    Events of two producers, and retried ones, can overtake each other: a placement started
    may arrive before the registry event that carries the company's contacts. Skipping it
    would lose the email for good; after the retries it is parked, where it can be redriven.

    `names` must be read before the contacts: read after them, a registry event committed
    in between made the company known while its contacts had been read as none, and the
    email was skipped for good (seen once in the fault run, right after a restart).
    """
    missing = [str(c) for c in company_ids if c not in names]
    if missing:
        raise CompanyNotHeardOf(f"no registry event yet for company {', '.join(missing)}")


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
    """A pending delivery, or a failed one saying why it could not be written. It keeps the
    version (and locale) of the template it was written with."""
    template = mail_templates.pick_locale(versions, contact.locale)
    if template is None:
        return _new_delivery(event, template_name, contact, status="failed",
                             last_error=f"template {template_name} does not exist")
    try:
        r = mail_templates.render(template, context)
    except RenderError as e:
        return _new_delivery(event, template_name, contact, status="failed",
                             template_locale=template.locale, template_version=template.version,
                             last_error=f"template {template_name} v{template.version} "
                                        f"failed to render: {e}")
    return _new_delivery(event, template_name, contact, status="pending",
                         template_locale=template.locale, template_version=template.version,
                         subject=r.subject, text_body=r.text, html_body=r.html)
