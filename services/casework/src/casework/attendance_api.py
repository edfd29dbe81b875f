"""HTTP routes of attendance, rates and monthly statements: parse, call the use case, respond.

A company rep reaches the placements and statements of their own company; a case worker
those of their municipality. A placement or statement outside the caller's scope is a 404.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from asf_kit.api import Cursor, Limit, problems
from asf_kit.auth import Principal, Role
from asf_kit.fields import Day
from asf_kit.pagination import DEFAULT_LIMIT, Page, decode_cursor, time_cursor
from asf_kit.problems import invalid
from casework.api import CaseWorker, _signed_in
from casework.attendance import (
    AttendanceDay,
    AttendanceIn,
    AttendancePage,
    CorrectionIn,
    Rate,
    RateIn,
    RepPlacement,
)
from casework.attendance_service import AttendanceCases
from casework.inputs import PlacementKind
from casework.scope import company_of, scope_of
from casework.statements import Statement, StatementSummary, StatementView, statement_csv

router = APIRouter()

async def _attendance(request: Request) -> AttendanceCases:
    casework = request.app.state.casework
    assert isinstance(casework, AttendanceCases)
    return casework


def _in_scope(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Let in `roles` only, each with its scope in the token (a case worker's municipality,
    a rep's company): 403 before anything is looked up."""

    async def dependency(who: Principal = Depends(_signed_in(*roles))) -> Principal:
        if who.has(Role.CASE_WORKER):
            scope_of(who)
        elif who.has(Role.COMPANY_REP):
            company_of(who)
        return who

    return dependency


Service = Annotated[AttendanceCases, Depends(_attendance)]
CompanyRep = Annotated[Principal, Depends(_in_scope(Role.COMPANY_REP))]
RepOrCaseWorker = Annotated[Principal, Depends(_in_scope(Role.COMPANY_REP, Role.CASE_WORKER))]
RateReader = Annotated[Principal, Depends(_in_scope(Role.ANALYST, Role.CASE_WORKER))]
Month = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-10"])]
_errors = problems(403, 404)


def _key(cursor: str | None, arity: int) -> list[str] | None:
    key = decode_cursor(cursor, arity)
    return [str(k) for k in key] if key is not None else None


# --- the rep's view and attendance ---------------------------------------------------------


@router.get("/companies/{company_id}/placements", tags=["attendance"], responses=_errors)
async def company_placements(
    company_id: UUID, service: Service, who: CompanyRep,
    active: Annotated[bool | None, Query(description="Only running (or only ended) ones")] = None,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> Page[RepPlacement]:
    """The placements at the rep's own company, in start order: the placement, its kind,
    dates and planned hours, and the participant's given name and family initial — nothing
    more. Another company's: 404."""
    key = _key(cursor, 2)
    try:
        after = (dt.date.fromisoformat(key[0]), UUID(key[1])) if key else None
    except ValueError as e:
        raise invalid("cursor", "not a cursor this API returned") from e
    items = await service.company_placements(company_id, who, active=active, after=after,
                                             limit=limit + 1)
    return Page[RepPlacement].of(items, limit, lambda p: [p.start.isoformat(), str(p.id)])


@router.put("/placements/{placement_id}/attendance/{date}", tags=["attendance"],
            responses={**problems(403, 404, 409),
                       201: {"model": AttendanceDay, "description": "First report of the day"}})
async def report_attendance(placement_id: UUID, date: dt.date, body: AttendanceIn,
                            service: Service, who: CompanyRep,
                            response: Response) -> AttendanceDay:
    """The host company's rep reports one day: `hours_present` (0–24) and, for any absence
    (fewer hours than planned), an `absence_reason`. Only days the placement ran, never
    a future day (422 naming the field). 201 for a new day, 200 for a correction; 409
    naming the statement once the month is closed."""
    day, created = await service.report_attendance(placement_id, date, body, who)
    if created:
        response.status_code = 201
    return day


@router.get("/placements/{placement_id}/attendance", tags=["attendance"], responses=_errors)
async def attendance(
    placement_id: UUID, service: Service, who: RepOrCaseWorker,
    from_: Annotated[Day | None, Query(alias="from",
                                           description="The month of `to` by default")] = None,
    to: Annotated[Day | None, Query(description="Today by default")] = None,
) -> AttendancePage:
    """The days reported for a placement, oldest first, with the months already closed.
    The placement's company rep and its municipality's case workers; at most 366 days."""
    return await service.attendance(placement_id, who, from_, to)


# --- rates ---------------------------------------------------------------------------------


@router.post("/rates", status_code=201, tags=["statements"], responses=problems(403, 409))
async def set_rate(body: RateIn, service: Service, who: CaseWorker) -> Rate:
    """A rate of the caller's municipality for one kind of placement, per day or per hour
    present, from `valid_from` until the next one (409 when one starts that day already)."""
    return await service.set_rate(body, who)


@router.get("/rates", tags=["statements"], responses=problems(403))
async def rates(
    service: Service, who: RateReader,
    municipality_code: Annotated[str | None, Query(pattern=r"^\d{4}$")] = None,
    kind: PlacementKind | None = None, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> Page[Rate]:
    """Rates by municipality, kind and date. A case worker reads their own municipality's,
    an analyst any."""
    key = _key(cursor, 3)
    try:
        after = (key[0], key[1], dt.date.fromisoformat(key[2])) if key else None
    except ValueError as e:
        raise invalid("cursor", "not a cursor this API returned") from e
    items = await service.rates(who, municipality_code=municipality_code, kind=kind,
                                after=after, limit=limit + 1)
    return Page[Rate].of(items, limit,
                         lambda r: [r.municipality_code, r.kind, r.valid_from.isoformat()])


# --- statements ----------------------------------------------------------------------------


@router.get("/statements", tags=["statements"], responses=problems(403))
async def statements(
    service: Service, who: RepOrCaseWorker,
    company_id: UUID | None = None,
    municipality_code: Annotated[str | None, Query(pattern=r"^\d{4}$")] = None,
    month: Month = None,
    current: Annotated[bool | None, Query(
        description="true: only those in force; false: only superseded ones")] = None,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> Page[StatementSummary]:
    """Monthly statements newest first, without their lines: a company rep's company's, a
    case worker's municipality's."""
    items = await service.statements(who, company_id=company_id,
                                     municipality_code=municipality_code, month=month,
                                     current=current, after=time_cursor(cursor),
                                     limit=limit + 1)
    return Page[StatementSummary].of(items, limit,
                                     lambda s: [s.issued_at.isoformat(), str(s.id)])


@router.get("/statements/{statement_id}.csv", tags=["statements"], response_class=Response,
            responses={**_errors, 200: {"content": {"text/csv": {}},
                                        "description": "The statement as CSV"}})
async def statement_as_csv(statement_id: UUID, service: Service,
                           who: RepOrCaseWorker) -> Response:
    """The statement as CSV (UTF-8 with BOM, comma-separated, decimal point): a `placement`
    row per line and a `total` row, in the columns of `casework.statements.CSV_COLUMNS`."""
    view = await service.statement(statement_id, who)
    name = f"statement-{view.month}-{view.id}.csv"
    return Response(statement_csv(view), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store"})


@router.get("/statements/{statement_id}", tags=["statements"], responses=_errors)
async def statement(statement_id: UUID, service: Service, who: RepOrCaseWorker,
                    response: Response) -> StatementView:
    """One statement with its lines: days and hours per placement, absence by reason, the
    compensation; each line with the participant's given name and family initial."""
    response.headers["Cache-Control"] = "no-store"
    return await service.statement(statement_id, who)


@router.post("/statements/{statement_id}/corrections", status_code=201, tags=["statements"],
             responses=problems(403, 404, 409))
async def correct_statement(statement_id: UUID, body: CorrectionIn, service: Service,
                            who: RepOrCaseWorker, response: Response) -> Statement:
    """Correct a closed month: the corrected days (each like a report, inside the month) and
    a `reason` code. Issues a new statement (`kind` `correction`) that supersedes this one,
    which never changes. Only the statement in force can be corrected (409 otherwise)."""
    new = await service.correct_statement(statement_id, body, who)
    response.headers["Location"] = f"/statements/{new.id}"
    return new

