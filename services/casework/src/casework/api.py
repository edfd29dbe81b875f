"""Casework's HTTP API: parse, call the use case, respond. Everything is scoped to the
caller's municipality; another municipality's participant is a 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from sse_starlette import EventSourceResponse

from asf_kit.api import Cursor, Limit, problems, time_cursor
from asf_kit.auth import Principal, Role, require
from asf_kit.pagination import DEFAULT_LIMIT, Page, decode_cursor, encode_cursor
from asf_kit.problems import invalid
from casework.domain import FollowUp, Placement
from casework.inputs import (
    FollowUpIn,
    IdentitySearch,
    NoteIn,
    ParticipantIn,
    PlacementEndIn,
    PlacementIn,
    Stage,
    TransitionIn,
)
from casework.outcomes import Outcomes
from casework.service import Casework, may_read_stats, scope_of
from casework.stream import Broadcaster
from casework.timeline import TimelineItem
from casework.views import AccessLogEntry, Case, Note, ParticipantView

router = APIRouter()


def _casework(request: Request) -> Casework:
    casework: Casework = request.app.state.casework
    return casework


Service = Annotated[Casework, Depends(_casework)]
CaseWorker = Annotated[Principal, Depends(require(Role.CASE_WORKER))]
Auditor = Annotated[Principal, Depends(require(Role.AUDITOR))]
StatsReader = Annotated[Principal, Depends(require(Role.ANALYST, Role.CASE_WORKER))]
_errors = problems(403, 404, 409)


# --- participants -------------------------------------------------------------------------


@router.post("/participants", status_code=201, tags=["participants"], responses=_errors)
async def refer(body: ParticipantIn, service: Service, who: CaseWorker,
                response: Response) -> ParticipantView:
    """Register a participant referred to the caller's municipality; 409 with `existing_id`
    when the same identity number already has an open case there."""
    participant = await service.refer(body, who)
    response.headers["Location"] = f"/participants/{participant.id}"
    return participant


@router.get("/participants", tags=["participants"], responses=_errors)
async def list_participants(
    service: Service,
    who: CaseWorker,
    stage: Stage | None = None,
    company_id: Annotated[UUID | None, Query(description="with an active placement there")] = None,
    assigned_to: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f]+$")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Case]:
    """Cases of the caller's municipality in referral order, without personal data."""
    items = await service.list_cases(who, stage=stage, company_id=company_id,
                                     assigned_to=assigned_to, after=time_cursor(cursor),
                                     limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return Page[Case](
        items=items,
        next_cursor=encode_cursor([items[-1].referred_at.isoformat(), str(items[-1].id)])
        if more else None,
    )


@router.post("/participants/search", tags=["participants"], responses=_errors)
async def find_participant(body: IdentitySearch, service: Service,
                           who: CaseWorker) -> Page[Case]:
    """Find a person's cases (open and closed) in the caller's municipality by identity
    number. A POST, so the number never appears in a URL or an access log of a proxy."""
    return Page[Case](items=await service.find(body.personal_identity_number, who),
                      next_cursor=None)


@router.get("/participants/{participant_id}", tags=["participants"], responses=_errors)
async def get_participant(participant_id: UUID, service: Service,
                          who: CaseWorker) -> ParticipantView:
    """The participant with their personal data; the read is written to the access log."""
    return await service.get(participant_id, who)


@router.delete("/participants/{participant_id}", status_code=204, tags=["participants"],
               responses=_errors)
async def erase_participant(participant_id: UUID, service: Service, who: CaseWorker) -> Response:
    """Erase a closed case's personal data for good (crypto-shredding); figures stay."""
    await service.erase(participant_id, who)
    return Response(status_code=204)


@router.post("/participants/{participant_id}/transitions", tags=["cases"], responses=_errors)
async def transition(participant_id: UUID, body: TransitionIn, service: Service,
                     who: CaseWorker) -> Case:
    """Move the case: `{"to": stage}`, with `exit_reason` when closing and `employment`
    when moving to employed. A move the stage machine lacks is a 409 listing `allowed`."""
    return await service.transition(participant_id, body, who)


@router.post("/participants/{participant_id}/placements", status_code=201, tags=["cases"],
             responses=_errors)
async def start_placement(participant_id: UUID, body: PlacementIn, service: Service,
                          who: CaseWorker) -> Placement:
    """Place the participant at an active ASF with a free training place; the case moves
    to in_training."""
    return await service.start_placement(participant_id, body, who)


@router.post("/placements/{placement_id}/end", tags=["cases"], responses=_errors)
async def end_placement(placement_id: UUID, body: PlacementEndIn, service: Service,
                        who: CaseWorker) -> Placement:
    return await service.end_placement(placement_id, body, who)


@router.post("/participants/{participant_id}/follow-ups", status_code=201, tags=["cases"],
             responses=_errors)
async def record_follow_up(participant_id: UUID, body: FollowUpIn, service: Service,
                           who: CaseWorker) -> FollowUp:
    return await service.record_follow_up(participant_id, body, who)


@router.post("/participants/{participant_id}/notes", status_code=201, tags=["cases"],
             responses=_errors)
async def add_note(participant_id: UUID, body: NoteIn, service: Service,
                   who: CaseWorker) -> Note:
    return await service.add_note(participant_id, body, who)


@router.get("/participants/{participant_id}/timeline", tags=["cases"], responses=_errors)
async def timeline(participant_id: UUID, service: Service,
                   who: CaseWorker) -> Page[TimelineItem]:
    """Everything that happened on the case, oldest first, in one page."""
    return Page[TimelineItem](items=await service.timeline(participant_id, who),
                              next_cursor=None)


@router.get("/participants/{participant_id}/access-log", tags=["audit"], responses=_errors)
async def access_log(
    participant_id: UUID, service: Service, _: Auditor, limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[AccessLogEntry]:
    """Who read or changed the participant's data, and when (auditors only)."""
    key = decode_cursor(cursor, 1)
    if key is not None and (type(key[0]) is not int or not 0 <= key[0] < 2**63):
        raise invalid("cursor", "not a cursor this API returned")
    items = await service.access_log(participant_id, key[0] if key else None, limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return Page[AccessLogEntry](
        items=items, next_cursor=encode_cursor([items[-1].id]) if more else None)


# --- statistics and the stream -----------------------------------------------------------


@router.get("/stats/outcomes", tags=["statistics"], responses=_errors)
async def outcomes(
    service: Service,
    who: StatsReader,
    municipality_code: Annotated[str | None, Query(pattern=r"^\d{4}$")] = None,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
) -> Outcomes:
    """Outcome figures (counts only, never a person). An analyst sees every municipality;
    a case worker their own."""
    if from_ is not None and to is not None and to < from_:
        raise invalid("to", "cannot be before from")
    return await service.outcomes(may_read_stats(who, municipality_code), from_, to)


@router.get("/stream", tags=["cases"], responses=_errors,
            response_description="text/event-stream of `case` events")
async def stream(request: Request, who: CaseWorker) -> EventSourceResponse:
    """Server-sent events of case changes in the caller's municipality: participant id,
    stage, version and event type only. Works across replicas (PostgreSQL NOTIFY)."""
    broadcaster: Broadcaster = request.app.state.broadcaster
    municipality = scope_of(who)

    async def events() -> AsyncIterator[dict[str, str]]:
        async with broadcaster.subscribe(municipality) as queue:
            yield {"event": "ready", "data": "{}"}
            while True:
                change = await queue.get()
                yield {"event": "case", "id": f"{change['participant_id']}:{change.get('version')}",
                       "data": orjson.dumps(change).decode()}

    return EventSourceResponse(events(), ping=15)
