"""Casework's HTTP API: parse, call the use case, respond. Everything is scoped to the
caller's municipality; another municipality's participant is a 404."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from typing import Annotated, Any
from uuid import UUID

import jwt
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from asf_kit.api import Cursor, IfMatch, Limit, if_match_version, problems, set_etag
from asf_kit.auth import Principal, Role, require
from asf_kit.fields import Day
from asf_kit.pagination import DEFAULT_LIMIT, Page, decode_cursor, time_cursor
from asf_kit.problems import invalid
from casework.domain import FollowUp, FollowUpStatus, Placement
from casework.inputs import (
    FollowUpIn,
    IdentitySearch,
    NoteIn,
    ParticipantIn,
    ParticipantPatch,
    PlacementEndIn,
    PlacementIn,
    Stage,
    TransitionIn,
)
from casework.outcomes import FIRST_DAY_PATTERN, LAST_DAY_PATTERN, Outcomes
from casework.scope import may_read_stats, scope_of
from casework.service import Casework
from casework.stream import CaseStream
from casework.timeline import TimelineItem
from casework.views import (
    AccessLogEntry,
    Case,
    FollowUpItem,
    Note,
    ParticipantView,
    PlacementItem,
)

router = APIRouter()


async def _casework(request: Request) -> Casework:
    casework: Casework = request.app.state.casework
    return casework


def _signed_in(*roles: Role, scoped: bool = False
               ) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Let in `roles` only (and, when `scoped`, only with a municipality in the token: 403
    before anything is looked up), and note who called (see `Casework.note_caller`)."""

    allowed = require(*roles)

    async def dependency(request: Request, who: Principal = Depends(allowed)) -> Principal:
        if scoped:
            scope_of(who)
        await (await _casework(request)).note_caller(who)
        return who

    return dependency


Service = Annotated[Casework, Depends(_casework)]
CaseWorker = Annotated[Principal, Depends(_signed_in(Role.CASE_WORKER, scoped=True))]
Auditor = Annotated[Principal, Depends(_signed_in(Role.AUDITOR))]
StatsReader = Annotated[Principal, Depends(_signed_in(Role.ANALYST, Role.CASE_WORKER))]
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
    return Page[Case].of(items, limit, lambda c: [c.referred_at.isoformat(), str(c.id)])


@router.post("/participants/search", tags=["participants"], responses=_errors)
async def find_participant(body: IdentitySearch, service: Service,
                           who: CaseWorker) -> Page[Case]:
    """Find a person's cases (open and closed) in the caller's municipality by identity
    number. A POST, so the number never appears in a URL or an access log of a proxy."""
    return Page[Case](items=await service.find(body.personal_identity_number, who),
                      next_cursor=None)


@router.get("/participants/{participant_id}", tags=["participants"], responses=_errors)
async def get_participant(participant_id: UUID, service: Service, who: CaseWorker,
                          response: Response) -> ParticipantView:
    """The participant with their personal data; the read is written to the access log.
    `ETag` is the version, to send back as `If-Match` with a correction."""
    participant = await service.get(participant_id, who)
    set_etag(response, participant.version)
    return participant


@router.patch("/participants/{participant_id}", tags=["participants"],
              responses=problems(403, 404, 409, 412, 428))
async def correct_participant(participant_id: UUID, body: ParticipantPatch, service: Service,
                              who: CaseWorker, response: Response,
                              if_match: IfMatch = None) -> ParticipantView:
    """Correct the person's details (`given_name`, `family_name`, `phone`, `email`) or the
    case's (`referral_source`), or hand the case to another case worker of the municipality
    (`assigned_to`: someone casework knows as one, i.e. who has signed in to it). Send the
    version read as `If-Match` (412 when stale, 428 without it)."""
    participant = await service.correct(participant_id, body, if_match_version(if_match), who)
    set_etag(response, participant.version)
    return participant


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
    participant_id: UUID, service: Service, who: Auditor, limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[AccessLogEntry]:
    """Who read or changed the participant's data, and when (auditors only; of their own
    municipality when their token names one). The auditor's read is logged too."""
    key = decode_cursor(cursor, 1)
    if key is not None and (type(key[0]) is not int or not 0 <= key[0] < 2**63):
        raise invalid("cursor", "not a cursor this API returned")
    items = await service.access_log(participant_id, key[0] if key else None, limit + 1, who)
    return Page[AccessLogEntry].of(items, limit, lambda e: [e.id])


# --- statistics and the stream -----------------------------------------------------------


@router.get("/stats/outcomes", tags=["statistics"], responses=_errors)
async def outcomes(
    service: Service,
    who: StatsReader,
    municipality_code: Annotated[str | None, Query(pattern=r"^\d{4}$")] = None,
    from_: Annotated[Day | None, Query(alias="from", description="The first day of a month",
                                       json_schema_extra={"pattern": FIRST_DAY_PATTERN})] = None,
    to: Annotated[Day | None, Query(description="The last day of a month",
                                    json_schema_extra={"pattern": LAST_DAY_PATTERN})] = None,
) -> Outcomes:
    """Outcome figures (counts only, never a person). An analyst sees every municipality;
    a case worker their own. `from` and `to` cover whole calendar months; a count from 1 to
    `STATS_MIN_GROUP - 1`, or one a second period could give away by subtraction, is null
    and `suppressed` is true."""
    return await service.outcomes(may_read_stats(who, municipality_code), from_, to)


@router.get("/stream", tags=["cases"], responses=problems(403, 422, 429, 503),
            response_description="text/event-stream: `ready`, `case` events, `end`")
async def stream(request: Request, who: CaseWorker,
                 last_event_id: Annotated[str | None, Header()] = None) -> EventSourceResponse:
    """Server-sent events of case changes in the caller's municipality: participant id,
    stage, version and event type only; every event has an `id`. Reconnect with
    `Last-Event-ID` to be sent what was missed (kept at least 24 h; `ready` says
    `reset: true` when it was not kept and the client should reload). The stream ends
    (event `end`) when the token expires. At most 5 streams per person (429)."""
    streams: CaseStream = request.app.state.streams
    session = await streams.open(who.sub, scope_of(who), _stream_id(last_event_id),
                                 _token_expiry(request))
    return EventSourceResponse(session.events(), ping=15,
                               background=BackgroundTask(session.close))


def _stream_id(value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return None
    if not value.strip().isdigit() or len(value.strip()) > 18:
        raise invalid("Last-Event-ID", "must be the id of an event this stream sent")
    return int(value)


def _token_expiry(request: Request) -> datetime:
    """When the caller's token (verified by the time a route runs) expires."""
    token = request.headers["authorization"].partition(" ")[2].strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    return datetime.fromtimestamp(int(claims["exp"]), UTC)


# --- worklists ---------------------------------------------------------------------------


@router.get("/follow-ups", tags=["worklists"], responses=_errors)
async def follow_ups(
    service: Service,
    who: CaseWorker,
    assigned_to: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f]+$")] = None,
    due_before: Annotated[Day | None, Query(description="due strictly before this day")] = None,
    status: Annotated[FollowUpStatus | None, Query(
        description="`due` (open, the day has come), `upcoming`, `recorded` or `cancelled`; "
        "all but the cancelled when left out")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[FollowUpItem]:
    """The follow-ups of the caller's municipality, in due order."""
    items = await service.follow_ups(who, assigned_to=assigned_to, due_before=due_before,
                                     status=status, after=_date_cursor(cursor),
                                     limit=limit + 1)
    return Page[FollowUpItem].of(items, limit, lambda f: [f.due_date.isoformat(), str(f.id)])


@router.get("/placements", tags=["worklists"], responses=_errors)
async def placements(
    service: Service,
    who: CaseWorker,
    company_id: UUID | None = None,
    flagged: Annotated[bool | None, Query(
        description="flagged because the company was deregistered")] = None,
    active: bool | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[PlacementItem]:
    """The placements of the caller's municipality, in the order they were made."""
    items = await service.placements(who, company_id=company_id, flagged=flagged,
                                     active=active, after=time_cursor(cursor), limit=limit + 1)
    return Page[PlacementItem].of(items, limit,
                                  lambda p: [p.created_at.isoformat(), str(p.id)])


def _date_cursor(cursor: str | None) -> tuple[date, UUID] | None:
    key = decode_cursor(cursor, 2)
    if key is None:
        return None
    try:
        return date.fromisoformat(str(key[0])), UUID(str(key[1]))
    except ValueError as e:
        raise invalid("cursor", "not a cursor this API returned") from e
