"""HTTP routes of the individual plan: parse, call the use case, respond. Case workers of the
case's municipality only; another municipality's participant is a 404."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from asf_kit.api import Cursor, IfMatch, Limit, if_match_version, problems, set_etag
from asf_kit.fields import Day
from asf_kit.pagination import DEFAULT_LIMIT, Page, decode_cursor
from asf_kit.problems import invalid
from asf_kit.uow import expected_version
from casework.api import CaseWorker
from casework.plan import PlanDue, PlanIn, PlanView, Review, ReviewIn
from casework.plan_service import PlanCases

router = APIRouter(tags=["plans"])


async def _plans(request: Request) -> PlanCases:
    casework = request.app.state.casework
    assert isinstance(casework, PlanCases)
    return casework


Plans = Annotated[PlanCases, Depends(_plans)]
IfNoneMatch = Annotated[str | None, Header(
    description='`*` to write the first plan of a case (instead of `If-Match: "0"`)',
    json_schema_extra={"enum": ["*"]})]
_errors = problems(403, 404, 409, 412, 428)


def _expected(if_match: str | None, if_none_match: str | None, body_version: int | None) -> int:
    """The plan version the change was made on: `If-Match`, `version` in the body, or
    `If-None-Match: *` for the first plan (version 0). 428 when none is sent."""
    if if_none_match is None:
        return expected_version(if_match_version(if_match), body_version)
    if if_none_match.strip() != "*":
        raise invalid("If-None-Match", 'only "*" is understood: write the first plan')
    if if_match is not None or body_version not in (None, 0):
        raise invalid("If-None-Match", "give either If-None-Match: * or the version read")
    return 0


@router.get("/participants/{participant_id}/plan", responses=problems(403, 404))
async def get_plan(participant_id: UUID, service: Plans, who: CaseWorker,
                   response: Response) -> PlanView:
    """The case's plan with its reviews; `ETag` carries its version. 404 before the first
    plan is written. The read is written to the access log."""
    plan = await service.plan(participant_id, who)
    set_etag(response, plan.version)
    return plan


@router.put("/participants/{participant_id}/plan", responses={
    **_errors, 201: {"model": PlanView, "description": "The first plan of the case"}})
async def put_plan(participant_id: UUID, body: PlanIn, service: Plans, who: CaseWorker,
                   response: Response, if_match: IfMatch = None,
                   if_none_match: IfNoneMatch = None) -> PlanView:
    """Write the whole plan. The first one with `If-None-Match: *` (or version 0) → 201;
    later ones with `If-Match: "<version>"` (or `version` in the body) → 200; 412 when
    someone changed it since, 428 without a version. Goals sent with their `id` keep it.
    A next review date that is set or moved may not be in the past."""
    expected = _expected(if_match, if_none_match, body.version)
    plan, created = await service.write_plan(participant_id, body, expected, who)
    set_etag(response, plan.version)
    if created:
        response.status_code = 201
        response.headers["Location"] = f"/participants/{participant_id}/plan"
    return plan


@router.post("/participants/{participant_id}/plan/reviews", status_code=201, responses=_errors)
async def review_plan(participant_id: UUID, body: ReviewIn, service: Plans, who: CaseWorker,
                      response: Response, if_match: IfMatch = None) -> Review:
    """Record a review (its `date`, today by default, and `outcome`) with the plan's version
    as `If-Match`. It sets the next review date (required unless the outcome is `end`),
    so the plan moves to a new version: `ETag` and `plan_version` carry it."""
    expected = expected_version(if_match_version(if_match), body.version)
    review = await service.review_plan(participant_id, body, expected, who)
    set_etag(response, review.plan_version)
    return review


@router.get("/plans", responses=problems(403))
async def plans_due(
    service: Plans,
    who: CaseWorker,
    assigned_to: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f]+$")] = None,
    due_before: Annotated[Day | None, Query(
        description="Only reviews dated before this day (tomorrow: everything due today)")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[PlanDue]:
    """The case worker's worklist of plan reviews in their municipality (open cases with a
    next review date), soonest first: ids and dates only."""
    key = decode_cursor(cursor, 2)
    try:
        after = (dt.date.fromisoformat(str(key[0])), UUID(str(key[1]))) if key else None
    except ValueError as e:
        raise invalid("cursor", "not a cursor this API returned") from e
    items = await service.plans_due(who, assigned_to=assigned_to, due_before=due_before,
                                    after=after, limit=limit + 1)
    return Page[PlanDue].of(items, limit,
                            lambda p: [p.next_review_date.isoformat(), str(p.plan_id)])
