"""Demo participants for `make run`: a case at every stage, in Stockholm and Göteborg.

Fictional people; the identity numbers are valid in form (Luhn) but made up. The
seed runs once: when demo participants exist it does nothing. Placements need
active companies in the read model, which fills from the registry's events while
the service runs; the seed waits for them a while and, without them, leaves the
cases that would need one in assessment.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import asyncpg
from stdnum import luhn

from asf_kit.auth import Principal
from asf_kit.db import create_pool
from asf_kit.problems import Problem
from casework import store
from casework.domain import Company
from casework.inputs import ParticipantIn, PlacementIn, TransitionIn
from casework.service import Casework, today
from casework.settings import CaseworkSettings

if TYPE_CHECKING:
    from casework.app import CaseworkService

DEMO_SUB = "demo-case-worker"


def identity_number(yymmdd: str, serial: str) -> str:
    """A made-up number with a correct check digit (`serial` is three digits)."""
    return f"{yymmdd}-{serial}{luhn.calc_check_digit(yymmdd + serial)}"


# given name, family name, birth date, serial, municipality, target stage, exit reason
PEOPLE: list[tuple[str, str, str, str, str, str, str | None]] = [
    ("Amina", "Demo-Hassan", "850312", "238", "0180", "referred", None),
    ("Erik", "Demo-Lund", "920704", "117", "0180", "assessment", None),
    ("Sara", "Demo-Berg", "780921", "402", "0180", "in_training", None),
    ("Jonas", "Demo-Ek", "010115", "336", "0180", "in_training", None),
    ("Fatima", "Demo-Ali", "880630", "284", "0180", "employed", None),
    ("Mikael", "Demo-Sund", "950228", "151", "0180", "employed", None),
    ("Lina", "Demo-Holm", "990811", "263", "0180", "closed", "studies"),
    ("Omar", "Demo-Nur", "870467", "179", "0180", "closed", None),  # samordningsnummer
    ("Karin", "Demo-Falk", "760502", "348", "1480", "assessment", None),
    ("Ahmed", "Demo-Yusuf", "900119", "195", "1480", "in_training", None),
]


async def _wait_for_companies(pool: asyncpg.Pool, wait: float) -> list[Company]:
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        async with pool.acquire() as conn:
            companies = await store.active_companies(conn)
        if companies or asyncio.get_running_loop().time() >= deadline:
            return companies
        await asyncio.sleep(1.0)


async def seed_with(casework: CaseworkService, wait: float = 30.0) -> tuple[int, int]:
    """Create the demo cases once; returns (participants created, placements made)."""
    async with casework.pool.acquire() as conn:
        if await conn.fetchval("SELECT count(*) FROM participants WHERE created_by = $1",
                               DEMO_SUB):
            return 0, 0
    companies = await _wait_for_companies(casework.pool, wait)
    created = placed = 0
    training: list[tuple[UUID, Principal, UUID, UUID]] = []
    for i, (given, family, born, serial, municipality, stage, exit_reason) in enumerate(PEOPLE):
        who = Principal(sub=DEMO_SUB, name="Demo Handläggare", roles=frozenset({"case_worker"}),
                        municipality_code=municipality)
        p = await casework.refer(ParticipantIn(
            given_name=given, family_name=family,
            personal_identity_number=identity_number(born, serial),
            phone=f"070-000 00 {i:02d}", email=f"{given.lower()}@example.se",
            referral_source=("social_services", "employment_service", "social_insurance",
                             "coordination_association", "self")[i % 5],
        ), who)
        created += 1
        async with casework.pool.acquire() as conn:
            # a referral long enough ago for the placement and job dates below
            await store.backdate_case(conn, p.id, 30 if stage in ("referred", "assessment")
                                      else 500)
        if stage == "referred":
            continue
        await _move(casework, p.id, {"to": "assessment"}, who)
        if stage == "assessment":
            continue
        if stage == "closed" and exit_reason is not None:
            await _move(casework, p.id, {"to": "closed", "exit_reason": exit_reason}, who)
            continue
        if not companies:
            continue
        company = companies[i % len(companies)]
        try:
            placement = await casework.start_placement(p.id, PlacementIn(
                company_id=company.id, kind="work_training",
                start=today() - timedelta(days=200), hours_per_week=20,
            ), who)
        except Problem:  # the company's places are full: leave the case in assessment
            continue
        placed += 1
        if stage == "in_training":
            training.append((p.id, who, placement.id, company.id))
            continue
        employment: dict[str, Any] = {
            "form": ("wage_subsidy", "unsubsidised")[i % 2],
            "start": (today() - timedelta(days=100 if i % 2 == 0 else 400)).isoformat(),
        }
        if i % 2 == 0:
            employment["employer_company_id"] = str(company.id)
        else:
            employment["employer_name"] = "Demo Fastighetsservice AB"
        await _move(casework, p.id, {"to": "employed", "employment": employment}, who)
        if stage == "closed":
            await _move(casework, p.id, {"to": "closed"}, who)
    await _plans_and_attendance(casework, training)
    return created, placed


async def _plans_and_attendance(casework: CaseworkService,
                                training: list[tuple[UUID, Principal, UUID, UUID]]) -> None:
    """For those in training: a plan, rates, attendance since the start of last month as the
    company's rep would report it, and last month's statement."""
    from casework.attendance import AttendanceIn, RateIn
    from casework.plan import PlanIn
    from casework.workdays import Month, is_working_day, swedish_date

    now = swedish_date(casework.now())
    for municipality in sorted({who.municipality_code or "" for _, who, _, _ in training}):
        who = Principal(sub=DEMO_SUB, name="Demo Handläggare",
                        roles=frozenset({"case_worker"}), municipality_code=municipality)
        await casework.set_rate(RateIn(kind="work_training", unit="day", amount_sek=350,
                                       valid_from=now.replace(year=now.year - 2, day=1)), who)
    month = Month.of(now).previous()
    for n, (pid, who, placement_id, company_id) in enumerate(training):
        await casework.write_plan(pid, PlanIn.model_validate({
            "goals": [{"text": "Klara fyra timmar om dagen, fem dagar i veckan",
                       "target_date": (now + timedelta(days=90)).isoformat()},
                      {"text": "Prova på kassan och kundmötet",
                       "target_date": (now + timedelta(days=45)).isoformat()}],
            "activities": [{"text": "Arbetsträning måndag till fredag, 08–12",
                            "start": month.first.isoformat()},
                           {"text": "Uppföljningssamtal varannan vecka"}],
            "next_review_date": (now + timedelta(days=7 * (n + 1))).isoformat(),
            "participant_involved": True}), 0, who)
        rep = Principal(sub="demo-company-rep", name="Demo Handledare",
                        roles=frozenset({"company_rep"}), company_id=company_id)
        day, i = month.first, 0
        while day < now:
            if is_working_day(day):
                i += 1
                absent = (i + n) % 9 == 0
                await casework.report_attendance(placement_id, day, AttendanceIn(
                    hours_present=0 if absent else 4,
                    absence_reason=("sick", "leave")[i % 2] if absent else None), rep)
            day += timedelta(days=1)
    await casework.close_month(month)


async def _move(casework: Casework, pid: UUID, body: dict[str, Any], who: Principal) -> None:
    await casework.transition(pid, TransitionIn.model_validate(body), who)


async def seed(settings: CaseworkSettings, wait: float = 30.0) -> tuple[int, int]:
    pool = await create_pool(settings.database_url, 1, 2)
    from casework.app import build_service

    try:
        return await seed_with(build_service(settings, lambda: pool), wait)
    finally:
        await pool.close()
