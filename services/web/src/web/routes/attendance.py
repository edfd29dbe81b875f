"""The company rep's attendance (närvaro) a week at a time, and the monthly statements.

The grid shows, per placement running at the rep's company that week, one row per day:
what is already reported, the hours present and an absence reason to fill in. Each
placement's week is its own form (one Save per placement); each filled-in day that
differs from what is reported becomes one `PUT /placements/{id}/attendance/{date}`.
A day casework refuses keeps what was typed and shows why beside its field (a 422 naming
the field, a 409 naming the statement that closed the month); the days it took are saved.

The rep sees only what casework gives them: the participant's given name and family
initial, the placement's kind, dates and planned hours.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from web import forms, i18n
from web.auth import CompanyRep, User, role
from web.clients import ApiRefused, ApiUnavailable, TokenRefused, problem_of
from web.deps import ApisDep, see_other
from web.i18n import N_
from web.i18n import gettext as _
from web.labels import label
from web.templating import flash, is_htmx, render

router = APIRouter()

RepOrCaseWorker = Annotated[User, role("company_rep", "case_worker")]

WEEKDAYS = (N_("måndag"), N_("tisdag"), N_("onsdag"), N_("torsdag"), N_("fredag"),
            N_("lördag"), N_("söndag"))
ABSENCE_REASONS = {"sick": N_("Sjuk"), "leave": N_("Ledig"), "unexcused": N_("Ogiltig frånvaro"),
                   "other": N_("Annan orsak")}
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def today() -> date:
    return datetime.now(i18n.TIMEZONE).date()


def monday_of(week: str | None) -> date:
    """`2026-W48` → that week's Monday; anything else → this week's."""
    m = _WEEK.match(week or "")
    if m:
        try:
            return date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
        except ValueError:
            pass
    t = today()
    return t - timedelta(days=t.weekday())


def week_code(monday: date) -> str:
    year, week, _day = monday.isocalendar()
    return f"{year}-W{week:02d}"


def reason_choices() -> list[tuple[str, str]]:
    return [(k, _(v)) for k, v in ABSENCE_REASONS.items()]


def person(p: dict[str, Any]) -> str:
    """What the rep may see of the person: given name and family initial."""
    if not p.get("given_name"):
        return _("Raderad deltagare")
    initial = p.get("family_initial")
    return f"{p['given_name']} {initial}." if initial else str(p["given_name"])


def swedish_message(message: str) -> str:
    """casework's attendance messages in Swedish (the rest as forms translates them)."""
    if message.startswith("is required for an absence"):
        return _("Ange orsak till frånvaron: färre timmar än planerat")
    if message.startswith("is given only for an absence"):
        return _("Ange orsak bara vid frånvaro (färre timmar än planerat)")
    if message.startswith("is in the future"):
        return _("Dagen har inte kommit än")
    m = re.match(r"is before the placement started \((\d{4}-\d{2}-\d{2})\)", message)
    if m:
        return _("Placeringen började %(date)s", date=i18n.format_date(m.group(1)))
    m = re.match(r"is after the placement ended \((\d{4}-\d{2}-\d{2})\)", message)
    if m:
        return _("Placeringen slutade %(date)s", date=i18n.format_date(m.group(1)))
    m = re.match(r"is not in (\d{4}-\d{2})$", message)
    if m:
        return _("Dagen ligger inte i underlagets månad (%(month)s)", month=m.group(1))
    if message.startswith("no placement of this statement's company"):
        return _("Placeringen finns inte i underlaget")
    if message == "the same day is given twice":
        return _("Samma dag finns två gånger")
    return forms.translate_message(message)


def closed_message(problem: dict[str, Any]) -> str:
    statement = str(problem.get("statement_id") or "")
    return _("Månaden %(month)s är stängd av månadsunderlag %(ref)s. Ändringar görs nu som en "
             "rättelse av underlaget.", month=problem.get("month") or "",
             ref=statement[:8].upper())


# --- the grid -------------------------------------------------------------------------


@dataclass
class Day:
    date: date
    weekday: str
    state: str
    """`open` (can be reported), `future`, `outside` (the placement did not run), `closed`."""
    reported: dict[str, Any] | None
    statement_id: str | None = None

    @property
    def key(self) -> str:
        return self.date.isoformat()


@dataclass
class Row:
    placement: dict[str, Any]
    person: str
    days: list[Day]
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    saved: int | None = None

    @property
    def id(self) -> str:
        return str(self.placement["id"])


def _runs(p: dict[str, Any], first: date, last: date) -> bool:
    start = date.fromisoformat(p["start"])
    ended = date.fromisoformat(p["ended_on"]) if p.get("ended_on") else None
    return start <= last and (ended is None or ended >= first)


async def _rep_placements(apis: Any, user: User) -> list[dict[str, Any]]:
    if not user.company_id:
        return []
    items: list[dict[str, Any]] = []
    cursor = None
    for _page in range(10):
        page = await apis.casework.get(f"/companies/{user.company_id}/placements", user.token,
                                       limit=500, cursor=cursor)
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return items


async def rep_week_of(apis: Any, user: User, placement_id: UUID) -> str | None:
    """The week to report a placement of the rep's company in: this week, or the week it
    starts when that is later; None when it is not at their company."""
    for p in await _rep_placements(apis, user):
        if p["id"] == str(placement_id):
            return week_code(max(monday_of(None), monday_of(week_code(
                date.fromisoformat(p["start"])))))
    return None


async def _row(apis: Any, user: User, p: dict[str, Any], monday: date) -> Row:
    sunday = monday + timedelta(days=6)
    page = await apis.casework.get(f"/placements/{p['id']}/attendance", user.token,
                                   **{"from": monday.isoformat(), "to": sunday.isoformat()})
    reported = {d["date"]: d for d in page["items"]}
    closed = {c["month"]: str(c["statement_id"]) for c in page.get("closed_months", [])}
    start = date.fromisoformat(p["start"])
    ended = date.fromisoformat(p["ended_on"]) if p.get("ended_on") else None
    now = today()
    days = []
    for i in range(7):
        d = monday + timedelta(days=i)
        statement = closed.get(d.strftime("%Y-%m"))
        if d < start or (ended is not None and d > ended):
            state = "outside"
        elif statement:
            state = "closed"
        elif d > now:
            state = "future"
        else:
            state = "open"
        days.append(Day(d, _(WEEKDAYS[i]), state, reported.get(d.isoformat()), statement))
    return Row(placement=p, person=person(p), days=days)


async def grid(apis: Any, user: User, monday: date) -> list[Row]:
    sunday = monday + timedelta(days=6)
    placements = [p for p in await _rep_placements(apis, user) if _runs(p, monday, sunday)]
    return list(await asyncio.gather(*(_row(apis, user, p, monday) for p in placements)))


def _show(request: Request, rows: list[Row], monday: date, *, status: int = 200,
          error_list: list[dict[str, str]] | None = None) -> Response:
    sunday = monday + timedelta(days=6)
    year, number, _day = monday.isocalendar()
    return render(request, "attendance.html", {
        "rows": rows, "monday": monday, "sunday": sunday, "week": week_code(monday),
        "week_number": number, "year": year,
        "previous": week_code(monday - timedelta(days=7)),
        "next": week_code(monday + timedelta(days=7)),
        "this_week": week_code(monday_of(None)),
        "reasons": reason_choices(), "reason_words": ABSENCE_REASONS,
        "error_list": error_list or [],
    }, status=status, personal=True,
        title=_("Närvaro vecka %(week)s", week=number))


@router.get("/attendance")
async def attendance_week(request: Request, user: CompanyRep, apis: ApisDep,
                          week: str | None = None) -> Response:
    monday = monday_of(week)
    return _show(request, await grid(apis, user, monday), monday)


def _hours(value: str) -> Any:
    cleaned = value.replace(" ", "").replace("\u00a0", "").replace(",", ".")
    try:
        return float(cleaned)
    except ValueError:
        return value  # casework names the error


@router.post("/attendance/{placement_id}")
async def report_week(placement_id: UUID, request: Request, user: CompanyRep,
                      apis: ApisDep) -> Response:
    form = await request.form()
    monday = monday_of(forms.text(form, "week"))
    # Only this placement's week is read before saving (not every row of the grid).
    placement = next((p for p in await _rep_placements(apis, user)
                      if p["id"] == str(placement_id)
                      and _runs(p, monday, monday + timedelta(days=6))), None)
    if placement is None:
        raise ApiRefused(404, {"detail": "placement"})
    row = await _row(apis, user, placement, monday)
    saved, summary, closed = 0, [], 0
    for day in row.days:
        if day.state not in ("open", "closed"):
            continue  # a closed day is sent only from a page opened before the closing:
            # casework's 409 names the statement beside the field
        hours = forms.text(form, f"{day.key}.hours_present")
        reason = forms.text(form, f"{day.key}.absence_reason")
        row.values[f"{day.key}.hours_present"] = hours or ""
        row.values[f"{day.key}.absence_reason"] = reason or ""
        if hours is None:
            if reason is not None:
                row.errors[f"{day.key}.hours_present"] = _("Ange timmar närvarande (0 vid "
                                                          "frånvaro hela dagen)")
            continue
        body = {"hours_present": _hours(hours), "absence_reason": reason}
        before = day.reported
        if before is not None and before["absence_reason"] == reason and \
                body["hours_present"] == before["hours_present"]:
            continue  # unchanged
        r = await apis.casework.call("PUT", f"/placements/{placement_id}/attendance/{day.key}",
                                     user.token, json=body, accept=(409, 422))
        if r.status_code == 409:
            closed += 1
            row.errors[f"{day.key}.hours_present"] = closed_message(r.json())
        elif r.status_code == 422:
            for e in r.json().get("errors") or [{"field": "hours_present",
                                                  "message": r.json().get("detail", "")}]:
                name = "absence_reason" if e.get("field") == "absence_reason" \
                    else "hours_present"
                row.errors.setdefault(f"{day.key}.{name}",
                                      swedish_message(str(e.get("message", ""))))
        else:
            saved += 1
            day.reported = r.json()
    for key, message in row.errors.items():
        day_key, name = key.split(".")
        words = i18n.format_date(day_key)
        summary.append({"href": f"#a-{row.id}-{day_key}-{name}",
                        "text": f"{row.person}, {words}: {message}"})
    if row.errors:
        row.saved = saved
        fresh = await grid(apis, user, monday)  # what was saved now shows as reported
        for other in fresh:
            if other.id == row.id:
                other.errors, other.values, other.saved = row.errors, row.values, saved
        # only closed months refused: the 409 it is; any bad input: 422
        status = 409 if closed == len(row.errors) else 422
        return _show(request, fresh, monday, status=status, error_list=summary)
    message = _("Närvaron för %(person)s är sparad.", person=row.person) if saved else \
        _("Inget att spara för %(person)s: inga ändringar.", person=row.person)
    if is_htmx(request):
        fresh = await grid(apis, user, monday)
        for other in fresh:
            if other.id == row.id:
                other.saved = saved
        return _show(request, fresh, monday)
    flash(request, message)
    return see_other(request, f"/attendance?week={week_code(monday)}#placement-{placement_id}")


# --- statements ------------------------------------------------------------------------


@router.get("/statements")
async def statements(request: Request, user: RepOrCaseWorker, apis: ApisDep,
                     cursor: str | None = None) -> Response:
    params: dict[str, Any] = {"limit": 50, "cursor": cursor}
    if user.has("company_rep") and not user.has("case_worker"):
        if not user.company_id:  # a rep still registering their company has none yet
            return render(request, "statements.html", {"statements": [],
                                                        "next_cursor": None},
                          title=_("Månadsunderlag"))
        params["company_id"] = user.company_id
    page = await apis.casework.get("/statements", user.token, **params)
    return render(request, "statements.html", {
        "statements": page["items"], "next_cursor": page.get("next_cursor")},
        title=_("Månadsunderlag"))


def month_words(month: str) -> str:
    """`2026-10` → `oktober 2026`."""
    from babel import dates

    try:
        d = date.fromisoformat(month + "-01")
    except ValueError:
        return month
    return dates.format_date(d, "LLLL y", locale=i18n.current_locale.get())


@router.get("/statements/{statement_id}.csv")
async def statement_csv(statement_id: UUID, request: Request, user: RepOrCaseWorker,
                        apis: ApisDep) -> Response:
    """casework's CSV streamed through as it comes, with its file name."""
    api = apis.casework
    upstream = api.client.build_request("GET", f"/statements/{statement_id}.csv",
                                        headers=api.headers(user.token, {"Accept": "text/csv"}))
    try:
        r = await api.client.send(upstream, stream=True)
    except httpx.TimeoutException as e:
        raise ApiUnavailable(api.name, "timeout") from e
    except httpx.TransportError as e:
        raise ApiUnavailable(api.name, "unreachable") from e
    if r.status_code != 200:
        await r.aread()
        await r.aclose()
        if r.status_code == 401:
            raise TokenRefused()
        if r.status_code >= 500:
            raise ApiUnavailable(api.name, f"status {r.status_code}")
        raise ApiRefused(r.status_code, problem_of(r))
    headers = {"Cache-Control": "no-store",
               "Content-Disposition": r.headers.get(
                   "content-disposition", f'attachment; filename="statement-{statement_id}.csv"')}
    return StreamingResponse(r.aiter_raw(), media_type=r.headers.get("content-type", "text/csv"),
                             headers=headers, background=BackgroundTask(r.aclose))


CORRECTION_REASONS = {"attendance": N_("Närvaron var fel rapporterad"),
                      "rate": N_("Ersättningsnivån var fel eller saknades"),
                      "other": N_("Annat skäl")}


async def show_statement(request: Request, user: User, apis: Any, statement_id: UUID,
                         status: int = 200, **extra: Any) -> Response:
    s = await apis.casework.get(f"/statements/{statement_id}", user.token)
    for line in s["lines"]:
        line["person"] = person(line)
    return render(request, "statement.html", {
        "s": s, "month": month_words(s["month"]), "reason_words": ABSENCE_REASONS,
        "reasons": reason_choices(),
        "correction_reasons": [(k, _(v)) for k, v in CORRECTION_REASONS.items()],
        "lines": [(str(line["placement_id"]),
                   f"{line['person']} – {label('placement_kind', line['kind'])}")
                  for line in s["lines"]], **extra},
        status=status, personal=True,
        title=_("Månadsunderlag %(month)s", month=month_words(s["month"])))


@router.get("/statements/{statement_id}")
async def statement_page(statement_id: UUID, request: Request, user: RepOrCaseWorker,
                         apis: ApisDep) -> Response:
    return await show_statement(request, user, apis, statement_id)


@router.post("/statements/{statement_id}/corrections")
async def correct_statement(statement_id: UUID, request: Request, user: RepOrCaseWorker,
                            apis: ApisDep) -> Response:
    """One day corrected in a closed month: casework issues a new statement that supersedes
    this one (the old one never changes)."""
    form = await request.form()
    day: dict[str, Any] = {
        "placement_id": forms.text(form, "correction.placement_id"),
        "date": forms.text(form, "correction.date"),
        "hours_present": _hours(forms.text(form, "correction.hours_present") or ""),
        "absence_reason": forms.text(form, "correction.absence_reason")}
    body = {"reason": forms.text(form, "correction.reason"), "attendance": [day]}
    r = await apis.casework.call("POST", f"/statements/{statement_id}/corrections", user.token,
                                 json=body, accept=(409, 422))
    if r.status_code in (409, 422):
        problem = r.json()
        known = {"correction.placement_id": _("Deltagare"), "correction.date": _("Dag"),
                 "correction.hours_present": _("Timmar närvarande"),
                 "correction.absence_reason": _("Frånvaroorsak"),
                 "correction.reason": _("Varför rättas underlaget?")}
        aliases = {f"attendance[0].{k}": f"correction.{k}" for k in (
            "placement_id", "date", "hours_present", "absence_reason")}
        aliases.update({"attendance[0]": "correction.hours_present",
                        "attendance": "correction.hours_present",
                        "reason": "correction.reason"})
        if r.status_code == 422:
            problem = {**problem, "errors": [
                {**e, "message": swedish_message(str(e.get("message", "")))}
                for e in problem.get("errors") or []]}
            errors = forms.from_problem(problem, known, aliases)
        else:
            errors = forms.FormErrors()
            newer = str(problem.get("superseded_by") or "")
            errors.add(None, _("Underlaget har redan ersatts av %(ref)s. Rätta det i stället.",
                               ref=newer[:8].upper()) if newer else
                       str(problem.get("detail") or ""))
        return await show_statement(request, user, apis, statement_id, status=r.status_code,
                                    **errors.context(), values=forms.values(form))
    new = r.json()
    flash(request, _("Underlaget är rättat. Det nya underlaget ersätter det gamla."))
    return see_other(request, f"/statements/{new['id']}")
