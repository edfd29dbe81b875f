"""The individual plan (genomförandeplan) of a case: the editor (goals, activities, the next
review date, the participant's involvement), reviews, and what the case page shows of the
plan and of the attendance the host company reported.

The plan is versioned in casework: the editor sends the version it was opened on
(`If-Match`, or `If-None-Match: *` for the first plan); when someone else saved first,
casework answers 412 and the editor says so, keeps what was typed, and offers a reload.
"""

from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from web import forms
from web.auth import CaseWorker, User
from web.clients import ApiRefused, Apis
from web.deps import ApisDep, see_other
from web.i18n import N_
from web.i18n import gettext as _
from web.routes.attendance import ABSENCE_REASONS, swedish_message, today
from web.templating import flash, render

router = APIRouter()

GOAL_STATUS = {"open": N_("Pågår"), "reached": N_("Uppnått"), "dropped": N_("Avbrutet")}
OUTCOMES = {"continue": N_("Planen fortsätter som den är"),
            "revise": N_("Planen ska skrivas om"),
            "end": N_("Planeringen avslutas (ingen ny uppföljning)")}
BLANK_ROWS = 2
"""Empty rows for new goals and activities under the existing ones (no JavaScript needed)."""
_ROW = re.compile(r"^(goals|activities)\[(\d+)\]\.(\w+)$")


def plan_message(message: str) -> str:
    """casework's plan messages in Swedish."""
    known = {
        "cannot be in the past": N_("Får inte ha passerat"),
        "cannot be in the future": N_("Får inte vara ett senare datum än i dag"),
        "must be after the review's date": N_("Måste vara efter dagens uppföljning"),
        "is required unless the outcome is end": N_(
            "Ange nästa uppföljning (om inte planeringen avslutas)"),
        "is not given when the outcome is end": N_(
            "Lämna tomt när planeringen avslutas"),
        "end cannot be before start": N_("Slutdatum kan inte vara före startdatum"),
        "no goal with this id in the plan": N_("Målet finns inte i planen längre"),
    }
    if message in known:
        return _(known[message])
    m = re.match(r"cannot be before the plan was written \((\d{4}-\d{2}-\d{2})\)", message)
    if m:
        return _("Kan inte vara före planen skrevs (%(date)s)", date=m.group(1))
    return swedish_message(message)


def refusal(problem: dict[str, Any]) -> str:
    """casework's 409 on a plan in words."""
    title = problem.get("title")
    if title == "Case closed":
        return _("Ärendet är avslutat, så planen ändras inte längre.")
    if title == "Participant erased":
        return _("Deltagarens uppgifter är raderade, så planen ändras inte längre.")
    return str(problem.get("detail") or problem.get("title") or "")


def _translated(problem: dict[str, Any]) -> dict[str, Any]:
    return {**problem, "errors": [{**e, "message": plan_message(str(e.get("message", "")))}
                                  for e in problem.get("errors") or []]}


# --- reading ------------------------------------------------------------------------------


async def read_plan(apis: Apis, user: User, participant_id: UUID) -> dict[str, Any] | None:
    """The case's plan, or None before the first one is written."""
    r = await apis.casework.call("GET", f"/participants/{participant_id}/plan", user.token,
                                 accept=(404,))
    if r.status_code == 404:
        await apis.casework.get(f"/participants/{participant_id}", user.token)  # 404 the case
        return None
    plan: dict[str, Any] = r.json()
    return plan


async def placement_attendance(apis: Apis, user: User, placement: dict[str, Any]
                               ) -> dict[str, Any] | None:
    """A placement's reported days this month and the last (up to its end), with sums:
    the months a case worker checks the statements of."""
    start = date.fromisoformat(str(placement["start"])[:10])
    ended = placement.get("ended")
    last = min(today(), date.fromisoformat(str(ended["at"])[:10])) if ended else today()
    first = max(start, (last.replace(day=1) - timedelta(days=1)).replace(day=1))
    if first > last:
        return None
    try:
        page = await apis.casework.get(f"/placements/{placement['placement_id']}/attendance",
                                       user.token, **{"from": first.isoformat(),
                                                      "to": last.isoformat()})
    except ApiRefused:
        return None
    days = page["items"]
    absent: dict[str, int] = {}
    for d in days:
        if d.get("absence_reason"):
            absent[d["absence_reason"]] = absent.get(d["absence_reason"], 0) + 1
    planned = [d["planned_hours"] for d in days if d.get("planned_hours") is not None]
    return {"from": first, "to": last, "days": days,
            "hours_present": round(sum(d["hours_present"] for d in days), 2),
            "planned_hours": round(sum(planned), 2) if planned else None,
            "absent": absent, "closed_months": page.get("closed_months", [])}


async def case_extras(apis: Apis, user: User, participant_id: UUID,
                      placements: list[dict[str, Any]]) -> dict[str, Any]:
    """What the case page shows of the plan and of each placement's attendance."""
    plan, *attendance = await asyncio.gather(
        read_plan(apis, user, participant_id),
        *(placement_attendance(apis, user, p) for p in placements))
    return {
        "plan": plan, "goal_status": GOAL_STATUS, "outcomes": OUTCOMES,
        "reason_words": ABSENCE_REASONS, "today": today().isoformat(),
        "attendance": {p["placement_id"]: a for p, a in zip(placements, attendance,
                                                             strict=True)},
    }


# --- the editor ---------------------------------------------------------------------------


def _rows_from_plan(plan: dict[str, Any] | None) -> tuple[list[dict[str, Any]],
                                                          list[dict[str, Any]]]:
    goals = [{"id": g["id"], "text": g["text"], "target_date": g["target_date"],
              "status": g["status"]} for g in (plan or {}).get("goals") or []]
    activities = [{"text": a["text"], "start": a.get("start") or "", "end": a.get("end") or ""}
                  for a in (plan or {}).get("activities") or []]
    goals += [{"id": "", "text": "", "target_date": "", "status": "open"}] * BLANK_ROWS
    activities += [{"text": "", "start": "", "end": ""}] * BLANK_ROWS
    return goals, activities


def _rows_from_form(form: FormData) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    found: dict[str, dict[int, dict[str, str]]] = {"goals": {}, "activities": {}}
    for key in form:
        m = _ROW.match(key)
        if m:
            value = form.get(key)
            found[m.group(1)].setdefault(int(m.group(2)), {})[m.group(3)] = \
                value.strip() if isinstance(value, str) else ""
    goals = [{"id": "", "text": "", "target_date": "", "status": "open", **found["goals"][i]}
             for i in sorted(found["goals"])]
    activities = [{"text": "", "start": "", "end": "", **found["activities"][i]}
                  for i in sorted(found["activities"])]
    return goals, activities


def _editor(request: Request, p: dict[str, Any], plan: dict[str, Any] | None,
            goals: list[dict[str, Any]], activities: list[dict[str, Any]], version: int,
            *, status: int = 200, **extra: Any) -> Response:
    return render(request, "plan_edit.html", {
        "p": p, "plan": plan, "goals": goals, "activities": activities, "version": version,
        "goal_status": GOAL_STATUS, **extra}, status=status, personal=True,
        title=_("Genomförandeplan"))


@router.get("/participants/{participant_id}/plan")
async def plan_form(participant_id: UUID, request: Request, user: CaseWorker,
                    apis: ApisDep) -> Response:
    p = await apis.casework.get(f"/participants/{participant_id}", user.token)
    plan = await read_plan(apis, user, participant_id)
    goals, activities = _rows_from_plan(plan)
    values = {"next_review_date": (plan or {}).get("next_review_date") or "",
              "participant_involved": ("yes" if plan["participant_involved"] else "no")
              if plan else ""}
    return _editor(request, p, plan, goals, activities, plan["version"] if plan else 0,
                   values=values)


def _body(form: FormData, goals: list[dict[str, Any]], activities: list[dict[str, Any]]
          ) -> tuple[dict[str, Any], dict[str, str]]:
    """The plan to PUT, and where each of its goals and activities sits in the form (a
    removed or empty row is not sent, so the API's `goals[1]` may be the form's third)."""
    aliases: dict[str, str] = {}
    body_goals: list[dict[str, Any]] = []
    for i, g in enumerate(goals):
        if g.get("remove") or not (g.get("text") or g.get("target_date") or g.get("id")):
            continue
        j = len(body_goals)
        goal: dict[str, Any] = {"text": g.get("text") or "",
                                "target_date": g.get("target_date") or None,
                                "status": g.get("status") or "open"}
        if g.get("id"):
            goal["id"] = g["id"]
        body_goals.append(goal)
        for k in ("text", "target_date", "status", "id"):
            aliases[f"goals[{j}].{k}"] = f"goals[{i}].{k}" if k != "id" else f"goals[{i}].text"
        aliases[f"goals[{j}]"] = f"goals[{i}].text"
    body_activities: list[dict[str, Any]] = []
    for i, a in enumerate(activities):
        if a.get("remove") or not (a.get("text") or a.get("start") or a.get("end")):
            continue
        j = len(body_activities)
        body_activities.append({"text": a.get("text") or "", "start": a.get("start") or None,
                                "end": a.get("end") or None})
        for k in ("text", "start", "end"):
            aliases[f"activities[{j}].{k}"] = f"activities[{i}].{k}"
        aliases[f"activities[{j}]"] = f"activities[{i}].end"
    involved = forms.text(form, "participant_involved")
    body = {"goals": body_goals, "activities": body_activities,
            "next_review_date": forms.text(form, "next_review_date"),
            "participant_involved": {"yes": True, "no": False}.get(involved or "")}
    return body, aliases


def _known(goals: list[dict[str, Any]], activities: list[dict[str, Any]]) -> dict[str, str]:
    known = {"next_review_date": _("Nästa uppföljning av planen"),
             "participant_involved": _("Var deltagaren med och skrev planen?")}
    for i in range(len(goals)):
        known[f"goals[{i}].text"] = _("Mål %(n)s", n=i + 1)
        known[f"goals[{i}].target_date"] = _("Mål %(n)s: måldatum", n=i + 1)
        known[f"goals[{i}].status"] = _("Mål %(n)s: status", n=i + 1)
    for i in range(len(activities)):
        known[f"activities[{i}].text"] = _("Aktivitet %(n)s", n=i + 1)
        known[f"activities[{i}].start"] = _("Aktivitet %(n)s: från", n=i + 1)
        known[f"activities[{i}].end"] = _("Aktivitet %(n)s: till", n=i + 1)
    return known


@router.post("/participants/{participant_id}/plan")
async def save_plan(participant_id: UUID, request: Request, user: CaseWorker,
                    apis: ApisDep) -> Response:
    form = await request.form()
    version = forms.number(form, "version")
    version = version if isinstance(version, int) and version >= 0 else 0
    goals, activities = _rows_from_form(form)
    body, aliases = _body(form, goals, activities)
    headers = {"If-None-Match": "*"} if version == 0 else {"If-Match": f'"{version}"'}
    r = await apis.casework.call("PUT", f"/participants/{participant_id}/plan", user.token,
                                 json=body, headers=headers, accept=(409, 412, 422))
    if r.status_code in (409, 412, 422):
        p = await apis.casework.get(f"/participants/{participant_id}", user.token)
        plan = await read_plan(apis, user, participant_id)
        values = {k: v for k, v in forms.values(form).items() if not _ROW.match(k)}
        if r.status_code == 422:
            errors = forms.from_problem(_translated(r.json()), _known(goals, activities),
                                        aliases)
        else:
            errors = forms.FormErrors()
        stale = r.status_code == 412 or (r.status_code == 409 and version == 0 and plan)
        if r.status_code == 409 and not stale:
            errors.add(None, refusal(r.json()))
        return _editor(request, p, plan, goals, activities, version,
                       status=412 if stale else r.status_code, stale=bool(stale),
                       values=values, **errors.context())
    flash(request, _("Planen är sparad."))
    return see_other(request, f"/participants/{participant_id}#plan")


@router.post("/participants/{participant_id}/plan/reviews")
async def review_plan(participant_id: UUID, request: Request, user: CaseWorker,
                      apis: ApisDep) -> Response:
    from web.routes.cases import show_case

    form = await request.form()
    number = forms.number(form, "version")
    version = number if isinstance(number, int) and number >= 0 else 0  # 0: the API's 412
    outcome = forms.text(form, "review.outcome")
    body: dict[str, Any] = {"date": forms.text(form, "review.date"), "outcome": outcome,
                            "comment": forms.text(form, "review.comment"),
                            "next_review_date": forms.text(form, "review.next_review_date")}
    body = {k: v for k, v in body.items() if v is not None or k == "outcome"}
    r = await apis.casework.call("POST", f"/participants/{participant_id}/plan/reviews",
                                 user.token, json=body, headers={"If-Match": f'"{version}"'},
                                 accept=(409, 412, 422))
    if r.status_code in (409, 412, 422):
        known = {"review.date": _("Datum för uppföljningen"), "review.outcome": _("Beslut"),
                 "review.comment": _("Kommentar"),
                 "review.next_review_date": _("Nästa uppföljning")}
        aliases = {k.removeprefix("review."): k for k in known}
        errors = forms.from_problem(_translated(r.json()), known, aliases) \
            if r.status_code == 422 else forms.FormErrors()
        if r.status_code == 412:
            errors.add(None, _("Någon annan har ändrat planen sedan du öppnade sidan. "
                               "Uppföljningen är inte sparad: läs planen igen och registrera "
                               "uppföljningen på nytt."))
        elif r.status_code == 409:
            errors.add(None, refusal(r.json()))
        return await show_case(request, user, apis, participant_id, status=r.status_code,
                               **errors.context(), values=forms.values(form))
    flash(request, _("Uppföljningen av planen är registrerad."))
    return see_other(request, f"/participants/{participant_id}#plan")
