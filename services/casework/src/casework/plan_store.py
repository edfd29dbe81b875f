"""The SQL of individual plans. Runs on the caller's connection and transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from asf_kit.db import Conn
from casework.plan import Plan, PlanDue, PlanHistory, PlanVersion, Review


@dataclass
class SealedPlan:
    """A plan as loaded: its sealed content and review comments, not yet opened."""

    plan: Plan
    content: bytes | None
    comments: dict[UUID, bytes] = field(default_factory=dict)


def _review(r: asyncpg.Record) -> Review:
    return Review(id=r["id"], plan_id=r["plan_id"], held_on=r["held_on"], outcome=r["outcome"],
                  comment=None, next_review_date=r["next_review_date"],
                  plan_version=r["plan_version"], recorded_by=r["recorded_by"],
                  recorded_at=r["recorded_at"])


async def load_plan(conn: Conn, participant_id: UUID, *, lock: bool = False
                    ) -> SealedPlan | None:
    """The case's plan with its current version's sealed content; `lock` for a change."""
    r = await conn.fetchrow(
        """
        SELECT pl.*, v.sealed FROM plans pl
        JOIN plan_versions v ON v.plan_id = pl.id AND v.version = pl.version
        WHERE pl.participant_id = $1
        """ + (" FOR UPDATE OF pl" if lock else ""), participant_id)
    if r is None:
        return None
    reviews = await conn.fetch(
        "SELECT * FROM plan_reviews WHERE plan_id = $1 ORDER BY recorded_at, id", r["id"])
    plan = Plan(id=r["id"], participant_id=r["participant_id"], version=r["version"],
                next_review_date=r["next_review_date"],
                participant_involved=r["participant_involved"], created_at=r["created_at"],
                created_by=r["created_by"], updated_at=r["updated_at"],
                updated_by=r["updated_by"], content=None,
                reviews=[_review(x) for x in reviews])
    return SealedPlan(plan, bytes(r["sealed"]) if r["sealed"] is not None else None,
                      {x["id"]: bytes(x["sealed"]) for x in reviews if x["sealed"] is not None})


async def save_plan(conn: Conn, plan: Plan, *, new: bool, sealed: dict[int, bytes],
                    comments: dict[UUID, bytes]) -> None:
    """The plan's head, and the versions and reviews it added (`sealed` content by version,
    review `comments` sealed by review id)."""
    if new:
        await conn.execute(
            """
            INSERT INTO plans (id, participant_id, version, next_review_date,
                participant_involved, created_at, created_by, updated_at, updated_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            plan.id, plan.participant_id, plan.version, plan.next_review_date,
            plan.participant_involved, plan.created_at, plan.created_by, plan.updated_at,
            plan.updated_by)
    else:
        await conn.execute(
            """
            UPDATE plans SET version = $2, next_review_date = $3, participant_involved = $4,
                updated_at = $5, updated_by = $6
            WHERE id = $1
            """,
            plan.id, plan.version, plan.next_review_date, plan.participant_involved,
            plan.updated_at, plan.updated_by)
    added = plan.take_added()
    versions = [x for x in added if isinstance(x, PlanVersion)]
    reviews = [x for x in added if isinstance(x, Review)]
    if versions:
        await conn.executemany(
            """
            INSERT INTO plan_versions (plan_id, version, change, sealed, next_review_date,
                participant_involved, at, by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            """,
            [(v.plan_id, v.version, v.change, sealed[v.version], v.next_review_date,
              v.participant_involved, v.at, v.by) for v in versions])
    if reviews:
        await conn.executemany(
            """
            INSERT INTO plan_reviews (id, plan_id, held_on, outcome, sealed, next_review_date,
                plan_version, recorded_by, recorded_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            [(x.id, x.plan_id, x.held_on, x.outcome, comments.get(x.id), x.next_review_date,
              x.plan_version, x.recorded_by, x.recorded_at) for x in reviews])


async def plan_history(conn: Conn, participant_id: UUID) -> PlanHistory | None:
    """What happened to the case's plan, without its sealed text."""
    plan_id = await conn.fetchval("SELECT id FROM plans WHERE participant_id = $1",
                                  participant_id)
    if plan_id is None:
        return None
    versions = await conn.fetch(
        "SELECT version, change, at, by FROM plan_versions WHERE plan_id = $1 ORDER BY version",
        plan_id)
    reviews = await conn.fetch(
        "SELECT * FROM plan_reviews WHERE plan_id = $1 ORDER BY recorded_at, id", plan_id)
    notices = await conn.fetch(
        "SELECT review_date, announced_at FROM plan_review_notices WHERE plan_id = $1 "
        "ORDER BY review_date", plan_id)
    return PlanHistory(
        versions=[(r["version"], r["change"], r["at"], r["by"]) for r in versions],
        reviews=[_review(r) for r in reviews],
        notices=[(r["review_date"], r["announced_at"]) for r in notices])


# --- reviews falling due ----------------------------------------------------------------


async def claim_due_reviews(conn: Conn, on: dt.date, limit: int) -> list[UUID]:
    """Participants whose plan's review date has come (on or before `on`) and has not been
    announced, in open cases; their plans are locked, skipping any another sweep holds."""
    rows = await conn.fetch(
        """
        SELECT pl.participant_id FROM plans pl
        JOIN participants p ON p.id = pl.participant_id
        WHERE pl.next_review_date <= $1 AND p.stage <> 'closed' AND p.erased_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM plan_review_notices n
                          WHERE n.plan_id = pl.id AND n.review_date = pl.next_review_date)
        ORDER BY pl.next_review_date, pl.id
        LIMIT $2
        FOR UPDATE OF pl SKIP LOCKED
        """,
        on, limit)
    return [r["participant_id"] for r in rows]


async def record_notice(conn: Conn, plan: Plan, at: dt.datetime) -> bool:
    """Note that the plan's review date was announced; False when it already was (by another
    sweep that got there first): then nothing may be published."""
    done = await conn.fetchval(
        """
        INSERT INTO plan_review_notices (plan_id, review_date, plan_version, announced_at)
        VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true
        """,
        plan.id, plan.next_review_date, plan.version, at)
    return bool(done)


# --- the worklist -----------------------------------------------------------------------


async def list_plans(conn: Conn, *, municipality_code: str, assigned_to: str | None,
                     due_before: dt.date | None, today: dt.date,
                     after: tuple[dt.date, UUID] | None, limit: int) -> list[PlanDue]:
    """Plans of the municipality's open cases that have a next review, in review-date order."""
    rows = await conn.fetch(
        """
        SELECT pl.id, pl.participant_id, pl.version, pl.next_review_date, p.assigned_to,
               EXISTS (SELECT 1 FROM plan_review_notices n WHERE n.plan_id = pl.id
                       AND n.review_date = pl.next_review_date) AS announced
        FROM plans pl JOIN participants p ON p.id = pl.participant_id
        WHERE p.municipality_code = $1 AND p.stage <> 'closed' AND p.erased_at IS NULL
          AND pl.next_review_date IS NOT NULL
          AND ($2::text IS NULL OR p.assigned_to = $2)
          AND ($3::date IS NULL OR pl.next_review_date < $3)
          AND ($4::date IS NULL OR (pl.next_review_date, pl.id) > ($4, $5::uuid))
        ORDER BY pl.next_review_date, pl.id
        LIMIT $6
        """,
        municipality_code, assigned_to, due_before, after[0] if after else None,
        after[1] if after else None, limit)
    return [PlanDue(participant_id=r["participant_id"], plan_id=r["id"],
                    assigned_to=r["assigned_to"], version=r["version"],
                    next_review_date=r["next_review_date"],
                    review_due=r["next_review_date"] <= today, announced=r["announced"])
            for r in rows]
