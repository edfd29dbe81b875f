"""What the registry does, use case by use case. A change loads, lets the domain decide and
saves with its events, in one unit of work (`asf_kit.uow.unit_of_work`). A read runs its
statement on a pooled connection without a transaction: it changes nothing, and BEGIN and
COMMIT would double the round trips of the busiest calls (the public register).

`Registry` is built once in `app.py` with the pool, a clock and its limits; routes and the
CLI call its methods and nothing below them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from asf_contracts import Envelope
from asf_contracts import registry as ev
from asf_kit.auth import Principal, Role
from asf_kit.logging import get_logger
from asf_kit.outbox import new_event
from asf_kit.pagination import cut, decode_cursor, time_cursor
from asf_kit.problems import (
    FieldError,
    Problem,
    invalid,
    not_found,
)
from asf_kit.uow import check_version, expected_version, unit_of_work
from registry import store
from registry.domain import (
    EXPIRY_WARNING,
    Company,
    CompanyPatch,
    CompanyRegistration,
    Contract,
    ContractIn,
    DeregistrationRequest,
    VerificationDecision,
    local_date,
)
from registry.imports import MAX_REPORTED_ERRORS, read_import
from registry.learning import LearningExample, LearningExampleIn, PublicationIn
from registry.municipalities import counties
from registry.store import CompanyFilter, ExampleFilter, Readable
from registry.values import Event
from registry.views import (
    CountyStats,
    Stats,
    check_may_change,
    company_seen_by,
    public_company,
    public_learning_example,
    sees_every_status,
)

log = get_logger(__name__)

Clock = Callable[[], datetime]
Page = dict[str, Any]
"""`{"items": [...], "next_cursor": ...}` of documents already in the API's shape."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _envelopes(events: list[Event]) -> list[Envelope]:
    return [new_event(producer=ev.PRODUCER, event_type=e.type, event_version=1,
                      aggregate_id=e.aggregate_id, aggregate_version=e.aggregate_version,
                      payload=e.payload) for e in events]


def _name_cursor(cursor: str | None) -> tuple[str, UUID] | None:
    key = decode_cursor(cursor, 2)
    if key is None:
        return None
    try:
        return str(key[0]), UUID(str(key[1]))
    except ValueError as e:
        raise invalid("cursor", "not a cursor this API returned") from e


@dataclass(frozen=True)
class Seen:
    """A company as the caller may see it, and its version when they see that."""

    document: dict[str, Any]
    version: int | None


@dataclass(frozen=True)
class Swept:
    warned: int
    expired: int


class Registry:
    """The registry's use cases.

    `pool` is a function because the pool exists only once the runtime has started.
    `clock` tells the time of every decision (and the day of the expiry sweep).
    """

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        *,
        clock: Clock = utc_now,
        import_max_rows: int = 5000,
        import_max_bytes: int = 1_048_576,
        public_rate_limit: int = 300,
        public_rate_window: int = 60,
    ) -> None:
        self._pool = pool
        self.clock = clock
        self.import_max_rows = import_max_rows
        self.import_max_bytes = import_max_bytes
        self.public_rate_limit = public_rate_limit
        self.public_rate_window = public_rate_window
        self._last_purge = 0.0

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool()

    # --- companies -----------------------------------------------------------------------

    async def register(self, reg: CompanyRegistration, who: Principal) -> Company:
        """A new company, `pending` until a registry officer verifies it; 409 with the
        existing id on a duplicate organisation number."""
        company = Company.register(reg, who.sub, self.clock())
        try:
            async with unit_of_work(self.pool) as uow:
                await store.insert_company(uow.conn, company)
                uow.publish(*_envelopes(company.events))
        except asyncpg.UniqueViolationError:
            async with self.pool.acquire() as conn:
                existing = await store.company_id_by_org_number(conn, company.org_number)
            raise Problem(
                409, "Duplicate organisation number",
                f"a company with org_number {company.org_number} is already registered",
                slug="duplicate-org-number",
                existing_id=str(existing) if existing else None,
            ) from None
        return company

    async def companies(self, f: CompanyFilter, who: Principal, cursor: str | None,
                        limit: int) -> Page:
        """A page in name order, of what `who` may read, each as they may see it."""
        readable = Readable(every_status=sees_every_status(who),
                            own_id=who.company_id if who.has(Role.COMPANY_REP) else None,
                            own_sub=who.sub if who.has(Role.COMPANY_REP) else None)
        async with self.pool.acquire() as conn:
            docs = await store.list_companies(conn, f, readable, _name_cursor(cursor),
                                              limit + 1)
        docs, next_cursor = cut(docs, limit, lambda d: [d["name"], d["id"]])
        seen = [company_seen_by(who, d) for d in docs]
        return {"items": [s for s in seen if s is not None], "next_cursor": next_cursor}

    async def company(self, company_id: UUID, who: Principal) -> Seen:
        """404 when it does not exist or `who` may not see it (not revealing which)."""
        async with self.pool.acquire() as conn:
            doc = await store.get_company_document(conn, company_id)
        seen = company_seen_by(who, doc) if doc is not None else None
        if doc is None or seen is None:
            raise not_found("company")
        return Seen(seen, doc["version"] if "version" in seen else None)

    async def _change(self, company_id: UUID, decide: Callable[[Company], Company]) -> Company:
        """Lock the company, let the domain `decide` its new state and events, save both."""
        async with unit_of_work(self.pool) as uow:
            current = await store.get_company(uow.conn, company_id, for_update=True)
            if current is None:
                raise not_found("company")
            changed = decide(current)
            if changed.version != current.version:
                await store.update_company(uow.conn, changed, current.version)
            uow.publish(*_envelopes(changed.events))
        return changed

    async def update(self, company_id: UUID, patch: CompanyPatch, if_match: int | None,
                     who: Principal) -> Company:
        """What the company declares, changed; SPEC 3.1's review rules are
        `Company.update`'s."""
        expected = expected_version(if_match, patch.version)

        def decide(current: Company) -> Company:
            check_may_change(who, current)
            check_version("company", current.version, expected)
            return current.update(patch, self.clock())

        return await self._change(company_id, decide)

    async def decide_verification(self, company_id: UUID, body: VerificationDecision,
                                  who: Principal) -> Company:
        def decide(current: Company) -> Company:
            if body.decision == "verified":
                return current.verify(who.sub, self.clock(), body.note, body.level,
                                      body.valid_until)
            return current.reject(who.sub, self.clock(), body.note)

        return await self._change(company_id, decide)

    async def deregister(self, company_id: UUID, body: DeregistrationRequest,
                         who: Principal) -> Company:
        return await self._change(
            company_id, lambda c: c.deregister(body.reason, body.note, who.sub, self.clock()))

    async def import_csv(self, raw: bytes, who: Principal) -> list[UUID]:
        """All rows or none; every bad row reported by its line number (the first
        `MAX_REPORTED_ERRORS` errors, and how many there are). The file is read in a worker
        thread, so a large one does not hold up other requests."""
        if len(raw) > self.import_max_bytes:
            raise Problem(413, "Content too large",
                          f"an import is at most {self.import_max_bytes} bytes; split the file",
                          slug="too-large")
        check = await asyncio.to_thread(read_import, raw, self.import_max_rows)
        async with unit_of_work(self.pool) as uow:
            taken = await store.existing_org_numbers(uow.conn, list(check.line_of))
            duplicates = [{"row": check.line_of[org], "field": "org_number",
                           "message": f"{org} is already registered"} for org in taken]
            if check.error_count or duplicates:
                errors = sorted(check.errors + duplicates,
                                key=lambda e: (e["row"], e["field"]))[:MAX_REPORTED_ERRORS]
                bad_rows = len(check.bad_rows | {d["row"] for d in duplicates})
                total = check.error_count + len(duplicates)
                raise Problem(
                    422, "Import rejected",
                    f"{bad_rows} row(s) are bad ({total} error(s)"
                    f"{f', the first {len(errors)} listed' if total > len(errors) else ''}); "
                    "nothing was imported",
                    slug="import-rejected",
                    errors=[FieldError(field=f"row {e['row']}: {e['field']}",
                                       message=e["message"]) for e in errors],
                    rows=errors, error_count=total, bad_row_count=bad_rows,
                )
            ids = []
            at = self.clock()
            for start in range(0, len(check.registrations), 500):  # bounded memory per step
                chunk = [Company.register(reg, who.sub, at)
                         for reg in check.registrations[start:start + 500]]
                await store.insert_companies(uow.conn, chunk)
                for company in chunk:
                    uow.publish(*_envelopes(company.events))
                ids += [c.id for c in chunk]
        return ids

    # --- verification expiry -------------------------------------------------------------

    async def sweep_verifications(self, today: date | None = None, batch: int = 200) -> Swept:
        """The daily sweep: warn 30 days before a verification runs out, and when its last
        day has passed set the company back to self-declared. Each exactly once per company
        and decision, however many sweeps run at once (`verification_notices`)."""
        now = self.clock()
        day = today or local_date(now)
        warned = expired = 0
        while True:
            async with unit_of_work(self.pool) as uow:
                due = await store.claim_expiry_warnings(uow.conn, day, day + EXPIRY_WARNING,
                                                        batch)
                done = 0
                for company in due:
                    if company.expiry_warning_due(day) and await store.record_notice(
                            uow.conn, company, "expiring", now):
                        uow.publish(*_envelopes(company.warn_of_expiry(day).events))
                        done += 1
            warned += done
            if len(due) < batch or done == 0:
                break
        while True:
            async with unit_of_work(self.pool) as uow:
                due = await store.claim_expired(uow.conn, day, batch)
                done = 0
                for company in due:
                    if company.expired_by(day) and await store.record_notice(
                            uow.conn, company, "expired", now):
                        gone = company.expire(day, now)
                        await store.update_company(uow.conn, gone, company.version)
                        uow.publish(*_envelopes(gone.events))
                        done += 1
            expired += done
            if len(due) < batch or done == 0:
                break
        if warned or expired:
            log.info("verification sweep", warned=warned, expired=expired)
        return Swept(warned, expired)

    # --- contracts -----------------------------------------------------------------------

    async def award_contract(self, company_id: UUID, body: ContractIn,
                             who: Principal) -> Contract:
        async with unit_of_work(self.pool) as uow:
            company = await store.get_company(uow.conn, company_id)
            if company is None:
                raise not_found("company")
            check_may_change(who, company)
            contract = Contract.award(company, body, who.sub, self.clock())
            await store.insert_contract(uow.conn, contract)
            uow.publish(*_envelopes([contract.event()]))
        return contract

    async def contracts(self, company_id: UUID | None, municipality_code: str | None,
                        reserved: bool | None, cursor: str | None, limit: int
                        ) -> tuple[list[Contract], str | None]:
        async with self.pool.acquire() as conn:
            items = await store.list_contracts(
                conn, company_id=company_id, municipality_code=municipality_code,
                reserved=reserved, after=time_cursor(cursor), limit=limit + 1)
        return cut(items, limit, lambda c: [c.created_at.isoformat(), str(c.id)])

    # --- learning examples ---------------------------------------------------------------

    async def submit_learning_example(self, body: LearningExampleIn,
                                      who: Principal) -> LearningExample:
        async with unit_of_work(self.pool) as uow:
            known = await store.existing_company_ids(uow.conn, body.company_ids)
            example = LearningExample.submit(body, who.sub, self.clock(), known)
            await store.insert_learning_example(uow.conn, example)
            uow.publish(*_envelopes(example.events))
        return example

    async def learning_examples(self, municipality_code: str | None, status: str | None,
                                cursor: str | None, limit: int
                                ) -> tuple[list[LearningExample], str | None]:
        async with self.pool.acquire() as conn:
            items = await store.list_learning_examples(
                conn, municipality_code=municipality_code, status=status,
                after=time_cursor(cursor), limit=limit + 1)
        return cut(items, limit, lambda e: [e.created_at.isoformat(), str(e.id)])

    async def learning_example(self, example_id: UUID) -> LearningExample:
        async with self.pool.acquire() as conn:
            example = await store.get_learning_example(conn, example_id)
        if example is None:
            raise not_found("learning example")
        return example

    async def decide_publication(self, example_id: UUID, body: PublicationIn,
                                 who: Principal) -> LearningExample:
        """An analyst publishes a submitted example in the handbook, or declines it."""
        async with unit_of_work(self.pool) as uow:
            current = await store.get_learning_example(uow.conn, example_id, for_update=True)
            if current is None:
                raise not_found("learning example")
            decided = current.decide(body, who.sub, self.clock())
            await store.update_learning_example(uow.conn, decided, current.version)
            uow.publish(*_envelopes(decided.events))
        return decided

    # --- statistics ----------------------------------------------------------------------

    async def stats(self) -> Stats:
        """Companies per county and status; employees and training places of active ones."""
        async with self.pool.acquire() as conn:
            rows = {r["county_code"]: r for r in await store.stats_by_county(conn)}
        per_county = []
        for code, name in sorted(counties().items()):
            r = rows.get(code)
            per_county.append(CountyStats(
                county_code=code, county_name=name,
                companies_active=r["active"] if r else 0,
                companies_pending=r["pending"] if r else 0,
                companies_deregistered=r["deregistered"] if r else 0,
                companies_rejected=r["rejected"] if r else 0,
                employees=r["employees"] if r else 0,
                training_places=r["training_places"] if r else 0,
            ))
        return Stats.of(per_county)

    async def public_stats(self) -> dict[str, Any]:
        """Active companies and their training places per county: nothing about pending or
        closed ones."""
        stats = await self.stats()
        keys = ("county_code", "county_name", "companies_active", "training_places")
        return {"counties": [{k: getattr(c, k) for k in keys} for c in stats.counties],
                "totals": {k: getattr(stats.totals, k) for k in keys}}

    # --- the public register -------------------------------------------------------------

    async def count_public_request(self, client: str) -> None:
        """Count a request to the public register from `client` (an address); 429 with
        `Retry-After` past `public_rate_limit` in a window. Every replica counts in the same
        table, so the limit holds for the service as a whole."""
        if self.public_rate_limit <= 0:
            return
        # One autocommitted statement, not a unit of work: this is bookkeeping, not a change
        # anybody reads back, and a transaction around it would hold a busy client's counter
        # row locked for three round trips.
        async with self.pool.acquire() as conn:
            hits, left = await store.count_request(conn, client, self.public_rate_window)
            if time.monotonic() - self._last_purge > self.public_rate_window:
                self._last_purge = time.monotonic()
                await store.forget_old_requests(conn, self.public_rate_window)
        if hits > self.public_rate_limit:
            raise Problem(
                429, "Too many requests",
                f"at most {self.public_rate_limit} requests in {self.public_rate_window} s from "
                f"one address; try again in {left} s",
                slug="rate-limited", headers={"Retry-After": str(left)},
            )

    async def public_companies(self, f: CompanyFilter, cursor: str | None, limit: int) -> Page:
        async with self.pool.acquire() as conn:
            docs = await store.active_companies(conn, f, _name_cursor(cursor), limit + 1)
        docs, next_cursor = cut(docs, limit, lambda d: [d["name"], d["id"]])
        return {"items": [public_company(d) for d in docs], "next_cursor": next_cursor}

    async def public_company(self, company_id: UUID) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            doc = await store.active_company(conn, company_id)
        if doc is None:
            raise not_found("company")
        return public_company(doc)

    async def open_data_version(self) -> tuple[str, datetime]:
        """What the open-data files' ETag is made of (it changes whenever the register
        does), and the time they are produced."""
        async with self.pool.acquire() as conn:
            changes = await store.register_changes(conn)
        return str(changes), self.clock().replace(microsecond=0)

    async def public_register(self, batch: int = 500) -> AsyncIterator[list[dict[str, Any]]]:
        """The whole public register in id order, `batch` companies at a time. Each batch is
        its own short query and nothing is held between them, so a slow download keeps no
        database connection; the id never changes, so each company comes once even while
        the register changes underneath."""
        after: UUID | None = None
        while True:
            async with self.pool.acquire() as conn:
                docs = await store.active_companies_by_id(conn, after, batch)
            if not docs:
                return
            yield [public_company(d) for d in docs]
            if len(docs) < batch:
                return
            after = UUID(docs[-1]["id"])

    async def public_learning_examples(self, f: ExampleFilter, cursor: str | None,
                                       limit: int) -> Page:
        async with self.pool.acquire() as conn:
            docs = await store.published_learning_examples(conn, f, time_cursor(cursor),
                                                           limit + 1)
            docs, next_cursor = cut(docs, limit,
                                      lambda d: [d["publication"]["at"], d["id"]])
            names = await store.active_company_names(
                conn, [UUID(c) for d in docs for c in d.get("company_ids") or ()])
        return {"items": [public_learning_example(d, names) for d in docs],
                "next_cursor": next_cursor}

    async def public_learning_example(self, example_id: UUID) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            doc = await store.published_learning_example(conn, example_id)
            if doc is None:
                raise not_found("learning example")
            names = await store.active_company_names(
                conn, [UUID(c) for c in doc.get("company_ids") or ()])
        return public_learning_example(doc, names)
