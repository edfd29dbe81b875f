"""The rules of plans, attendance and statements, without a database: working days, the plan's
versions and reviews, what an attendance report needs, how a month's statement adds up,
the share of planned hours attended."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from asf_kit.rules import RuleError
from casework.attendance import (
    AttendanceDay,
    AttendanceIn,
    HostedPlacement,
    PlacementHours,
    Rate,
    RateIn,
    RepPlacement,
    attendance_shares,
    day_report,
    report,
)
from casework.domain import Participant
from casework.plan import Plan, PlanIn, ReviewIn, plan_timeline
from casework.statements import (
    CSV_COLUMNS,
    StatementLineView,
    StatementSummary,
    StatementView,
    issue,
    statement_csv,
)
from casework.workdays import Month, easter_sunday, first_working_day, is_working_day, swedish_date

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TODAY = AT.date()


# --- working days ------------------------------------------------------------------------


@pytest.mark.parametrize(("year", "easter"), [
    (2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)), (2026, date(2026, 4, 5)),
    (2027, date(2027, 3, 28)), (2038, date(2038, 4, 25)),
])
def test_easter(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter


@pytest.mark.parametrize(("month", "first"), [
    (Month(2026, 1), date(2026, 1, 2)),    # nyårsdagen is a Thursday
    (Month(2026, 2), date(2026, 2, 2)),    # the 1st is a Sunday
    (Month(2024, 4), date(2024, 4, 2)),    # annandag påsk on the 1st
    (Month(2027, 5), date(2027, 5, 3)),    # första maj is a Saturday
    (Month(2025, 5), date(2025, 5, 2)),    # första maj is a Thursday
    (Month(2026, 10), date(2026, 10, 1)),  # a Thursday
    (Month(2026, 11), date(2026, 11, 2)),  # the 1st is a Sunday
    (Month(2026, 6), date(2026, 6, 1)),
])
def test_first_working_day_of_a_month(month: Month, first: date) -> None:
    assert first_working_day(month) == first


def test_days_off() -> None:
    for day in (date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 14), date(2026, 6, 19),
                date(2026, 12, 24), date(2026, 12, 31), date(2026, 1, 6)):
        assert not is_working_day(day), day
    assert is_working_day(date(2026, 6, 18)) and not is_working_day(date(2026, 6, 20))


def test_months() -> None:
    assert str(Month.parse("2026-01").previous()) == "2025-12"
    assert Month(2025, 12).next() == Month(2026, 1)
    assert Month(2024, 2).last == date(2024, 2, 29) and len(Month(2024, 2).days()) == 29
    for bad in ("2026-13", "2026-1", "26-01", "2026-00"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            Month.parse(bad)


def test_a_swedish_date_is_not_utcs() -> None:
    assert swedish_date(datetime(2026, 10, 31, 23, 30, tzinfo=UTC)) == date(2026, 11, 1)


# --- the plan ----------------------------------------------------------------------------


def case(stage: str = "assessment") -> Participant:
    p = Participant.refer("0180", "self", "cw-1", "cw-1", AT - timedelta(days=30))
    p.take_events()
    p.stage = stage
    return p


def plan_body(**changes: object) -> PlanIn:
    body: dict[str, object] = {
        "goals": [{"text": "Klara ett heltidsschema", "target_date": "2027-03-01"}],
        "activities": [{"text": "Arbetsträning i köket", "start": "2026-11-02"}],
        "next_review_date": "2026-12-01", "participant_involved": True}
    body.update(changes)
    return PlanIn.model_validate(body)


def test_a_plan_is_written_then_rewritten_keeping_goal_ids() -> None:
    p = case()
    plan = Plan.write_first(p, plan_body(), "cw-1", AT, TODAY)
    assert plan.version == 1 and plan.content is not None
    goal = plan.content.goals[0]
    assert goal.status == "open"
    [v1] = plan.take_added()
    assert (v1.version, v1.change) == (1, "written")  # type: ignore[union-attr]

    kept = plan_body(goals=[{"id": str(goal.id), "text": goal.text, "target_date": "2027-03-01",
                             "status": "reached"}, {"text": "Ta körkort",
                                                    "target_date": "2027-06-01"}])
    assert plan.rewrite(p, kept, "cw-2", AT, TODAY) is True
    assert plan.version == 2 and plan.updated_by == "cw-2"
    assert [g.id == goal.id for g in plan.content.goals] == [True, False]
    assert plan.content.goals[0].status == "reached"
    # the same again changes nothing
    same = plan_body(goals=[g.model_dump(mode="json") for g in plan.content.goals])
    assert plan.rewrite(p, same, "cw-2", AT, TODAY) is False and plan.version == 2


def test_plan_rules_name_every_field() -> None:
    p = case()
    plan = Plan.write_first(p, plan_body(), "cw-1", AT, TODAY)
    with pytest.raises(RuleError) as e:
        plan.rewrite(p, plan_body(next_review_date="2026-10-01", goals=[
            {"id": str(uuid.uuid4()), "text": "x", "target_date": "2027-01-01"}]),
            "cw-1", AT, TODAY)
    fields = {x["field"] for x in e.value.extra["errors"]}  # type: ignore[attr-defined]
    assert e.value.status == 422 and fields == {"goals[0].id", "next_review_date"}
    # a review date left as it was may have passed (the review is then due)
    plan.next_review_date = date(2026, 10, 1)
    assert plan.rewrite(p, plan_body(next_review_date="2026-10-01", participant_involved=False),
                        "cw-1", AT, TODAY)
    with pytest.raises(RuleError) as e:
        Plan.write_first(p, plan_body(goals=[{"id": str(uuid.uuid4()), "text": "x",
                                              "target_date": "2027-01-01"}]), "cw", AT, TODAY)
    assert e.value.status == 422


@pytest.mark.parametrize(("body", "field"), [
    ({"goals": [{"text": "", "target_date": "2027-01-01"}]}, "goals[0].text"),
    ({"goals": [{"text": "a", "target_date": "2027-01-01", "status": "done"}]},
     "goals[0].status"),
    ({"goals": [{"text": "a"}]}, "goals[0].target_date"),
    ({"goals": [{"text": "a\x00", "target_date": "2027-01-01"}]}, "goals[0].text"),
    ({"activities": [{"text": "a", "start": "2027-01-02", "end": "2027-01-01"}]},
     "activities[0]"),
    ({"participant_involved": None}, "participant_involved"),
    ({"goals": [{"text": "a", "target_date": "2027-01-01"}] * 51}, "goals"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_plan_input(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as e:
        plan_body(**body)
    from asf_kit.problems import field_errors

    assert field in {f.field for f in field_errors(e.value.errors())}


def test_closed_or_erased_cases_keep_their_plan_as_it_is() -> None:
    p = case()
    plan = Plan.write_first(p, plan_body(), "cw-1", AT, TODAY)
    p.stage = "closed"
    with pytest.raises(RuleError) as e:
        plan.rewrite(p, plan_body(participant_involved=False), "cw-1", AT, TODAY)
    assert e.value.status == 409
    assert plan.review_due(p) is None


def test_a_review_moves_the_plan_to_a_new_version_and_the_next_date() -> None:
    p = case()
    plan = Plan.write_first(p, plan_body(), "cw-1", AT - timedelta(days=10), TODAY)
    plan.take_added()
    review = plan.review(p, ReviewIn.model_validate({
        "outcome": "continue", "next_review_date": "2027-02-01", "comment": "Bra"}),
        "cw-1", AT, TODAY)
    assert (review.held_on, review.plan_version, plan.version) == (TODAY, 2, 2)
    assert plan.next_review_date == date(2027, 2, 1)
    assert [type(x).__name__ for x in plan.take_added()] == ["PlanVersion", "Review"]
    assert review.model_dump(by_alias=True)["date"] == TODAY
    event = plan.review_due(p)
    assert event is not None and event.type == "casework.plan.review_due"
    assert event.aggregate_id == plan.id and event.version == 2
    assert event.payload.model_dump(mode="json") == {
        "participant_id": str(p.id), "municipality_code": "0180", "assigned_to": "cw-1",
        "review_date": "2027-02-01", "plan_version": 2}
    ended = plan.review(p, ReviewIn.model_validate({"outcome": "end"}), "cw-1", AT, TODAY)
    assert ended.next_review_date is None and plan.review_due(p) is None
    items = plan_timeline(_history(plan))
    assert [i.kind for i in items] == ["plan_written", "plan_reviewed", "plan_reviewed"]


def _history(plan: Plan) -> object:
    from casework.plan import PlanHistory

    return PlanHistory(versions=[(1, "written", plan.created_at, plan.created_by)],
                       reviews=plan.reviews, notices=[])


@pytest.mark.parametrize(("body", "fields"), [
    ({"outcome": "continue"}, {"next_review_date"}),
    ({"outcome": "end", "next_review_date": "2027-01-01"}, {"next_review_date"}),
    ({"outcome": "continue", "date": "2026-11-03", "next_review_date": "2027-01-01"},
     {"date"}),
    ({"outcome": "revise", "date": "2026-01-01", "next_review_date": "2026-11-01"},
     {"date", "next_review_date"}),
    ({"outcome": "continue", "date": "2026-11-01", "next_review_date": "2026-11-01"},
     {"next_review_date"}),
])
def test_review_rules(body: dict[str, object], fields: set[str]) -> None:
    p = case()
    plan = Plan.write_first(p, plan_body(), "cw-1", AT - timedelta(days=5), TODAY)
    with pytest.raises(RuleError) as e:
        plan.review(p, ReviewIn.model_validate(body), "cw-1", AT, TODAY)
    assert {x["field"] for x in e.value.extra["errors"]} == fields  # type: ignore[attr-defined]
    assert plan.version == 1


# --- attendance --------------------------------------------------------------------------


def placement(start: date = date(2026, 9, 1), ended_on: date | None = None,
              hours_per_week: float | None = 20, kind: str = "work_training") -> HostedPlacement:
    return HostedPlacement(id=uuid.uuid4(), participant_id=uuid.uuid4(),
                           company_id=uuid.uuid4(), municipality_code="0180", kind=kind,
                           start=start, planned_end=None, ended_on=ended_on,
                           hours_per_week=hours_per_week, status="active")


def day(hours: float, reason: str | None = None) -> AttendanceIn:
    return AttendanceIn.model_validate({"hours_present": hours, "absence_reason": reason})


def test_planned_hours_fall_on_working_days_of_the_placement() -> None:
    pl = placement(start=date(2026, 9, 1), ended_on=date(2026, 9, 30))
    assert pl.planned_hours(date(2026, 9, 1)) == 4.0       # a Tuesday
    assert pl.planned_hours(date(2026, 9, 5)) == 0.0       # a Saturday
    assert pl.planned_hours(date(2026, 8, 31)) == 0.0      # before it started
    assert placement(hours_per_week=None).planned_hours(date(2026, 9, 1)) is None


@pytest.mark.parametrize(("on", "body", "field", "says"), [
    (date(2026, 11, 3), day(4), "date", "future"),
    (date(2026, 8, 31), day(4), "date", "before the placement started (2026-09-01)"),
    (date(2026, 10, 1), day(4), "date", "after the placement ended (2026-09-30)"),
    (date(2026, 9, 1), day(0), "absence_reason", "4 hours were planned, 0 present"),
    (date(2026, 9, 1), day(3.5), "absence_reason", "required for an absence"),
    (date(2026, 9, 1), day(4, "sick"), "absence_reason", "only for an absence"),
    (date(2026, 9, 5), day(0, "sick"), "absence_reason", "only for an absence"),
])
def test_a_report_that_cannot_be_taken(on: date, body: AttendanceIn, field: str,
                                       says: str) -> None:
    pl = placement(ended_on=date(2026, 9, 30))
    with pytest.raises(RuleError) as e:
        report(pl, on, body, TODAY, "rep", AT, None)
    [error] = e.value.extra["errors"]  # type: ignore[attr-defined]
    assert error["field"] == field and says in error["message"]


@pytest.mark.parametrize("raw", [{"hours_present": 24.5}, {"hours_present": -1},
                                 {"hours_present": 2, "absence_reason": "holiday"}, {}])
def test_bad_report_input(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AttendanceIn.model_validate(raw)


def test_reports_that_are_taken() -> None:
    pl = placement()
    full = report(pl, date(2026, 9, 1), day(4), TODAY, "rep", AT, None)
    assert (full.absence_hours, full.version) == (0.0, 1)
    part = report(pl, date(2026, 9, 2), day(1.5, "leave"), TODAY, "rep", AT, full)
    assert (part.absence_hours, part.version) == (2.5, 2)
    weekend = report(pl, date(2026, 9, 6), day(0), TODAY, "rep", AT, None)
    assert weekend.planned_hours == 0.0 and weekend.absence_hours == 0.0
    unplanned = placement(hours_per_week=None)
    with pytest.raises(RuleError):  # without weekly hours, no hour on a working day is absence
        report(unplanned, date(2026, 9, 1), day(0), TODAY, "rep", AT, None)
    assert report(unplanned, date(2026, 9, 1), day(2), TODAY, "rep", AT, None).absence_hours \
        is None


def test_the_reps_view_is_the_allow_list() -> None:
    pl = placement()
    view = RepPlacement.of(pl, "Åsa", "öberg")
    assert view.family_initial == "Ö"
    assert set(view.model_dump()) == {
        "id", "company_id", "municipality_code", "kind", "start", "planned_end", "ended_on",
        "status", "hours_per_week", "given_name", "family_initial"}


def test_a_rate_needs_a_unit_and_a_positive_amount() -> None:
    ok = {"kind": "work_training", "unit": "day", "amount_sek": 350, "valid_from": "2026-01-01"}
    RateIn.model_validate(ok)
    for bad in ({"unit": "week"}, {"amount_sek": 0}, {"kind": "job"}, {"valid_from": "x"},
                {"municipality_code": "180"}):
        with pytest.raises(ValidationError):
            RateIn.model_validate({**ok, **bad})


# --- statements --------------------------------------------------------------------------


def rate(kind: str, unit: str, amount: float, valid_from: date) -> Rate:
    return Rate(id=uuid.uuid4(), municipality_code="0180", kind=kind, unit=unit,  # type: ignore[arg-type]
                amount_sek=amount, valid_from=valid_from, created_by="cw", created_at=AT)


def reported(pl: HostedPlacement, on: date, hours: float, reason: str | None = None
             ) -> AttendanceDay:
    return day_report(pl, on, hours, reason, "rep", AT, 1)  # type: ignore[arg-type]


def test_a_months_statement_adds_up() -> None:
    sept = Month(2026, 9)
    a = placement(start=date(2026, 8, 1))  # ran the whole month
    b = placement(start=date(2026, 9, 14), kind="internship", hours_per_week=10)
    gone = placement(start=date(2026, 6, 1), ended_on=date(2026, 8, 31))
    reports = [
        reported(a, date(2026, 9, 1), 4), reported(a, date(2026, 9, 2), 4),
        reported(a, date(2026, 9, 3), 0, "sick"), reported(a, date(2026, 9, 4), 1, "leave"),
        reported(a, date(2026, 9, 6), 0),  # a Sunday: nothing planned, nothing missing
        reported(a, date(2026, 10, 1), 4),  # next month: not in this statement
        reported(b, date(2026, 9, 14), 2), reported(b, date(2026, 9, 15), 2),
    ]
    rates = [rate("work_training", "day", 300, date(2026, 1, 1)),
             rate("work_training", "day", 330, date(2026, 9, 2)),  # a raise mid-month
             rate("internship", "hour", 45.5, date(2026, 1, 1)),
             rate("work_training", "hour", 99, date(2026, 10, 1))]  # later: not used
    s = issue(company_id=a.company_id, company_name="Kaféet", municipality_code="0180",
              month=sept, placements=[b, a, gone], reports=reports, rates=rates, at=AT)
    line_a, line_b = s.lines
    assert (line_a.placement_id, line_b.placement_id) == (a.id, b.id)
    assert line_a.working_days == 22 and line_a.planned_hours == 88.0
    assert (line_a.days_reported, line_a.days_present, line_a.hours_present) == (5, 3, 9.0)
    assert line_a.absence_days == {"sick": 1, "leave": 1, "unexcused": 0, "other": 0}
    assert line_a.absence_hours == {"sick": 4.0, "leave": 3.0, "unexcused": 0.0, "other": 0.0}
    assert line_a.unreported_working_days == 22 - 4
    assert line_a.amount_sek == 300 + 330 + 330
    assert [(r.amount_sek, r.days) for r in line_a.rates] == [(300, 1), (330, 2)]
    assert (line_b.first_day, line_b.last_day, line_b.planned_hours) == (
        date(2026, 9, 14), date(2026, 9, 30), 26.0)  # 13 working days × 2 hours
    assert line_b.amount_sek == 182.0  # 4 hours × 45.50
    t = s.totals
    assert (t.placements, t.days_present, t.hours_present, t.amount_sek) == (2, 5, 13.0, 1142.0)
    assert s.kind == "original" and s.supersedes is None and s.issued_by == "casework"
    event = s.issued()
    assert event.payload.model_dump(mode="json")["totals"] == {
        "placements": 2, "days_present": 5, "hours_present": 13.0,
        "absence_days": {"sick": 1, "leave": 1, "unexcused": 0, "other": 0},
        "amount_sek": 1142.0}

    # without a rate, a day present is counted and not paid
    unpaid = issue(company_id=a.company_id, company_name=None, municipality_code="0180",
                   month=sept, placements=[a], reports=reports, rates=[], at=AT)
    assert unpaid.totals.amount_sek == 0 and unpaid.totals.days_without_rate == 3

    correction = issue(company_id=a.company_id, company_name="Kaféet", municipality_code="0180",
                       month=sept, placements=[a], reports=reports[:2], rates=rates, at=AT,
                       by="rep-1", supersedes=s, reason="attendance")
    assert (correction.kind, correction.supersedes, correction.reason) == (
        "correction", s.id, "attendance")
    assert correction.id != s.id and s.totals.amount_sek == 1142.0  # the old one as it was


def test_the_statement_as_csv() -> None:
    a = placement(start=date(2026, 8, 1))
    s = issue(company_id=a.company_id, company_name="=Kaféet", municipality_code="0180",
              month=Month(2026, 9), placements=[a],
              reports=[reported(a, date(2026, 9, 1), 4)],
              rates=[rate("work_training", "day", 300, date(2026, 1, 1))], at=AT)
    view = StatementView(**StatementSummary.of(s, None).model_dump(), lines=[
        StatementLineView(**x.model_dump(), given_name="Åsa", family_initial="Ö")
        for x in s.lines])
    text = statement_csv(view)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    line, total = rows
    assert (line["row"], line["given_name"], line["family_initial"]) == ("placement", "Åsa", "Ö")
    assert (line["days_present"], line["hours_present"], line["amount_sek"]) == (
        "1", "4.00", "300.00")
    assert line["company_name"] == "'=Kaféet"  # never a formula in a spreadsheet
    assert (total["row"], total["amount_sek"], total["placement_id"]) == ("total", "300.00", "")


# --- attendance in the outcomes ----------------------------------------------------------


def test_share_of_planned_hours_attended_and_small_groups_suppressed() -> None:
    june_from, june_to = date(2026, 6, 1), date(2026, 6, 30)  # 21 working days (midsommarafton)
    rows = [PlacementHours("work_training", "0180", date(2026, 5, 1), None, 20, 42.0)
            for _ in range(5)]
    rows += [PlacementHours("internship", "0180", date(2026, 6, 1), date(2026, 6, 5), 10, 8.0)
             for _ in range(2)]
    rows.append(PlacementHours("daily_activity", "0180", date(2026, 7, 1), None, 10, 0.0))
    shares, suppressed = attendance_shares(rows, june_from, june_to, TODAY, min_group=5)
    by_kind = {s.kind: s for s in shares}
    wt = by_kind["work_training"]
    assert (wt.placements, wt.planned_hours, wt.hours_present) == (5, 420.0, 210.0)
    assert wt.share_attended == 0.5
    assert suppressed and by_kind["internship"].placements is None
    assert by_kind["internship"].share_attended is None
    assert by_kind["daily_activity"].placements == 0  # it started after: nobody to single out
    assert by_kind["daily_activity"].share_attended is None
    _, none_suppressed = attendance_shares(rows[:5], june_from, june_to, TODAY, min_group=5)
    assert not none_suppressed
    # without a period: from each start up to today
    shares, _ = attendance_shares(rows[:1], None, None, date(2026, 5, 8), min_group=1)
    assert shares[0].planned_hours == 20.0  # 2026-05-01 is första maj: 5 working days


def test_overlapping_periods_do_not_give_away_a_small_group_by_subtraction() -> None:
    # five ran in April and May; two more only in June. April-June has seven, but April-May
    # (five, shown) subtracted from it would give the two of June: so it is withheld.
    rows = [PlacementHours("work_training", "0180", date(2026, 4, 1), date(2026, 5, 29), 20, 1)
            for _ in range(5)]
    late = [PlacementHours("work_training", "0180", date(2026, 6, 1), None, 20, 1)
            for _ in range(2)]
    spring = (date(2026, 4, 1), date(2026, 6, 30))
    shares, suppressed = attendance_shares(rows + late, *spring, TODAY, min_group=5)
    assert suppressed and shares[0].placements is None
    shares, suppressed = attendance_shares(rows + late, date(2026, 4, 1), date(2026, 5, 31),
                                           TODAY, min_group=5)
    assert not suppressed and shares[0].placements == 5
    # over all municipalities: a municipality withheld on its own is not given away by the
    # total minus the others
    rows = [PlacementHours("work_training", "0180", date(2026, 4, 1), None, 20, 1)
            for _ in range(5)]
    elsewhere = [PlacementHours("work_training", "1480", date(2026, 4, 1), None, 20, 1)
                 for _ in range(2)]
    shares, suppressed = attendance_shares(rows + elsewhere, *spring, TODAY, min_group=5)
    assert not suppressed and shares[0].placements == 7
    shares, suppressed = attendance_shares(rows + elsewhere, *spring, TODAY, min_group=5,
                                           all_municipalities=True)
    assert suppressed and shares[0].placements is None
