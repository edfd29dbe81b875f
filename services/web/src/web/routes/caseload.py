"""The case worker's caseload: cases of their municipality with counts per stage, filters,
and live updates relayed from casework's `/stream` (the token stays on the server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from asf_kit.logging import get_logger
from web import forms
from web.auth import CaseWorker
from web.clients import ApiRefused, ApiUnavailable
from web.deps import ApisDep, SettingsDep, see_other
from web.i18n import TIMEZONE
from web.i18n import gettext as _
from web.labels import STAGE_ORDER
from web.templating import flash, render

router = APIRouter()
log = get_logger(__name__)
PAGE_SIZE = 50


@router.get("/caseload")
async def caseload(request: Request, user: CaseWorker, apis: ApisDep, settings: SettingsDep,
                   stage: str | None = None, mine: str | None = None,
                   cursor: str | None = None, part: str | None = None) -> Response:
    stage = stage if stage in STAGE_ORDER else None
    only_mine = mine == "1"
    # The two calls go out together: the page waits for the slower, not for both in turn.
    page, counts = await asyncio.gather(
        apis.casework.get("/participants", user.token, stage=stage, cursor=cursor,
                          limit=PAGE_SIZE, assigned_to=user.sub if only_mine else None),
        _stage_counts(apis, user))
    context = {
        "cases": page["items"], "next_cursor": page.get("next_cursor"), "counts": counts,
        "stage": stage, "mine": only_mine, "cursor": cursor,
        "stream": settings.stream_enabled,
    }
    return render(request, "caseload.html", context, title=_("Ärenden"),
                  block="results" if part == "results" else None)


async def _stage_counts(apis: Any, user: Any) -> dict[str, Any] | None:
    """Cases per stage in the municipality (casework's outcome figures, all time)."""
    try:
        outcomes = await apis.casework.get("/stats/outcomes", user.token,
                                           municipality_code=user.municipality_code)
    except ApiRefused:
        return None
    counts: dict[str, Any] | None = outcomes.get("by_stage")
    return counts


@router.get("/caseload/stream")
async def caseload_stream(request: Request, user: CaseWorker, apis: ApisDep,
                          settings: SettingsDep) -> Response:
    """casework's server-sent events, relayed with the person's token. When the stream is
    down the browser retries later; the page works without it."""
    if not settings.stream_enabled:
        return Response(status_code=204)  # tells EventSource to stop
    headers = {"Accept": "text/event-stream"}
    last = request.headers.get("last-event-id")
    if last:
        headers["Last-Event-ID"] = last

    async def relay() -> AsyncIterator[bytes]:
        try:
            async with apis.casework.stream("/stream", user.token, headers) as upstream:
                if upstream.status_code != 200:
                    log.info("stream refused", status=upstream.status_code)
                    yield b"retry: 30000\n\n"
                    return
                async for chunk in upstream.aiter_raw():
                    yield chunk
        except ApiUnavailable:
            yield b"retry: 15000\n\n"
        except Exception as e:  # the connection to casework dropped mid-stream
            log.info("stream relay ended", error=type(e).__name__)
            yield b"retry: 5000\n\n"

    return StreamingResponse(relay(), media_type="text/event-stream", headers={
        "Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.post("/participants/search")
async def search(request: Request, user: CaseWorker, apis: ApisDep) -> Response:
    """Find a person by identity number (a POST: the number stays out of URLs and logs)."""
    form = await request.form()
    number = forms.text(form, "personal_identity_number")
    r = await apis.casework.call("POST", "/participants/search", user.token,
                                 json={"personal_identity_number": number or ""},
                                 accept=(422,))
    if r.status_code == 422:
        errors = forms.from_problem(r.json(), {"personal_identity_number": _("Personnummer")})
        return render(request, "search_results.html", {
            **errors.context(), "values": forms.values(form), "cases": []},
            status=422, title=_("Sök deltagare"), personal=True)
    cases = r.json()["items"]
    if len(cases) == 1:
        return see_other(request, f"/participants/{cases[0]['id']}")
    if not cases:
        flash(request, _("Ingen deltagare med det personnumret har ett ärende i din kommun."),
              "info")
        return see_other(request, "/caseload")
    return render(request, "search_results.html", {"cases": cases}, title=_("Sök deltagare"),
                  personal=True)


@router.get("/worklists")
async def worklists(request: Request, user: CaseWorker, apis: ApisDep) -> Response:
    """What needs doing: follow-ups that are due and placements flagged because their
    company was deregistered (casework's `GET /follow-ups` and `GET /placements`)."""
    follow_ups = await _list_or_none(apis, user.token, "/follow-ups",
                                     {"assigned_to": user.sub, "status": "due", "limit": 200})
    flagged = await _list_or_none(apis, user.token, "/placements",
                                  {"flagged": "true", "active": "true", "limit": 200})
    soon = (datetime.now(TIMEZONE).date() + timedelta(days=PLAN_REVIEWS_AHEAD)).isoformat()
    plans = await _list_or_none(apis, user.token, "/plans",  # plan reviews (issue 19)
                                {"assigned_to": user.sub, "due_before": soon, "limit": 200})
    return render(request, "worklists.html", {"follow_ups": follow_ups, "flagged": flagged,
                                              "plans": plans}, title=_("Att göra"))


PLAN_REVIEWS_AHEAD = 15
"""The worklist shows plan reviews due now and in the next two weeks."""


async def _list_or_none(apis: Any, token: str, path: str, params: dict[str, Any]
                        ) -> list[dict[str, Any]] | None:
    """The items, or None while casework does not offer the list yet."""
    r = await apis.casework.call("GET", path, token, params=params, accept=(404, 405))
    if r.status_code != 200:
        return None
    items: list[dict[str, Any]] = r.json()["items"]
    return items
