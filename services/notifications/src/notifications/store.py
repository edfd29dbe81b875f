"""The notification service's SQL, all of it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from asf_kit.db import Conn
from notifications.domain import Contact, Delivery, Subscription
from notifications.mail_templates import Template, TemplateHistory, TemplateText, TemplateVersion
from notifications.routing import Audience

# --- contacts -------------------------------------------------------------------------------

_CONTACT = """id, name, email, role, municipality_code, company_id, subject, locale, source,
              active, version, created_at, updated_at"""


def _contact(r: asyncpg.Record) -> Contact:
    return Contact.model_validate(dict(r))


async def insert_contact(conn: Conn, c: Contact) -> None:
    await conn.execute(
        f"INSERT INTO contacts ({_CONTACT}) "  # noqa: S608 (constant columns)
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        c.id, c.name, c.email, c.role, c.municipality_code, c.company_id, c.subject, c.locale,
        c.source, c.active, c.version, c.created_at, c.updated_at,
    )


async def get_contact(
    conn: Conn, contact_id: UUID, *, for_update: bool = False
) -> Contact | None:
    sql = f"SELECT {_CONTACT} FROM contacts WHERE id = $1"  # noqa: S608 (constant columns)
    r = await conn.fetchrow(sql + (" FOR UPDATE" if for_update else ""), contact_id)
    return _contact(r) if r else None


async def update_contact(conn: Conn, c: Contact) -> None:
    await conn.execute(
        """
        UPDATE contacts SET name = $2, email = $3, role = $4, municipality_code = $5,
            company_id = $6, subject = $7, locale = $8, active = $9, version = $10,
            updated_at = $11
        WHERE id = $1
        """,
        c.id, c.name, c.email, c.role, c.municipality_code, c.company_id, c.subject, c.locale,
        c.active, c.version, c.updated_at,
    )


async def delete_contact(conn: Conn, contact_id: UUID) -> bool:
    return bool(await conn.execute("DELETE FROM contacts WHERE id = $1", contact_id)
                == "DELETE 1")


async def count_by_status(conn: Conn) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM deliveries GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


async def has_manual_contacts(conn: Conn) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM contacts WHERE source = 'manual')"))


async def list_contacts(
    conn: Conn,
    *,
    role: str | None,
    company_id: UUID | None,
    municipality_code: str | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Contact]:
    rows = await conn.fetch(
        f"""
        SELECT {_CONTACT} FROM contacts
        WHERE ($1::text IS NULL OR role = $1)
          AND ($2::uuid IS NULL OR company_id = $2)
          AND ($3::text IS NULL OR municipality_code = $3)
          AND ($4::timestamptz IS NULL OR (created_at, id) > ($4, $5::uuid))
        ORDER BY created_at, id
        LIMIT $6
        """,  # noqa: S608 (constant columns)
        role, company_id, municipality_code,
        after[0] if after else None, after[1] if after else None, limit,
    )
    return [_contact(r) for r in rows]


async def contacts_for(conn: Conn, a: Audience) -> list[Contact]:
    """The active contacts an audience means (see `domain.audience`)."""
    if a.kind == "contact":
        rows = await conn.fetch(
            f"SELECT {_CONTACT} FROM contacts WHERE id = $1 AND active",  # noqa: S608 (constant columns)
            a.contact_id,
        )
    elif a.kind == "company_contacts":
        rows = await conn.fetch(
            f"""SELECT {_CONTACT} FROM contacts
                WHERE active AND role = 'company_contact' AND company_id = ANY($1::uuid[])
                ORDER BY created_at, id""",  # noqa: S608 (constant columns)
            list(a.company_ids),
        )
    elif a.kind == "submitter":
        rows = await conn.fetch(
            f"""SELECT {_CONTACT} FROM contacts
                WHERE active AND source = 'submitter' AND lower(email) = ANY($1::text[])
            """,  # noqa: S608 (constant columns)
            [e.lower() for e in a.emails],
        )
    elif a.kind == "case_workers":
        rows = await conn.fetch(
            f"""SELECT {_CONTACT} FROM contacts
                WHERE active AND subject = ANY($1::text[]) ORDER BY created_at, id
            """,  # noqa: S608 (constant columns)
            list(a.subjects),
        )
    else:
        # A contact bound to a municipality hears only about events from it.
        rows = await conn.fetch(
            f"""SELECT {_CONTACT} FROM contacts
                WHERE active AND role = $1
                  AND (municipality_code IS NULL OR $2::text IS NULL OR municipality_code = $2)
                ORDER BY created_at, id""",  # noqa: S608 (constant columns)
            a.role, a.municipality_code,
        )
    return [_contact(r) for r in rows]


# --- the company read model -----------------------------------------------------------------


async def upsert_company(
    conn: Conn, company_id: UUID, name: str, municipality_code: str, status: str,
    version: int,
) -> bool:
    """Keep the newest company by aggregate version; True when this one was newer."""
    applied = await conn.fetchval(
        """
        INSERT INTO companies (id, name, municipality_code, status, version)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,
            municipality_code = EXCLUDED.municipality_code, status = EXCLUDED.status,
            version = EXCLUDED.version, updated_at = now()
        WHERE companies.version < EXCLUDED.version
        RETURNING true
        """,
        company_id, name, municipality_code, status, version,
    )
    return bool(applied)


async def sync_company_contacts(
    conn: Conn, company_id: UUID, municipality_code: str,
    contacts: list[tuple[str, str]], new_id: Any,
) -> None:
    """Mirror the company's (name, email) contacts; ones no longer listed become inactive."""
    for name, email in contacts:
        await conn.execute(
            """
            INSERT INTO contacts (id, name, email, role, municipality_code, company_id, source)
            VALUES ($1, $2, $3, 'company_contact', $4, $5, 'registry')
            ON CONFLICT (company_id, lower(email)) WHERE source = 'registry'
            DO UPDATE SET name = EXCLUDED.name, municipality_code = EXCLUDED.municipality_code,
                active = true, version = contacts.version + 1, updated_at = now()
            WHERE (contacts.name, contacts.municipality_code, contacts.active)
                  IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.municipality_code, true)
            """,
            new_id(), name, email, municipality_code, company_id,
        )
    await conn.execute(
        """
        UPDATE contacts SET active = false, version = version + 1, updated_at = now()
        WHERE source = 'registry' AND company_id = $1 AND active
          AND NOT (lower(email) = ANY($2::text[]))
        """,
        company_id, [email.lower() for _, email in contacts],
    )


async def mirror_submitter(
    conn: Conn, name: str, email: str, municipality_code: str, new_id: UUID
) -> None:
    """The submitter of a learning example as a contact, once per address; a contact an
    analyst made inactive stays inactive."""
    await conn.execute(
        """
        INSERT INTO contacts (id, name, email, role, municipality_code, source)
        VALUES ($1, $2, $3, 'submitter', $4, 'submitter')
        ON CONFLICT (lower(email)) WHERE source = 'submitter'
        DO UPDATE SET name = EXCLUDED.name, version = contacts.version + 1, updated_at = now()
        WHERE contacts.name IS DISTINCT FROM EXCLUDED.name
        """,
        new_id, name, email, municipality_code,
    )


async def company_names(conn: Conn, ids: list[UUID]) -> dict[UUID, str]:
    rows = await conn.fetch("SELECT id, name FROM companies WHERE id = ANY($1::uuid[])", ids)
    return {r["id"]: r["name"] for r in rows}


# --- subscriptions --------------------------------------------------------------------------

_SUBSCRIPTION = """id, event_type, contact_id, role, municipality_code, company_id, mode, template,
                   version, created_at, updated_at"""


def _subscription(r: asyncpg.Record) -> Subscription:
    return Subscription.model_validate(dict(r))


async def insert_subscription(conn: Conn, s: Subscription) -> None:
    await conn.execute(
        f"INSERT INTO subscriptions ({_SUBSCRIPTION}) "  # noqa: S608 (constant columns)
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        s.id, s.event_type, s.contact_id, s.role, s.municipality_code, s.company_id, s.mode,
        s.template, s.version, s.created_at, s.updated_at,
    )


async def update_subscription(conn: Conn, s: Subscription) -> None:
    await conn.execute(
        """
        UPDATE subscriptions SET event_type = $2, contact_id = $3, role = $4,
            municipality_code = $5, company_id = $6, mode = $7, template = $8, version = $9,
            updated_at = $10
        WHERE id = $1
        """,
        s.id, s.event_type, s.contact_id, s.role, s.municipality_code, s.company_id, s.mode,
        s.template, s.version, s.updated_at,
    )


async def get_subscription(
    conn: Conn, subscription_id: UUID, *, for_update: bool = False
) -> Subscription | None:
    sql = f"SELECT {_SUBSCRIPTION} FROM subscriptions WHERE id = $1"  # noqa: S608 (constant columns)
    r = await conn.fetchrow(sql + (" FOR UPDATE" if for_update else ""), subscription_id)
    return _subscription(r) if r else None


async def delete_subscription(conn: Conn, subscription_id: UUID) -> bool:
    return bool(await conn.execute("DELETE FROM subscriptions WHERE id = $1", subscription_id)
                == "DELETE 1")


async def list_subscriptions(
    conn: Conn,
    *,
    event_type: str | None,
    contact_id: UUID | None,
    role: str | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Subscription]:
    rows = await conn.fetch(
        f"""
        SELECT {_SUBSCRIPTION} FROM subscriptions
        WHERE ($1::text IS NULL OR event_type = $1)
          AND ($2::uuid IS NULL OR contact_id = $2)
          AND ($3::text IS NULL OR role = $3)
          AND ($4::timestamptz IS NULL OR (created_at, id) > ($4, $5::uuid))
        ORDER BY created_at, id
        LIMIT $6
        """,  # noqa: S608 (constant columns)
        event_type, contact_id, role,
        after[0] if after else None, after[1] if after else None, limit,
    )
    return [_subscription(r) for r in rows]


async def subscriptions_for(conn: Conn, event_type: str) -> list[Subscription]:
    rows = await conn.fetch(
        f"SELECT {_SUBSCRIPTION} FROM subscriptions "  # noqa: S608 (constant columns)
        "WHERE event_type = $1 ORDER BY created_at, id",
        event_type,
    )
    return [_subscription(r) for r in rows]


async def claim_seed(conn: Conn, name: str) -> bool:
    """True the first time a seed is applied; call in the transaction that applies it."""
    return bool(await conn.fetchval(
        "INSERT INTO seeds (name) VALUES ($1) ON CONFLICT DO NOTHING RETURNING true", name
    ))


# --- templates ------------------------------------------------------------------------------

_TEMPLATE = """t.name, t.locale, t.version, t.subject, t.text_body AS text, t.html_body AS html,
               t.created_at"""
_ACTIVE = """SELECT DISTINCT ON (name) name, version FROM template_activations
             ORDER BY name, id DESC"""


async def lock_template(conn: Conn, name: str) -> None:
    """One change to a template's versions at a time (held until the transaction ends)."""
    await conn.execute("SELECT pg_advisory_xact_lock(727274303, hashtext($1))", name)


async def active_templates(conn: Conn, names: list[str] | None = None) -> list[Template]:
    """Every locale of the version in use of each template; all templates when `names` is
    None."""
    rows = await conn.fetch(
        f"""
        SELECT {_TEMPLATE} FROM ({_ACTIVE}) a
        JOIN templates t ON t.name = a.name AND t.version = a.version
        WHERE $1::text[] IS NULL OR a.name = ANY($1::text[])
        ORDER BY t.name, t.locale
        """,  # noqa: S608 (constant columns)
        names,
    )
    return [Template.model_validate(dict(r)) for r in rows]


async def template_locales(conn: Conn, name: str, version: int) -> list[Template]:
    rows = await conn.fetch(
        f"SELECT {_TEMPLATE} FROM templates t "  # noqa: S608 (constant columns)
        "WHERE name = $1 AND version = $2 ORDER BY locale",
        name, version,
    )
    return [Template.model_validate(dict(r)) for r in rows]


async def template_history(conn: Conn, name: str) -> TemplateHistory | None:
    """A template's version numbers with their source, and the one in use; None when no
    version of it exists."""
    rows = await conn.fetch(
        "SELECT version, source FROM template_versions WHERE name = $1", name)
    if not rows:
        return None
    active = await conn.fetchval(
        "SELECT version FROM template_activations WHERE name = $1 ORDER BY id DESC LIMIT 1",
        name)
    return TemplateHistory(name=name, sources={r["version"]: r["source"] for r in rows},
                           active=active)


async def last_release_texts(conn: Conn, name: str) -> dict[str, TemplateText] | None:
    """The texts of the newest version a release stored, per locale."""
    rows = await conn.fetch(
        """
        SELECT locale, subject, text_body, html_body FROM templates
        WHERE name = $1 AND version = (SELECT max(version) FROM template_versions
                                       WHERE name = $1 AND source = 'release')
        """,
        name,
    )
    if not rows:
        return None
    return {r["locale"]: TemplateText(subject=r["subject"], text=r["text_body"],
                                      html=r["html_body"]) for r in rows}


async def insert_template_version(
    conn: Conn, name: str, version: int, source: str, created_by: str | None,
    note: str | None, texts: dict[str, TemplateText],
) -> None:
    await conn.execute(
        """INSERT INTO template_versions (name, version, source, created_by, note)
           VALUES ($1, $2, $3, $4, $5)""",
        name, version, source, created_by, note,
    )
    await conn.executemany(
        """INSERT INTO templates (name, locale, version, subject, text_body, html_body)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        [(name, locale, version, t.subject, t.text, t.html) for locale, t in texts.items()],
    )


async def activate_template(
    conn: Conn, name: str, version: int, activated_by: str | None
) -> None:
    await conn.execute(
        "INSERT INTO template_activations (name, version, activated_by) VALUES ($1, $2, $3)",
        name, version, activated_by,
    )


async def template_versions(
    conn: Conn, name: str, *, before: int | None, limit: int
) -> list[TemplateVersion]:
    """Newest first, each with every locale and whether it is the one in use."""
    rows = await conn.fetch(
        """
        SELECT v.name, v.version, v.source, v.created_by, v.note, v.created_at,
               v.version = (SELECT version FROM template_activations a WHERE a.name = v.name
                            ORDER BY id DESC LIMIT 1) AS active,
               coalesce(jsonb_object_agg(t.locale, jsonb_build_object(
                   'subject', t.subject, 'text', t.text_body, 'html', t.html_body))
                   FILTER (WHERE t.locale IS NOT NULL), '{}') AS texts
        FROM template_versions v
        LEFT JOIN templates t ON t.name = v.name AND t.version = v.version
        WHERE v.name = $1 AND ($2::int IS NULL OR v.version < $2)
        GROUP BY v.name, v.version
        ORDER BY v.version DESC
        LIMIT $3
        """,
        name, before, limit,
    )
    return [_version(r) for r in rows]


async def template_version(conn: Conn, name: str, version: int) -> TemplateVersion | None:
    found = await template_versions(conn, name, before=version + 1, limit=1)
    return found[0] if found and found[0].version == version else None


def _version(r: asyncpg.Record) -> TemplateVersion:
    texts = json.loads(r["texts"]) if isinstance(r["texts"], str | bytes) else r["texts"]
    return TemplateVersion(
        name=r["name"], version=r["version"], active=bool(r["active"]), source=r["source"],
        created_by=r["created_by"], note=r["note"], created_at=r["created_at"],
        sv=texts.get("sv"), en=texts.get("en"),
    )


# --- deliveries -----------------------------------------------------------------------------

_DELIVERY = """id, event_id, event_type, contact_id, recipient, template, template_locale,
               template_version, subject, status, attempts, last_error, message_id,
               next_attempt_at, sent_at, created_at, updated_at"""


@dataclass(frozen=True)
class NewDelivery:
    id: UUID
    event_id: UUID
    event_type: str
    contact_id: UUID | None
    recipient: str | None
    template: str
    template_locale: str | None
    template_version: int | None
    subject: str
    text_body: str
    html_body: str
    status: str
    message_id: str
    last_error: str | None = None
    traceparent: str | None = None


async def insert_delivery(conn: Conn, d: NewDelivery) -> bool:
    """Store a delivery once per (event, contact, template); False when it already exists."""
    inserted = await conn.fetchval(
        """
        INSERT INTO deliveries (id, event_id, event_type, contact_id, recipient, template,
            template_locale, template_version, subject, text_body, html_body, status,
            message_id, last_error, traceparent, next_attempt_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                CASE WHEN $12 = 'pending' THEN now() END)
        ON CONFLICT (event_id, contact_id, template) DO NOTHING
        RETURNING true
        """,
        d.id, d.event_id, d.event_type, d.contact_id, d.recipient, d.template, d.template_locale,
        d.template_version, d.subject, d.text_body, d.html_body, d.status, d.message_id,
        d.last_error, d.traceparent,
    )
    return bool(inserted)


async def get_delivery(conn: Conn, delivery_id: UUID) -> Delivery | None:
    sql = f"SELECT {_DELIVERY} FROM deliveries WHERE id = $1"  # noqa: S608 (constant columns)
    r = await conn.fetchrow(sql, delivery_id)
    return Delivery.model_validate(dict(r)) if r else None


async def list_deliveries(
    conn: Conn,
    *,
    status: str | None,
    event_id: UUID | None,
    contact_id: UUID | None,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Delivery]:
    """Newest first; `before` is the (created_at, id) the previous page ended on."""
    rows = await conn.fetch(
        f"""
        SELECT {_DELIVERY} FROM deliveries
        WHERE ($1::text IS NULL OR status = $1)
          AND ($2::uuid IS NULL OR event_id = $2)
          AND ($3::uuid IS NULL OR contact_id = $3)
          AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::uuid))
        ORDER BY created_at DESC, id DESC
        LIMIT $6
        """,  # noqa: S608 (constant columns)
        status, event_id, contact_id,
        before[0] if before else None, before[1] if before else None, limit,
    )
    return [Delivery.model_validate(dict(r)) for r in rows]


async def retry_failed(conn: Conn, delivery_id: UUID) -> bool:
    """A failed delivery back to pending with a fresh count of attempts."""
    return bool(await conn.execute(
        """
        UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(),
            updated_at = now()
        WHERE id = $1 AND status = 'failed'
        """,
        delivery_id,
    ) == "UPDATE 1")


@dataclass(frozen=True)
class Claimed:
    """A delivery this process now sends; `attempts` counts this try."""

    id: UUID
    recipient: str
    subject: str
    text_body: str
    html_body: str
    message_id: str
    attempts: int
    traceparent: str | None
    created_at: datetime


async def claim_due(
    conn: Conn, batch: int, sending_timeout: timedelta
) -> list[Claimed]:
    """Take due deliveries, and ones stuck in `sending`, for this process alone.

    `SKIP LOCKED` lets replicas sweep side by side without taking the same row.
    """
    rows = await conn.fetch(
        """
        UPDATE deliveries d
        SET status = 'sending', sending_since = now(), attempts = d.attempts + 1,
            updated_at = now()
        FROM (
            SELECT id FROM deliveries
            WHERE (status IN ('pending', 'retrying') AND next_attempt_at <= now())
               OR (status = 'sending' AND sending_since < now() - $2::interval)
            ORDER BY next_attempt_at NULLS FIRST
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ) due
        WHERE d.id = due.id
        RETURNING d.id, d.recipient, d.subject, d.text_body, d.html_body, d.message_id,
                  d.attempts, d.traceparent, d.created_at
        """,
        batch, sending_timeout,
    )
    return [Claimed(**dict(r)) for r in rows]


async def finish_attempt(
    conn: Conn, c: Claimed, status: str, error: str | None,
    retry_in: timedelta | None,
) -> bool:
    """Record how an attempt ended, unless another sweeper has re-claimed the row since."""
    result = await conn.execute(
        """
        UPDATE deliveries
        SET status = $3, last_error = coalesce($4, last_error),
            next_attempt_at = CASE WHEN $5::interval IS NULL THEN NULL ELSE now() + $5 END,
            sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END,
            sending_since = NULL, updated_at = now()
        WHERE id = $1 AND status = 'sending' AND attempts = $2
        """,
        c.id, c.attempts, status, error, retry_in,
    )
    return bool(result == "UPDATE 1")


async def seconds_to_next_due(conn: Conn) -> float | None:
    value = await conn.fetchval(
        """SELECT extract(epoch FROM min(next_attempt_at) - now()) FROM deliveries
           WHERE status IN ('pending', 'retrying')"""
    )
    return float(value) if value is not None else None


# --- the daily digest -----------------------------------------------------------------------


async def add_digest_item(
    conn: Conn, subscription_id: UUID, contact_id: UUID, event_id: UUID,
    event_type: str, occurred_at: datetime, municipality_code: str | None,
) -> None:
    await conn.execute(
        """
        INSERT INTO digest_items (subscription_id, contact_id, event_id, event_type, occurred_at,
                                  municipality_code)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (event_id, contact_id) DO NOTHING
        """,
        subscription_id, contact_id, event_id, event_type, occurred_at, municipality_code,
    )


async def lock_digest(conn: Conn) -> None:
    """One digest run at a time, across replicas (held until the transaction ends)."""
    await conn.execute("SELECT pg_advisory_xact_lock(727274301)")


async def open_digest_counts(conn: Conn, until: datetime) -> list[asyncpg.Record]:
    """What each contact's digests collected before `until` and no digest has taken yet."""
    return await conn.fetch(
        """
        SELECT contact_id, event_type, municipality_code, count(*) AS count
        FROM digest_items
        WHERE delivery_id IS NULL AND occurred_at < $1
        GROUP BY contact_id, event_type, municipality_code
        ORDER BY contact_id, event_type, municipality_code
        """,
        until,
    )


async def close_digest_items(
    conn: Conn, contact_id: UUID, until: datetime, delivery_id: UUID
) -> None:
    await conn.execute(
        """UPDATE digest_items SET delivery_id = $3
           WHERE contact_id = $1 AND delivery_id IS NULL AND occurred_at < $2""",
        contact_id, until, delivery_id,
    )
