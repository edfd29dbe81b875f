"""What the registry does, step by step: load, let the domain decide, save with its event.

Each function runs one transaction; the event goes to the outbox in it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from pydantic import ValidationError

from asf_contracts import registry as ev
from asf_kit.auth import Principal, Role
from asf_kit.outbox import add_events, new_event
from asf_kit.problems import (
    FieldError,
    Problem,
    forbidden,
    invalid,
    not_found,
    rule_problem,
    validation_problem,
)
from asf_kit.rules import RuleError
from asf_kit.uow import check_version, expected_version
from registry import store
from registry.domain import (
    Company,
    CompanyPatch,
    CompanyRegistration,
    Contract,
    ContractIn,
    DeregistrationRequest,
    LearningExample,
    LearningExampleIn,
    VerificationDecision,
)

PRODUCER = ev.PRODUCER


def now() -> datetime:
    return datetime.now(UTC)


def company_event(event_type: str, c: Company) -> Any:
    return new_event(
        producer=PRODUCER, event_type=event_type, event_version=1, aggregate_id=c.id,
        aggregate_version=c.version, payload=c.payload(),
    )


def _duplicate(org_number: str, existing: UUID | None) -> Problem:
    return Problem(
        409, "Duplicate organisation number",
        f"a company with org_number {org_number} is already registered",
        slug="duplicate-org-number", existing_id=str(existing) if existing else None,
    )


async def register(pool: asyncpg.Pool, reg: CompanyRegistration, who: Principal) -> Company:
    company = Company.register(reg, who.sub, now())
    async with pool.acquire() as conn, conn.transaction():
        try:
            await store.insert_company(conn, company)
        except asyncpg.UniqueViolationError:
            existing = await _existing(pool, company.org_number)
            raise _duplicate(company.org_number, existing) from None
        await add_events(conn, [company_event(ev.COMPANY_REGISTERED, company)])
    return company


async def _existing(pool: asyncpg.Pool, org_number: str) -> UUID | None:
    async with pool.acquire() as conn:
        return await store.company_id_by_org_number(conn, org_number)


def may_update(who: Principal, company: Company) -> bool:
    """A company representative changes their own company; a registry officer any."""
    if who.has(Role.REGISTRY_OFFICER):
        return True
    return who.has(Role.COMPANY_REP) and (
        who.company_id == company.id or company.registered_by == who.sub
    )


async def _change(
    pool: asyncpg.Pool, company_id: UUID, decide: Callable[[Company], tuple[Company, str]]
) -> Company:
    """Lock the company, let the domain `decide` the new state and its event, save both."""
    async with pool.acquire() as conn, conn.transaction():
        current = await store.get_company(conn, company_id, for_update=True)
        if current is None:
            raise not_found("company")
        try:
            changed, event_type = decide(current)
        except RuleError as e:
            raise rule_problem(e) from None
        except ValidationError as e:
            raise validation_problem(e.errors()) from None
        await store.update_company(conn, changed, current.version)
        await add_events(conn, [company_event(event_type, changed)])
    return changed


async def update(
    pool: asyncpg.Pool, company_id: UUID, patch: CompanyPatch, if_match: int | None,
    who: Principal,
) -> Company:
    expected = expected_version(if_match, patch.version)

    def decide(current: Company) -> tuple[Company, str]:
        if not may_update(who, current):
            raise forbidden("only the company's own representative may change it")
        check_version("company", current.version, expected)
        return current.update(patch, now()), ev.COMPANY_UPDATED

    return await _change(pool, company_id, decide)


async def decide_verification(
    pool: asyncpg.Pool, company_id: UUID, body: VerificationDecision, who: Principal
) -> Company:
    def decide(current: Company) -> tuple[Company, str]:
        if body.decision == "verified":
            verified = current.verify(who.sub, now(), body.note, body.level, body.valid_until)
            return verified, ev.COMPANY_VERIFIED
        return current.reject(who.sub, now(), body.note), ev.COMPANY_REJECTED

    return await _change(pool, company_id, decide)


async def deregister(
    pool: asyncpg.Pool, company_id: UUID, body: DeregistrationRequest, who: Principal
) -> Company:
    def decide(current: Company) -> tuple[Company, str]:
        return current.deregister(body.reason, body.note, who.sub, now()), ev.COMPANY_DEREGISTERED

    return await _change(pool, company_id, decide)


async def award_contract(
    pool: asyncpg.Pool, company_id: UUID, body: ContractIn, who: Principal
) -> Contract:
    async with pool.acquire() as conn, conn.transaction():
        company = await store.get_company(conn, company_id)
        if company is None:
            raise not_found("company")
        if not (who.has(Role.REGISTRY_OFFICER) or may_update(who, company)):
            raise forbidden("contracts are recorded by a registry officer or the company itself")
        if company.status != "active":
            raise Problem(
                409, "Company not active",
                f"contracts are recorded for active companies; this one is {company.status}",
                slug="company-not-active", current_status=company.status,
            )
        contract = Contract(
            **body.model_dump(), id=uuid4(), company_id=company.id, company_name=company.name,
            recorded_by=who.sub, created_at=now(),
        )
        await store.insert_contract(conn, contract)
        await add_events(conn, [new_event(
            producer=PRODUCER, event_type=ev.CONTRACT_AWARDED, event_version=1,
            aggregate_id=contract.id, aggregate_version=1,
            payload=ev.ContractAwardedPayload(**contract.model_dump()),
        )])
    return contract


async def submit_learning_example(
    pool: asyncpg.Pool, body: LearningExampleIn, who: Principal
) -> LearningExample:
    example = LearningExample(**body.model_dump(), id=uuid4(), submitted_by=who.sub,
                              created_at=now())
    async with pool.acquire() as conn, conn.transaction():
        known = await store.existing_company_ids(conn, example.company_ids)
        errors = [
            FieldError(field=f"company_ids[{i}]", message="no company with this id")
            for i, cid in enumerate(example.company_ids) if cid not in known
        ]
        if errors:
            raise Problem(422, "Validation failed", "; ".join(f"{e.field}: {e.message}"
                          for e in errors), slug="validation", errors=errors)
        await store.insert_learning_example(conn, example)
        await add_events(conn, [new_event(
            producer=PRODUCER, event_type=ev.LEARNING_EXAMPLE_SUBMITTED, event_version=1,
            aggregate_id=example.id, aggregate_version=1,
            payload=ev.LearningExampleSubmittedPayload(**example.model_dump()),
        )])
    return example


# --- CSV import ---------------------------------------------------------------------------

IMPORT_COLUMNS = [
    "org_number", "name", "legal_form", "municipality_code", "industries", "description",
    "website", "contact_name", "contact_role", "contact_email", "contact_phone",
    "workforce_as_of", "employees_total", "engaged_total", "target_group_engaged",
    "training_places", "origin", "runs_business", "integration_purpose", "participation_form",
    "participation_description", "reinvests_profits", "independent_of_public_sector",
]
"""The CSV header an import expects; `industries` is separated by `;`."""

_TRUE = {"true", "yes", "ja", "1", "x"}
_FALSE = {"false", "no", "nej", "0", ""}


def _flag(value: str) -> bool | str:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return value  # let validation name it


def _row_to_registration(row: dict[str, str]) -> dict[str, Any]:
    def opt(key: str) -> str | None:
        v = (row.get(key) or "").strip()
        return v or None

    contact = None
    if opt("contact_name"):
        contact = {"name": opt("contact_name"), "role": opt("contact_role"),
                   "email": opt("contact_email"), "phone": opt("contact_phone")}
    form = opt("participation_form")
    return {
        "org_number": row.get("org_number", ""),
        "name": row.get("name", ""),
        "legal_form": row.get("legal_form", ""),
        "municipality_code": row.get("municipality_code", ""),
        "industries": [t.strip() for t in (row.get("industries") or "").split(";") if t.strip()],
        "description": opt("description"),
        "website": opt("website"),
        "contacts": [contact] if contact else [],
        "workforce": {
            "as_of": row.get("workforce_as_of", ""),
            "employees_total": row.get("employees_total", ""),
            "engaged_total": row.get("engaged_total", ""),
            "target_group_engaged": row.get("target_group_engaged", ""),
        },
        "training_places": row.get("training_places", ""),
        "origin": row.get("origin", ""),
        "criteria": {
            "runs_business": _flag(row.get("runs_business", "")),
            "integration_purpose": _flag(row.get("integration_purpose", "")),
            "participation": (
                {"form": form, "description": opt("participation_description")} if form else None
            ),
            "reinvests_profits": _flag(row.get("reinvests_profits", "")),
            "independent_of_public_sector": _flag(row.get("independent_of_public_sector", "")),
        },
    }


async def import_csv(pool: asyncpg.Pool, text: str, who: Principal) -> list[Company]:
    """All rows or none; every bad row is reported by its line number in the file."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in IMPORT_COLUMNS if c not in header]
    if missing:
        raise invalid("header", f"missing columns: {', '.join(missing)}")
    errors: list[dict[str, Any]] = []
    companies: list[Company] = []
    seen: dict[str, int] = {}
    at = now()
    for row in reader:
        line = reader.line_num
        data = _row_to_registration(row)
        try:
            reg = CompanyRegistration.model_validate(data)
        except ValidationError as e:
            for fe in validation_problem(e.errors()).errors or []:
                errors.append({"row": line, "field": fe.field, "message": fe.message})
            continue
        if reg.org_number in seen:
            errors.append({"row": line, "field": "org_number",
                           "message": f"same org_number as row {seen[reg.org_number]}"})
            continue
        seen[reg.org_number] = line
        companies.append(Company.register(reg, who.sub, at))
    if not companies and not errors:
        raise invalid("body", "the file has no rows")
    async with pool.acquire() as conn, conn.transaction():
        taken = await store.existing_org_numbers(conn, list(seen))
        for org in sorted(taken, key=lambda o: seen[o]):
            errors.append({"row": seen[org], "field": "org_number",
                           "message": f"{org} is already registered"})
        if errors:
            errors.sort(key=lambda e: (e["row"], e["field"]))
            raise Problem(
                422, "Import rejected",
                f"{len({e['row'] for e in errors})} row(s) are bad; nothing was imported",
                slug="import-rejected",
                errors=[FieldError(field=f"row {e['row']}: {e['field']}", message=e["message"])
                        for e in errors],
                rows=errors,
            )
        await store.insert_companies(conn, companies)
        await add_events(conn, [company_event(ev.COMPANY_REGISTERED, c) for c in companies])
    return companies
